"""What every benchmark module works on: the private server and its clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import redis
from timing import Settings

from redis_memory import Memory

__all__ = ["Context", "pottery_client"]


@dataclass(frozen=True)
class Context:
    """The run's private server, its clients and its settings.

    Attributes
    ----------
    url : str
        ``unix://`` URL of the private embedded server.
    data_dir : pathlib.Path
        The server's temporary data directory.
    raw : redis.Redis
        A plain redis-py client, bytes in and out, for the raw contender.
    pottery : redis.Redis
        The client of the pottery contender; see `pottery_client`.
    mem : Memory
        redis-memory on namespace ``bench`` without the read cache, so that
        writes are timed without the cache's subscription thread.
    cached_mem : Memory
        redis-memory on namespace ``bench-cached`` with the read cache on, as
        ``Memory()`` is by default. Its subscription starts at its first read.
    settings : Settings
        Rounds, operations per round and time budget.
    sizes : tuple of int
        Collection sizes of the scaling measurements.
    main_size : int
        The size whose figures go into the main table.
    quick : bool
        Whether this is the short run.
    """

    url: str
    data_dir: Path
    raw: redis.Redis
    pottery: redis.Redis
    mem: Memory
    cached_mem: Memory
    settings: Settings
    sizes: tuple[int, ...]
    main_size: int
    quick: bool


class _PotteryConnection(redis.UnixDomainSocketConnection):
    """A unix socket connection that accepts, and ignores, a ``host`` argument."""

    def __init__(self, host: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]


def pottery_client(url: str) -> redis.Redis:
    """Return a client of the unix socket ``url`` that pottery 3.0 can use.

    pottery groups its containers by the pool's ``host``, ``port`` and ``db``
    arguments before a WATCH and fails with KeyError on a unix socket pool,
    which has no ``host``. This pool carries a placeholder host that its
    connections ignore.
    """
    path = unquote(url.removeprefix("unix://"))
    pool = redis.ConnectionPool(
        connection_class=_PotteryConnection, path=path, host="unix-socket"
    )
    return redis.Redis(connection_pool=pool)

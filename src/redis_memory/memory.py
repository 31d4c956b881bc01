"""Memory: a namespace of named values stored in Redis.

Every attribute name that does not start with an underscore is user data:
``mem.tasks = [1, 2]`` stores ``tasks``. The library's own API therefore lives
only in dunder methods (``len(mem)``, ``list(mem)``, ``"x" in mem``,
``del mem["x"]``) and in methods whose names start with one underscore, as
:func:`collections.namedtuple` does (``mem._asdict()``, ``mem._clear()``).
Item access (``mem["any name"]``) reaches every name, those starting with an
underscore included.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterator
from typing import Any

import redis

from . import config
from .batch import Batch
from .cache import shared_cache
from .codec import Codec
from .connection import connect, connect_client
from .dicts import SyncedDict, update_pairs
from .entries import key_repr
from .keys import ROOT_ID
from .node import Node
from .store import Store

__all__ = ["RECORD_PREFIX", "Memory"]

# Names under which the IPython extension keeps its %%remember records; listings
# meant for people (%mem, the live view) hide them.
RECORD_PREFIX = "__remember__:"


class _Namespace(SyncedDict):
    """The namespace's own node: a dict of names whose paths read ``mem.name``."""

    __slots__ = ()

    def _child_path(self, key: object) -> str:
        if isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key):
            return f"{self._path}.{key}"
        return f"{self._path}[{key_repr(key)}]"


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(
            f"names in Memory are strings, not {type(name).__name__}: {name!r}; "
            f"convert it, for example mem[str({name!r})]"
        )
    return name


class Memory:
    """Named values stored in Redis, shared by every process that opens the namespace.

    Parameters
    ----------
    url : str, optional
        ``redis://``, ``rediss://`` or ``unix://`` URL. Default: the environment
        variable ``REDIS_MEMORY_URL``, else ``REDIS_URL``, else an embedded
        server that is started on first use and shared by the user's processes.
    namespace : str, optional
        Default: ``REDIS_MEMORY_NAMESPACE``, else ``"default"``. Names in
        different namespaces never collide.
    pickle_key : bytes or str, optional
        Enables pickle for values without a codec, signed with this key;
        pickled values from Redis are loaded only when their signature matches.
    client : redis.Redis, optional
        An existing redis-py client to use instead of ``url``.
    cache : bool, optional
        Keep local copies of read results and drop them when the change feed
        reports a change (one subscription connection per namespace and process).
        Default: True with ``url``, False with ``client``, whose lifetime the
        library does not control.

    Examples
    --------
    >>> mem = Memory(namespace="doctest")            # doctest: +SKIP
    >>> mem.tasks = [1, 2, 3]                         # doctest: +SKIP
    >>> mem.tasks.append(4)                           # doctest: +SKIP
    >>> Memory(namespace="doctest").tasks             # doctest: +SKIP
    [1, 2, 3, 4]
    """

    __slots__ = ("_root", "_store")

    _store: Store
    _root: _Namespace

    def __init__(
        self,
        url: str | None = None,
        namespace: str | None = None,
        *,
        pickle_key: bytes | str | None = None,
        client: redis.Redis | None = None,
        cache: bool | None = None,
    ) -> None:
        name = config.resolve_namespace(namespace)
        if client is not None:
            connection = connect_client(client)
        else:
            connection = connect(config.resolve_url(url))
        store = Store(connection, name, Codec(pickle_key=pickle_key))
        if cache if cache is not None else client is None:
            store.cache = shared_cache(connection, store)
        object.__setattr__(self, "_store", store)
        object.__setattr__(self, "_root", _Namespace(store, ROOT_ID, "mem", ""))

    # -- names as attributes --------------------------------------------------

    def __getattribute__(self, name: str) -> Any:
        # Names are looked up here rather than in __getattr__, which Python
        # calls only after a failed lookup. That failure took about 0.6 of the
        # 1.4 us of a cached mem.cfg (timeit, on the benchmark machine).
        if name.startswith("_") or (
            type(self) is not Memory and hasattr(type(self), name)
        ):
            # The library's names, and what a subclass defines on its class.
            return object.__getattribute__(self, name)
        root: _Namespace = object.__getattribute__(self, "_root")
        try:
            return root[name]
        except KeyError:
            raise AttributeError(
                f"'Memory' object has no attribute {name!r}: nothing is stored under "
                f"that name in namespace {self._store.namespace!r}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            raise AttributeError(
                f"cannot set mem.{name}: names starting with '_' are reserved for the "
                f"library; store it with mem[{name!r}] = ..."
            )
        self._root[name] = value

    def __delattr__(self, name: str) -> None:
        if name.startswith("_"):
            raise AttributeError(
                f"cannot delete mem.{name}: names starting with '_' are reserved"
            )
        try:
            del self._root[name]
        except KeyError:
            raise AttributeError(
                f"'Memory' object has no attribute {name!r}: nothing is stored under "
                f"that name in namespace {self._store.namespace!r}"
            ) from None

    def __dir__(self) -> list[str]:
        stored = [
            name for name in self if name.isidentifier() and not name.startswith("_")
        ]
        return sorted(set(super().__dir__()) | set(stored))

    # -- names as items -------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        return self._root[_check_name(name)]

    def __setitem__(self, name: str, value: Any) -> None:
        self._root[_check_name(name)] = value

    def __delitem__(self, name: str) -> None:
        del self._root[_check_name(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._root

    def __iter__(self) -> Iterator[str]:
        return iter(self._root)

    def __len__(self) -> int:
        return len(self._root)

    def __repr__(self) -> str:
        return f"Memory(url={self._url!r}, namespace={self._store.namespace!r})"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "a Memory cannot be pickled or copied, because it holds a connection; "
            f"open Memory(url, {self._store.namespace!r}) in the other process instead"
        )

    # -- the library's API, named so that it cannot shadow data ----------------

    @property
    def _url(self) -> str:
        """The server's URL, password masked."""
        return self._store.connection.url

    @property
    def _namespace(self) -> str:
        """The namespace name."""
        return self._store.namespace

    def _names(self) -> list[str]:
        """Return the stored names in insertion order."""
        return list(self._root)

    def _asdict(self) -> dict[str, Any]:
        """Return every stored name and its plain value, read in one round trip."""
        return self._root.asdict()

    def _clear(self) -> None:
        """Delete every name of the namespace, and everything stored under them."""
        self._root.clear()

    def _update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store many names in one atomic step, as ``dict.update`` does."""
        if isinstance(other, Node):
            pairs = list(other._plain().items())
        elif isinstance(other, Memory):
            pairs = list(other._asdict().items())
        else:
            pairs = update_pairs(other)
        pairs.extend(kwargs.items())
        for name, _ in pairs:
            _check_name(name)
        self._root.update(pairs)

    def _sync(self, timeout: float = 5.0) -> None:
        """Wait until reads here reflect every change made so far, by any process.

        With the read cache on, another process's change is seen by every read
        that starts after its change message has arrived, a median of about
        0.2 ms after the write on loopback (``bench/run.py``, docs/benchmarks.md).
        Call this after learning of a change by other means (a queue, a file,
        a message) and before reading it. Costs one round trip.

        Raises
        ------
        TimeoutError
            If the change messages did not arrive within ``timeout`` seconds.
        """
        cache = self._store.cache
        if cache is None:
            return
        version = self._store.version()
        if not cache.sync(version, timeout):
            raise TimeoutError(
                f"the change feed of namespace {self._namespace!r} did not reach "
                f"version {version} within {timeout} s; reads may be stale, or open "
                "the Memory with cache=False"
            )

    def _close(self) -> None:
        """Stop the namespace's read cache and close its subscription in this process.

        Every Memory of the namespace on the same connection shares the cache,
        so they all read from Redis afterwards.
        """
        if self._store.cache is not None:
            self._store.cache.close()

    def _batch(self) -> Batch:
        """Return a context manager that sends this thread's changes in one atomic step.

        The changes go in one round trip; :mod:`redis_memory.batch` gives the rules.
        """
        return Batch(self._store)

    def _version(self) -> int:
        """Return the namespace's version counter, bumped by every change."""
        return self._store.version()

"""redis-memory: Python lists and dicts that live in Redis.

>>> from redis_memory import Memory          # doctest: +SKIP
>>> mem = Memory()                           # doctest: +SKIP
>>> mem.tasks = [1, 2, 3]                    # doctest: +SKIP
>>> mem.tasks.append(4)                      # persisted at once  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .codec import register_codec
from .dicts import SyncedDict
from .errors import (
    CorruptValueError,
    OutcomeUnknownError,
    PickleRefusedError,
    ReadOnlyReplicaError,
    RedisMemoryError,
    ServerFullError,
    ServerUnavailableError,
    StaleReferenceError,
    UnsupportedTypeError,
    ValueTooLargeError,
)
from .lists import SyncedList
from .memory import Memory

__all__ = [
    "CorruptValueError",
    "Memory",
    "OutcomeUnknownError",
    "PickleRefusedError",
    "ReadOnlyReplicaError",
    "RedisMemoryError",
    "ServerFullError",
    "ServerUnavailableError",
    "StaleReferenceError",
    "SyncedDict",
    "SyncedList",
    "UnsupportedTypeError",
    "ValueTooLargeError",
    "load_ipython_extension",
    "register_codec",
    "unload_ipython_extension",
]

__version__ = "0.2.0"


def load_ipython_extension(ipython: Any) -> None:
    """Load the IPython extension (``%load_ext redis_memory``)."""
    from ipython_ext import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Unload the IPython extension (``%unload_ext redis_memory``)."""
    from ipython_ext import unload_ipython_extension as unload

    unload(ipython)

"""Exceptions raised by redis-memory.

Each one subclasses the builtin exception a Python user would expect for the
same mistake (``TypeError`` for a value that cannot be stored, ``ConnectionError``
for an unreachable server), so ``except TypeError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "CorruptValueError",
    "EmbeddedServerError",
    "OutcomeUnknownError",
    "PickleRefusedError",
    "ReadOnlyReplicaError",
    "RedisMemoryError",
    "ServerFullError",
    "ServerUnavailableError",
    "StaleReferenceError",
    "UnsupportedTypeError",
    "ValueTooLargeError",
]


class RedisMemoryError(Exception):
    """Base class of every exception defined by redis-memory."""


class UnsupportedTypeError(RedisMemoryError, TypeError):
    """A value of a type that has no codec was about to be stored.

    Attributes
    ----------
    path : str
        Where the value was going, for example ``mem.cfg['users'][2]``.
    value_type : type
        The type that has no codec.
    """

    def __init__(self, path: str, value_type: type, hint: str = "") -> None:
        self.path = path
        self.value_type = value_type
        name = f"{value_type.__module__}.{value_type.__qualname__}"
        if value_type.__module__ == "builtins":
            name = value_type.__qualname__
        message = f"cannot store {path}: values of type {name} are not supported"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class CorruptValueError(RedisMemoryError, ValueError):
    """Text stored under one of our keys is not a value this library wrote."""

    def __init__(self, where: str, raw: bytes | str, reason: str) -> None:
        self.where = where
        self.raw = raw
        shown: bytes | str = raw
        if len(raw) > 60:
            shown = raw[:57] + (b"..." if isinstance(raw, bytes) else "...")  # type: ignore[operator]
        super().__init__(f"corrupt value at {where}: {reason} (stored text: {shown!r})")


class PickleRefusedError(RedisMemoryError, ValueError):
    """A pickled value was read but pickle is off, or its signature is wrong."""


class StaleReferenceError(RedisMemoryError, LookupError):
    """A synced list or dict was deleted or replaced, possibly by another process.

    Attributes
    ----------
    path : str
        The path the handle was read from, for example ``mem.tasks``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"{path} no longer exists: it was deleted or replaced (perhaps by another "
            f"process); read it again from its parent, for example {path}"
        )


class ServerUnavailableError(RedisMemoryError, ConnectionError):
    """The Redis server could not be reached; the message names the URL (masked)."""


class EmbeddedServerError(ServerUnavailableError):
    """The embedded Valkey server could not be found, started or stopped.

    Attributes
    ----------
    message : str
        The one-line description of the failure.
    log_tail : str
        The last lines of the server's log file, or the empty string if there
        were none to show. ``str(error)`` appends them to ``message``.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.message = message
        self.log_tail = log_tail
        text = message
        if log_tail:
            indented = "\n".join("    " + line for line in log_tail.splitlines())
            text += f"\nlast lines of the server log:\n{indented}"
        super().__init__(text)


class ReadOnlyReplicaError(ServerUnavailableError):
    """The server is a read-only replica, so it rejected a change; nothing was stored."""


class ServerFullError(RedisMemoryError, OSError):
    """The server reached its ``maxmemory`` limit and rejected a change; nothing was stored."""


class ValueTooLargeError(RedisMemoryError, ValueError):
    """A value is larger than the server accepts in one request; nothing was stored."""


class OutcomeUnknownError(ServerUnavailableError):
    """The connection failed after a change was sent, so it may or may not be applied."""

"""The extension's state in one shell: settings, connections and the bound ``mem``.

The extension connects lazily. ``Memory(url)`` opens no connection until it is
used, so a remote server that is down does not stop ``%load_ext``. The
embedded server is started when a ``Memory`` is created; when that fails, the
user namespace gets a `PendingMemory` that connects on first use and then
replaces itself with the real ``Memory``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from IPython.core.error import UsageError

from redis_memory import Memory, ServerUnavailableError
from redis_memory.config import mask_url, resolve_namespace, resolve_url
from redis_memory.memory import RECORD_PREFIX

from .settings import RedisMemory

__all__ = [
    "RESERVED_PREFIX",
    "PendingMemory",
    "Session",
    "is_reserved",
    "plural",
    "visible_names",
]

# Names under which the extension keeps its own records, one per %%remember cell.
RESERVED_PREFIX = RECORD_PREFIX

# The library API of Memory whose names start with "_": PendingMemory forwards
# these, and answers every other "_" name (IPython's _repr_*_ probes) at once.
_MEMORY_API = frozenset(
    {"_asdict", "_clear", "_names", "_namespace", "_update", "_url", "_version"}
)


def is_reserved(name: str) -> bool:
    """Return whether ``name`` is one of the extension's own records."""
    return name.startswith(RESERVED_PREFIX)


def visible_names(memory: Memory) -> list[str]:
    """Return the stored names of ``memory`` without the extension's records."""
    return [name for name in memory if not is_reserved(name)]


def plural(count: int, noun: str) -> str:
    """Return ``"1 name"`` or ``"3 names"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class Session:
    """Everything the extension keeps for one shell.

    Parameters
    ----------
    shell : InteractiveShell
        The shell the extension is loaded into; its config supplies
        ``c.RedisMemory.*``. IPython's shell API is untyped, so it is held as Any.
    """

    def __init__(self, shell: Any) -> None:
        self.shell: Any = shell
        self.settings = RedisMemory(parent=shell)
        self._memories: dict[str, Memory] = {}
        self.views: list[Any] = []

    # -- connections ----------------------------------------------------------

    def namespace(self, override: str | None = None) -> str:
        """Return the namespace to use: ``override``, else the configured one."""
        return resolve_namespace(override or self.settings.namespace or None)

    def memory(self, namespace: str | None = None) -> Memory:
        """Return the Memory of ``namespace`` (default: the configured one).

        Raises
        ------
        UsageError
            If the configured URL is invalid.
        ServerUnavailableError
            If the embedded server cannot be started.
        """
        name = self.namespace(namespace)
        memory = self._memories.get(name)
        if memory is None:
            try:
                memory = Memory(url=self.settings.url or None, namespace=name)
            except (TypeError, ValueError) as exc:
                raise UsageError(str(exc)) from None
            self._memories[name] = memory
        return memory

    def where(self) -> str:
        """Describe the configured server: a masked URL or the embedded server."""
        try:
            url = resolve_url(self.settings.url or None)
        except (TypeError, ValueError):
            return mask_url(self.settings.url)
        if url is not None:
            return mask_url(url)
        memory = self._memories.get(self.namespace())
        if memory is not None:
            socket = unquote(memory._url.removeprefix("unix://"))
        else:
            from redis_memory.server import EmbeddedServer

            socket = str(EmbeddedServer().socket_path)
        return f"embedded server ({socket})"

    def forget_connections(self) -> None:
        """Drop the cached Memory objects, so the next use reads the settings again."""
        self._memories.clear()

    # -- the variable in the user namespace -----------------------------------

    def bind(self) -> str:
        """Bind the Memory (or a PendingMemory) to its name; return the status line."""
        namespace = self.namespace()
        target = self.settings.name
        try:
            memory = self.memory()
        except (ServerUnavailableError, UsageError) as exc:
            self.shell.push({target: PendingMemory(self)}, interactive=True)
            return (
                f"redis-memory: {target} is not connected (namespace {namespace!r}): "
                f"{_first_line(exc)}; it connects when first used"
            )
        self.shell.push({target: memory}, interactive=True)
        try:
            names = visible_names(memory)
            line = (
                f"redis-memory: {target} is connected to {self.where()}, namespace "
                f"{namespace!r}, {plural(len(names), 'name')} stored"
            )
            if self.settings.autorestore and names:
                recalled = self.recall_all(memory)
                line += f"; recalled {plural(len(recalled), 'name')} into the notebook"
        except ServerUnavailableError as exc:
            return (
                f"redis-memory: {target} is not connected to {self.where()} "
                f"(namespace {namespace!r}): {_first_line(exc)}; it connects when "
                "first used"
            )
        return line

    def unbind(self, name: str | None = None) -> None:
        """Remove the extension's variable, unless the user has rebound the name."""
        name = name or self.settings.name
        value = self.shell.user_ns.get(name)
        ours = (isinstance(value, PendingMemory) and value._session is self) or (
            isinstance(value, Memory) and value in self._memories.values()
        )
        if ours:
            del self.shell.user_ns[name]

    def connected(self, placeholder: PendingMemory) -> Memory:
        """Connect for ``placeholder`` and put the Memory in its place."""
        memory = self.memory()
        if self.shell.user_ns.get(self.settings.name) is placeholder:
            self.shell.user_ns[self.settings.name] = memory
        return memory

    def recall_all(self, memory: Memory) -> list[str]:
        """Push every stored name (one round trip) into the user namespace."""
        values = {
            name: value
            for name, value in memory._root.items()
            if not is_reserved(name) and name != self.settings.name
        }
        self.shell.push(values, interactive=True)
        return list(values)

    # -- teardown -------------------------------------------------------------

    def close_views(self) -> None:
        """Close the live views that ``%mem --watch`` opened."""
        for view in self.views:
            close = getattr(view, "close", None)
            if callable(close):
                close()
        self.views.clear()


class PendingMemory:
    """Stands for ``mem`` while the server cannot be reached.

    Every use tries to connect. On success it puts the real `Memory` in its
    place in the user namespace and forwards the operation; on failure the
    operation raises `ServerUnavailableError`.
    """

    __slots__ = ("_session",)

    _session: Session

    def __init__(self, session: Session) -> None:
        object.__setattr__(self, "_session", session)

    def _memory(self) -> Memory:
        return self._session.connected(self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") and name not in _MEMORY_API:
            raise AttributeError(name)
        return getattr(self._memory(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._memory(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._memory(), name)

    def __getitem__(self, name: str) -> Any:
        return self._memory()[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._memory()[name] = value

    def __delitem__(self, name: str) -> None:
        del self._memory()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._memory()

    def __iter__(self) -> Iterator[str]:
        return iter(self._memory())

    def __len__(self) -> int:
        return len(self._memory())

    def __dir__(self) -> list[str]:
        return sorted(_MEMORY_API)

    def __repr__(self) -> str:
        session = self._session
        return (
            f"<{session.settings.name}: not connected to {session.where()} yet "
            f"(namespace {session.namespace()!r}); it connects when first used>"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

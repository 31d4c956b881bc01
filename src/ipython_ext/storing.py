"""Storing notebook variables by name: what is left out, what is written, what is rebound.

Each name is one atomic write (``mem[name] = value``), so a value that cannot
be stored leaves nothing partial behind and does not stop the others. After a
list or dict is stored, the notebook variable is rebound to the live
`SyncedList` or `SyncedDict`, so later changes persist, exactly as after a
restore.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis_memory import Memory
from redis_memory.node import Node

from .session import PendingMemory, is_reserved

if TYPE_CHECKING:
    from .session import Session

__all__ = ["StoreReport", "skip_reason", "store_values"]

_FUNCTIONS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
)


@dataclass
class StoreReport:
    """What happened to each name: stored, left out (and why), or failed (and why)."""

    stored: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def lines(self, namespace: str) -> list[str]:
        """Return the lines that tell the user what happened."""
        lines = []
        if self.stored:
            lines.append(
                f"stored {', '.join(self.stored)} in redis-memory "
                f"(namespace {namespace!r})"
            )
        if self.skipped:
            described = ", ".join(
                f"{name} ({reason})" for name, reason in self.skipped.items()
            )
            lines.append(f"skipped {described}")
        lines.extend(
            f"not stored: {name}: {reason}" for name, reason in self.failed.items()
        )
        return lines


def _kind(value: Any) -> str | None:
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, type):
        return "class"
    if isinstance(value, _FUNCTIONS):
        return "function"
    return None


def skip_reason(
    session: Session, name: str, value: Any, recreated: Mapping[str, str]
) -> str | None:
    """Return why ``name`` is not stored, "" to leave it out silently, or None to store it.

    Parameters
    ----------
    session : Session
        The extension's state; its bound variable is never stored.
    name, value : str, object
        The variable.
    recreated : mapping
        Names that a restore re-creates, mapped to how: ``"defined"`` by a
        ``def`` or ``class`` statement, or ``"imported"``.
    """
    if name == session.settings.name or isinstance(value, (Memory, PendingMemory)):
        return ""
    if is_reserved(name):
        return "the name is reserved for the records of %%remember"
    kind = _kind(value)
    if kind is None:
        return None
    how = recreated.get(name)
    if how is not None:
        return f"{kind}, {how} again on restore"
    return f"{kind}s are not stored"


def _already_stored(memory: Memory, name: str, value: Any) -> bool:
    """Whether ``value`` is the live handle of ``memory[name]`` itself."""
    if not isinstance(value, Node):
        return False
    store = value._store
    return (
        store.keys.prefix == memory._store.keys.prefix
        and store.connection.url == memory._store.connection.url
        and value._path == memory._root._child_path(name)
    )


def store_values(
    session: Session,
    memory: Memory,
    values: Mapping[str, Any],
    recreated: Mapping[str, str] | None = None,
) -> StoreReport:
    """Store each of ``values`` under its name, one atomic write per name.

    Costs one round trip per name, and one more per list or dict to rebind it.

    Raises
    ------
    ServerUnavailableError
        If the server cannot be reached; the names before it are stored.
    """
    report = StoreReport()
    user_ns = session.shell.user_ns
    for name, value in values.items():
        reason = skip_reason(session, name, value, recreated or {})
        if reason is not None:
            if reason:
                report.skipped[name] = reason
            continue
        if _already_stored(memory, name, value):
            report.stored.append(name)
            continue
        try:
            memory[name] = value
        except (TypeError, ValueError, LookupError) as exc:
            report.failed[name] = str(exc)
            continue
        report.stored.append(name)
        if type(value) in (list, dict) or isinstance(value, Node):
            user_ns[name] = memory[name]
    return report

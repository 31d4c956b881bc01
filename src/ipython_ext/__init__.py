"""The IPython extension of redis-memory: ``%load_ext redis_memory``.

Loading binds ``mem`` (a `redis_memory.Memory`) into the user namespace,
registers the magics ``%%remember``, ``%remember``, ``%recall``, ``%forget``
and ``%mem``, the ``RedisMemory`` configurable (``%config RedisMemory``), and a
handler that shows an unreachable server as one line. It prints one line:
where ``mem`` is connected, the namespace, and how many names are stored.

Loading again, or ``%reload_ext``, replaces everything the previous load
added; ``%unload_ext`` removes it. docs/magics.md is the reference.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from .display import note
from .magics import RedisMemoryMagics
from .outage import OutageHandler
from .session import Session

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_WATCHED_SETTINGS = ["url", "namespace", "name"]


@dataclass
class _Loaded:
    session: Session
    magics: RedisMemoryMagics
    shadowed: dict[tuple[str, str], Any]
    outage: OutageHandler
    on_change: Any


_loaded: weakref.WeakKeyDictionary[Any, _Loaded] = weakref.WeakKeyDictionary()


def load_ipython_extension(ipython: Any) -> None:
    """Load the extension into ``ipython`` (``%load_ext redis_memory``)."""
    if ipython in _loaded:
        unload_ipython_extension(ipython)

    session = Session(ipython)
    ipython.configurables.append(session.settings)
    magics = RedisMemoryMagics(ipython, session)
    shadowed = _register_magics(ipython, magics)
    outage = OutageHandler(ipython)

    def on_change(change: Any) -> None:
        session.unbind(change.old if change.name == "name" else None)
        session.forget_connections()
        note(ipython, session.bind())

    session.settings.observe(on_change, names=_WATCHED_SETTINGS)
    _loaded[ipython] = _Loaded(session, magics, shadowed, outage, on_change)
    note(ipython, session.bind())


def unload_ipython_extension(ipython: Any) -> None:
    """Remove everything loading added (``%unload_ext redis_memory``)."""
    loaded = _loaded.pop(ipython, None)
    if loaded is None:
        return
    session = loaded.session
    session.settings.unobserve(loaded.on_change, names=_WATCHED_SETTINGS)
    session.close_views()
    session.unbind()
    loaded.outage.uninstall()
    _unregister_magics(ipython, loaded.magics, loaded.shadowed)
    for configurable in (session.settings, loaded.magics):
        if configurable in ipython.configurables:
            ipython.configurables.remove(configurable)


def _register_magics(
    ipython: Any, magics: RedisMemoryMagics
) -> dict[tuple[str, str], Any]:
    """Register ``magics``; return the magics they shadow (IPython's own %recall)."""
    manager = ipython.magics_manager
    shadowed = {
        (kind, name): manager.magics[kind][name]
        for kind, table in magics.magics.items()
        for name in table
        if name in manager.magics[kind]
    }
    ipython.register_magics(magics)
    return shadowed


def _unregister_magics(
    ipython: Any,
    magics: RedisMemoryMagics,
    shadowed: dict[tuple[str, str], Any],
) -> None:
    """Remove ``magics`` and put back the magics they shadowed."""
    manager = ipython.magics_manager
    for kind, table in magics.magics.items():
        registered = manager.magics[kind]
        for name, function in table.items():
            if registered.get(name) != function:
                continue  # someone registered another magic of that name since
            if (kind, name) in shadowed:
                registered[name] = shadowed[kind, name]
            else:
                del registered[name]
    if manager.registry.get(type(magics).__name__) is magics:
        del manager.registry[type(magics).__name__]

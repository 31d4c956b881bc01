"""MemoryView: a live ipywidgets view of a namespace or of one stored name.

Three threads touch a view. The feed thread (see :mod:`redis_memory.feed`)
only records that something changed. The view's refresh thread reads the data
in one round trip, at most once per ``throttle`` seconds however many changes
arrive, and redraws. The kernel's main thread runs the button handlers. Each
of them changes widget state only while it holds the view's lock, and none
prints or displays anything: the widgets send their updates to the browser
themselves.
"""

from __future__ import annotations

import copy
import keyword
import logging
import threading
import time
import weakref
from typing import Any

import ipywidgets
import redis
import traitlets

from .. import feed
from ..errors import RedisMemoryError, StaleReferenceError
from ..memory import RECORD_PREFIX, Memory
from ..node import Node
from . import render
from .tree import MISSING, Path, Tree

__all__ = ["MemoryView", "close_all"]

log = logging.getLogger(__name__)

# After this long without a connection, the view shows "disconnected" instead of
# "reconnecting"; the feed keeps trying either way.
_DISCONNECTED_AFTER_SECONDS = 5.0
# How often the status line is redrawn while the feed is not connected.
_STATUS_SECONDS = 1.0
# How long close() waits for the refresh thread, which may be in a read.
# How long a read waits for the read cache to catch up with this view's feed.
_CACHE_SYNC_SECONDS = 1.0
_JOIN_SECONDS = 5.0
# A read that takes t seconds delays the next one by at least this many times
# t, so that a huge namespace does not keep the server busy.
_READ_SHARE = 3.0
_READ_ERRORS = (RedisMemoryError, redis.RedisError, OSError)

_open_views: weakref.WeakSet[MemoryView] = weakref.WeakSet()


def close_all() -> None:
    """Close every open `MemoryView` of this process, stopping their threads."""
    for view in list(_open_views):
        view.close()


class MemoryView(ipywidgets.VBox):  # type: ignore[misc]
    """A live view of a namespace, or of one stored name, that follows every change.

    It shows each name with its type and size and its contents. Lists and
    dicts expand and collapse with their ▸ buttons, and one page of
    ``page_size`` items shows at a time. Changes made by any process appear
    within about ``throttle`` seconds plus one read, and the items that
    changed last are highlighted. The status line shows the connection state.

    Parameters
    ----------
    mem : Memory
        The namespace to show.
    name : str, optional
        Show only this stored name. Default: every name of the namespace.
    page_size : int
        How many items of each list or dict are shown at once.
    throttle : float
        Minimum time in seconds between two reads of the data.
    **kwargs
        Passed on to :class:`ipywidgets.VBox`, such as ``layout``.

    Notes
    -----
    Every refresh reads the whole namespace (``mem._asdict()``), or the whole
    value of ``name``, in one round trip, so for values of many megabytes pass
    ``name`` or raise ``throttle``. A slow read also spaces out the refreshes
    by itself. The view uses one thread and one extra Redis connection until
    `close` is called.

    Examples
    --------
    >>> from redis_memory.widgets import MemoryView   # doctest: +SKIP
    >>> MemoryView(mem)                                # doctest: +SKIP
    MemoryView(namespace='default', name=None)
    """

    connection_state = traitlets.Unicode(
        "reconnecting",
        read_only=True,
        help='"connected", "reconnecting" or "disconnected" (also after close()).',
    )
    version = traitlets.Int(
        0,
        read_only=True,
        help="The namespace version that the data on screen is at least as new as.",
    )
    refresh_count = traitlets.Int(
        0, read_only=True, help="How many times the view has redrawn since it opened."
    )

    def __init__(
        self,
        mem: Memory,
        name: str | None = None,
        *,
        page_size: int = 50,
        throttle: float = 0.25,
        **kwargs: Any,
    ) -> None:
        _check_arguments(mem, name, page_size, throttle)
        self._mem = mem
        self._name = name
        self._throttle = float(throttle)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        # _dirty: the status line must be redrawn; _stale: the data must be read.
        self._dirty = False
        self._stale = False
        self._not_before = 0.0
        self._has_data = False
        self._current: Any = MISSING
        self._previous: Any = MISSING
        self._handle: Node | None = None
        self._last_change: feed.Change | None = None
        self._changed_names: list[str] = []
        self._read_error = ""
        self._offline_since: float | None = None

        self._status = ipywidgets.HTML()
        self._tree = Tree(page_size, name, self._toggle, self._turn_page)
        super().__init__(children=[self._status, self._tree.widget], **kwargs)

        # Subscribe before the first read, so that no change falls in between.
        self._subscription = feed.subscribe(
            mem, self._on_change, on_state=self._on_state
        )
        try:
            with self._lock:
                if self._subscription.state != "connected":
                    # No state change is reported for a first attempt that failed.
                    self._offline_since = time.monotonic()
            self._refresh()
            self._thread = threading.Thread(
                target=self._run,
                name=f"redis-memory-view[{mem._namespace}]",
                daemon=True,
            )
            self._thread.start()
        except BaseException:
            self._subscription.close()
            raise
        _open_views.add(self)

    def __repr__(self) -> str:
        return f"MemoryView(namespace={self._mem._namespace!r}, name={self._name!r})"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs)
        # The base class cuts text/plain at 110 characters.
        bundle["text/plain"] = repr(self)
        return bundle

    def close(self) -> None:
        """Stop following changes, end the refresh thread and close every widget.

        ipywidgets calls this too, for example from ``Widget.close_all()``.
        Calling it again does nothing more.
        """
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed before the view was complete
            super().close()
            return
        with lock:
            already_closed = self._closed
            self._closed = True
            self._wake.notify_all()
        if not already_closed:
            self._stop_threads()
            with lock:
                self.set_trait("connection_state", "disconnected")
                self._tree.close()
                self._status.close()
            _open_views.discard(self)
        super().close()

    def _stop_threads(self) -> None:
        # Without the lock: the feed thread may be waiting for it in _on_change.
        subscription = getattr(self, "_subscription", None)
        if subscription is not None:
            subscription.close()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_SECONDS)
            if thread.is_alive():
                log.warning(
                    "the refresh thread of %r did not stop within %.0f s; it is "
                    "probably waiting for a read",
                    self,
                    _JOIN_SECONDS,
                )

    # -- called by the feed thread ----------------------------------------------

    def _on_change(self, change: feed.Change) -> None:
        with self._lock:
            if self._closed:
                return
            self._last_change = change
            self._dirty = self._stale = True
            self._wake.notify()

    def _on_state(self, subscription: feed.Subscription) -> None:
        with self._lock:
            if self._closed:
                return
            if subscription.state == "connected":
                self._offline_since = None
            elif self._offline_since is None:
                self._offline_since = time.monotonic()
            self._dirty = True
            self._wake.notify()

    # -- called by the kernel's main thread -------------------------------------

    def _toggle(self, path: Path) -> None:
        with self._lock:
            if self._closed:
                return
            self._tree.toggle(path)
            self._render_tree()

    def _turn_page(self, path: Path, step: int) -> None:
        with self._lock:
            if self._closed:
                return
            self._tree.turn_page(path, step)
            self._render_tree()

    # -- the refresh thread -----------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                if not self._dirty:
                    # While offline, redraw the status every second, so that it
                    # turns from "reconnecting" to "disconnected".
                    offline = self._offline_since is not None
                    if not self._wake.wait(_STATUS_SECONDS if offline else None):
                        self._dirty = offline
                    continue
                # Only reads wait for the throttle; a new state shows at once.
                delay = self._not_before - time.monotonic()
                if self._stale and delay > 0:
                    self._wake.wait(delay)
                    continue
                read = self._stale
                self._dirty = self._stale = False
            self._refresh(read=read)

    def _refresh(self, *, read: bool = True) -> None:
        """Read the data if ``read`` and connected, then redraw.

        The lock is held only to redraw, not during the read.
        """
        started = time.monotonic()
        reading = read and self._subscription.state == "connected"
        version = self._subscription.last_version
        value: Any = MISSING
        error = ""
        if reading:
            try:
                value = self._read()
            except _READ_ERRORS as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.info("%r could not read the data: %s", self, error)
        elapsed = time.monotonic() - started

        with self._lock:
            if self._closed:
                return
            data_changed = False
            if reading:
                self._not_before = started + max(self._throttle, _READ_SHARE * elapsed)
                self._read_error = error
            if reading and not error:
                self.set_trait("version", version)
                data_changed = self._store_snapshot(value)
            if data_changed or self.refresh_count == 0:
                self._render_tree()
            self._render_status()
            self.set_trait("refresh_count", self.refresh_count + 1)

    def _read(self) -> Any:
        """Return a plain copy of what the view shows.

        It costs one round trip, except the first read of a list or dict
        under ``name``, which first fetches a handle on it.
        """
        cache = getattr(self._mem._store, "cache", None)
        if cache is not None:
            # The read cache follows the feed on a connection of its own, so it
            # may not have dropped its copies for the change that woke this view yet.
            if not cache.sync(self._subscription.last_version, _CACHE_SYNC_SECONDS):
                cache.drop(None)
        if self._name is None:
            values = self._mem._asdict()
            return {
                name: value
                for name, value in values.items()
                if not (isinstance(name, str) and name.startswith(RECORD_PREFIX))
            }
        if self._handle is not None:
            try:
                return copy.copy(self._handle)
            except StaleReferenceError:
                # The value was replaced or deleted: read the name again.
                self._handle = None
        try:
            value = self._mem[self._name]
        except KeyError:
            return MISSING
        if isinstance(value, Node):
            self._handle = value
            return copy.copy(value)
        return value

    def _store_snapshot(self, value: Any) -> bool:
        """Keep ``value`` as the current data; return whether it differs."""
        if not self._has_data:
            self._has_data = True
            self._current = self._previous = value
            return True
        if render.same(value, self._current):
            return False
        self._previous, self._current = self._current, value
        if self._name is None:
            self._changed_names = _changed_names(self._previous, self._current)
        return True

    # -- drawing, always under the lock ------------------------------------------

    def _render_tree(self) -> None:
        namespace = self._mem._namespace
        if not self._has_data:
            empty = "waiting for the server"
        elif self._name is None:
            empty = f"namespace {namespace!r} is empty"
        else:
            empty = f"nothing is stored under {self._name!r} in namespace {namespace!r}"
        self._tree.render(self._current, self._previous, empty_text=empty)

    def _render_status(self) -> None:
        subscription = self._subscription
        state: str = subscription.state
        reason = ""
        if state == "closed":
            state, reason = "disconnected", "view closed"
        elif state == "reconnecting":
            reason = subscription.error or "connecting"
            since = self._offline_since
            if (
                since is not None
                and time.monotonic() - since > _DISCONNECTED_AFTER_SECONDS
            ):
                state, reason = "disconnected", f"{reason}; retrying"
        self.set_trait("connection_state", state)
        self._status.value = render.status_html(
            namespace=self._mem._namespace,
            name=self._name,
            state=state,
            reason=reason,
            version=self.version,
            last_change=self._last_change_text(),
            read_error=self._read_error,
        )

    def _last_change_text(self) -> str:
        change = self._last_change
        if change is None:
            return ""
        if change.resync:
            return "reread everything after reconnecting"
        path = change.path
        if path == "mem" and change.name is not None:
            path = _name_path(change.name)
        elif path == "mem" and len(self._changed_names) == 1:
            # An operation on several names carries no name; the snapshots show which changed.
            path = _name_path(self._changed_names[0])
        # The origin id is shared by the Memory objects that share a read cache.
        own = change.origin == self._mem._store.origin
        who = "this Memory" if own else "another writer"
        return f"{change.op} at {path} by {who}"


def _changed_names(old: Any, new: Any) -> list[str]:
    """Return the top-level names whose values differ between two namespace snapshots."""
    old = old if isinstance(old, dict) else {}
    names = [
        name
        for name, value in new.items()
        if not render.same(value, old.get(name, MISSING))
    ]
    names.extend(name for name in old if name not in new)
    return names


def _name_path(name: str) -> str:
    if name.isidentifier() and not keyword.iskeyword(name):
        return f"mem.{name}"
    return f"mem[{name!r}]"


def _check_arguments(
    mem: object, name: object, page_size: object, throttle: object
) -> None:
    if not isinstance(mem, Memory):
        raise TypeError(
            f"MemoryView shows a Memory, not {type(mem).__name__}: {mem!r}; "
            "pass the namespace, as in MemoryView(mem) or MemoryView(mem, 'results')"
        )
    if name is not None and not isinstance(name, str):
        raise TypeError(
            f"name must be a str or None, not {type(name).__name__}: {name!r}"
        )
    if type(page_size) is not int or page_size < 1:
        raise ValueError(f"page_size must be an int of at least 1, not {page_size!r}")
    if (
        isinstance(throttle, bool)
        or not isinstance(throttle, (int, float))
        or not throttle >= 0
    ):
        raise ValueError(
            f"throttle must be a number of seconds of at least 0, not {throttle!r}"
        )

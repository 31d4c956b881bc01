"""Local copies of read results, dropped when the change feed reports a change.

Reads of data that no process changed cost no round trip: each reply of a read script
is kept under the top-level name it belongs to, and a change message for that
name, from any process, drops the name's copies. Copies are kept only while
the feed's subscription is connected, because a message sent while it is
disconnected is lost. On every reconnect the whole cache is emptied.

Coherence: another process's write is seen by the first read after its change
message has arrived here. This process's own writes drop the name's copies
before the write returns, so a process always reads its own writes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .connection import Connection
    from .feed import Change, Subscription
    from .memory import Memory
    from .store import Store

__all__ = ["MISS", "ReadCache", "shared_cache"]

log = logging.getLogger(__name__)

MISS: Any = object()

# Replies with more entries than this are not kept, so one huge read cannot fill memory.
_MAX_REPLY_ENTRIES = 100_000
# When the cache contains more replies than this, it is emptied and starts again.
_MAX_REPLIES = 50_000
# Each subscription keeps a connection and a thread, so only the namespaces read
# most recently keep one; another namespace's cache subscribes again when read.
_MAX_SUBSCRIPTIONS = 8

# A bucket: ("name", field) for the namespace's entry of one top-level name (its
# field is the name's JSON text), ("node", id) for reads of one nested node,
# ("tree", field) for subtree reads under a name, or None for reads of the
# namespace as a whole (its length, its names, all its values).
Bucket = tuple[str, str] | None


class ReadCache:
    """Read replies of one namespace on one connection, valid while subscribed.

    Lookups take no lock. Filling and dropping take one, and every drop bumps
    an epoch, so a reply that was read before a drop is never kept after it.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        # Every Store that shares this cache writes with this origin, so the
        # subscription can tell the process's own changes from others'.
        self.origin = store.origin
        self._buckets: dict[Bucket, dict[Hashable, Any]] = {}
        # Top-level name -> the node buckets kept under it.
        self._nodes_of: dict[str, set[Bucket]] = {}
        self._count = 0
        self._epoch = 0
        self._active = False
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._starting = False
        self._closed = False
        _every_cache.add(self)

    @property
    def active(self) -> bool:
        """Whether replies are kept: the feed is connected."""
        return self._active

    def lookup(self, bucket: Bucket, key: Hashable) -> Any:
        """Return the kept reply, or :data:`MISS`."""
        if not self._active:
            self._start()
            return MISS
        entries = self._buckets.get(bucket)
        if entries is None:
            return MISS
        return entries.get(key, MISS)

    def epoch(self) -> int:
        """Return the epoch to pass to :meth:`keep` for a read about to be sent."""
        return self._epoch

    def keep(
        self, epoch: int, bucket: Bucket, key: Hashable, reply: Any, name: str = ""
    ) -> None:
        """Keep ``reply`` unless something was dropped since ``epoch`` was read.

        ``name`` is the top-level name of a node bucket, so that dropping the
        name drops the node's replies too.
        """
        if isinstance(reply, (list, dict)) and len(reply) > _MAX_REPLY_ENTRIES:
            return
        with self._lock:
            if not self._active or epoch != self._epoch:
                return
            if self._count >= _MAX_REPLIES:
                self._clear_locked()
            self._buckets.setdefault(bucket, {})[key] = reply
            if name:
                self._nodes_of.setdefault(name, set()).add(bucket)
            self._count += 1

    def drop(self, name: str | None) -> None:
        """Drop every reply of one top-level name (None: of the whole namespace)."""
        with self._lock:
            self._epoch += 1
            if name is None:
                self._clear_locked()
                return
            buckets = [("name", name), ("tree", name), None]
            buckets.extend(self._nodes_of.pop(name, ()))
            self._pop_locked(buckets)

    def drop_node(self, name: str, node_id: str) -> None:
        """Drop the replies that a change of node ``node_id`` alone can alter.

        Those are the node's own replies and every subtree read under its
        top-level name or of the whole namespace. The replies of the nodes
        above and beside it stay, because a change that replaced or deleted
        no nested value leaves their entries as they were.
        """
        with self._lock:
            self._epoch += 1
            self._pop_locked([("node", node_id), ("tree", name), None])

    def _pop_locked(self, buckets: list[Bucket]) -> None:
        for bucket in buckets:
            gone = self._buckets.pop(bucket, None)
            if gone:
                self._count -= len(gone)

    def close(self) -> None:
        """Stop following the feed and drop everything, for good."""
        self._closed = True
        with _caches_lock:
            for key, cache in list(_caches.items()):
                if cache is self:
                    del _caches[key]
        subscription = self._subscription
        self._subscription = None
        with self._lock:
            self._active = False
            self._epoch += 1
            self._clear_locked()
        if subscription is not None:
            subscription.close()

    def sync(self, version: int, timeout: float) -> bool:
        """Wait until the feed has delivered ``version``; return False on timeout.

        Only then does a read reflect every change up to ``version``. With no
        connected subscription nothing is kept, so reads are fresh at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            subscription = self._subscription
            if not self._active or subscription is None:
                return True
            if subscription.last_version >= version:
                # The feed records the version just before it calls back; wait for the callback.
                with self._lock:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    def _pause(self) -> None:
        """Stop the subscription but keep the cache usable: the next read subscribes again."""
        subscription = self._subscription
        self._subscription = None
        self._set_active(False)
        if subscription is not None:
            subscription.close()

    def _reset_after_fork(self) -> None:
        # The subscription thread did not survive fork(), so nothing would drop
        # this copy's replies: empty it and subscribe again on the next read.
        self._lock = threading.Lock()
        self._subscription = None
        self._starting = False
        self._active = False
        self._epoch += 1
        self._clear_locked()

    def _clear_locked(self) -> None:
        self._buckets.clear()
        self._nodes_of.clear()
        self._count = 0

    # -- the feed -------------------------------------------------------------

    def _start(self) -> None:
        if self._subscription is not None or self._starting or self._closed:
            return
        self._starting = True
        try:
            from .feed import subscribe

            _make_room(self)

            owner = cast("Memory", _Owner(self._store))
            # Own writes drop their copies before they return, so their change
            # messages need no handling here.
            self._subscription = subscribe(
                owner, self._on_change, include_own=False, on_state=self._on_state
            )
            if self._subscription.state == "connected":
                self._set_active(True)
        except Exception as exc:  # a cache that cannot start only costs round trips
            log.warning(
                "read cache of namespace %r disabled: %s", self._store.namespace, exc
            )
        finally:
            self._starting = False

    def _on_state(self, subscription: Subscription) -> None:
        self._set_active(subscription.state == "connected")

    def _set_active(self, active: bool) -> None:
        active = active and not self._closed
        with self._lock:
            if active == self._active:
                return
            self._epoch += 1
            self._clear_locked()
            self._active = active

    def _on_change(self, change: Change) -> None:
        if change.resync or change.name is None:
            self.drop(None)
            return
        self.drop(self._store.codec.encode_key(change.name, ""))


class _Owner:
    """The one attribute of a Memory that :func:`redis_memory.feed.subscribe` reads."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store


_caches: dict[tuple[int, str], ReadCache] = {}
_caches_lock = threading.Lock()


def shared_cache(connection: Connection, store: Store) -> ReadCache:
    """Return the process's cache for ``store``'s namespace on ``connection``.

    Every Memory of one namespace and connection shares it, and with it one
    subscription thread.
    """
    key = (id(connection), store.namespace)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = ReadCache(store)
            _caches[key] = cache
        return cache


_every_cache: weakref.WeakSet[ReadCache] = weakref.WeakSet()
# Caches with a subscription, least recently started first.
_subscribed: list[weakref.ref[ReadCache]] = []


def _make_room(starting: ReadCache) -> None:
    """Pause the oldest subscriptions so at most ``_MAX_SUBSCRIPTIONS`` run."""
    with _caches_lock:
        live = [
            ref
            for ref in _subscribed
            if (cache := ref()) is not None and cache._subscription is not None
        ]
        evicted = live[: max(0, len(live) - _MAX_SUBSCRIPTIONS + 1)]
        _subscribed[:] = [*live[len(evicted) :], weakref.ref(starting)]
    for ref in evicted:
        cache = ref()
        if cache is not None:
            log.debug("pausing the read cache of namespace %r", cache._store.namespace)
            cache._pause()


def _reset_after_fork() -> None:
    global _caches_lock
    _caches_lock = threading.Lock()
    _subscribed.clear()
    for cache in list(_every_cache):
        cache._reset_after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)

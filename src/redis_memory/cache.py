"""Local copies of read results, dropped when the change feed reports a change.

Reads of data that no process changed cost no round trip: each reply of a read script
is kept under the top-level name it belongs to, and a change message for that
name, from any process, drops the name's copies. Copies are kept only while
the cache's subscription is connected, because a message sent while it is
disconnected is lost. On every reconnect the whole cache is emptied.

Coherence: the subscription has no thread of its own (see
:mod:`redis_memory.inline_feed`). Every cached read first handles the change
messages that have arrived, so another process's write is seen by every read
that starts after its message arrived. This process's own writes drop the
name's copies before the write returns, so a process always reads its own writes.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from redis.backoff import ExponentialWithJitterBackoff

from .inline_feed import CONNECTION_ERRORS, InlineFeed
from .keys import ROOT_ID

if TYPE_CHECKING:
    from .connection import Connection
    from .node import Node
    from .store import Store

__all__ = ["MISS", "ReadCache", "existing_cache", "shared_cache"]

log = logging.getLogger(__name__)

MISS: Any = object()

# Replies with more entries than this are not kept, so one huge read cannot fill memory.
_MAX_REPLY_ENTRIES = 100_000
# When the cache contains more replies than this, it is emptied and starts again.
_MAX_REPLIES = 50_000
# Seconds after a failed write during which own change messages drop copies:
# longer than the connection's retry window, within which a resent change can apply.
_DISTRUST_SECONDS = 60.0
# Names whose hash field text is remembered; past it the record is cleared.
_MAX_FIELDS = 10_000
# Each subscription keeps a connection, so only the namespaces read most
# recently keep one; another namespace's cache subscribes again when read.
_MAX_SUBSCRIPTIONS = 8
# Own writes leave their change messages unread until the next read, so a
# process that only writes reads them after this many writes.
_WRITES_PER_DRAIN = 64

# A bucket: ("name", field) for the namespace's entry of one top-level name (its
# field is the name's JSON text), ("node", id) for reads of one nested node,
# ("tree", field) for subtree reads under a name, or None for reads of the
# namespace as a whole (its length, its names, all its values).
Bucket = tuple[str, str] | None


class ReadCache:
    """Read replies of one namespace on one connection, valid while subscribed.

    Lookups take no lock of the cache. Filling and dropping take one, and
    every drop bumps an epoch, so a reply that was read before a drop is
    never kept after it.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        # Every Store that shares this cache writes with this origin, so the
        # subscription can tell the process's own changes from others'.
        self.origin = store.origin
        self._buckets: dict[Bucket, dict[Hashable, Any]] = {}
        # Top-level name -> the node buckets kept under it.
        self._nodes_of: dict[str, set[Bucket]] = {}
        # Top-level name -> its hash field, for reads of kept values by name.
        self._fields: dict[Hashable, str] = {}
        self._count = 0
        self._epoch = 0
        self._feed: InlineFeed | None = None
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self._closed = False
        self._writes = 0
        self._read_order = 0
        # Until then own change messages drop copies too; see after_unsure_write.
        self._distrust_until = 0.0
        # When the next attempt to subscribe may start, after a failed one.
        self._retry_at = 0.0
        self._attempt = 0
        self._backoff = ExponentialWithJitterBackoff(base=0.05, cap=2.0)
        _every_cache.add(self)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called; a closed cache keeps nothing again."""
        return self._closed

    @property
    def active(self) -> bool:
        """Whether replies are kept: the subscription is connected."""
        return self._feed is not None

    def lookup(self, bucket: Bucket, key: Hashable) -> Any:
        """Return the kept reply, or :data:`MISS`."""
        if _last_read[0] is not self:
            self._mark_read()
        feed = self._feed
        if feed is None:
            self._start()
            return MISS
        if not feed.drain():
            self._lost(feed)
            return MISS
        entries = self._buckets.get(bucket)
        if entries is None:
            return MISS
        return entries.get(key, MISS)

    def value(self, node: Node, key: Hashable) -> Any:
        """Return the decoded value kept for ``node[key]``, or :data:`MISS`.

        Decoded values are kept next to the replies they come from, so the
        same changes drop them. The key of a kept value includes the Store
        (each Memory has its own codec) and the node's display path (a handle
        inside the value carries a path that depends on it).
        """
        if _last_read[0] is not self:
            self._mark_read()
        feed = self._feed
        if feed is None:
            return MISS
        if not feed.drain():
            self._lost(feed)
            return MISS
        if node._id == ROOT_ID:
            entries = self._buckets.get(("name", self._fields.get(key, "")))
        else:
            entries = self._buckets.get(("node", node._id))
        if entries is None:
            return MISS
        return entries.get((key, node._store, node._path), MISS)

    def keep_value(self, epoch: int, node: Node, key: str | object, value: Any) -> None:
        """Keep a decoded value read at ``node[key]``, as :meth:`keep` keeps a reply.

        ``key`` is a str for a dict (a str key has no other key equal to it)
        or a marker object for a value of the whole node. Pass only values
        that no caller can change: immutable scalars and handles.
        """
        if node._id != ROOT_ID:
            bucket: Bucket = ("node", node._id)
            name = node._name_field
        elif isinstance(key, str):
            field = self._fields.get(key)
            if field is None:
                if len(self._fields) >= _MAX_FIELDS:
                    self._fields.clear()  # one call, so safe from several threads
                field = self._fields[key] = node._store.codec.encode_key(key, "")
            bucket = ("name", field)
            name = ""
        else:
            return
        self.keep(epoch, bucket, (key, node._store, node._path), value, name)

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
            if self._feed is None or epoch != self._epoch:
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

    def carrier(self) -> InlineFeed | None:
        """Return the subscription when writes may be sent on it, else None.

        A write sent there gets its own change message with its reply; see
        :meth:`redis_memory.inline_feed.InlineFeed.borrow`.
        """
        feed = self._feed
        if feed is None or not feed.carries:
            return None
        return feed

    def after_write(self, changes: int = 1) -> None:
        """Count own changes, and read the messages that arrived every few of them.

        Call it after the write's drop, with the number of change messages
        the write published (a batch publishes one per change). A process
        that writes without reading would otherwise leave its own change
        messages in the server's output buffer, until the server disconnects
        the subscription.
        """
        self._writes += changes
        feed = self._feed
        if feed is None:
            return
        # Called every time, because it also resets the thread's record.
        took = feed.took_own_message()
        if changes != 1 or not took:
            feed.own_message_due = True
        if self._writes >= _WRITES_PER_DRAIN:
            self._writes = 0
            if not feed.drain():
                self._lost(feed)

    def after_unsure_write(self) -> None:
        """Handle own change messages as others' for a while, after a write failed.

        A write whose reply was lost may still be applied later, after a read
        has kept the old value again. Its change message, although it is
        this process's own, then has to drop that copy.
        """
        self._distrust_until = time.monotonic() + _DISTRUST_SECONDS
        feed = self._feed
        if feed is not None:
            feed.distrust_until = self._distrust_until

    def _mark_read(self) -> None:
        """Record that this cache was read last, for the choice of subscriptions to pause."""
        _last_read[0] = self
        self._read_order = next(_reads)

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
        self._pause()

    def sync(self, version: int, timeout: float) -> bool:
        """Wait until the feed has delivered ``version``; return False on timeout.

        Only then does a read reflect every change up to ``version``. With no
        connected subscription nothing is kept, so reads are fresh at once.
        """
        feed = self._feed
        if feed is None:
            return True
        if feed.wait(version, timeout):
            return True
        if feed.closed:
            self._lost(feed)
            return True
        return False

    def _pause(self) -> None:
        """Stop the subscription but keep the cache usable: the next read subscribes again."""
        with self._lock:
            feed, self._feed = self._feed, None
            self._epoch += 1
            self._clear_locked()
        if feed is not None:
            feed.close()

    def _lost(self, feed: InlineFeed) -> None:
        """Drop everything after ``feed`` lost its connection; the next read subscribes again."""
        with self._lock:
            if self._feed is not feed:
                return
            self._feed = None
            self._epoch += 1
            self._clear_locked()
        self._attempt = 1
        self._retry_at = time.monotonic() + self._backoff.compute(1)

    def _reset_after_fork(self) -> None:
        # The parent's subscription socket is shared with the parent, so nothing
        # would drop this copy's replies: empty it and subscribe again on the next read.
        # A new origin, because the parent's changes are another process's now.
        self.origin = os.urandom(8).hex()
        feed = self._feed
        if feed is not None:
            feed.forget()
        self._feed = None
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self._epoch += 1
        self._clear_locked()

    def _clear_locked(self) -> None:
        self._buckets.clear()
        self._nodes_of.clear()
        self._count = 0

    # -- the feed -------------------------------------------------------------

    def _start(self) -> None:
        if self._closed or time.monotonic() < self._retry_at:
            return
        if not self._starting.acquire(blocking=False):
            return  # another thread subscribes, and this read goes to the server
        try:
            if self._feed is not None or self._closed:
                return
            feed = InlineFeed(self._store, self._on_change)
            feed.distrust_until = self._distrust_until
            feed.connect()
        except (
            CONNECTION_ERRORS
        ) as exc:  # a cache that cannot start only costs round trips
            self._attempt += 1
            self._retry_at = time.monotonic() + self._backoff.compute(self._attempt)
            level = logging.WARNING if self._attempt == 1 else logging.DEBUG
            log.log(
                level,
                "read cache of namespace %r disabled: %s; reads go to the server, "
                "and it subscribes again later",
                self._store.namespace,
                exc,
            )
        else:
            with self._lock:
                # close() may have run while connect() waited for the server.
                if not self._closed:
                    self._feed = feed
                    self._epoch += 1
                    self._clear_locked()
            self._attempt = 0
            if self._feed is not feed:
                feed.close()
            else:
                # Counted once stored, so that caches starting at once count each other.
                _make_room(self)
        finally:
            self._starting.release()

    def _on_change(self, name: str | None) -> None:
        if name is None:
            self.drop(None)
            return
        self.drop(self._store.codec.encode_key(name, ""))


_caches: dict[tuple[int, str], ReadCache] = {}
_caches_lock = threading.Lock()


def shared_cache(connection: Connection, store: Store) -> ReadCache:
    """Return the process's cache for ``store``'s namespace on ``connection``.

    Every Memory of one namespace and redis-py client shares it, and with it
    one subscription.
    """
    key = (id(connection.client), store.namespace)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = ReadCache(store)
            _caches[key] = cache
        return cache


def existing_cache(connection: Connection, namespace: str) -> ReadCache | None:
    """Return the process's cache of ``namespace`` on ``connection``, if one exists.

    A Memory without a cache drops this cache's copies after its writes, so
    that a cached Memory of the same process reads them at once.
    """
    return _caches.get((id(connection.client), namespace))


_every_cache: weakref.WeakSet[ReadCache] = weakref.WeakSet()
# Caches with a subscription, least recently started first.
_subscribed: list[weakref.ref[ReadCache]] = []
# The cache read last, and a counter that orders the caches by their last read.
_last_read: list[ReadCache | None] = [None]
_reads = itertools.count()


def _make_room(started: ReadCache) -> None:
    """Pause the subscriptions read longest ago so at most ``_MAX_SUBSCRIPTIONS`` run.

    ``started`` has just subscribed and is kept.
    """
    with _caches_lock:
        live = [
            ref
            for ref in _subscribed
            if (cache := ref()) is not None
            and cache is not started
            and cache._feed is not None
        ]
        live.sort(key=lambda ref: getattr(ref(), "_read_order", 0))
        evicted = live[: max(0, len(live) - _MAX_SUBSCRIPTIONS + 1)]
        _subscribed[:] = [*live[len(evicted) :], weakref.ref(started)]
    for ref in evicted:
        cache = ref()
        if cache is not None:
            log.debug("pausing the read cache of namespace %r", cache._store.namespace)
            cache._pause()


def _reset_after_fork() -> None:
    global _caches_lock
    _caches_lock = threading.Lock()
    _subscribed.clear()
    _last_read[0] = None
    for cache in list(_every_cache):
        cache._reset_after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)

"""The read cache's subscription to the change feed, read by the reading thread.

:func:`redis_memory.feed.subscribe` reads change messages on a thread of its
own. For the read cache that costs twice. First, every own write wakes the
thread. Second, a thread woken while the main thread reads in a loop waits
for the GIL for up to the switch interval (5 ms by default), and meanwhile a
cached read serves another process's old value although its message has arrived.

An `InlineFeed` has no thread. Its owner calls `InlineFeed.drain` before
every cached read, and that call reads whatever the socket holds: one
``poll`` system call when it holds nothing. So a read never serves a value
whose change message has already arrived, and own messages cost nothing
until the next read.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

from .feed import close_quietly, leading_version, parse_change

if TYPE_CHECKING:
    from redis.client import PubSub

    from .store import Store

__all__ = ["CONNECTION_ERRORS", "InlineFeed"]

log = logging.getLogger(__name__)

# After this much silence, the next read sends PING, and when the reply does
# not come within _PING_SECONDS the connection counts as lost.
_HEALTH_SECONDS = 15.0
_PING_SECONDS = 2.0
# Seconds to wait for the server to confirm SUBSCRIBE.
_SUBSCRIBE_SECONDS = 5.0
# Errors that mean the server is unreachable or unusable for now.
CONNECTION_ERRORS = (redis.RedisError, OSError)

# Called with the top-level name a change concerns, or None for "every name".
OnChange = Callable[[str | None], None]


class InlineFeed:
    """One connected subscription to a namespace's channel, without a thread.

    Call `connect` once after creating it. All methods are safe to call
    from several threads, because one of them reads the socket at a time.

    Parameters
    ----------
    store : Store
        The namespace followed; changes whose origin is ``store.origin`` are skipped.
    on_change : callable
        Called with the top-level name that another process changed, or with
        None when every copy must go (a change of several names, lost messages).
    """

    def __init__(self, store: Store, on_change: OnChange) -> None:
        self._store = store
        self._on_change = on_change
        self._namespace = store.namespace
        self._channel = store.keys.channel
        self._own_mark = f'"o":"{store.origin}"'.encode()
        self._lock = threading.Lock()
        self._pubsub: PubSub | None = None
        self._poller = select.poll()
        # The newest version whose message was handled, own ones included.
        self.version = 0
        self._last_traffic = 0.0
        self.closed = False

    def connect(self) -> None:
        """Subscribe and read the current version; raise a connection error on failure."""
        pubsub = self._store.connection.pubsub(self._channel)
        try:
            pubsub.subscribe(self._channel)
            deadline = time.monotonic() + _SUBSCRIBE_SECONDS
            while True:
                message = pubsub.get_message(timeout=0.25)
                if message is not None and message.get("type") == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise redis.TimeoutError(
                        "timed out waiting for the SUBSCRIBE confirmation "
                        f"({_SUBSCRIBE_SECONDS:.0f} s)"
                    )
            # Read after subscribing, so that every later change arrives as a message.
            self.version = self._store.version()
            connection = pubsub.connection
            if connection is None or connection._sock is None:
                raise redis.ConnectionError("the subscription has no socket")
            self._poller.register(connection._sock.fileno(), select.POLLIN)
        except BaseException:
            close_quietly(pubsub)
            raise
        self._pubsub = pubsub
        self._last_traffic = time.monotonic()

    def drain(self) -> bool:
        """Handle every message that has arrived; return False once the connection is lost.

        After False the feed is closed, and its owner must treat every copy
        as stale.
        """
        with self._lock:
            pubsub = self._pubsub
            if pubsub is None:
                return False
            try:
                if self._poller.poll(0):
                    self._read_available(pubsub)
                elif time.monotonic() - self._last_traffic > _HEALTH_SECONDS:
                    self._check_health(pubsub)
            except CONNECTION_ERRORS as exc:
                log.info(
                    "read cache of namespace %r lost its subscription (%s: %s); "
                    "reads go to the server until it subscribes again",
                    self._namespace,
                    type(exc).__name__,
                    exc,
                )
                self._close_locked()
                return False
            return True

    def wait(self, version: int, timeout: float) -> bool:
        """Handle messages until ``version`` was handled; return False on timeout or loss."""
        deadline = time.monotonic() + timeout
        while self.drain():
            if self.version >= version:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._lock:
                if self._pubsub is not None:
                    self._poller.poll(min(left, 0.05) * 1000)
        return False

    def close(self) -> None:
        """Unsubscribe and close the connection; reads of the feed return False after it."""
        with self._lock:
            self._close_locked()

    def forget(self) -> None:
        """Drop the connection without closing it, in a child after fork()."""
        self._pubsub = None
        self.closed = True

    def _close_locked(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self.closed = True
        if pubsub is not None:
            close_quietly(pubsub)

    def _read_available(self, pubsub: PubSub) -> None:
        self._last_traffic = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=0.0)
            if message is None:
                return
            if message.get("type") == "message":
                self._handle(message.get("data"))

    def _check_health(self, pubsub: PubSub) -> None:
        """Send PING and wait for its reply, handling the messages before it."""
        pubsub.ping()
        deadline = time.monotonic() + _PING_SECONDS
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.05)
            if message is None:
                continue
            if message.get("type") == "pong":
                self._last_traffic = time.monotonic()
                return
            if message.get("type") == "message":
                self._handle(message.get("data"))
        raise redis.TimeoutError(
            f"timed out waiting for the reply to PING ({_PING_SECONDS:.0f} s)"
        )

    def _handle(self, data: Any) -> None:
        if isinstance(data, bytes) and self._own_mark in data:
            version = leading_version(data)
            if version is not None and version == self.version + 1:
                # An own change: its write dropped the copies it made stale.
                self.version = version
                return
        try:
            change = parse_change(self._namespace, data)
        except (TypeError, ValueError) as exc:
            # A malformed message may be any change.
            log.warning(
                "read cache of namespace %r got a malformed change message (%s); "
                "dropping every copy",
                self._namespace,
                exc,
            )
            self._on_change(None)
            return
        previous = self.version
        self.version = max(previous, change.version)
        if change.version > previous + 1:
            # Versions go up by exactly 1 per change, so a jump means lost messages.
            self._on_change(None)
        elif change.origin != self._store.origin:
            self._on_change(change.name)

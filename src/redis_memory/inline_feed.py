"""The read cache's subscription to the change feed, read by the reading thread.

:func:`redis_memory.feed.subscribe` reads change messages on a thread of its
own. For the read cache that costs twice. First, every own write wakes the
thread. Second, a thread woken while the main thread reads in a loop waits
for the GIL for up to the switch interval (5 ms by default). Meanwhile the
cached reads serve another process's old value, although its message has arrived.

An `InlineFeed` has no thread. Its owner calls `InlineFeed.drain` before
every cached read, and that call reads whatever the socket contains: one
``poll`` system call when it is empty. So a read never serves a value
whose change message has already arrived, and own messages cost nothing
until the next read. The socket is read directly and parsed by hiredis,
because redis-py's ``PubSub.get_message`` took about 3.6 us per message and
as long again to find that none was left.

Over RESP3 a subscribed connection also runs commands, so the cache's
writes go on the subscription itself (`InlineFeed.borrow`). Their replies
then arrive behind every change message published before them, and with the
write's own message in the same read: the server writes one socket instead of
two, and the next read has no own message left to take in.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any

import hiredis
import redis
from redis._parsers import BaseParser
from redis.exceptions import InvalidResponse

from .feed import parse_change

if TYPE_CHECKING:
    from redis.connection import Connection, ConnectionPool

    from .store import Store

__all__ = ["CONNECTION_ERRORS", "InlineFeed"]

log = logging.getLogger(__name__)

# After this much silence, the next read sends PING, and when the reply does
# not come within _PING_SECONDS the connection counts as lost.
_HEALTH_SECONDS = 15.0
_PING_SECONDS = 2.0
# A read this soon after a poll that found nothing reuses that result, so the
# reads of one expression such as mem.d["a"]["b"] cost one poll. It adds at
# most this much to the time before another process's change is seen.
_QUIET_SECONDS = 20e-6
# Seconds to wait for the server to confirm SUBSCRIBE.
_SUBSCRIBE_SECONDS = 5.0
# Errors that mean the server is unreachable or unusable for now.
CONNECTION_ERRORS = (redis.RedisError, OSError)
# Bytes read from the socket at a time.
_READ_SIZE = 65536
# Exceptions of a non-blocking read when nothing has arrived (TLS: SSLWantReadError).
_NOTHING_YET = (BlockingIOError, ssl.SSLWantReadError)
# Requests up to this size may go on the subscription. Its socket is
# non-blocking, so a send must fit into the socket's buffer at once, and a
# TCP socket starts with 16 KiB (the default of tcp_wmem in Linux's tcp(7)).
_CARRY_BYTES = 8192
# The marker the reader returns for an incomplete reply. Not False, because
# a RESP3 reply may be the boolean false.
_MORE: Any = object()
# The type of RESP3 push replies; hiredis before 3.2 has none, and then
# commands never share the subscription.
_PUSH: type | None = getattr(hiredis, "PushNotification", None)

# Lists whether the subscription's socket has data to read; see _poll_function.
_Poll = Callable[[float], list[Any]]

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
        self._pool: ConnectionPool | None = None
        self._connection: Connection | None = None
        self._socket: socket.socket | None = None
        # Error replies become redis-py's exceptions, as on its own connections.
        self._reader = hiredis.Reader(
            notEnoughData=_MORE,
            replyError=BaseParser.parse_error,
            protocolError=InvalidResponse,
        )
        # One poll function for reads without the lock and one for reads with
        # it, because two calls of one poll object at a time raise RuntimeError
        # (epoll allows them, but poll where there is no epoll does not).
        self._poll: _Poll = _nothing_ready
        self._locked_poll: _Poll = _nothing_ready
        # True while a thread handles messages it has taken from the socket.
        self._busy = False
        # Log records made while the lock was held: (message, arguments).
        self._warnings: list[tuple[str, tuple[object, ...]]] = []
        # The newest version whose message was handled, own ones included.
        self.version = 0
        # Until this time.monotonic() value, own messages drop copies as others' do.
        self.distrust_until = 0.0
        self._last_traffic = 0.0
        # Until this _monotonic() value, drain() skips its poll (see _QUIET_SECONDS).
        self._quiet_until = 0.0
        # Set after an own write: its change message is due, so drain() reads
        # without polling first.
        self.own_message_due = False
        # Whether commands may be sent on the subscription; see borrow().
        self.carries = False
        # Own change messages handled so far, and per thread whether the
        # last request sent on the subscription got its own message.
        self._own_handled = 0
        self._requests = threading.local()
        self.closed = False

    def connect(self) -> None:
        """Subscribe and read the current version; raise a connection error on failure."""
        # The pool of the server that carries the channel (in a cluster, one node's).
        pool = self._store.connection.pubsub(self._channel).connection_pool
        connection = pool.get_connection()
        self._pool, self._connection = pool, connection
        try:
            connection.send_command("SUBSCRIBE", self._channel)  # type: ignore[no-untyped-call]
            sock = getattr(connection, "_sock", None)
            if not isinstance(sock, socket.socket):
                raise redis.ConnectionError(
                    "the subscription's connection has no socket"
                )
            self._socket = sock
            others = self._read_until(_is_subscribed, _SUBSCRIBE_SECONDS, "SUBSCRIBE")
            # Read after subscribing, so that every later change arrives as a message.
            self.version = self._store.version()
            sock.setblocking(False)
            self._poll = _poll_function(sock.fileno())
            self._locked_poll = _poll_function(sock.fileno())
            self.carries = _can_carry(connection, pool, self._store)
        except BaseException:
            self._close_locked()
            raise
        self._last_traffic = time.monotonic()
        for reply in others:
            self._dispatch_safely(reply)
        self._flush_warnings()

    def drain(self) -> bool:
        """Handle every message that has arrived; return False once the connection is lost.

        After False the feed is closed, and its owner must treat every copy
        as stale.
        """
        if not self._busy and not self.own_message_due:
            # Without the lock when nothing has arrived: a read costs one poll.
            # A thread that is handling messages it has read sets _busy first, so
            # this read waits for the copies those messages make stale to go.
            now = _monotonic()
            if now < self._quiet_until:
                return self._socket is not None
            try:
                if (
                    not self._poll(0)
                    and not self._busy
                    and now - self._last_traffic <= _HEALTH_SECONDS
                ):
                    self._quiet_until = now + _QUIET_SECONDS
                    return self._socket is not None
            except RuntimeError:  # another thread's poll() is running
                pass
        with self._lock:
            sock = self._socket
            if sock is None:
                return False
            self._busy = True
            self.own_message_due = False
            try:
                # No second poll: when another thread took the data meanwhile,
                # the read finds nothing, which is rare and costs one recv().
                if (
                    not self._read_available(sock)
                    and time.monotonic() - self._last_traffic > _HEALTH_SECONDS
                ):
                    self._check_health()
                # The socket was found empty just now, as after a poll.
                self._quiet_until = _monotonic() + _QUIET_SECONDS
            except CONNECTION_ERRORS as exc:
                self._close_locked()
                lost: BaseException | None = exc
            except BaseException:
                # Interrupted (Ctrl-C), perhaps before PING's reply, which a
                # request sent on the subscription would then take for its own.
                self._close_locked()
                raise
            else:
                lost = None
            finally:
                self._busy = False
        # Logged without the lock, because a logging handler may read the cache.
        if self._warnings:
            self._flush_warnings()
        if lost is not None:
            log.info(
                "read cache of namespace %r lost its subscription (%s: %s); "
                "reads go to the server until it subscribes again",
                self._namespace,
                type(lost).__name__,
                lost,
            )
            return False
        return True

    def _flush_warnings(self) -> None:
        warnings, self._warnings = self._warnings, []
        for message, args in warnings:
            log.warning(message, *args)

    def wait(self, version: int, timeout: float) -> bool:
        """Handle messages until ``version`` was handled; return False on timeout or loss."""
        deadline = time.monotonic() + timeout
        # A poll object of its own, because drain() polls without the lock.
        poller = select.poll()
        sock = self._socket
        if sock is not None:
            poller.register(sock.fileno(), select.POLLIN)
        while True:
            self._quiet_until = 0.0
            if not self.drain():
                return False
            if self.version >= version:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(min(left, 0.05) * 1000)

    def borrow(self, size: int) -> bool:
        """Take the subscription's connection for a request of ``size`` bytes; return whether it was taken.

        It is not taken when commands cannot share it (see `_can_carry`),
        when it is lost, when another thread is using it, or for a request
        larger than `_CARRY_BYTES`. After True, call `send`, then
        `read_reply` if the send succeeded, and `give_back` in any case.
        """
        if (
            not self.carries
            or size > _CARRY_BYTES
            or not self._lock.acquire(blocking=False)
        ):
            return False
        if self._socket is None:
            self._lock.release()
            return False
        return True

    def send(self, packed: bytes) -> None:
        """Send one packed command; on failure close the connection, so nothing ran.

        The socket is non-blocking. A request that does not fit into its
        buffer at once fails here, and closing the connection drops the part sent.
        """
        sock = self._socket
        assert sock is not None
        self._requests.own_seen = False
        try:
            # Data waiting may be the end of a connection whose server has gone
            # (it was restarted, say): found now, the request has not been sent.
            # Within the quiet window a poll has just found nothing.
            if _monotonic() >= self._quiet_until and self._locked_poll(0):
                self._busy = True
                try:
                    self._read_available(sock)
                finally:
                    self._busy = False
            sock.sendall(packed)
        except CONNECTION_ERRORS as exc:
            self._close_locked()
            raise redis.ConnectionError(
                f"sending a request on the subscription failed: {exc}"
            ) from exc
        except BaseException:
            # Interrupted (Ctrl-C) with part of the request sent: closing drops it.
            self._close_locked()
            raise

    def read_reply(self) -> Any:
        """Return the reply to the request sent, handling every change message before it.

        An error reply is raised as redis-py's exception for it. A lost
        connection closes the feed and raises a connection error.
        """
        sock, connection = self._socket, self._connection
        assert sock is not None and connection is not None
        timeout = connection.socket_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        own = self._own_handled
        try:
            while True:
                reply = self._reader.gets()
                if reply is _MORE:
                    self._receive(sock, deadline)
                elif _PUSH is not None and isinstance(reply, _PUSH):
                    self._dispatch_safely(reply)
                else:
                    break
            # The own change message usually came in the same read, after the reply.
            while (message := self._reader.gets()) is not _MORE:
                self._dispatch_safely(message)
        except CONNECTION_ERRORS as exc:
            self._close_locked()
            if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
                raise
            raise redis.ConnectionError(
                f"reading a reply on the subscription failed: {exc}"
            ) from exc
        except BaseException:
            # Interrupted (Ctrl-C) before the reply: it would arrive as the
            # reply to the next request, so the connection must go.
            self._close_locked()
            raise
        finally:
            self._busy = False
        self._last_traffic = time.monotonic()
        if self._own_handled != own:
            self._requests.own_seen = True
            # Read up to the server's reply, as a poll that finds nothing.
            self._quiet_until = _monotonic() + _QUIET_SECONDS
        # Error replies are redis-py's exceptions: ResponseError, or a
        # ConnectionError such as BusyLoadingError (LOADING), which is retried.
        if isinstance(reply, redis.RedisError):
            raise reply
        return reply

    def give_back(self) -> None:
        """Release the connection taken by `borrow`."""
        self._lock.release()
        if self._warnings:
            self._flush_warnings()

    def took_own_message(self) -> bool:
        """Return whether this thread's request since the last call got its own change message."""
        requests = self._requests
        seen = bool(getattr(requests, "own_seen", False))
        requests.own_seen = False
        return seen

    def _receive(self, sock: socket.socket, deadline: float | None) -> None:
        """Wait until data arrives and feed it to the reader."""
        while True:
            left = -1.0 if deadline is None else deadline - time.monotonic()
            if deadline is not None and left <= 0:
                raise redis.TimeoutError(
                    "timed out waiting for a reply on the subscription"
                )
            if self._locked_poll(left):
                break
        try:
            data = sock.recv(_READ_SIZE)
        except _NOTHING_YET:
            return
        if not data:
            raise redis.ConnectionError("the server closed the subscription")
        # A read without the lock now waits until the messages taken are handled.
        self._busy = True
        self._reader.feed(data)

    def close(self) -> None:
        """Unsubscribe and close the connection; reads of the feed return False after it."""
        with self._lock:
            self._close_locked()

    def forget(self) -> None:
        """Drop the connection without closing it, in a child after fork()."""
        self._pool = self._connection = self._socket = None
        self.closed = True

    def _close_locked(self) -> None:
        pool, connection = self._pool, self._connection
        self._pool = self._connection = self._socket = None
        self.closed = True
        if connection is None or pool is None:
            return
        try:
            # A subscribed connection cannot serve commands, so it leaves closed.
            connection.disconnect()  # type: ignore[no-untyped-call]
            pool.release(connection)
        except CONNECTION_ERRORS as exc:
            log.debug("closing the read cache's subscription failed: %s", exc)

    def _read_available(self, sock: socket.socket) -> bool:
        """Read and handle everything the socket contains; raise when it was closed.

        Return whether anything had arrived.
        """
        read = False
        while True:
            try:
                data = sock.recv(_READ_SIZE)
            except _NOTHING_YET:
                return read
            if not read:
                read = True
                self._last_traffic = time.monotonic()
            if not data:
                raise redis.ConnectionError("the server closed the subscription")
            self._reader.feed(data)
            while (reply := self._reader.gets()) is not _MORE:
                self._dispatch_safely(reply)
            # A short read took everything that had arrived, unless the server
            # closed the connection right after it or TLS has another record.
            # One poll() checks that more cheaply than a failing recv().
            if (
                len(data) < _READ_SIZE
                and not (isinstance(sock, ssl.SSLSocket) and sock.pending())
                and not self._locked_poll(0)
            ):
                return True

    def _read_until(
        self, done: Callable[[Any], bool], timeout: float, request: str
    ) -> list[Any]:
        """Read in blocking mode until a reply satisfies ``done``.

        Return every other reply parsed meanwhile, those that arrived with the
        awaited one included, so that the caller handles them in order.
        """
        sock = self._socket
        assert sock is not None
        deadline = time.monotonic() + timeout
        others: list[Any] = []
        found = False
        while True:
            while (reply := self._reader.gets()) is not _MORE:
                if not found and done(reply):
                    found = True
                    continue
                if not isinstance(reply, list) or not reply:
                    raise redis.ResponseError(
                        f"unexpected reply to {request}: {reply!r}"
                    )
                others.append(reply)
            if found:
                return others
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError(
                    f"timed out waiting for the reply to {request} ({timeout:.0f} s)"
                )
            sock.settimeout(left)
            data = sock.recv(_READ_SIZE)
            if not data:
                raise redis.ConnectionError("the server closed the subscription")
            self._reader.feed(data)

    def _check_health(self) -> None:
        """Send PING and wait for its reply, handling the messages before it."""
        connection, sock = self._connection, self._socket
        assert connection is not None and sock is not None
        # redis-py's own health check would read the non-blocking socket.
        connection.send_command("PING", check_health=False)  # type: ignore[no-untyped-call]
        try:
            others = self._read_until(_is_pong, _PING_SECONDS, "PING")
        finally:
            sock.setblocking(False)
        self._last_traffic = time.monotonic()
        for reply in others:
            self._dispatch_safely(reply)

    def _dispatch_safely(self, reply: Any) -> None:
        """Handle one reply; a message that fails drops every copy instead of raising."""
        try:
            # Over RESP3 a message is a hiredis.PushNotification, a subclass of list.
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                self._handle(reply[2])
            elif isinstance(reply, Exception):
                raise redis.ResponseError(
                    f"the subscription got an error reply: {reply}"
                )
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # the messages after it must still be handled
            self._warnings.append(
                (
                    "read cache of namespace %r failed to handle a change message "
                    "(%r); dropping every copy",
                    (self._namespace, exc),
                )
            )
            self._on_change(None)

    def _handle(self, data: Any) -> None:
        trust_own = not self.distrust_until or time.monotonic() >= self.distrust_until
        # The script writes the version first and the origin second, so one
        # comparison finds the next own change.
        if (
            trust_own
            and isinstance(data, bytes)
            and data.startswith(b'{"v":%d,%b' % (self.version + 1, self._own_mark))
        ):
            # An own change: its write dropped the copies it made stale.
            self.version += 1
            self._own_handled += 1
            return
        try:
            change = parse_change(self._namespace, data)
        except (TypeError, ValueError) as exc:
            # A malformed message may be any change.
            self._warnings.append(
                (
                    "read cache of namespace %r got a malformed change message "
                    "(%s); dropping every copy",
                    (self._namespace, exc),
                )
            )
            self._on_change(None)
            return
        previous = self.version
        self.version = max(previous, change.version)
        if change.version > previous + 1:
            # Versions go up by exactly 1 per change, so a jump means lost messages.
            self._on_change(None)
        elif not trust_own or change.origin != self._store.origin:
            self._on_change(change.name)


def _poll_function(fd: int) -> _Poll:
    """Return a function that lists whether ``fd`` has data to read.

    Its argument is the most seconds to wait, -1 for no limit. It is epoll's
    where there is one (Linux), because ``epoll.poll(0)`` took 0.21 us
    against 0.30 us for ``poll.poll(0)`` on an empty socket (timeit, Python
    3.11, on the benchmark machine), and every cached read calls it.
    """
    if hasattr(select, "epoll"):
        epoll = select.epoll()
        epoll.register(fd, select.EPOLLIN)
        return epoll.poll
    poller = select.poll()
    poller.register(fd, select.POLLIN)

    def poll(timeout: float) -> list[Any]:
        # poll() counts milliseconds and waits without limit for a negative value.
        return poller.poll(timeout * 1000 if timeout > 0 else timeout)

    return poll


def _can_carry(connection: Connection, pool: ConnectionPool, store: Store) -> bool:
    """Return whether commands may share the subscription's connection.

    They may over RESP3, on a plain TCP or unix socket connection of the
    Store's own pool. A cluster is left out, because its subscription may be
    on another node than the keys. So is TLS, whose non-blocking sends may
    stop halfway, and Sentinel, whose connections turn READONLY into a
    reconnect. Change messages are read as bytes and requests packed as
    UTF-8, so ``decode_responses`` and other text encodings are left out too.
    """
    return (
        _PUSH is not None
        and type(connection) in (redis.Connection, redis.UnixDomainSocketConnection)
        and str(getattr(connection, "protocol", 2)) == "3"
        and not connection.encoder.decode_responses
        # Requests are packed by hiredis, which encodes text as strict UTF-8.
        and connection.encoder.encoding in ("utf-8", "utf8")
        and connection.encoder.encoding_errors == "strict"
        and pool is getattr(store.connection.client, "connection_pool", None)
    )


def _nothing_ready(timeout: float) -> list[Any]:
    return []


def _is_subscribed(reply: Any) -> bool:
    return isinstance(reply, list) and bool(reply) and reply[0] == b"subscribe"


def _is_pong(reply: Any) -> bool:
    # A subscribed RESP2 connection gets ["pong", ""], a RESP3 one (redis-py 8's
    # default) the simple string PONG.
    if isinstance(reply, list):
        return bool(reply) and reply[0] == b"pong"
    return bool(reply == b"PONG")

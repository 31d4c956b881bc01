"""The change feed: follow every change of a namespace, from any process.

Every script that changes a namespace increments the namespace's version
counter and publishes one message on the namespace's channel in the same
atomic step. So once a subscriber has seen version ``v``, a read that the
server runs after that returns data at least as new as ``v``. `subscribe`
delivers these messages to a callback as `Change` objects.

Usage
-----
>>> from redis_memory import Memory, feed          # doctest: +SKIP
>>> mem = Memory()                                  # doctest: +SKIP
>>> def show(change):                               # doctest: +SKIP
...     print(change.op, change.path, change.version)
>>> with feed.subscribe(mem, show):                 # doctest: +SKIP
...     mem.tasks = [1]
...     mem.tasks.append(2)

Redis Pub/Sub delivers at most once: a message published while the
subscriber is disconnected is lost. The subscription therefore reconnects
with exponential backoff and then delivers a `Change` with ``resync=True``,
after which the subscriber must read again everything it depends on.

Caveats
-------
The callback runs on the subscription's thread, one message after the other,
so a slow callback delays the messages after it; hand long work to another
thread. A subscriber that falls far behind is disconnected by the server when
its output buffer exceeds ``client-output-buffer-limit pubsub``, which the
subscription reports as a lost connection followed by a resync.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import redis
from redis.backoff import ExponentialWithJitterBackoff

if TYPE_CHECKING:
    from redis.client import PubSub

    from .memory import Memory

__all__ = ["Change", "State", "Subscription", "parse_change", "subscribe"]

log = logging.getLogger(__name__)

State = Literal["connected", "reconnecting", "closed"]

# How long one wait for a message lasts, so that close() is noticed in time.
_POLL_SECONDS = 0.25
# After this much silence the subscription sends PING, and when nothing at all
# arrives within as long again it treats the connection as lost.
_HEALTH_SECONDS = 15.0
# The minimum time between two log records about the same kind of problem.
_LOG_INTERVAL_SECONDS = 60.0
# Errors that mean the server is unreachable or unusable for now, as opposed
# to a bug. OSError covers a socket that fails outside redis-py's wrappers.
_CONNECTION_ERRORS = (redis.RedisError, OSError)


@dataclass(frozen=True)
class Change:
    """One change of a namespace, or a request to read everything again.

    Attributes
    ----------
    namespace : str
        The namespace that changed.
    name : str or None
        The top-level name whose value changed, or None when the operation
        concerned several names or the namespace as a whole
        (``mem._update(a=1, b=2)``, ``mem._clear()``).
    path : str
        Display path of the changed list or dict, such as ``"mem.tasks[1]"``;
        ``"mem"`` when the namespace itself changed (``mem.x = 1`` has path
        ``"mem"`` and name ``"x"``).
    op : str
        The operation, named after the Python method that caused it:
        ``"append"``, ``"setitem"``, ``"delitem"``, ``"clear"`` and so on;
        ``"resync"`` for a resync.
    version : int
        The namespace's version counter after the change. Every change adds
        exactly 1. For a resync, the version read after subscribing again.
    origin : str
        The origin id of the Memory object that made the change (compare
        with ``mem._store.origin``); ``""`` for a resync.
    node_id : str
        Id of the changed list or dict node, ``"root"`` for the namespace.
    resync : bool
        True when messages may have been lost, after a reconnect. The
        subscriber must then read again everything it depends on.
    """

    namespace: str
    name: str | None
    path: str
    op: str
    version: int
    origin: str
    node_id: str
    resync: bool = False


def parse_change(namespace: str, data: bytes | str) -> Change:
    """Parse the payload of one change message published on the namespace's channel.

    Parameters
    ----------
    namespace : str
        The namespace whose channel carried the message.
    data : bytes or str
        The payload: JSON such as ``{"v":3,"o":"<origin>","id":"<node id>",
        "op":"append","n":"tasks","p":"mem.tasks"}``.

    Returns
    -------
    Change
        With ``resync=False``.

    Raises
    ------
    ValueError
        If the payload is not JSON, or a field is missing or has the wrong type.
    """
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"change message is not JSON: {exc!r:.200}") from None
    if not isinstance(message, dict):
        raise ValueError(f"change message is a {type(message).__name__}, not an object")

    version = message.get("v")
    if type(version) is not int or version < 0:
        raise ValueError(f"change message has an invalid version 'v': {version!r}")
    fields = {}
    for key in ("o", "id", "op", "p"):
        value = message.get(key)
        if not isinstance(value, str):
            raise ValueError(f"change message has an invalid {key!r}: {value!r}")
        fields[key] = value
    return Change(
        namespace=namespace,
        name=_name_text(message.get("n")),
        path=fields["p"],
        op=fields["op"],
        version=version,
        origin=fields["o"],
        node_id=fields["id"],
    )


def _name_text(field: Any) -> str | None:
    # The field is the hash field of the top-level name, which is JSON text, so a
    # string name arrives as a JSON string. Other encodings (a string with lone
    # surrogates is tagged) are returned as their JSON text.
    if field is None or isinstance(field, str):
        return field
    return json.dumps(field, ensure_ascii=False, separators=(",", ":"))


def subscribe(
    mem: Memory,
    callback: Callable[[Change], object],
    *,
    include_own: bool = True,
    on_state: Callable[[Subscription], object] | None = None,
    timeout: float = 5.0,
) -> Subscription:
    """Call ``callback`` for every change of ``mem``'s namespace, on a background thread.

    The subscription uses one connection from the pool of ``mem``'s client
    and one daemon thread. This function returns once the server has
    confirmed the subscription, so every change made after it returns is
    delivered. When the first attempt fails or takes longer than ``timeout``,
    it returns anyway: the subscription then keeps trying in the background
    and starts with a resync `Change`.

    Parameters
    ----------
    mem : Memory
        The namespace to follow.
    callback : callable
        Called with each `Change`, in the order the server applied them. An
        exception it raises is logged and the subscription goes on.
    include_own : bool
        When False, the changes made through ``mem`` itself are skipped
        (``change.origin == mem._store.origin``). The Memory objects of one
        namespace and server that share a read cache in a process share its
        origin id, so their changes count as ``mem``'s own too; a Memory
        opened with ``cache=False`` has an origin id of its own. Resync
        changes are always delivered.
    on_state : callable, optional
        Called with the `Subscription` on its thread each time `state` becomes
        ``"connected"`` or ``"reconnecting"``.
    timeout : float
        Maximum time in seconds to wait for the first attempt to connect.

    Returns
    -------
    Subscription
        Close it, or use it as a context manager, to stop the thread.
    """
    if not callable(callback):
        raise TypeError(
            f"callback must be callable, not {type(callback).__name__}: {callback!r}; "
            "pass a function that takes one Change"
        )
    if on_state is not None and not callable(on_state):
        raise TypeError(
            f"on_state must be callable or None, not {type(on_state).__name__}: "
            f"{on_state!r}"
        )
    subscription = Subscription(
        mem, callback, include_own=include_own, on_state=on_state
    )
    subscription._start(timeout)
    return subscription


class Subscription:
    """A running subscription to the change feed of one namespace.

    Create it with `subscribe`. The attributes are safe to read from any thread.

    Attributes
    ----------
    namespace : str
        The namespace followed.
    """

    def __init__(
        self,
        mem: Memory,
        callback: Callable[[Change], object],
        *,
        include_own: bool,
        on_state: Callable[[Subscription], object] | None,
    ) -> None:
        store = mem._store
        self.namespace = store.namespace
        self._client = store.connection.client
        self._url = store.connection.url
        self._channel = store.keys.channel
        self._version_key = store.keys.version
        self._origin = store.origin
        self._own_mark = f'"o":"{store.origin}"'.encode()
        self._callback = callback
        self._include_own = include_own
        self._on_state = on_state

        self._state: State = "reconnecting"
        self._error = ""
        # The newest version received, and the newest whose callback has returned.
        self._seen_version = 0
        self._last_version = 0
        self._stop = threading.Event()
        self._first_attempt = threading.Event()
        # Set when subscribe() returned before the first attempt ended.
        self._caller_left = False
        self._backoff = ExponentialWithJitterBackoff(base=0.05, cap=1.0)
        self._bad_messages = _RateLimitedLog("malformed change messages")
        self._callback_errors = _RateLimitedLog("feed callback errors")
        self._thread = threading.Thread(
            target=self._run,
            name=f"redis-memory-feed[{self.namespace}]",
            daemon=True,
        )

    def __repr__(self) -> str:
        return f"<Subscription namespace={self.namespace!r} state={self._state!r}>"

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def state(self) -> State:
        """``"connected"``, ``"reconnecting"`` (no connection yet or lost), or ``"closed"``."""
        return self._state

    @property
    def error(self) -> str:
        """Text of the last connection error, ``""`` when none happened."""
        return self._error

    @property
    def last_version(self) -> int:
        """The namespace version up to which every change has been handled.

        It is the version of the newest message whose callback has returned
        (own changes count even when skipped). Before the first message, it
        is the version read from the server on connecting. So once it is
        ``v``, the callback has seen every change up to ``v``.
        """
        return self._last_version

    def close(self, timeout: float = 5.0) -> None:
        """Stop the subscription and wait up to ``timeout`` seconds for its thread to end.

        Calling it again, or from the callback itself, is harmless.
        """
        self._stop.set()
        thread = self._thread
        if thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning(
                    "the feed thread of namespace %r did not stop within %.1f s; "
                    "its callback is probably still running",
                    self.namespace,
                    timeout,
                )
        self._state = "closed"

    # -- the thread -----------------------------------------------------------

    def _start(self, timeout: float) -> None:
        self._thread.start()
        if not self._first_attempt.wait(timeout):
            self._caller_left = True

    def _run(self) -> None:
        # The first connection needs no resync when subscribe() was still waiting
        # for it, because the caller then reads only after the subscription.
        must_resync = False
        attempt = 0
        while not self._stop.is_set():
            try:
                pubsub = self._connect()
            except _CONNECTION_ERRORS as exc:
                attempt += 1
                must_resync = True
                self._lost(exc, attempt)
                self._first_attempt.set()
                self._stop.wait(self._backoff.compute(attempt))
                continue

            try:
                if attempt:
                    log.info(
                        "change feed of namespace %r reconnected to %s",
                        self.namespace,
                        self._url,
                    )
                attempt = 0
                self._error = ""
                self._set_state("connected")
                if must_resync or self._caller_left:
                    must_resync = False
                    self._deliver(self._resync_change())
                self._last_version = self._seen_version
                self._first_attempt.set()
                self._listen(pubsub)
            except _CONNECTION_ERRORS as exc:
                attempt = 1
                must_resync = True
                self._lost(exc, attempt)
                self._stop.wait(self._backoff.compute(attempt))
            finally:
                close_quietly(pubsub)
        self._state = "closed"

    def _connect(self) -> PubSub:
        """Subscribe on a new connection and read the version; raise on failure."""
        pubsub: PubSub = self._client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            deadline = time.monotonic() + _HEALTH_SECONDS
            while True:
                message = pubsub.get_message(timeout=_POLL_SECONDS)
                if message is not None and message.get("type") == "subscribe":
                    break
                if time.monotonic() > deadline:
                    raise redis.TimeoutError(
                        f"no SUBSCRIBE confirmation within {_HEALTH_SECONDS:.0f} s"
                    )
            # Read after subscribing, so that every later change arrives as a message.
            self._seen_version = int(self._client.get(self._version_key) or 0)
        except BaseException:
            close_quietly(pubsub)
            raise
        return pubsub

    def _listen(self, pubsub: PubSub) -> None:
        """Deliver messages until close() is called; raise on a connection error."""
        last_traffic = time.monotonic()
        ping_sent = False
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=_POLL_SECONDS)
            now = time.monotonic()
            if message is None:
                if now - last_traffic < _HEALTH_SECONDS:
                    continue
                if ping_sent:
                    raise redis.TimeoutError(
                        f"no reply to PING within {_HEALTH_SECONDS:.0f} s"
                    )
                pubsub.ping()
                ping_sent = True
                last_traffic = now
                continue
            last_traffic = now
            ping_sent = False
            if message.get("type") == "message":
                try:
                    self._handle(message.get("data"))
                except Exception:  # a message must never end the subscription
                    self._bad_messages.exception(
                        "failed to handle a change message on %s", self._channel
                    )
                    self._deliver(self._resync_change())

    def _handle(self, data: Any) -> None:
        if not self._include_own and isinstance(data, bytes) and self._own_mark in data:
            version = leading_version(data)
            if version is not None and version == self._seen_version + 1:
                # An own change that is skipped anyway: parsing it cost about as
                # much CPU as the write that sent it.
                self._seen_version = self._last_version = version
                return
        try:
            change = parse_change(self.namespace, data)
        except (TypeError, ValueError) as exc:
            self._bad_messages.warning(
                "skipped a malformed change message on %s: %s; payload %.200r",
                self._channel,
                exc,
                data,
            )
            return

        # Versions go up by exactly 1 per change, so a jump means lost messages.
        previous = self._seen_version
        if change.version > previous:
            self._seen_version = change.version
        if change.version > previous + 1:
            log.info(
                "change feed of namespace %r jumped from version %d to %d; resync",
                self.namespace,
                previous,
                change.version,
            )
            self._deliver(self._resync_change())
        elif self._include_own or change.origin != self._origin:
            self._deliver(change)
        self._last_version = self._seen_version

    def _resync_change(self) -> Change:
        return Change(
            namespace=self.namespace,
            name=None,
            path="mem",
            op="resync",
            version=self._seen_version,
            origin="",
            node_id="root",
            resync=True,
        )

    def _deliver(self, change: Change) -> None:
        try:
            self._callback(change)
        except Exception:
            self._callback_errors.exception(
                "the change feed callback %r failed on %r", self._callback, change
            )

    def _lost(self, exc: BaseException, attempt: int) -> None:
        self._error = f"{type(exc).__name__}: {exc}"
        if attempt == 1:
            log.info(
                "change feed of namespace %r lost its connection to %s (%s); "
                "reconnecting",
                self.namespace,
                self._url,
                self._error,
            )
        else:
            log.debug(
                "change feed of namespace %r: attempt %d failed (%s)",
                self.namespace,
                attempt,
                self._error,
            )
        self._set_state("reconnecting")

    def _set_state(self, state: State) -> None:
        changed = state != self._state
        self._state = state
        if changed and self._on_state is not None and not self._stop.is_set():
            try:
                self._on_state(self)
            except Exception:
                self._callback_errors.exception(
                    "the on_state callback %r failed", self._on_state
                )


def leading_version(data: bytes) -> int | None:
    """Return the version of a message that starts ``{"v":<digits>,``, else None."""
    if not data.startswith(b'{"v":'):
        return None
    end = data.find(b",", 5)
    digits = data[5:end]
    # A version counter has at most 19 digits (a 64-bit INCR), and a longer run
    # may exceed the digits that int() accepts.
    if not 5 < end <= 5 + 19 or not digits.isdigit():
        return None
    return int(digits)


def close_quietly(pubsub: PubSub) -> None:
    try:
        pubsub.close()
    except _CONNECTION_ERRORS as exc:
        log.debug("closing a feed connection failed: %s", exc)


class _RateLimitedLog:
    """Logs one record per interval for one kind of problem, counting the rest."""

    def __init__(self, topic: str) -> None:
        self._topic = topic
        self._next = 0.0
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        if self._allow():
            log.warning(message + self._suffix(), *args)

    def exception(self, message: str, *args: object) -> None:
        if self._allow():
            log.exception(message + self._suffix(), *args)

    def _allow(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return False
        self._next = now + _LOG_INTERVAL_SECONDS
        return True

    def _suffix(self) -> str:
        suppressed, self._suppressed = self._suppressed, 0
        if not suppressed:
            return ""
        return f" ({suppressed} more {self._topic} were not logged)"

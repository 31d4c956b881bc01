"""One Redis client per URL and process, and the retry policy around it.

A change is applied once or raises. A request that failed before it was fully
written (a refused or stale connection) is retried with exponential backoff
for up to ``retry_seconds``, because the server cannot have run it. So is a
request that the server rejected without running it: LOADING after a restart,
READONLY from a master that Sentinel has demoted, and in a cluster MOVED, ASK,
TRYAGAIN and CLUSTERDOWN. A change whose connection failed after it was sent
raises :class:`OutcomeUnknownError` instead of being repeated, because
repeating it could apply it twice. Reads are retried in both cases.

Problems that retrying cannot fix raise at once, with a message that names the
problem and the fix. These are wrong credentials, a TLS failure, a database
number the server does not have, a read-only replica
(:class:`ReadOnlyReplicaError`), a full server (:class:`ServerFullError`) and a
value over the server's request size limit (:class:`ValueTooLargeError`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    BusyLoadingError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import clients, server_errors
from .config import mask_url
from .errors import (
    OutcomeUnknownError,
    ServerUnavailableError,
)

if TYPE_CHECKING:
    from redis.client import PubSub
    from redis.cluster import RedisCluster

__all__ = [
    "TRANSIENT",
    "Carrier",
    "Connection",
    "Script",
    "connect",
    "connect_client",
    "send",
]

log = logging.getLogger(__name__)

TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
# Errors after which the server has run nothing, so even a change may be repeated.
_NOTHING_RAN = (BusyLoadingError, clients.MasterDemotedError)

# How long one request is retried before ServerUnavailableError. A failover
# takes the detection time (cluster-node-timeout, Sentinel's
# down-after-milliseconds) plus an election, hence the longer window there.
SINGLE_SERVER_RETRY_SECONDS = 10.0
FAILOVER_RETRY_SECONDS = 20.0

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # redis-py then packs in Python
    _hiredis_pack = None


class Carrier(Protocol):
    """A connection that a request may borrow instead of one of the pool's.

    The read cache's subscription is one (see
    :meth:`redis_memory.inline_feed.InlineFeed.borrow`).
    """

    def borrow(self, size: int) -> bool: ...
    def send(self, packed: bytes) -> None: ...
    def read_reply(self) -> Any: ...
    def give_back(self) -> None: ...


class Script:
    """A Lua script called by its SHA-1 and loaded again when the server lost it.

    ``function`` names the same operation in the function library whose text
    is ``library``, when it has one (see :mod:`redis_memory.lua`).
    """

    __slots__ = ("function", "library", "name", "sha", "source")

    def __init__(
        self,
        name: str,
        source: str,
        *,
        function: str | None = None,
        library: str | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
        self.function = function
        self.library = library


class Connection:
    """A redis-py client of one server, plus the retry policy of the module docstring.

    Parameters
    ----------
    client : redis.Redis
        The client whose connection pool carries the requests. A client from
        ``Sentinel.master_for`` follows failovers.
    url : str
        The URL shown in errors and logs; its password is masked here.
    restart : callable, optional
        Called before a retry when the server could not be reached, so the
        embedded server can be started again.
    retry_seconds : float
        How long a request that may be repeated is retried before
        :class:`ServerUnavailableError` is raised.
    """

    def __init__(
        self,
        client: Any,
        url: str,
        *,
        restart: Callable[[], object] | None = None,
        retry_seconds: float = SINGLE_SERVER_RETRY_SECONDS,
    ) -> None:
        self.client = client
        self.url = mask_url(url)
        self._restart = restart
        self._retry_seconds = retry_seconds
        self._backoff = ExponentialWithJitterBackoff(base=0.05, cap=1.0)
        # Whether a FUNCTION LOAD succeeded, and when to try one again after a failure.
        self._library_loaded = False
        self._functions_retry_at = 0.0
        # Each thread's connection from the pool, and how many threads keep one; see _take.
        self._per_thread = threading.local()
        self._kept_count = _KeptCount()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def command(self, *args: Any) -> Any:
        """Run one read-only command whose key (if any) is ``args[1]``, retrying as needed."""
        return self._call(args, idempotent=True)

    def script(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        write: bool,
        carrier: Carrier | None = None,
    ) -> Any:
        """Run ``script`` as a function of its library, or by SHA-1, or by its source.

        FCALL comes first, because it spares the server the prelude. The
        first call loads the library, and when that fails, calls go by SHA-1
        for a while. When the server rejects an FCALL before running it
        (function missing, FCALL denied, memory full), that call goes by
        SHA-1, because nothing ran. Any other error is raised, because the
        function may have written. ``keys[0]`` routes the call in a cluster.
        The call goes on ``carrier`` when it can be borrowed.
        """
        route = keys[0] if keys else None
        if script.function is not None and self._functions_usable(script, route):
            reply = self._fcall(
                script, keys, args, write=write, route=route, carrier=carrier
            )
            if reply is not _BY_SHA:
                return reply
        request = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self._call(
                request, idempotent=not write, route=route, carrier=carrier
            )
        except NoScriptError:
            # NOSCRIPT means nothing ran. EVAL runs the script and caches it on
            # the server that ran it, which in a cluster may be the target of an
            # ASK redirect rather than the master that SCRIPT LOAD would reach.
            request = ("EVAL", script.source, len(keys), *keys, *args)
            return self._call(
                request, idempotent=not write, route=route, carrier=carrier
            )

    def _functions_usable(self, script: Script, route: str | None) -> bool:
        """Return whether to call ``script`` by FCALL, loading its library on first use."""
        if self._library_loaded:
            return True
        if time.monotonic() < self._functions_retry_at:
            return False
        return self._load(script, route)

    def _fcall(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        write: bool,
        route: str | None,
        carrier: Carrier | None,
    ) -> Any:
        """Run ``script`` by FCALL; return :data:`_BY_SHA` when it has to go by SHA-1."""
        request = ("FCALL", script.function, len(keys), *keys, *args)
        reloaded = False
        while True:
            try:
                return self._call(
                    request,
                    idempotent=not write,
                    route=route,
                    rejections=False,
                    carrier=carrier,
                )
            except ResponseError as exc:
                rejection = _fcall_rejection(exc)
                if rejection is None:
                    self._raise_rejection(exc)
                    raise
                if rejection == "denied":
                    self._stop_functions("FCALL was rejected", exc)
            # Still missing after a load: in a cluster, an ASK redirect may
            # lead to a node that the load did not reach.
            if rejection != "missing" or reloaded or not self._load(script, route):
                return _BY_SHA
            reloaded = True

    def _load(self, script: Script, route: str | None) -> bool:
        """Load the library of ``script`` where ``route`` lives; return whether it is there."""
        assert script.library is not None
        try:
            self._call(
                ("FUNCTION", "LOAD", script.library),
                idempotent=True,
                route=route,
                rejections=False,
            )
        except ResponseError as exc:
            if "already exists" not in str(exc):
                self._stop_functions("loading the function library failed", exc)
                return False
        self._library_loaded = True
        return True

    def _stop_functions(self, problem: str, exc: ResponseError) -> None:
        """Send scripts by SHA-1 for a while, after a reply that functions are unusable."""
        self._library_loaded = False
        self._functions_retry_at = time.monotonic() + _FUNCTIONS_RETRY_SECONDS
        log.info(
            "%s at %s (%s); calling scripts by SHA-1 for %.0f s",
            problem,
            self.url,
            server_errors.describe(exc),
            _FUNCTIONS_RETRY_SECONDS,
        )

    def pubsub(self, channel: str | None = None) -> PubSub:
        """Return a new PubSub object on which ``channel`` can be subscribed.

        Call it again after the PubSub object's connection failed: in a
        cluster, the new one connects to a node of the current topology.
        """
        pubsub: PubSub = self.client.pubsub()
        return pubsub

    def _call(
        self,
        args: Sequence[Any],
        *,
        idempotent: bool,
        route: str | None = None,
        rejections: bool = True,
        carrier: Carrier | None = None,
    ) -> Any:
        """Send one request and return its reply, retrying as the module docstring describes.

        With ``rejections`` false, an error reply is raised as redis-py's
        ResponseError even where the library has its own exception for it.
        The first attempt goes on ``carrier`` when it can be borrowed; a
        request that it failed to send goes to the pool at once.
        """
        pool = self.client.connection_pool
        packed = _pack(args) if carrier is not None else None
        started = 0.0
        attempt = 0
        while True:
            connection = None
            sent = False
            carried = (
                packed is not None
                and carrier is not None
                and carrier.borrow(len(packed))
            )
            try:
                if carried:
                    assert carrier is not None and packed is not None
                    carrier.send(packed)
                    sent = True
                    return carrier.read_reply()
                connection = self._take(pool)
                send(connection, args)
                sent = True
                return connection.read_response()
            except ResponseError as exc:
                if rejections:
                    self._raise_rejection(exc)
                raise
            except TRANSIENT as exc:
                if carried and not sent:
                    packed = None
                    continue
                if connection is not None:
                    connection.disconnect()  # type: ignore[no-untyped-call]
                started = started or time.monotonic()
                self._wait_before_retry(exc, sent, idempotent, started, attempt)
                attempt += 1
                packed = None
            except BaseException:
                # Interrupted (Ctrl-C) with a reply perhaps on its way, which
                # the thread's next request would take for its own.
                if connection is not None:
                    connection.disconnect()  # type: ignore[no-untyped-call]
                raise
            finally:
                if carried:
                    assert carrier is not None
                    carrier.give_back()
                if connection is not None:
                    self._give_back(pool, connection)

    def _give_back(self, pool: Any, connection: Any) -> None:
        """Release ``connection`` to ``pool`` unless the thread keeps it."""
        if connection is not getattr(self._per_thread, "connection", None):
            pool.release(connection)

    def _take(self, pool: Any) -> Any:
        """Return the calling thread's connection from ``pool``, taking one on first use.

        redis-py's get_connection and release took 5.6 us per pair (timeit,
        redis-py 8.2, 20,000 pairs), so each thread keeps its connection
        until it ends. As get_connection does, a connection with data waiting
        (the end of a connection whose server went away) is closed before
        use, and the send connects again. Only plain TCP and unix socket
        connections are kept: the pool hands out the others for every
        request, because a Sentinel pool finds the new master when it gives
        out a connection. At most half the pool's ``max_connections`` are
        kept, so that more threads than that still share the rest. Call
        `_give_back` after the request with what this returned.
        """
        connection = getattr(self._per_thread, "connection", None)
        if (
            connection is None
            or connection.pid != os.getpid()
            or getattr(self._per_thread, "pool", None) is not pool
        ):
            connection = pool.get_connection()
            if type(connection) not in _KEPT_KINDS or not self._kept_count.add(
                pool.max_connections // 2
            ):
                return connection
            self._per_thread.connection = connection
            self._per_thread.pool = pool
            # Released to the pool when the thread ends and drops its locals.
            self._per_thread.keeper = _Keeper(pool, connection, self._kept_count)
            return connection
        try:
            if connection._sock is not None and connection.can_read():
                connection.disconnect()
        except TRANSIENT:
            connection.disconnect()
        return connection

    def _raise_rejection(self, exc: ResponseError) -> None:
        """Raise the library's error for a reply that retrying cannot change, if any."""
        error = server_errors.rejection(exc, self.url)
        if error is not None:
            raise error from exc

    def _wait_before_retry(
        self,
        exc: BaseException,
        sent: bool,
        idempotent: bool,
        started: float,
        attempt: int,
    ) -> None:
        """Sleep before the next attempt, or raise when retrying cannot help."""
        fatal = server_errors.connection_problem(exc, self.url)
        if fatal is not None:
            raise fatal from exc
        if sent and not idempotent and not isinstance(exc, _NOTHING_RAN):
            raise OutcomeUnknownError(
                f"the connection to {self.url} failed after a change was sent "
                f"({server_errors.describe(exc)}), so it may or may not have been applied; read "
                "the value to check before repeating the change"
            ) from exc
        remaining = self._retry_seconds - (time.monotonic() - started)
        if remaining <= 0:
            raise ServerUnavailableError(
                server_errors.unreachable_message(exc, self.url, self._retry_seconds)
            ) from exc

        delay = min(self._backoff.compute(attempt + 1), remaining)
        log.info(
            "Redis at %s unavailable (%s); retry %d in %.2f s",
            self.url,
            server_errors.describe(exc),
            attempt + 1,
            delay,
        )
        time.sleep(delay)
        self._try_restart()

    def _try_restart(self) -> None:
        if self._restart is None:
            return
        try:
            self._restart()
        except Exception as exc:  # the next attempt reports the connection error
            log.warning("restarting the embedded server failed: %s", exc)


# The connection classes that a thread keeps between requests; see Connection._take.
_KEPT_KINDS = (redis.Connection, redis.UnixDomainSocketConnection)


class _KeptCount:
    """How many threads keep a connection of one pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, limit: int) -> bool:
        """Count one more kept connection unless ``limit`` are kept; return whether counted."""
        with self._lock:
            if self._count >= limit:
                return False
            self._count += 1
            return True

    def remove(self) -> None:
        """Count one kept connection fewer."""
        with self._lock:
            self._count -= 1


class _Keeper:
    """The owner of a finalizer that releases a thread's kept connection to its pool once the thread's locals go."""

    def __init__(self, pool: Any, connection: Any, count: _KeptCount) -> None:
        weakref.finalize(self, _release, pool, connection, count)


def _release(pool: Any, connection: Any, count: _KeptCount) -> None:
    count.remove()
    pool.release(connection)


# The marker that Connection._fcall returns when the call has to go by SHA-1 instead.
_BY_SHA = object()

# How long scripts go by SHA-1 after the server rejected functions.
_FUNCTIONS_RETRY_SECONDS = 60.0


def _fcall_rejection(exc: ResponseError) -> str | None:
    """Classify an error reply to FCALL that the server sent without running the function.

    "missing" when the server lacks the function, "denied" when it has no
    FCALL or the user may not run it, "full" when memory is full and the
    function has no allow-oom flag; None for any other error. An error from
    inside the function names it after "script:", and is None too.
    """
    text = str(exc)
    if "script:" in text:
        return None
    if text.startswith("Function not found"):
        return "missing"
    if isinstance(exc, OutOfMemoryError):
        return "full"
    lowered = text.lower()
    if "fcall" in lowered and (
        isinstance(exc, NoPermissionError) or lowered.startswith("unknown command")
    ):
        return "denied"
    return None


def _pack(args: Sequence[Any]) -> bytes | None:
    """Return the request packed by hiredis, or None where only redis-py can pack it."""
    if _hiredis_pack is None:
        return None
    try:
        return _hiredis_pack(args if isinstance(args, tuple) else tuple(args))
    except TypeError:  # a bytearray or bool
        return None


def send(connection: Any, args: Sequence[Any]) -> None:
    """Send one command, packed by hiredis when the client encodes text as UTF-8.

    redis-py encodes each argument in Python before hiredis packs them. For a
    script call's 15 arguments that took 6.7 us, and one hiredis call took
    0.9 us (redis-py 8.2, hiredis 3.5, Python 3.11, measured with timeit).
    """
    encoder = connection.encoder
    if (
        _hiredis_pack is not None
        and encoder.encoding in ("utf-8", "utf8")
        and encoder.encoding_errors == "strict"
    ):
        try:
            packed = _hiredis_pack(tuple(args))
        except TypeError:
            # A bytearray or bool: redis-py converts the first and raises DataError for the second.
            pass
        else:
            connection.send_packed_command([packed])
            return
    connection.send_command(*args)


_connections: dict[str, Connection] = {}
_lock = threading.Lock()


def connect(url: str | None) -> Connection:
    """Return this process's connection for ``url`` (None: the embedded server).

    Raises
    ------
    ValueError
        If a sentinel or cluster URL is malformed.
    ServerUnavailableError
        If no node of a cluster URL replies with a slot map.
    """
    from .server import EmbeddedServer

    # The embedded server's own URL shares the connection of url=None, and so
    # the read cache that a process's writes keep coherent.
    embedded = EmbeddedServer().url
    key = embedded if url is None else url
    with _lock:
        connection = _connections.get(key)
        if connection is None:
            connection = _open(None if key == embedded else url)
            _connections[key] = connection
        return connection


def connect_client(client: redis.Redis | RedisCluster) -> Connection:
    """Return a connection that uses an existing redis-py client."""
    from redis.cluster import RedisCluster

    from .cluster import ClusterConnection

    if isinstance(client, RedisCluster):
        nodes = ",".join(
            f"{node.host}:{node.port}"
            for node in client.nodes_manager.startup_nodes.values()
        )
        return ClusterConnection(client, f"{clients.CLUSTER_SCHEME}://{nodes}")
    return Connection(client, _client_url(client))


def _client_url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    host = kwargs.get("host", "localhost")
    return f"redis://{host}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _open(url: str | None) -> Connection:
    if url is None:
        from .server import EmbeddedServer

        server = EmbeddedServer()
        embedded = server.ensure_running()
        return Connection(
            clients.single_client(embedded),
            embedded,
            restart=server.ensure_running,
            retry_seconds=SINGLE_SERVER_RETRY_SECONDS,
        )

    scheme = url.partition("://")[0].lower()
    if scheme == clients.SENTINEL_SCHEME:
        client = clients.sentinel_client(url)
        return Connection(client, url, retry_seconds=FAILOVER_RETRY_SECONDS)
    if scheme == clients.CLUSTER_SCHEME:
        from .cluster import ClusterConnection

        try:
            cluster = clients.cluster_client(url)
        except (RedisError, RedisClusterException) as exc:
            raise ServerUnavailableError(
                f"cannot read the slot map of Redis Cluster at {mask_url(url)} "
                f"({exc}). Check that the listed nodes run with cluster-enabled "
                "yes and that at least one of them is reachable"
            ) from exc
        return ClusterConnection(cluster, url, retry_seconds=FAILOVER_RETRY_SECONDS)
    client = clients.single_client(url)
    return Connection(client, url, retry_seconds=SINGLE_SERVER_RETRY_SECONDS)

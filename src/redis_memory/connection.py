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
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError

from . import clients
from .config import URL_ENV, mask_url
from .errors import (
    OutcomeUnknownError,
    ReadOnlyReplicaError,
    ServerFullError,
    ServerUnavailableError,
    ValueTooLargeError,
)

if TYPE_CHECKING:
    from redis.client import PubSub
    from redis.cluster import ClusterNode, RedisCluster

__all__ = [
    "ClusterConnection",
    "Connection",
    "Script",
    "connect",
    "connect_client",
]

log = logging.getLogger(__name__)

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)
# Errors after which the server has run nothing, so even a change may be repeated.
_NOTHING_RAN = (BusyLoadingError, clients.MasterDemotedError)

# How long one request is retried before ServerUnavailableError. A failover
# takes the detection time (cluster-node-timeout, Sentinel's
# down-after-milliseconds) plus an election, hence the longer window there.
SINGLE_SERVER_RETRY_SECONDS = 10.0
FAILOVER_RETRY_SECONDS = 20.0
# MOVED and ASK replies followed for one request before it fails: more than a
# slot migration and a failover need, fewer than a redirect loop would make.
_MAX_REDIRECTS = 16

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # redis-py then packs in Python
    _hiredis_pack = None


class Script:
    """A Lua script called by its SHA-1 and loaded again when the server lost it."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()


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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def command(self, *args: Any) -> Any:
        """Run one read-only command whose key (if any) is ``args[1]``, retrying as needed."""
        return self._call(args, idempotent=True)

    def script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], *, write: bool
    ) -> Any:
        """Run ``script`` by SHA-1, or by its source when the server does not know it.

        ``keys[0]`` routes the call in a cluster.
        """
        request = ("EVALSHA", script.sha, len(keys), *keys, *args)
        route = keys[0] if keys else None
        try:
            return self._call(request, idempotent=not write, route=route)
        except NoScriptError:
            # NOSCRIPT means nothing ran. EVAL runs the script and caches it on
            # the server that ran it, which in a cluster may be the target of an
            # ASK redirect rather than the master that SCRIPT LOAD would reach.
            request = ("EVAL", script.source, len(keys), *keys, *args)
            return self._call(request, idempotent=not write, route=route)

    def pubsub(self, channel: str | None = None) -> PubSub:
        """Return a new PubSub object on which ``channel`` can be subscribed.

        Call it again after the PubSub object's connection failed: in a
        cluster, the new one connects to a node of the current topology.
        """
        pubsub: PubSub = self.client.pubsub()
        return pubsub

    def _call(
        self, args: Sequence[Any], *, idempotent: bool, route: str | None = None
    ) -> Any:
        pool = self.client.connection_pool
        started = 0.0
        attempt = 0
        while True:
            connection = None
            sent = False
            try:
                connection = pool.get_connection()
                _send(connection, args)
                sent = True
                return connection.read_response()
            except ResponseError as exc:
                error = _rejection(exc, self.url)
                if error is None:
                    raise
                raise error from exc
            except _TRANSIENT as exc:
                if connection is not None:
                    connection.disconnect()  # type: ignore[no-untyped-call]
                started = started or time.monotonic()
                self._wait_before_retry(exc, sent, idempotent, started, attempt)
                attempt += 1
            finally:
                if connection is not None:
                    pool.release(connection)

    def _wait_before_retry(
        self,
        exc: BaseException,
        sent: bool,
        idempotent: bool,
        started: float,
        attempt: int,
    ) -> None:
        """Sleep before the next attempt, or raise when retrying cannot help."""
        fatal = _connection_problem(exc, self.url)
        if fatal is not None:
            raise fatal from exc
        if sent and not idempotent and not isinstance(exc, _NOTHING_RAN):
            raise OutcomeUnknownError(
                f"the connection to {self.url} failed after a change was sent "
                f"({_describe(exc)}), so it may or may not have been applied; read "
                "the value to check before repeating the change"
            ) from exc
        remaining = self._retry_seconds - (time.monotonic() - started)
        if remaining <= 0:
            raise ServerUnavailableError(
                _unreachable_message(exc, self.url, self._retry_seconds)
            ) from exc

        delay = min(self._backoff.compute(attempt + 1), remaining)
        log.info(
            "Redis at %s unavailable (%s); retry %d in %.2f s",
            self.url,
            _describe(exc),
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


class ClusterConnection(Connection):
    """A Redis Cluster client that sends each request to the master of its key's slot.

    Every key of a namespace has the same hash tag, so every request of a
    namespace goes to one slot. MOVED and ASK are followed, and a connection
    failure or CLUSTERDOWN makes the client read the slot map again before the
    next attempt, so requests reach the promoted replica after a failover.

    Parameters
    ----------
    client : redis.cluster.RedisCluster
        Holds the slot map and one connection pool per node. Its own
        ``execute_command`` is not used, because it repeats changes whose
        connection failed after they were sent.
    url : str
        The URL shown in errors and logs; its password is masked here.
    retry_seconds : float
        As for :class:`Connection`; long enough for a failover by default.
    """

    client: RedisCluster

    def __init__(
        self,
        client: RedisCluster,
        url: str,
        *,
        retry_seconds: float = FAILOVER_RETRY_SECONDS,
    ) -> None:
        super().__init__(client, url, retry_seconds=retry_seconds)

    def command(self, *args: Any) -> Any:
        """Run one read-only command on the master of the slot of ``args[1]``."""
        return self._call(
            args, idempotent=True, route=args[1] if len(args) > 1 else None
        )

    def pubsub(self, channel: str | None = None) -> PubSub:
        """Return a new PubSub object on the master of ``channel``'s slot.

        Valkey and Redis Cluster forward every PUBLISH to all nodes, so a
        subscriber on any node receives the messages of every channel.
        """
        slot = None
        if channel is not None:
            slot = self.client.keyslot(channel)  # type: ignore[no-untyped-call]
        node = self._master(slot)
        pubsub: PubSub = self.client.get_redis_connection(node).pubsub()
        return pubsub

    def _call(
        self, args: Sequence[Any], *, idempotent: bool, route: str | None = None
    ) -> Any:
        cluster = self.client
        slot = None if route is None else cluster.keyslot(route)  # type: ignore[no-untyped-call]
        ask_node: ClusterNode | None = None
        redirects = 0
        started = 0.0
        attempt = 0
        while True:
            node = ask_node or self._master(slot)
            pool = cluster.get_redis_connection(node).connection_pool
            connection = None
            sent = False
            try:
                connection = pool.get_connection()
                if ask_node is not None:
                    ask_node = None
                    connection.send_command("ASKING")  # type: ignore[no-untyped-call]
                    connection.read_response()
                _send(connection, args)
                sent = True
                return connection.read_response()
            except AskError as exc:  # MovedError is a subclass
                redirects += 1
                if redirects > _MAX_REDIRECTS:
                    raise ServerUnavailableError(
                        f"Redis Cluster at {self.url} redirected a request "
                        f"{redirects} times ({exc}); the slot map is changing faster "
                        "than the client can follow, retry later"
                    ) from exc
                if not exc.host:
                    exc.host = node.host
                ask_node = self._follow(exc)
            except (TryAgainError, ClusterDownError) as exc:
                started = started or time.monotonic()
                self._wait_before_retry(exc, False, idempotent, started, attempt)
                self._refresh()
                attempt += 1
            except ResponseError as exc:
                error = _rejection(exc, self.url)
                if error is None:
                    raise
                raise error from exc
            except _TRANSIENT as exc:
                if connection is not None:
                    connection.disconnect()  # type: ignore[no-untyped-call]
                started = started or time.monotonic()
                self._wait_before_retry(exc, sent, idempotent, started, attempt)
                self._refresh()
                attempt += 1
            finally:
                if connection is not None:
                    pool.release(connection)

    def _master(self, slot: int | None) -> ClusterNode:
        """Return the master of ``slot``, or a random master when ``slot`` is None."""
        cluster = self.client
        if slot is None:
            return cluster.get_random_primary_node()
        try:
            return cluster.nodes_manager.get_node_from_slot(slot)
        except RedisClusterException:
            # No master owns the slot in the cached map: read it again once.
            self._refresh()
            return cluster.nodes_manager.get_node_from_slot(slot)

    def _follow(self, redirect: AskError) -> ClusterNode | None:
        """Record a MOVED in the slot map; return the node of an ASK (None for MOVED)."""
        manager = self.client.nodes_manager
        if isinstance(redirect, MovedError):
            manager.move_slot(redirect)
            return None
        from redis.cluster import ClusterNode

        host, port = manager.remap_host_port(redirect.host, redirect.port)
        target = manager.get_node(host=host, port=port)
        return target or ClusterNode(host, port)  # type: ignore[no-untyped-call]

    def _refresh(self) -> None:
        """Read the slot map again; a failure is logged and left to the next attempt."""
        try:
            self.client.nodes_manager.initialize()
        except (RedisError, RedisClusterException) as exc:
            log.info("reading the slot map of %s failed: %s", self.url, exc)


def _send(connection: Any, args: Sequence[Any]) -> None:
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


def _rejection(exc: ResponseError, url: str) -> Exception | None:
    """Return the error to raise for a reply that retrying cannot change, else None."""
    if isinstance(exc, OutOfMemoryError):
        return ServerFullError(
            f"Redis at {url} is full: its used memory exceeds the maxmemory setting, "
            f"so it rejected the change and nothing was stored ({_text(exc)}). Delete "
            "values or namespaces that are no longer needed, or raise maxmemory "
            "(CONFIG SET maxmemory <bytes>); an allkeys-* eviction policy is no fix, "
            "because evicting keys would delete parts of stored lists and dicts"
        )
    if isinstance(exc, ReadOnlyError):
        return ReadOnlyReplicaError(
            f"Redis at {url} is a read-only replica, so it rejected the change and "
            "nothing was stored. Point the URL at the master, or use "
            "redis+sentinel://host:port/service_name so that changes follow the "
            "master after a failover"
        )
    if isinstance(exc, NoPermissionError):
        return ServerUnavailableError(
            f"the Redis user of {url} lacks a permission ({_text(exc)}). Grant it the "
            "scripting commands (EVALSHA, SCRIPT LOAD), reads and PUBLISH/SUBSCRIBE "
            "on keys and channels matching rm:*, for example with ACL SETUSER"
        )
    text = _text(exc)
    if "invalid bulk length" in text:
        return ValueTooLargeError(
            f"Redis at {url} rejected the request because a value in it is larger "
            f"than the server's proto-max-bulk-len setting ({text}), so nothing was "
            "stored. Store the data in smaller parts, or raise proto-max-bulk-len "
            "(512 MB by default)"
        )
    if "DB index is out of range" in text or "invalid DB index" in text:
        return ServerUnavailableError(
            f"Redis at {url} has no database with the number in the URL ({text}). "
            "Use a database number below the server's `databases` setting (16 by "
            "default), such as redis://host:port/0"
        )
    if isinstance(exc, AskError) or text.startswith("CLUSTERDOWN"):
        return ServerUnavailableError(
            f"Redis at {url} is a Redis Cluster node ({text}); connect with "
            "redis+cluster://host:port so that each request goes to the node that "
            "owns its slot"
        )
    return None


def _connection_problem(exc: BaseException, url: str) -> Exception | None:
    """Return the error to raise for a connection failure that retrying cannot fix."""
    if isinstance(exc, AuthenticationError):
        return ServerUnavailableError(
            f"Redis at {url} rejected the credentials ({_text(exc)}). Check the user name "
            "and password in the URL (redis://user:password@host:port/0) or in "
            f"${URL_ENV}"
        )
    tls_error = _tls_failure(exc)
    if tls_error is None:
        return None
    reason = _text(getattr(tls_error, "reason", None) or tls_error)
    if isinstance(tls_error, ssl.SSLCertVerificationError):
        return ServerUnavailableError(
            f"TLS certificate verification of Redis at {url} failed "
            f"({tls_error.verify_message or reason}). Name the certificate of the "
            "CA that signed the server's certificate with ?ssl_ca_certs=/path/to/"
            "ca.pem in the URL"
        )
    return ServerUnavailableError(
        f"the TLS handshake with Redis at {url} failed ({reason}): the server "
        "probably does not accept TLS on this port. Use redis:// for a server "
        "without TLS, or the port of the server's tls-port setting"
    )


def _tls_failure(exc: BaseException) -> BaseException | None:
    """Return the TLS error behind ``exc``: an ssl.SSLError or a handshake timeout.

    A server without TLS reads the ClientHello as the start of a command and
    waits for the rest, so the handshake times out instead of failing.
    """
    # NOTE: a TLS server that is paused (SIGSTOP) also times out the handshake,
    # and is then reported as not accepting TLS.
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        if isinstance(seen, TimeoutError) and "handshake" in str(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _text(exc: BaseException) -> str:
    """Return the message of ``exc`` without its final period, for use in brackets."""
    return str(exc).rstrip(". ")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (RedisTimeoutError, TimeoutError)):
        return f"timed out: {exc}"
    return str(exc) or type(exc).__name__


def _unreachable_message(exc: BaseException, url: str, seconds: float) -> str:
    message = f"cannot reach Redis at {url} after retrying for {seconds:g} s ({_describe(exc)})."
    if isinstance(exc, (RedisTimeoutError, TimeoutError)):
        message += (
            " The server did not reply in time: it may be overloaded, paused or "
            "behind a broken network path, or socket_timeout in the URL is too short."
        )
    elif url.startswith("redis://") and (
        "closed by server" in str(exc) or "reset by peer" in str(exc)
    ):
        message += " If the server accepts only TLS connections, use rediss://."
    elif isinstance(exc, BusyLoadingError):
        message += " The server is still loading its data; retry when it is done."
    elif isinstance(exc, ClusterDownError):
        message += " The cluster is down or in a failover; retry when it is done."
    elif isinstance(exc, MasterNotFoundError):
        message += (
            " No sentinel named a master for the service: check the service name "
            "in the URL against SENTINEL MASTERS on a sentinel."
        )
    return (
        f"{message} Start the server, or point ${URL_ENV} (or Memory(url=...)) at "
        "a reachable one"
    )


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

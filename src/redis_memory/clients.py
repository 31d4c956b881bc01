"""Building redis-py clients from the URL forms that redis-memory accepts.

Single server (redis-py's own forms)::

    redis://[[user]:password@]host[:port][/db][?option=value&...]
    rediss://[[user]:password@]host[:port][/db][?option=value&...]     (TLS)
    unix://[[user]:password@]/path/to/socket[?db=N&...]

Sentinel: the client requests the current master of ``service_name`` from the
sentinels, and requests it again after a failover::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db][?...]

Cluster: the client reads the slot map from any reachable node listed and
sends each request to the master that owns the namespace's slot::

    redis+cluster://[[user]:password@]host:port[,host:port...][/0][?...]

The user and password in a sentinel or cluster URL are those of the data
nodes. Query options are redis-py's connection options (``socket_timeout``,
``socket_connect_timeout``, ``ssl_ca_certs``, ``ssl_certfile``,
``ssl_keyfile``, ``ssl_cert_reqs``, ``ssl_check_hostname`` and the others that
``redis.Redis.from_url`` accepts). In sentinel and cluster URLs, ``ssl=true``
turns on TLS to the data nodes, and ``sentinel_username``,
``sentinel_password`` and ``sentinel_ssl=true`` configure the connections to
the sentinels themselves. docs/deployment.md shows every form with examples.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from .config import mask_url

__all__ = [
    "CLUSTER_SCHEME",
    "SENTINEL_SCHEME",
    "MasterDemotedError",
    "cluster_client",
    "parse_hosts",
    "sentinel_client",
    "single_client",
]

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"

# Applied unless the URL sets them. A server that cannot be reached at all is
# reported after 5 s instead of the operating system's TCP timeout. A reply may
# take 60 s, because one script can store or read hundreds of thousands of
# entries; redis-py's own default of 5 s reported such changes as of unknown
# outcome although they had been applied.
_DEFAULT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 5.0,
    "socket_timeout": 60.0,
}
_TRUE_TEXTS = frozenset({"1", "true", "yes", "on"})
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password", "sentinel_ssl")


class MasterDemotedError(RedisConnectionError):
    """The server that Sentinel named as master replied READONLY: it is a replica now.

    Nothing ran, so the request may be repeated after the client has asked the
    sentinels for the new master.
    """


class _SentinelConnection(SentinelManagedConnection):
    """A sentinel-managed connection that reports a demoted master distinctly.

    redis-py turns READONLY from a former master into a plain ConnectionError,
    the same as a dropped connection, after which a change has an unknown
    outcome. READONLY means that the server ran nothing, so
    :class:`MasterDemotedError` lets the caller retry.
    """

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            # Skip SentinelManagedConnection.read_response, which converts
            # ReadOnlyError into a plain ConnectionError.
            return redis.connection.Connection.read_response(self, *args, **kwargs)
        except ReadOnlyError as exc:
            if not self.connection_pool.is_master:
                raise
            self.disconnect()  # type: ignore[no-untyped-call]
            raise MasterDemotedError(
                f"{self.host}:{self.port} is no longer the master: {exc}"
            ) from exc


class _SentinelSSLConnection(_SentinelConnection, SSLConnection):
    """A :class:`_SentinelConnection` over TLS."""


def single_client(url: str) -> redis.Redis:
    """Return a client of the one server at a ``redis``, ``rediss`` or ``unix`` URL."""
    return redis.Redis.from_url(url, **_client_options())


def parse_hosts(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """Split a sentinel or cluster URL into its hosts, its path and client options.

    Returns
    -------
    hosts : list of (str, int)
        The hosts in the order given; the port defaults to 26379 for sentinels
        and 6379 for cluster nodes.
    path : str
        The URL path without its leading ``/``, percent-decoded.
    options : dict
        ``username``, ``password`` and the query options, parsed the way
        ``redis.Redis.from_url`` parses them.

    Raises
    ------
    ValueError
        If a host is missing or a port is not a number; the message shows the
        URL with its password masked.
    """
    scheme, _, rest = url.partition("://")
    authority = _authority(rest)
    parts = urlsplit(f"redis://localhost{rest[len(authority) :]}")
    # A password may contain "@", so the credentials end at the last one.
    userinfo, at, host_list = authority.rpartition("@")
    default_port = 26379 if scheme.lower() == SENTINEL_SCHEME else 6379

    hosts = []
    for item in host_list.split(","):
        hosts.append(_parse_host(item, default_port, url))

    query = f"?{parts.query}" if parts.query else ""
    options: dict[str, Any] = parse_url(  # type: ignore[no-untyped-call]
        f"redis://{userinfo}{at}localhost{query}"
    )
    options.pop("host", None)
    for name in ("ssl", "sentinel_ssl"):
        if name in options:
            options[name] = str(options[name]).lower() in _TRUE_TEXTS
    return hosts, unquote(parts.path.lstrip("/")), options


def sentinel_client(url: str) -> redis.Redis:
    """Return a client of the master that the sentinels of ``url`` name.

    Raises
    ------
    ValueError
        If the URL names no service, or its db is not a number.
    """
    hosts, path, options = parse_hosts(url)
    service, _, db_text = path.partition("/")
    if not service:
        raise ValueError(
            f"invalid Sentinel URL {mask_url(url)!r}: it names no service; expected "
            "redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]"
        )
    if db_text:
        if not db_text.isdigit():
            raise ValueError(
                f"invalid Sentinel URL {mask_url(url)!r}: the database {db_text!r} "
                "after the service name is not a number"
            )
        options.setdefault("db", int(db_text))

    sentinel_options = {
        name.removeprefix("sentinel_"): options.pop(name)
        for name in _SENTINEL_OPTIONS
        if name in options
    }
    # The sentinels share the timeouts and, when they use TLS, the certificates.
    shared = [name for name in options if name.startswith("socket_")]
    if sentinel_options.get("ssl"):
        shared += [name for name in options if name.startswith("ssl_")]
    for name in shared:
        sentinel_options.setdefault(name, options[name])
    sentinel_options.setdefault(
        "socket_connect_timeout", _DEFAULT_OPTIONS["socket_connect_timeout"]
    )
    use_ssl = bool(options.pop("ssl", False))
    connection_class = _SentinelSSLConnection if use_ssl else _SentinelConnection

    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_options)
    client: redis.Redis = sentinel.master_for(
        service, connection_class=connection_class, **{**_client_options(), **options}
    )
    return client


def cluster_client(url: str) -> redis.RedisCluster:
    """Return a cluster client that has read the slot map from the nodes of ``url``.

    Raises
    ------
    ValueError
        If the URL names a database other than 0, which Redis Cluster does not have.
    redis.exceptions.RedisClusterException
        If no listed node replies with a slot map.
    """
    from redis.cluster import ClusterNode, RedisCluster

    hosts, path, options = parse_hosts(url)
    db = options.pop("db", None)
    if path not in ("", "0") or db not in (None, 0):
        raise ValueError(
            f"invalid Redis Cluster URL {mask_url(url)!r}: a cluster has only "
            "database 0; remove the database from the URL"
        )
    nodes = [ClusterNode(host, port) for host, port in hosts]  # type: ignore[no-untyped-call]
    return RedisCluster(
        startup_nodes=nodes,
        require_full_coverage=False,
        **{**_client_options(), **options},
    )


def _client_options() -> dict[str, Any]:
    # redis_memory.connection retries, because it tracks whether a request may
    # be repeated. redis-py would repeat changes too.
    return {
        "decode_responses": False,
        "retry": Retry(NoBackoff(), 0),
        **_DEFAULT_OPTIONS,
    }


def _authority(rest: str) -> str:
    """Return the part of ``rest`` (a URL after ``://``) before its path or query."""
    end = len(rest)
    for delimiter in "/?#":
        position = rest.find(delimiter)
        if position >= 0:
            end = min(end, position)
    return rest[:end]


def _parse_host(item: str, default_port: int, url: str) -> tuple[str, int]:
    """Parse ``host``, ``host:port`` or ``[ipv6]:port``."""
    item = item.strip()
    if item.startswith("["):
        host, _, port_text = item[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError(f"invalid Redis URL {mask_url(url)!r}: a host is missing")
    if not port_text:
        return unquote(host), default_port
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(
            f"invalid Redis URL {mask_url(url)!r}: the port {port_text!r} of "
            f"{host} is not a number from 0 to 65535"
        )
    return unquote(host), int(port_text)

"""Error messages for what a Redis server or the network does wrong.

Each function turns a redis-py exception into the library's exception with a
message that names the problem, the server's URL (password masked by the
caller) and the fix, or returns None when retrying may still help.
"""

from __future__ import annotations

import ssl

from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError

from .config import URL_ENV
from .errors import (
    ReadOnlyReplicaError,
    ServerFullError,
    ServerUnavailableError,
    ValueTooLargeError,
)

__all__ = ["connection_problem", "describe", "rejection", "unreachable_message"]


def rejection(exc: ResponseError, url: str) -> Exception | None:
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
            "scripting commands (EVALSHA, SCRIPT LOAD; FCALL and FUNCTION LOAD are used "
            "when granted), reads and PUBLISH/SUBSCRIBE "
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


def connection_problem(exc: BaseException, url: str) -> Exception | None:
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


def describe(exc: BaseException) -> str:
    """Return the text of ``exc`` for a message, saying when it is a timeout."""
    if isinstance(exc, (RedisTimeoutError, TimeoutError)):
        return f"timed out: {exc}"
    return str(exc) or type(exc).__name__


def unreachable_message(exc: BaseException, url: str, seconds: float) -> str:
    message = f"cannot reach Redis at {url} after retrying for {seconds:g} s ({describe(exc)})."
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

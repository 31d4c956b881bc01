"""The connection to a Redis Cluster: each request goes to its slot's master.

It keeps the retry policy of :class:`redis_memory.connection.Connection` and
routes requests itself instead of through redis-py's cluster retries, which
would send a change again after its reply was lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from .connection import FAILOVER_RETRY_SECONDS, TRANSIENT, Carrier, Connection, send
from .errors import ServerUnavailableError

if TYPE_CHECKING:
    from redis.client import PubSub
    from redis.cluster import ClusterNode, RedisCluster

__all__ = ["ClusterConnection"]

log = logging.getLogger(__name__)

# MOVED and ASK replies followed for one request before it fails: more than a
# slot migration and a failover need, fewer than a redirect loop would make.
_MAX_REDIRECTS = 16


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
        self,
        args: Sequence[Any],
        *,
        idempotent: bool,
        route: str | None = None,
        rejections: bool = True,
        carrier: Carrier | None = None,
    ) -> Any:
        # The subscription never carries requests in a cluster (see
        # inline_feed._can_carry), so ``carrier`` is always None here.
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
                send(connection, args)
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
                if rejections:
                    self._raise_rejection(exc)
                raise
            except TRANSIENT as exc:
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

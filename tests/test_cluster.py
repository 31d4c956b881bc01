"""Redis Cluster: a real 3-master, 3-replica Valkey cluster on 127.0.0.1.

Every operation runs through ``redis+cluster://``, and namespaces spread over
the masters. The client follows MOVED and ASK during a slot migration. The
change feed reaches subscribers on every node. Operations go on after a master
is killed and its replica promoted.
"""

from __future__ import annotations

import queue
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from core_operations import exercise_operations, wait_for_change
from redis_memory import Memory, feed
from redis_memory.cluster import ClusterConnection
from redis_memory.connection import connect, connect_client
from redis_memory.errors import ServerUnavailableError
from redis_memory.keys import KeySpace
from redis_processes import ClusterProcesses, free_port, scratch_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterProcesses]:
    """A healthy cluster shared by the tests of this module that do not kill nodes."""
    with scratch_dir("rmcl") as directory:
        processes = ClusterProcesses(directory)
        try:
            processes.start()
            yield processes
        finally:
            processes.stop()


@pytest.fixture
def own_cluster() -> Iterator[ClusterProcesses]:
    """A cluster for one test that kills nodes."""
    with scratch_dir("rmfo") as directory:
        processes = ClusterProcesses(directory)
        try:
            processes.start()
            yield processes
        finally:
            processes.stop()


def new_namespace() -> str:
    return f"cl-{uuid.uuid4().hex[:10]}"


def owner_port(url_client: redis.RedisCluster, namespace: str) -> int:
    """Return the port of the master that owns the namespace's slot."""
    return int(url_client.get_node_from_key(KeySpace(namespace).meta).port)


def test_every_operation_on_cluster(cluster: ClusterProcesses) -> None:
    mem = Memory(url=cluster.url, namespace=new_namespace())

    exercise_operations(mem)

    assert isinstance(mem._store.connection, ClusterConnection)
    assert Memory(url=cluster.url, namespace=mem._namespace).tasks == [4]


def test_namespaces_spread_over_masters(cluster: ClusterProcesses) -> None:
    connection = connect(cluster.url)
    client = connection.client
    owners: dict[int, list[str]] = {}

    for _ in range(12):
        namespace = new_namespace()
        Memory(url=cluster.url, namespace=namespace).value = [namespace]
        owners.setdefault(owner_port(client, namespace), []).append(namespace)

    assert len(owners) == 3
    for port, namespaces in owners.items():
        direct = redis.Redis(port=port)
        for namespace in namespaces:
            keys = KeySpace(namespace)
            assert direct.exists(keys.node("root")) == 1
            assert direct.get(keys.version) == b"1"


def test_feed_reaches_subscribers_on_every_node(cluster: ClusterProcesses) -> None:
    namespace = new_namespace()
    mem = Memory(url=cluster.url, namespace=namespace)
    channel = KeySpace(namespace).channel
    subscribers = [redis.Redis(port=node.port).pubsub() for node in cluster.nodes]
    for subscriber in subscribers:
        subscriber.subscribe(channel)
        assert subscriber.get_message(timeout=2)["type"] == "subscribe"

    mem.items = []
    mem.items.append(1)

    for subscriber in subscribers:
        payloads = [_next_data(subscriber), _next_data(subscriber)]
        assert [feed.parse_change(namespace, p).op for p in payloads] == [
            "setitem",
            "append",
        ]
        subscriber.close()


def test_feed_subscription_on_cluster(cluster: ClusterProcesses) -> None:
    mem = Memory(url=cluster.url, namespace=new_namespace())
    changes: queue.Queue[feed.Change] = queue.Queue()

    with feed.subscribe(mem, changes.put):
        mem.log = ["a"]
        mem.log.append("b")
        first = changes.get(timeout=10)
        second = changes.get(timeout=10)

    assert (first.op, first.version) == ("setitem", 1)
    assert (second.op, second.path, second.version) == ("append", "mem.log", 2)


def test_connection_pubsub_on_cluster(cluster: ClusterProcesses) -> None:
    mem = Memory(url=cluster.url, namespace=new_namespace())
    channel = mem._store.keys.channel
    pubsub = mem._store.connection.pubsub(channel)
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"

    mem.x = 1

    change = feed.parse_change(mem._namespace, _next_data(pubsub))
    assert change.op == "setitem"
    pubsub.close()


def test_moved_and_ask_followed(
    cluster: ClusterProcesses, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirects: list[str] = []
    follow = ClusterConnection._follow

    def record(self: ClusterConnection, redirect: redis.exceptions.AskError) -> object:
        redirects.append(type(redirect).__name__)
        return follow(self, redirect)

    monkeypatch.setattr(ClusterConnection, "_follow", record)
    namespace = new_namespace()
    mem = Memory(url=cluster.url, namespace=namespace)
    mem.items = [1, 2]
    keys = KeySpace(namespace)
    client = mem._store.connection.client
    slot = client.keyslot(keys.meta)
    source = redis.Redis(port=owner_port(client, namespace))
    target_port = next(
        node.port
        for node in cluster.nodes
        if node.port != source.connection_pool.connection_kwargs["port"]
        and redis.Redis(port=node.port).info("replication")["role"] == "master"
    )
    target = redis.Redis(port=target_port)
    source_id = source.execute_command("CLUSTER", "MYID").decode()
    target_id = target.execute_command("CLUSTER", "MYID").decode()

    # Halfway through a migration every key has moved, so the source replies ASK.
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    names = source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    source.execute_command(
        "MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *names
    )
    assert mem.items == [1, 2]
    mem.items.append(3)

    # Once the slot belongs to the target, the source replies MOVED.
    for node in (target, source):
        node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    mem.items.append(4)

    assert Memory(url=cluster.url, namespace=namespace).items == [1, 2, 3, 4]
    assert target.llen(keys.node(_node_id(mem, "items"))) == 4
    assert "AskError" in redirects
    assert "MovedError" in redirects


def test_failover_keeps_operations_going(own_cluster: ClusterProcesses) -> None:
    namespace = new_namespace()
    mem = Memory(url=own_cluster.url, namespace=namespace)
    mem.log = list(range(10))
    mem.cfg = {"n": 1}
    client = mem._store.connection.client
    master = own_cluster.node_on_port(owner_port(client, namespace))
    # Wait until the replica has every change, since replication is asynchronous.
    assert redis.Redis(port=master.port).execute_command("WAIT", 1, 5000) == 1
    changes: queue.Queue[feed.Change] = queue.Queue()
    subscription = feed.subscribe(mem, changes.put)

    master.kill(signal.SIGKILL)
    started = time.monotonic()
    mem.log.append(10)
    failover_seconds = time.monotonic() - started
    mem.cfg["n"] += 1

    assert mem.log == list(range(11))
    assert mem.cfg == {"n": 2}
    assert owner_port(client, namespace) != master.port
    assert failover_seconds < 15
    print(f"first change after the kill took {failover_seconds:.2f} s")
    # The feed reconnects to the new master, delivers a resync, then goes on.
    resync = wait_for_change(changes, lambda change: change.resync, 20)
    mem.log.append(11)
    appended = wait_for_change(changes, lambda change: change.op == "append", 10)
    subscription.close()
    assert appended.version > resync.version


def test_unreachable_cluster_url_error() -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()}"

    with pytest.raises(ServerUnavailableError) as raised:
        connect(url)

    message = str(raised.value)
    assert message.startswith(f"cannot read the slot map of Redis Cluster at {url}")
    assert "cluster-enabled yes" in message


def test_cluster_url_with_database_error() -> None:
    with pytest.raises(ValueError, match="a cluster has only database 0"):
        connect("redis+cluster://127.0.0.1:7000/3")


def test_connect_client_uses_cluster_routing(cluster: ClusterProcesses) -> None:
    client = redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)

    connection = connect_client(client)

    assert isinstance(connection, ClusterConnection)
    assert connection.url.startswith("redis+cluster://")
    assert f"127.0.0.1:{cluster.nodes[0].port}" in connection.url
    assert connection.command("GET", "rm:{no-such-namespace}:ver") is None


def _next_data(pubsub: redis.client.PubSub) -> bytes:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)
        if message is not None and message["type"] == "message":
            return bytes(message["data"])
    raise AssertionError("no message within 10 s")


def _node_id(mem: Memory, name: str) -> str:
    return str(mem[name]._id)


def test_plain_url_to_cluster_node_error(cluster: ClusterProcesses) -> None:
    namespace = new_namespace()
    owner = owner_port(connect(cluster.url).client, namespace)
    other = next(node.port for node in cluster.nodes if node.port != owner)
    url = f"redis://127.0.0.1:{other}/0"

    with pytest.raises(ServerUnavailableError) as raised:
        Memory(url=url, namespace=namespace).x = 1

    message = str(raised.value)
    assert message.startswith(f"Redis at {url} is a Redis Cluster node (")
    assert message.endswith(
        "connect with redis+cluster://host:port so that each request goes to the "
        "node that owns its slot"
    )

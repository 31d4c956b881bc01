"""Redis Sentinel: a Valkey master, a replica and three sentinels on 127.0.0.1.

``redis+sentinel://`` URLs reach the master that the sentinels name, every
operation works through them, and operations go on after the master is killed
or demoted and the replica promoted.
"""

from __future__ import annotations

import logging
import queue
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from core_operations import exercise_operations, wait_for_change
from redis_memory import Memory, feed
from redis_memory import connection as connection_module
from redis_memory.connection import connect
from redis_memory.errors import ServerUnavailableError
from redis_processes import ServerProcess, scratch_dir, valkey_binary, wait_until

pytestmark = pytest.mark.slow

SERVICE = "rm-test"


@dataclass
class SentinelSetup:
    """The processes of one Sentinel deployment."""

    master: ServerProcess
    replica: ServerProcess
    sentinels: list[ServerProcess]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def master_port(self) -> int:
        """Return the port of the master that the first reachable sentinel names."""
        for sentinel in self.sentinels:
            try:
                address = redis.Redis(
                    port=sentinel.port
                ).sentinel_get_master_addr_by_name(SERVICE)
            except redis.ConnectionError:
                continue
            return int(address[1])
        raise AssertionError("no sentinel replies")

    def stop(self) -> None:
        for process in (*self.sentinels, self.replica, self.master):
            process.stop()


def start_sentinel_setup(directory: Path) -> SentinelSetup:
    """Start a master, one replica and three sentinels with quorum 2."""
    master = ServerProcess(
        valkey_binary(), directory / "master", ["--appendonly", "yes"]
    )
    master.start()
    replica = ServerProcess(
        valkey_binary(),
        directory / "replica",
        ["--appendonly", "yes", "--replicaof", "127.0.0.1", str(master.port)],
    )
    replica.start()
    sentinels = []
    for index in range(3):
        folder = directory / f"sentinel{index}"
        folder.mkdir()
        config = folder / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 500\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        sentinel = ServerProcess(
            valkey_binary(), folder, ["--sentinel"], config_file=config
        )
        sentinel.start()
        sentinels.append(sentinel)
    setup = SentinelSetup(master, replica, sentinels)

    def ready() -> bool:
        replication = redis.Redis(port=replica.port).info("replication")
        if replication["master_link_status"] != "up":
            return False
        for sentinel in sentinels:
            state = redis.Redis(port=sentinel.port).sentinel_master(SERVICE)
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                return False
        return True

    wait_until(ready, 30, "the sentinels see each other and the replica")
    return setup


@pytest.fixture(scope="module")
def shared_setup() -> Iterator[SentinelSetup]:
    """A deployment for the tests that change no server's role."""
    with scratch_dir("rmsn") as directory:
        setup = None
        try:
            setup = start_sentinel_setup(directory)
            yield setup
        finally:
            if setup is not None:
                setup.stop()


@pytest.fixture
def sentinel_setup() -> Iterator[SentinelSetup]:
    """A deployment for one test that makes it fail over."""
    with scratch_dir("rmsn") as directory:
        setup = None
        try:
            setup = start_sentinel_setup(directory)
            yield setup
        finally:
            if setup is not None:
                setup.stop()


def new_namespace() -> str:
    return f"sn-{uuid.uuid4().hex[:10]}"


def test_every_operation_through_sentinel(shared_setup: SentinelSetup) -> None:
    mem = Memory(url=shared_setup.url, namespace=new_namespace())

    exercise_operations(mem)

    direct = redis.Redis(port=shared_setup.master.port)
    assert direct.get(mem._store.keys.version) == str(mem._version()).encode()


def test_master_killed_replica_promoted(sentinel_setup: SentinelSetup) -> None:
    mem = Memory(url=sentinel_setup.url, namespace=new_namespace())
    mem.log = list(range(5))
    master = redis.Redis(port=sentinel_setup.master.port)
    assert master.execute_command("WAIT", 1, 5000) == 1
    changes: queue.Queue[feed.Change] = queue.Queue()
    subscription = feed.subscribe(mem, changes.put)

    sentinel_setup.master.kill(signal.SIGKILL)
    started = time.monotonic()
    mem.log.append(5)
    failover_seconds = time.monotonic() - started

    assert mem.log == list(range(6))
    assert sentinel_setup.master_port() == sentinel_setup.replica.port
    assert failover_seconds < connection_module.FAILOVER_RETRY_SECONDS
    print(f"first change after the kill took {failover_seconds:.2f} s")
    resync = wait_for_change(changes, lambda change: change.resync, 20)
    mem.log.append(6)
    appended = wait_for_change(changes, lambda change: change.op == "append", 10)
    subscription.close()
    assert appended.version > resync.version


def test_demoted_master_retried(
    sentinel_setup: SentinelSetup, caplog: pytest.LogCaptureFixture
) -> None:
    mem = Memory(url=sentinel_setup.url, namespace=new_namespace())
    mem.log = [0]
    old_master = redis.Redis(port=sentinel_setup.master.port)
    assert old_master.execute_command("WAIT", 1, 5000) == 1

    # A coordinated failover, after which the old master becomes a replica
    # that keeps the client's connections open and replies READONLY to changes.
    # Sentinel would send the REPLICAOF itself, but only after its next INFO
    # poll, up to 10 s later.
    redis.Redis(port=sentinel_setup.sentinels[0].port).sentinel_failover(SERVICE)
    wait_until(
        lambda: sentinel_setup.master_port() == sentinel_setup.replica.port,
        20,
        "the sentinels name the replica as master",
    )
    old_master.execute_command("REPLICAOF", "127.0.0.1", sentinel_setup.replica.port)
    with caplog.at_level(logging.INFO, logger="redis_memory.connection"):
        mem.log.append(1)

    assert mem.log == [0, 1]
    assert "is no longer the master" in caplog.text


def test_unknown_service_error(
    shared_setup: SentinelSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_module, "FAILOVER_RETRY_SECONDS", 0.5)
    url = shared_setup.url.replace(SERVICE, "no-such-service")
    mem = Memory(url=url, namespace=new_namespace())

    with pytest.raises(ServerUnavailableError) as raised:
        mem.x = 1

    message = str(raised.value)
    assert message.startswith(f"cannot reach Redis at {url} after retrying for 0.5 s")
    assert "No sentinel named a master for the service" in message


def test_sentinel_url_without_service_error() -> None:
    with pytest.raises(ValueError, match="it names no service"):
        connect("redis+sentinel://127.0.0.1:26379")

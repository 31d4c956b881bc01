"""Faults: servers killed mid-run, and each misconfiguration reported clearly.

Every server here is this module's own: an EmbeddedServer in a short /tmp
directory, or a Valkey child process on a free port. None is the session's.

Durability: a server killed with SIGKILL loses no acknowledged change,
because Valkey writes each change to the append-only file with write(2)
before it replies, and the file then lives in the operating system's page
cache. Only a crash of the machine itself can lose changes, up to the last
second of them with ``appendfsync everysec``; these tests cannot simulate that.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from redis_memory import Memory
from redis_memory import connection as connection_module
from redis_memory.config import DATA_DIR_ENV
from redis_memory.errors import (
    OutcomeUnknownError,
    ReadOnlyReplicaError,
    ServerFullError,
    ServerUnavailableError,
)
from redis_memory.keys import KeySpace
from redis_memory.server import EmbeddedServer
from redis_processes import (
    ServerProcess,
    free_port,
    scratch_dir,
    server_starter,
    wait_until,
)

pytestmark = pytest.mark.slow

OPERATIONS = 600
KILL_AFTER = 150


@pytest.fixture
def directory() -> Iterator[Path]:
    with scratch_dir("rmft") as path:
        yield path


@pytest.fixture
def start_server(directory: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start Valkey child processes; every one is stopped after the test."""
    with server_starter(directory) as start:
        yield start


@pytest.fixture
def short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give up on an unreachable server after 1 s instead of 10 s."""
    monkeypatch.setattr(connection_module, "SINGLE_SERVER_RETRY_SECONDS", 1.0)


def new_namespace() -> str:
    return f"ft-{uuid.uuid4().hex[:10]}"


@dataclass
class Outcomes:
    """What happened to each operation of `run_workload`."""

    acknowledged: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    unexpected: list[BaseException] = field(default_factory=list)
    reached_kill_point: threading.Event = field(default_factory=threading.Event)


def run_workload(mem: Memory, outcomes: Outcomes) -> None:
    """Append odd numbers to a list and store even ones in a dict, reading in between."""
    log = mem.log
    marks = mem.marks
    for number in range(OPERATIONS):
        try:
            if number % 2:
                log.append(number)
            else:
                marks[str(number)] = number
            assert len(log) >= 0
        except OutcomeUnknownError as exc:
            assert "may or may not have been applied" in str(exc)
            outcomes.unknown.append(number)
        except Exception as exc:
            outcomes.unexpected.append(exc)
            return
        else:
            outcomes.acknowledged.append(number)
        if len(outcomes.acknowledged) == KILL_AFTER:
            outcomes.reached_kill_point.set()


def check_after_restart(mem: Memory, outcomes: Outcomes) -> None:
    """Every acknowledged change is stored once and in order; unknown ones at most once."""
    assert outcomes.unexpected == []
    assert len(outcomes.acknowledged) + len(outcomes.unknown) == OPERATIONS
    stored_log = mem.log.aslist()
    stored_marks = mem.marks.asdict()
    acknowledged = set(outcomes.acknowledged)
    allowed = acknowledged | set(outcomes.unknown)

    assert stored_log == sorted(set(stored_log))
    assert {n for n in acknowledged if n % 2} <= set(stored_log)
    assert set(stored_log) <= allowed
    assert {n for n in acknowledged if n % 2 == 0} <= {int(key) for key in stored_marks}
    assert all(stored_marks[key] == int(key) for key in stored_marks)
    assert {int(key) for key in stored_marks} <= allowed


def test_embedded_server_killed_mid_run(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmbeddedServer(directory / "data")
    monkeypatch.setenv(DATA_DIR_ENV, str(server.data_dir))
    monkeypatch.setattr(connection_module, "_connections", {})
    try:
        mem = Memory(namespace=new_namespace())
        mem.log = []
        mem.marks = {}
        first_pid = server.status().pid
        assert first_pid is not None
        outcomes = Outcomes()
        worker = threading.Thread(target=run_workload, args=(mem, outcomes))

        worker.start()
        assert outcomes.reached_kill_point.wait(30)
        os.kill(first_pid, signal.SIGKILL)
        worker.join(60)

        # The connection restarted the server by itself, from the same AOF.
        assert not worker.is_alive()
        assert server.status().pid not in (None, first_pid)
        check_after_restart(mem, outcomes)
        check_after_restart(Memory(namespace=mem._namespace), outcomes)
    finally:
        server.stop()


def test_tcp_server_killed_and_restarted(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--appendonly", "yes", "--appendfsync", "everysec")
    mem = Memory(url=server.url, namespace=new_namespace())
    mem.log = []
    mem.marks = {}
    outcomes = Outcomes()
    worker = threading.Thread(target=run_workload, args=(mem, outcomes))

    worker.start()
    assert outcomes.reached_kill_point.wait(30)
    server.kill(signal.SIGKILL)
    time.sleep(0.3)
    server.start()
    worker.join(60)

    assert not worker.is_alive()
    check_after_restart(mem, outcomes)


def test_full_server_error(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    mem = Memory(url=server.url, namespace=new_namespace())
    mem.kept = [1, {"a": 2}]
    stored = 0

    with pytest.raises(ServerFullError) as raised:
        for stored in range(100):
            mem[f"big{stored}"] = ["x" * 100_000]

    message = str(raised.value)
    assert message.startswith(
        f"Redis at {server.url} is full: its used memory exceeds the maxmemory "
        "setting, so it rejected the change and nothing was stored"
    )
    assert "raise maxmemory (CONFIG SET maxmemory <bytes>)" in message
    assert isinstance(raised.value, OSError)
    assert f"big{stored}" not in mem
    assert mem.kept == [1, {"a": 2}]
    for index in range(stored):
        del mem[f"big{index}"]
    mem.after = "stored again"
    assert mem.after == "stored again"


def test_read_only_replica_error(start_server: Callable[..., ServerProcess]) -> None:
    master = start_server("--repl-diskless-sync-delay", "0", name="master")
    replica = start_server("--replicaof", "127.0.0.1", str(master.port), name="replica")
    namespace = new_namespace()
    Memory(url=master.url, namespace=namespace).items = [1]
    root = KeySpace(namespace).node("root")
    wait_until(
        lambda: redis.Redis(port=replica.port).exists(root) == 1,
        20,
        "the replica has the change",
    )
    mem = Memory(url=replica.url, namespace=namespace)

    with pytest.raises(ReadOnlyReplicaError) as raised:
        mem.items.append(2)

    assert str(raised.value) == (
        f"Redis at {replica.url} is a read-only replica, so it rejected the change "
        "and nothing was stored. Point the URL at the master, or use "
        "redis+sentinel://host:port/service_name so that changes follow the master "
        "after a failover"
    )
    assert mem.items == [1]


@pytest.mark.parametrize(
    ("credentials", "server_text"),
    [
        (":not-the-pw-123@", "invalid username-password pair"),
        ("", "must be called with the client already authenticated"),
    ],
)
def test_wrong_password_error(
    start_server: Callable[..., ServerProcess], credentials: str, server_text: str
) -> None:
    protected = start_server("--requirepass", "s3cret-pw")
    url = f"redis://{credentials}127.0.0.1:{protected.port}/0"
    shown = f"redis://{'***@' if credentials else ''}127.0.0.1:{protected.port}/0"
    mem = Memory(url=url, namespace=new_namespace())

    with pytest.raises(ServerUnavailableError) as raised:
        mem.x = 1

    message = str(raised.value)
    assert message.startswith(f"Redis at {shown} rejected the credentials (")
    assert server_text in message
    assert message.endswith(
        "Check the user name and password in the URL "
        "(redis://user:password@host:port/0) or in $REDIS_MEMORY_URL"
    )
    assert "not-the-pw-123" not in message


def test_wrong_database_error(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    url = f"redis://127.0.0.1:{server.port}/99"

    with pytest.raises(ServerUnavailableError) as raised:
        Memory(url=url, namespace=new_namespace()).x = 1

    assert str(raised.value) == (
        f"Redis at {url} has no database with the number in the URL (DB index is "
        "out of range). Use a database number below the server's `databases` "
        "setting (16 by default), such as redis://host:port/0"
    )


def test_tls_to_plain_server_error(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    url = f"rediss://127.0.0.1:{server.port}/0?socket_connect_timeout=1"

    with pytest.raises(ServerUnavailableError) as raised:
        Memory(url=url, namespace=new_namespace()).x = 1

    message = str(raised.value)
    assert message.startswith(f"the TLS handshake with Redis at {url} failed (")
    assert message.endswith(
        "the server probably does not accept TLS on this port. Use redis:// for a "
        "server without TLS, or the port of the server's tls-port setting"
    )


@pytest.mark.usefixtures("short_retries")
def test_connection_refused_error() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    mem = Memory(url=url, namespace=new_namespace())
    started = time.monotonic()

    with pytest.raises(ServerUnavailableError) as raised:
        mem.x = 1

    assert 1.0 <= time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith(f"cannot reach Redis at {url} after retrying for 1 s (")
    assert "Connection refused" in message
    assert message.endswith(
        "Start the server, or point $REDIS_MEMORY_URL (or Memory(url=...)) at a "
        "reachable one"
    )


@pytest.mark.usefixtures("short_retries")
def test_timeout_errors(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    url = f"{server.url}?socket_timeout=0.2"
    mem = Memory(url=url, namespace=new_namespace())
    mem.x = "before"

    # The pool's connection is open, so the change is sent before the timeout.
    server.kill(signal.SIGSTOP)
    try:
        with pytest.raises(OutcomeUnknownError) as write_error:
            mem.x = "after"
        with pytest.raises(ServerUnavailableError) as read_error:
            mem.x
    finally:
        server.kill(signal.SIGCONT)

    read_message = str(read_error.value)
    assert read_message.startswith(f"cannot reach Redis at {url} after retrying")
    assert "(timed out: " in read_message
    assert "The server did not reply in time" in read_message
    assert "socket_timeout in the URL is too short" in read_message
    assert str(write_error.value).startswith(
        f"the connection to {url} failed after a change was sent (timed out: "
    )
    # The paused server received the change, so it may run it once resumed.
    wait_until(lambda: mem.x in ("before", "after"), 10, "the server replies again")


def test_same_memory_works_after_server_restart(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--appendonly", "yes")
    mem = Memory(url=server.url, namespace=new_namespace())
    mem.items = [1]
    items = mem.items

    server.kill(signal.SIGKILL)
    server.start()
    items.append(2)

    assert mem.items == [1, 2]

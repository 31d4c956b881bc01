"""The connection each thread keeps from the pool between requests.

A Memory without the read cache sends every request through
``Connection._call``, which keeps one pooled connection per thread instead
of taking and releasing one each time. These tests check that it is kept,
that it recovers from a restarted server and an interrupt, and that it goes
back to the pool when its thread ends.
"""

from __future__ import annotations

import gc
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from redis_memory import Memory
from redis_processes import ServerProcess, scratch_dir, server_starter


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start Valkey child processes; every one is stopped after the test."""
    with scratch_dir("rmkept") as directory, server_starter(directory) as start:
        yield start


def _pool(memory: Memory) -> Any:
    return memory._store.connection.client.connection_pool


def test_thread_keeps_one_connection(
    server_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = Memory(server_url, namespace, cache=False)
    mem.items = []
    pool = _pool(mem)
    requested: list[object] = []
    get_connection = pool.get_connection

    def counted(*args: Any, **kwargs: Any) -> Any:
        connection = get_connection(*args, **kwargs)
        requested.append(connection)
        return connection

    monkeypatch.setattr(pool, "get_connection", counted)
    for i in range(50):
        mem.items.append(i)
    assert mem.items.pop() == 49
    assert requested == []
    assert len(mem.items) == 49
    mem._clear()


def test_thread_end_returns_its_connection(server_url: str, namespace: str) -> None:
    mem = Memory(server_url, namespace, cache=False)
    mem.x = 0
    pool = _pool(mem)
    connections: list[object] = []
    in_use: list[bool] = []

    def write() -> None:
        mem.x = 1
        connection = mem._store.connection._per_thread.connection
        connections.append(connection)
        in_use.append(connection not in pool._available_connections)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    del thread
    gc.collect()
    assert in_use == [True]
    assert connections[0] in pool._available_connections
    assert mem.x == 1
    mem._clear()


def test_kept_connection_survives_server_restart(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    mem = Memory(url=server.url, namespace=f"kept-{uuid.uuid4().hex[:8]}", cache=False)
    mem.before = 1
    thread_connection = mem._store.connection._per_thread.connection

    server.kill(signal.SIGKILL)
    server.start()
    # The kept connection ends at the old server, and is found closed before use.
    mem.after = [2]
    assert mem.after == [2]
    assert mem._store.connection._per_thread.connection is thread_connection


def test_interrupted_request_closes_kept_connection(
    server_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = Memory(server_url, namespace, cache=False)
    mem.items = ["a", "b", "c"]
    items = mem.items
    thread_connection = mem._store.connection._per_thread.connection
    read_response = thread_connection.read_response

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(thread_connection, "read_response", read_response)
        raise KeyboardInterrupt

    monkeypatch.setattr(thread_connection, "read_response", interrupt)
    with pytest.raises(KeyboardInterrupt):
        items.pop()
    # The interrupted pop's reply must not pass for the next pop's.
    assert items.pop() == "b"
    assert items == ["a"]
    mem._clear()


def test_threads_keep_at_most_half_the_pool(server_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(server_url, max_connections=4)
    mem = Memory(namespace=namespace, client=client)
    mem.items = []
    turns = [threading.Event() for _ in range(7)]
    done = threading.Event()
    errors: list[BaseException] = []

    def write(turn: int) -> None:
        # Every thread stays alive until all have written, each in its turn.
        try:
            turns[turn].wait(10)
            mem.items.append(turn)
        except BaseException as exc:
            errors.append(exc)
        finally:
            turns[turn + 1].set()
            done.wait(10)

    threads = [threading.Thread(target=write, args=(turn,)) for turn in range(6)]
    for thread in threads:
        thread.start()
    turns[0].set()
    assert turns[6].wait(20)
    kept_count = mem._store.connection._kept_count._count
    done.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert kept_count == 2
    assert mem.items == list(range(6))
    mem._clear()

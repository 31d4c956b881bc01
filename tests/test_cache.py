"""The read cache: no round trip for unchanged data, never a stale own write."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from conftest import run_python
from redis_memory import Memory
from redis_memory.connection import Connection


@pytest.fixture
def cached(server_url: str, namespace: str) -> Iterator[Memory]:
    memory = Memory(server_url, namespace, cache=True)
    yield memory
    memory._clear()
    memory._close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """Every request sent to a server, recorded."""
    sent: list[tuple[object, ...]] = []
    original = Connection._call

    def record(self: Connection, args: tuple[object, ...], **options: object) -> object:
        sent.append(tuple(args))
        return original(self, args, **options)

    monkeypatch.setattr(Connection, "_call", record)
    return sent


def _wait_for(memory: Memory, version: int) -> None:
    """Wait until ``memory``'s change feed has delivered ``version``."""
    cache = memory._store.cache
    assert cache is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        subscription = cache._subscription
        if subscription is not None and subscription.last_version >= version:
            time.sleep(0.01)  # the callback runs right after the version is recorded
            return
        time.sleep(0.005)
    raise AssertionError(f"the change feed did not reach version {version}")


def test_repeated_reads_send_nothing(
    cached: Memory, calls: list[tuple[object, ...]]
) -> None:
    cached.cfg = {"k": "v", "n": [1, 2, 3]}
    # The first pass starts the subscription, fills the cache and loads the scripts.
    assert cached.cfg["k"] == "v"
    assert len(cached.cfg["n"]) == 3
    assert list(cached.cfg["n"]) == [1, 2, 3]
    before = len(calls)
    for _ in range(20):
        assert cached.cfg["k"] == "v"
        assert len(cached.cfg["n"]) == 3
        assert list(cached.cfg["n"]) == [1, 2, 3]
    assert calls[before:] == []


def test_own_writes_are_read_at_once(cached: Memory) -> None:
    cached.items = [1]
    assert len(cached.items) == 1
    assert cached.items[0] == 1
    for value in range(2, 30):
        cached.items.append(value)
        assert len(cached.items) == value
        assert cached.items[-1] == value
    cached.items = ["replaced"]
    assert cached.items == ["replaced"]
    del cached.items
    assert "items" not in cached


def test_other_connection_write_seen_after_message(
    cached: Memory, namespace: str
) -> None:
    cached.cfg = {"k": "old"}
    assert cached.cfg["k"] == "old"
    assert cached.cfg["k"] == "old"
    writer = Memory(namespace=namespace, client=_new_client(cached))
    writer.cfg["k"] = "new"
    _wait_for(cached, writer._version())
    assert cached.cfg["k"] == "new"


def test_other_process_write_seen_after_message(cached: Memory, namespace: str) -> None:
    cached.log = []
    assert len(cached.log) == 0
    version = run_python(
        'mem.log.append("child")\nemit(mem._version())', namespace=namespace
    )
    assert isinstance(version, int)
    _wait_for(cached, version)
    assert cached.log == ["child"]
    assert len(cached.log) == 1


def test_replaced_nested_value_not_served(cached: Memory, namespace: str) -> None:
    cached.grid = [[1, 2]]
    row = cached.grid[0]
    assert len(row) == 2
    writer = Memory(namespace=namespace, client=_new_client(cached))
    writer.grid = [[9]]
    _wait_for(cached, writer._version())
    assert cached.grid == [[9]]
    with pytest.raises(LookupError, match="no longer exists"):
        len(row)


def test_closed_cache_reads_from_redis(
    cached: Memory, calls: list[tuple[object, ...]]
) -> None:
    cached.x = [1]
    assert len(cached.x) == 1
    cached._close()
    before = len(calls)
    assert len(cached.x) == 1
    assert len(calls) > before


def _new_client(memory: Memory) -> redis.Redis:
    """Return a client on a connection of its own to ``memory``'s server."""
    path = memory._store.connection.client.connection_pool.connection_kwargs["path"]
    return redis.Redis(unix_socket_path=path)

"""Debian's redis-server 7.0 as a second server implementation.

The server runs on a private port and a private Unix socket; the tests skip
when /usr/bin/redis-server is not installed.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator

import pytest
import redis

from core_operations import exercise_operations, wait_for_change
from redis_memory import Memory, feed
from redis_processes import ServerProcess, debian_redis_or_skip, scratch_dir


@pytest.fixture(scope="module")
def redis7() -> Iterator[ServerProcess]:
    binary = debian_redis_or_skip()
    with scratch_dir("rm7") as directory:
        server = ServerProcess(
            binary,
            directory,
            ["--unixsocket", str(directory / "redis.sock"), "--unixsocketperm", "700"],
        )
        try:
            server.start()
            yield server
        finally:
            server.stop()


def new_namespace() -> str:
    return f"r7-{uuid.uuid4().hex[:10]}"


def test_server_is_redis_7(redis7: ServerProcess) -> None:
    info = redis.Redis(port=redis7.port).info("server")

    assert info["redis_version"].startswith("7.")
    assert "valkey_version" not in info


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_every_operation_on_redis7(redis7: ServerProcess, transport: str) -> None:
    url = redis7.url
    if transport == "unix":
        url = f"unix://{redis7.directory / 'redis.sock'}"
    mem = Memory(url=url, namespace=new_namespace())

    exercise_operations(mem)


def test_large_values_on_redis7(redis7: ServerProcess) -> None:
    mem = Memory(url=redis7.url, namespace=new_namespace())
    big = list(range(20_000))
    wide = {f"k{i}": [i] for i in range(3_000)}

    mem.big = big
    mem.wide = wide
    mem.big[5_000:15_000] = ["x"] * 3
    del mem.big[::2]

    expected = big[:]
    expected[5_000:15_000] = ["x"] * 3
    del expected[::2]
    assert mem.big == expected
    assert mem.wide.asdict() == wide


def test_scripts_reloaded_after_flush_on_redis7(redis7: ServerProcess) -> None:
    mem = Memory(url=redis7.url, namespace=new_namespace())
    mem.items = [1]
    redis.Redis(port=redis7.port).script_flush()

    mem.items.append(2)

    assert mem.items == [1, 2]


def test_feed_on_redis7(redis7: ServerProcess) -> None:
    mem = Memory(url=redis7.url, namespace=new_namespace())
    changes: queue.Queue[feed.Change] = queue.Queue()

    with feed.subscribe(mem, changes.put):
        mem.items = []
        mem.items.append("a")
        change = wait_for_change(changes, lambda change: change.op == "append", 10)

    assert (change.path, change.version) == ("mem.items", 2)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_writes_on_subscription_on_redis7(
    redis7: ServerProcess, transport: str
) -> None:
    url = redis7.url
    if transport == "unix":
        url = f"unix://{redis7.directory / 'redis.sock'}"
    mem = Memory(url=url, namespace=new_namespace())
    mem.cfg = {"k": 0}
    assert mem.cfg["k"] == 0
    cache = mem._store.cache
    assert cache is not None
    subscription = cache._feed
    assert subscription is not None
    assert subscription.carries

    mem.cfg["k"] = 1
    # Redis 7.0 also runs commands on a RESP3 subscription and sends the
    # write's own change message with its reply.
    assert not subscription.own_message_due
    assert subscription.version == mem._version()
    assert mem.cfg["k"] == 1
    mem._close()

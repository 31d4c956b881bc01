"""Regression tests from a review of the thread-less read cache and whole reads.

Each test either checks a bug that the review found, now fixed, or a property
that the review tried to break and that held.
"""

from __future__ import annotations

import copy
import datetime
import math
import multiprocessing
import pickle
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from conftest import read_outcome, run_python
from redis_memory import Memory, inline_feed
from redis_memory.errors import CorruptValueError


@pytest.fixture
def client_name() -> str:
    return f"rmreview-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def named(server_url: str, namespace: str, client_name: str) -> Iterator[Memory]:
    """A cached Memory whose connections carry ``client_name``, so tests can find them."""
    memory = Memory(f"{server_url}?client_name={client_name}", namespace, cache=True)
    yield memory
    memory._close()


def _subscriptions(admin: redis.Redis, name: str) -> list[dict[str, Any]]:
    return [c for c in admin.client_list(_type="pubsub") if c["name"] == name]


# -- change messages ------------------------------------------------------------


def test_closed_subscription_after_message_reads_fresh(
    named: Memory, writer: Memory, admin: redis.Redis, client_name: str
) -> None:
    # The server closes the subscription right after a message: the read that
    # takes the message must notice the close too, not one read later.
    writer.x = 1
    writer.y = 1
    for _ in range(2):  # the second read keeps the decoded values
        assert named.x == 1
        assert named.y == 1
    named._sync()
    writer.y = 2  # its message waits, unread, on the subscription's socket
    time.sleep(0.05)
    killed = _subscriptions(admin, client_name)
    assert killed
    for client in killed:
        admin.client_kill_filter(_id=client["id"])
    time.sleep(0.05)
    writer.x = 2  # no subscription is left, so this message is lost
    assert named.x == 2


def test_message_after_pong_is_handled(
    named: Memory, writer: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A message that arrives in the same recv() as the PONG of the health
    # check must be handled, not left in the hiredis reader.
    writer.y = 1
    assert named.y == 1
    assert named.y == 1
    cache = named._store.cache
    assert cache is not None
    feed = cache._feed
    assert feed is not None
    connection = feed._connection
    assert connection is not None
    send_command = connection.send_command

    def ping_then_write(*args: Any, **kwargs: Any) -> None:
        send_command(*args, **kwargs)
        if args and args[0] == "PING":
            time.sleep(0.05)  # the PONG is on its way
            writer.y = 2  # its message follows the PONG on the same socket
            time.sleep(0.05)

    monkeypatch.setattr(connection, "send_command", ping_then_write)
    monkeypatch.setattr(inline_feed, "_HEALTH_SECONDS", -1.0)
    named.y  # this read runs the health check
    monkeypatch.setattr(inline_feed, "_HEALTH_SECONDS", 15.0)
    monkeypatch.setattr(connection, "send_command", send_command)
    time.sleep(0.05)
    assert named.y == 2


def test_health_check_interval_keeps_subscription(
    server_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With health_check_interval in the URL, redis-py's own check must not run
    # on the non-blocking subscription socket when the cache sends PING.
    memory = Memory(f"{server_url}?health_check_interval=1", namespace, cache=True)
    try:
        memory.x = 1
        assert memory.x == 1
        cache = memory._store.cache
        assert cache is not None
        feed = cache._feed
        assert feed is not None
        time.sleep(1.2)  # past redis-py's health_check_interval
        monkeypatch.setattr(inline_feed, "_HEALTH_SECONDS", 0.0)
        assert memory.x == 1
        assert cache._feed is feed, "the health check dropped a working subscription"
    finally:
        memory._clear()
        memory._close()


def _write_in_child(memory: Memory) -> None:
    memory.counter = 42


def test_parent_sees_forked_child_write(server_url: str, namespace: str) -> None:
    # A forked child needs an origin of its own, or each process would take the
    # other's change messages for its own and drop nothing, even in _sync().
    memory = Memory(server_url, namespace, cache=True)
    try:
        memory.counter = 0
        assert memory.counter == 0
        context = multiprocessing.get_context("fork")
        child = context.Process(target=_write_in_child, args=(memory,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        memory._sync()
        assert memory.counter == 42
    finally:
        memory._clear()
        memory._close()


def _read_in_child(memory: Memory, pipe: Any) -> None:
    before = memory.counter
    pipe.send(before)
    pipe.recv()  # the parent has written
    memory._sync()
    pipe.send(memory.counter)


def test_forked_child_sees_parent_write(server_url: str, namespace: str) -> None:
    memory = Memory(server_url, namespace, cache=True)
    try:
        memory.counter = 0
        assert memory.counter == 0
        context = multiprocessing.get_context("fork")
        ours, theirs = context.Pipe()
        child = context.Process(target=_read_in_child, args=(memory, theirs))
        child.start()
        assert ours.poll(30)
        assert ours.recv() == 0
        memory.counter = 7
        ours.send("written")
        assert ours.poll(30)
        seen = ours.recv()
        child.join(30)
        assert seen == 7
    finally:
        memory._clear()
        memory._close()


def test_batches_read_own_messages(
    named: Memory, admin: redis.Redis, client_name: str
) -> None:
    # A batch publishes one message per change, and they must be read in passing.
    named.x = 0
    assert named.x == 0  # subscribes
    for _ in range(60):
        with named._batch():
            for value in range(300):
                named.x = value
    time.sleep(0.2)
    (subscription,) = _subscriptions(admin, client_name)
    pending = int(subscription["omem"])
    assert pending < 1024 * 1024, f"{pending} bytes of own messages wait on the server"
    named._clear()


def test_last_read_namespace_stays_subscribed(server_url: str, namespace: str) -> None:
    # Making room pauses the subscription read longest ago, not the one read last.
    hot = Memory(server_url, namespace, cache=True)
    others = [Memory(server_url, f"{namespace}-{i}", cache=True) for i in range(8)]
    try:
        hot.x = 1
        assert hot.x == 1
        for other in others[:-1]:
            other.x = 1
            assert other.x == 1
            assert hot.x == 1  # read after every other namespace
        cache = hot._store.cache
        assert cache is not None
        assert cache.active
        # The ninth subscription pauses one of the others, which must not be the one read last.
        others[-1].x = 1
        assert others[-1].x == 1
        assert cache.active
    finally:
        for memory in [hot, *others]:
            memory._clear()
            memory._close()


def test_logging_handler_read_does_not_deadlock(namespace: str) -> None:
    # The feed logs the lost subscription after releasing its lock.
    code = f"""
    import logging, os, threading, uuid
    import redis
    name = "rmreview-" + uuid.uuid4().hex[:12]
    named = Memory(mem._url + "?client_name=" + name, {namespace!r})
    named.level = "INFO"
    assert named.level == "INFO"

    class Handler(logging.Handler):
        def emit(self, record):
            named.level

    logging.getLogger("redis_memory").addHandler(Handler())
    logging.getLogger("redis_memory").setLevel(logging.INFO)
    admin = redis.Redis.from_url(mem._url)
    for client in admin.client_list(_type="pubsub"):
        if client["name"] == name:
            admin.client_kill_filter(_id=client["id"])
    done = []
    reader = threading.Thread(target=lambda: done.append(named.level), daemon=True)
    reader.start()
    reader.join(10)
    if done:
        named._clear()
    emit(bool(done))
    sys.stdout.flush()
    os._exit(0)
    """
    assert run_python(code, namespace=namespace) is True


# -- stored entries ---------------------------------------------------------------


def test_failed_pop_is_not_half_applied(plain: Memory, admin: redis.Redis) -> None:
    # A reference to a missing node makes the dump of the popped subtree fail,
    # which must leave the list as it was.
    plain.items = [{"a": 1, "b": 2}, 5]
    keys = plain._store.keys
    node = keys.node(plain.items._id)
    admin.hset(keys.node(plain.items[0]._id), '"a"', '{"$dict":"00000000deadbeef"}')
    version = plain._version()
    with pytest.raises(CorruptValueError, match="a node that does not exist"):
        plain.items.pop(0)
    assert admin.llen(node) == 2
    assert plain._version() == version


# Whitespace around an entry is the documented exception: whole reads ignore it.
@pytest.mark.parametrize("entry", [b"NaN", b"-Infinity"])
def test_whole_read_matches_item_read(
    plain: Memory, admin: redis.Redis, entry: bytes
) -> None:
    # The codec rejects these texts in a single entry, and a whole read must too.
    plain.items = [0, 1]
    admin.lset(plain._store.keys.node(plain.items._id), 0, entry)
    item = read_outcome(lambda: plain.items[0])
    assert read_outcome(lambda: plain.items.aslist()[0]) == item
    assert read_outcome(lambda: next(iter(plain.items))) == item


def test_slice_dangling_reference_is_corrupt(plain: Memory, admin: redis.Redis) -> None:
    plain.items = [0, 1]
    dangling = b'{"$list":"0123456789abcdef"}'
    admin.lset(plain._store.keys.node(plain.items._id), 0, dangling)
    with pytest.raises(CorruptValueError):
        plain.items.aslist()
    with pytest.raises(CorruptValueError):
        plain.items[0:1]


# -- what held up -----------------------------------------------------------------


def _spoil(value: Any) -> None:
    """Change every mutable part of ``value`` in place."""
    if isinstance(value, set):
        value.add("spoiled")
    elif isinstance(value, list):
        for item in value:
            _spoil(item)
        value.append("spoiled")
    elif isinstance(value, dict):
        for item in value.values():
            _spoil(item)
        value["spoiled"] = True
    elif isinstance(value, tuple):
        for item in value:
            _spoil(item)


def test_cache_ignores_caller_mutations(cached: Memory) -> None:
    stamp = datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)
    stored = {"s": {1}, "t": (1, {2}, [3]), "l": [1, [2]], "dt": stamp}
    cached.cfg = stored
    cached.rows = [{1}, (2, {3}), [4], 5]
    reads = [
        lambda: cached.cfg["s"],
        lambda: cached.cfg["t"],
        lambda: cached.cfg["l"][:],
        lambda: cached.cfg.asdict(),
        lambda: list(cached.cfg.values()),
        lambda: cached.rows[:],
        lambda: list(cached.rows),
        lambda: cached.rows[1],
        lambda: cached.rows.aslist(),
        lambda: cached._asdict(),
    ]
    for _ in range(3):
        for read in reads:
            value = read()
            assert "spoiled" not in repr(value)
            _spoil(value)
    assert cached.cfg.asdict() == stored
    assert cached.rows.aslist() == [{1}, (2, {3}), [4], 5]


_NUMBERS: list[Any] = [
    2**64,
    -(2**63) - 1,
    10**30,
    12345678901234567890,
    2**63 - 1,
    1e308,
    5e-324,
    -0.0,
    math.inf,
    -math.inf,
    "a\ud800b",
    {"$list": "0123456789abcdef"},
    (1, 2**70),
    {1, 2},
    "1234567890123456789012",
]


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or repr(a) == repr(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.parametrize("backend", ["cached", "fakeredis"])
def test_whole_reads_keep_big_numbers(
    backend: str, namespace: str, request: pytest.FixtureRequest
) -> None:
    if backend == "cached":
        memory = request.getfixturevalue("cached")
    else:
        fakeredis = pytest.importorskip("fakeredis")
        memory = Memory(namespace=namespace, client=fakeredis.FakeRedis())
    values = [*_NUMBERS, math.nan]
    memory.items = values
    memory.nested = {"a": [values, {"b": values}]}
    assert _same(memory.items.aslist(), values)
    # Iteration gives a handle for the stored dict; copy.copy makes it plain.
    assert _same([copy.copy(item) for item in memory.items], values)
    assert _same(memory.items[:], values)
    assert _same(memory.items[::2], values[::2])
    assert _same(memory.nested.asdict(), {"a": [values, {"b": values}]})
    assert _same(memory.nested["a"].pop(), {"b": values})
    assert _same(memory.nested.pop("a"), [values])
    memory._clear()


def test_attribute_access_keeps_library_api(cached: Memory) -> None:
    cached["__class__"] = "stored"
    cached[""] = "empty"
    cached.x = 1
    assert cached.__class__ is Memory
    assert cached["__class__"] == "stored"
    assert cached[""] == "empty"
    assert getattr(cached, "missing", "default") == "default"
    assert not hasattr(cached, "missing")
    assert hasattr(cached, "x")
    assert cached._namespace == cached._store.namespace
    assert cached._url.startswith("unix://")
    assert "x" in dir(cached)
    assert "_sync" in dir(cached)
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            duplicate(cached)


def test_failed_pop_of_last_restores_list(plain: Memory, admin: redis.Redis) -> None:
    plain.items = [5, {"a": 1, "b": 2}]
    keys = plain._store.keys
    node = keys.node(plain.items._id)
    admin.hset(keys.node(plain.items[1]._id), '"a"', '{"$list":"00000000deadbeef"}')
    version = plain._version()
    with pytest.raises(CorruptValueError, match="a node that does not exist"):
        plain.items.pop()
    assert admin.llen(node) == 2
    assert plain._version() == version
    assert plain.items[0] == 5

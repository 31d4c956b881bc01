"""The change feed: messages from other processes, filtering, resync and closing."""

from __future__ import annotations

import json
import logging
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import run_python
from redis_memory import Memory, feed
from redis_memory.feed import Change, Subscription, parse_change
from redis_memory.server import EmbeddedServer

# Generous: a deadline only stops a failing test from hanging, it asserts nothing.
WAIT_SECONDS = 20.0


class Collector:
    """A feed callback that queues every Change for the test thread."""

    def __init__(self) -> None:
        self.changes: queue.Queue[Change] = queue.Queue()

    def __call__(self, change: Change) -> None:
        self.changes.put(change)

    def next(self) -> Change:
        return self.changes.get(timeout=WAIT_SECONDS)

    def next_matching(self, predicate: Callable[[Change], bool]) -> Change:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            change = self.changes.get(timeout=max(0.0, deadline - time.monotonic()))
            if predicate(change):
                return change


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def private_server() -> Iterator[EmbeddedServer]:
    """An embedded server of this test's own, which it may stop and start."""
    data_dir = Path(tempfile.mkdtemp(prefix="rmfeed-", dir="/tmp"))
    server = EmbeddedServer(data_dir)
    server.ensure_running()
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def feed_threads(subscription: Subscription) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t is subscription._thread]


# -- messages ---------------------------------------------------------------------


def test_changes_from_other_process(real_mem: Memory, collector: Collector) -> None:
    with feed.subscribe(real_mem, collector) as subscription:
        assert subscription.state == "connected"
        origin = run_python(
            """
            mem.tasks = [1]
            mem.tasks.append(2)
            emit(mem._store.origin)
            """,
            namespace=real_mem._namespace,
        )
        stored = collector.next()
        appended = collector.next()

    assert stored.namespace == real_mem._namespace
    assert stored.name == "tasks"
    assert stored.path == "mem"
    assert stored.op == "setitem"
    assert stored.node_id == "root"
    assert stored.origin == origin
    assert stored.resync is False
    assert appended.name == "tasks"
    assert appended.path == "mem.tasks"
    assert appended.op == "append"
    assert appended.origin == origin
    assert appended.node_id != "root"
    assert appended.version == stored.version + 1
    assert subscription.last_version == appended.version


def test_nested_change_names_top_level(real_mem: Memory, collector: Collector) -> None:
    real_mem["two words"] = {"k": [1]}
    with feed.subscribe(real_mem, collector):
        real_mem["two words"]["k"].append(2)
        change = collector.next()

    assert change.name == "two words"
    assert change.path == "mem['two words']['k']"
    assert change.op == "append"


def test_namespace_wide_changes_have_no_name(
    real_mem: Memory, collector: Collector
) -> None:
    with feed.subscribe(real_mem, collector):
        real_mem._update(a=1, b=2)
        real_mem._clear()
        update = collector.next()
        clear = collector.next()

    assert (update.name, update.path, update.op) == (None, "mem", "update")
    assert (clear.name, clear.path, clear.op) == (None, "mem", "clear")


def test_version_matches_namespace_counter(
    real_mem: Memory, collector: Collector
) -> None:
    with feed.subscribe(real_mem, collector) as subscription:
        before = subscription.last_version
        real_mem.x = 1
        change = collector.next()

    assert before == real_mem._version() - 1
    assert change.version == real_mem._version()


def test_own_changes_skipped(real_mem: Memory, collector: Collector) -> None:
    with feed.subscribe(real_mem, collector, include_own=False) as subscription:
        real_mem.mine = 1
        run_python("mem.theirs = 2; emit(0)", namespace=real_mem._namespace)
        change = collector.next()

    # Delivery is in order, so an own change would have come first.
    assert change.origin != real_mem._store.origin
    assert not change.resync
    assert change.name == "theirs"
    assert change.version == real_mem._version()
    assert subscription.last_version == change.version
    assert collector.changes.empty()


def test_own_changes_of_uncached_memory_skipped(
    cached: Memory, namespace: str, collector: Collector
) -> None:
    # A Memory without a cache keeps an origin of its own, even beside a
    # cached Memory whose cache carries its writes.
    cached.cfg = {"k": 0}
    assert cached.cfg["k"] == 0
    plain = Memory(cached._store.connection.url, namespace, cache=False)
    with feed.subscribe(plain, collector, include_own=False):
        plain.cfg["k"] = 1
        cached.cfg["k"] = 2
        change = collector.next()

    assert change.origin == cached._store.origin
    assert change.name == "cfg"
    assert change.version == cached._version()
    assert collector.changes.empty()


def test_many_own_changes_skipped_without_resync(
    real_mem: Memory, collector: Collector
) -> None:
    real_mem.items = []
    with feed.subscribe(real_mem, collector, include_own=False) as subscription:
        for value in range(200):
            real_mem.items.append(value)
        run_python("mem.theirs = 2; emit(0)", namespace=real_mem._namespace)
        change = collector.next()

    assert not change.resync
    assert change.name == "theirs"
    assert subscription.last_version == real_mem._version()
    assert collector.changes.empty()


def test_own_changes_delivered_by_default(
    real_mem: Memory, collector: Collector
) -> None:
    with feed.subscribe(real_mem, collector):
        real_mem.mine = 1
        change = collector.next()

    assert change.origin == real_mem._store.origin


def test_malformed_message_skipped(
    real_mem: Memory, collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    client = real_mem._store.connection.client
    channel = real_mem._store.keys.channel
    caplog.set_level(logging.WARNING, logger="redis_memory.feed")
    with feed.subscribe(real_mem, collector):
        client.publish(channel, b"not json")
        client.publish(channel, b'{"v": "7"}')
        client.publish(channel, b"[1, 2]")
        real_mem.x = 1
        change = collector.next()

    assert change.op == "setitem"
    assert change.version == real_mem._version()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # Rate-limited: three bad messages within a minute give one record.
    assert len(warnings) == 1
    assert "malformed change message" in warnings[0].getMessage()
    assert "not JSON" in warnings[0].getMessage()


def test_callback_error_logged_and_feed_continues(
    real_mem: Memory, caplog: pytest.LogCaptureFixture
) -> None:
    received: queue.Queue[Change] = queue.Queue()

    def callback(change: Change) -> None:
        received.put(change)
        if received.qsize() == 1:
            raise RuntimeError("callback bug")

    caplog.set_level(logging.ERROR, logger="redis_memory.feed")
    with feed.subscribe(real_mem, callback):
        real_mem.a = 1
        real_mem.b = 2
        first = received.get(timeout=WAIT_SECONDS)
        second = received.get(timeout=WAIT_SECONDS)

    assert second.version == first.version + 1
    assert any("callback bug" in r.getMessage() or r.exc_info for r in caplog.records)


def test_version_jump_delivers_resync(real_mem: Memory, collector: Collector) -> None:
    client = real_mem._store.connection.client
    with feed.subscribe(real_mem, collector) as subscription:
        skipped = subscription.last_version + 5
        message = {"v": skipped, "o": "x", "id": "root", "op": "setitem", "n": None}
        client.publish(
            real_mem._store.keys.channel, json.dumps({**message, "p": "mem"})
        )
        change = collector.next()

    assert change.resync is True
    assert change.op == "resync"
    assert change.version == skipped


# -- parsing ----------------------------------------------------------------------


def test_parse_change_fields() -> None:
    data = b'{"v":3,"o":"ab","id":"root","op":"update","n":null,"p":"mem"}'

    change = parse_change("ns", data)

    assert change == Change("ns", None, "mem", "update", 3, "ab", "root", False)


def test_parse_change_name_field() -> None:
    text = '{"v":1,"o":"ab","id":"c1","op":"append","n":"caf\\u00e9","p":"mem.x"}'
    tagged = '{"v":1,"o":"ab","id":"c1","op":"append","n":{"$str":"x"},"p":"mem.x"}'

    assert parse_change("ns", text).name == "café"
    assert parse_change("ns", tagged).name == '{"$str":"x"}'


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff", "not JSON"),
        (b"{", "not JSON"),
        (b"[]", "is a list, not an object"),
        (b'{"o":"a","id":"b","op":"c","p":"d"}', "invalid version 'v': None"),
        (b'{"v":-1,"o":"a","id":"b","op":"c","p":"d"}', "invalid version 'v': -1"),
        (b'{"v":true,"o":"a","id":"b","op":"c","p":"d"}', "invalid version 'v': True"),
        (b'{"v":1,"o":2,"id":"b","op":"c","p":"d"}', "invalid 'o': 2"),
        (b'{"v":1,"o":"a","op":"c","p":"d"}', "invalid 'id': None"),
        (b'{"v":1,"o":"a","id":"b","op":"c"}', "invalid 'p': None"),
    ],
)
def test_parse_change_rejects(data: bytes, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_change("ns", data)


# -- connection -------------------------------------------------------------------


def test_resync_after_server_restart(
    private_server: EmbeddedServer, collector: Collector
) -> None:
    mem = Memory(url=private_server.url, namespace=f"feed-{uuid.uuid4().hex[:8]}")
    states: list[str] = []
    with feed.subscribe(
        mem, collector, on_state=lambda s: states.append(s.state)
    ) as subscription:
        mem.before = 1
        assert collector.next().version == 1

        private_server.stop()
        wait_until(lambda: subscription.state == "reconnecting", "the feed notices")
        assert subscription.error != ""
        private_server.ensure_running()
        resync = collector.next()
        assert subscription.state == "connected"
        assert subscription.error == ""

        mem.after = 2
        after = collector.next()

    assert resync.resync is True
    assert resync.op == "resync"
    assert resync.name is None
    assert resync.version == 1
    assert after.resync is False
    assert after.version == 2
    assert states == ["connected", "reconnecting", "connected"]


def test_unreachable_server_then_started(collector: Collector) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="rmfeed-", dir="/tmp"))
    server = EmbeddedServer(data_dir)
    mem = Memory(url=server.url, namespace="late")
    try:
        with feed.subscribe(mem, collector, timeout=2.0) as subscription:
            assert subscription.state == "reconnecting"
            assert "Error" in subscription.error

            server.ensure_running()
            resync = collector.next()
            mem.x = 1
            change = collector.next()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)

    assert resync.resync is True
    assert resync.version == 0
    assert change.version == 1


def test_resync_when_subscribe_returns_early(
    real_mem: Memory, collector: Collector
) -> None:
    real_mem.before = 1
    with feed.subscribe(real_mem, collector, timeout=0) as subscription:
        if not subscription._caller_left:
            pytest.skip("the subscription was confirmed within 0 s")
        first = collector.next()

    assert first.resync is True
    assert first.version == real_mem._version()


def test_close_stops_thread(real_mem: Memory, collector: Collector) -> None:
    subscription = feed.subscribe(real_mem, collector)
    assert feed_threads(subscription) != []

    subscription.close()
    subscription.close()

    assert feed_threads(subscription) == []
    assert subscription.state == "closed"
    real_mem.x = 1
    assert collector.changes.empty()


def test_close_from_callback(real_mem: Memory) -> None:
    done = threading.Event()
    holder: list[Subscription] = []

    def callback(change: Change) -> None:
        holder[0].close()
        done.set()

    holder.append(feed.subscribe(real_mem, callback))
    real_mem.x = 1
    assert done.wait(WAIT_SECONDS)
    holder[0]._thread.join(WAIT_SECONDS)

    assert feed_threads(holder[0]) == []
    assert holder[0].state == "closed"


def test_subscribe_rejects_non_callable(real_mem: Memory) -> None:
    with pytest.raises(TypeError, match="callback must be callable, not int: 3"):
        feed.subscribe(real_mem, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_state must be callable or None, not str"):
        feed.subscribe(real_mem, print, on_state="x")  # type: ignore[arg-type]


def test_repr_names_namespace_and_state(real_mem: Memory) -> None:
    with feed.subscribe(real_mem, print) as subscription:
        text = repr(subscription)

    assert text == f"<Subscription namespace={real_mem._namespace!r} state='connected'>"

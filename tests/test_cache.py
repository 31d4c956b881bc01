"""The read cache: no round trip for unchanged data, never a stale own write."""

from __future__ import annotations

import time

import pytest
import redis

from conftest import count_polls, run_python
from redis_memory import Memory, inline_feed
from redis_memory.connection import Connection


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
    assert cache.sync(version, 10), f"the change feed did not reach version {version}"


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


def test_sync_after_handoff_from_other_process(cached: Memory, namespace: str) -> None:
    cached.results = []
    for round_number in range(5):
        assert len(cached.results) == round_number
        run_python("mem.results.append(1)\nemit(True)", namespace=namespace)
        cached._sync()
        assert len(cached.results) == round_number + 1


def _read_in_forked_child(namespace: str, url: str, results: object) -> None:
    mem = Memory(url, namespace, cache=True)
    writer = Memory(namespace=namespace, client=redis.Redis.from_url(url))
    writer.x = 42
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and mem.x != 42:
        time.sleep(0.01)
    results.put(mem.x)  # type: ignore[attr-defined]


def test_forked_child_does_not_serve_parent_cache(
    cached: Memory, namespace: str
) -> None:
    import multiprocessing

    cached.x = 0
    assert cached.x == 0
    assert cached.x == 0  # kept in the parent's cache
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(
        target=_read_in_forked_child, args=(namespace, cached._url, results)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert results.get(timeout=5) == 42


def test_update_rejects_non_string_names(cached: Memory) -> None:
    with pytest.raises(TypeError, match="names in Memory are strings, not int: 1"):
        cached._update({1: [1, 2], "ok": 1})
    assert "ok" not in cached
    assert list(cached) == []


def test_subscriptions_are_bounded(server_url: str) -> None:
    memories = [Memory(server_url, f"bounded-{i}", cache=True) for i in range(20)]
    try:
        for memory in memories:
            memory.x = 1
            assert memory.x == 1
        client = memories[0]._store.connection.client
        channels = [memory._store.keys.channel for memory in memories]
        subscribers = sum(count for _, count in client.pubsub_numsub(*channels))
        assert 1 <= subscribers <= 8
        for memory in memories:
            assert memory.x == 1
    finally:
        for memory in memories:
            memory._clear()
            memory._close()


def test_embedded_url_shares_the_default_connection(
    server_url: str, namespace: str
) -> None:
    default = Memory(namespace=namespace)
    explicit = Memory(server_url, namespace)
    try:
        assert default._store.connection is explicit._store.connection
        for value in range(50):
            default.x = value
            assert explicit.x == value
            explicit.x = value + 1000
            assert default.x == value + 1000
    finally:
        default._clear()
        default._close()


def test_name_with_lone_surrogate_is_dropped(cached: Memory, namespace: str) -> None:
    name = "odd\udc80name"
    cached[name] = [1]
    assert len(cached[name]) == 1
    assert len(cached[name]) == 1
    writer = Memory(namespace=namespace, client=_new_client(cached))
    writer[name].append(2)
    _wait_for(cached, writer._version())
    assert len(cached[name]) == 2


def test_nested_write_keeps_path_cached(
    cached: Memory, calls: list[tuple[object, ...]]
) -> None:
    cached.d = {"a": {"b": {"k": 0}}, "other": [1]}
    for value in range(3):  # fills the cache and loads the scripts
        cached.d["a"]["b"]["k"] = value
        assert cached.d["a"]["b"]["k"] == value
    before = len(calls)
    cached.d["a"]["b"]["k"] = 10
    assert cached.d["a"]["b"]["k"] == 10
    # The path's reads come from the cache; only the write and the changed node's read go out.
    assert len(calls) - before == 2
    assert cached.d == {"a": {"b": {"k": 10}}, "other": [1]}


def test_replacing_nested_value_drops_its_descendants(cached: Memory) -> None:
    cached.d = {"a": {"b": [1, 2]}}
    inner = cached.d["a"]["b"]
    assert len(inner) == 2
    cached.d["a"]["b"] = "scalar now"
    with pytest.raises(LookupError, match="no longer exists"):
        len(inner)
    cached.grid = [[1], [2]]
    row = cached.grid[0]
    assert len(row) == 1
    cached.grid[0] = 5
    with pytest.raises(LookupError, match="no longer exists"):
        len(row)
    assert cached.grid == [5, [2]]


def test_cache_starts_no_thread(cached: Memory) -> None:
    import threading

    before = threading.active_count()
    cached.cfg = {"k": 1}
    for _ in range(3):
        assert cached.cfg["k"] == 1
    assert cached._store.cache is not None
    assert cached._store.cache.active
    assert threading.active_count() == before


def test_message_in_socket_is_handled_by_next_read(
    cached: Memory, namespace: str
) -> None:
    cached.cfg = {"k": "old"}
    assert cached.cfg["k"] == "old"
    assert cached.cfg["k"] == "old"
    # A subscriber of its own shows when the change message has been sent.
    client = _new_client(cached)
    watcher = client.pubsub()
    watcher.subscribe(cached._store.keys.channel)
    assert watcher.get_message(timeout=5)["type"] == "subscribe"
    writer = Memory(namespace=namespace, client=_new_client(cached))
    writer.cfg["k"] = "new"
    message = watcher.get_message(timeout=5)
    assert message is not None
    assert message["type"] == "message"
    # Both subscriptions got the message in the same event loop turn of the server.
    time.sleep(0.05)
    assert cached.cfg["k"] == "new"
    watcher.close()


def test_mutable_values_are_not_shared(cached: Memory) -> None:
    cached.cfg = {"tags": {"a"}, "pair": (1, {2}), "when": [1]}
    first = cached.cfg["tags"]
    first.add("changed locally")
    assert cached.cfg["tags"] == {"a"}
    pair = cached.cfg["pair"]
    pair[1].add(3)
    assert cached.cfg["pair"] == (1, {2})


def test_iteration_sees_own_writes(cached: Memory) -> None:
    cached.items = [1, 2]
    assert list(cached.items) == [1, 2]
    cached.items.append(3)
    assert list(cached.items) == [1, 2, 3]
    cached.items[0] = {"nested": True}
    first, *rest = cached.items
    assert first == {"nested": True}
    assert rest == [2, 3]
    first["nested"] = False
    assert next(iter(cached.items)) == {"nested": False}


def test_kept_handle_path_follows_insert(cached: Memory) -> None:
    cached.rows = [{"cell": {"v": 1}}]
    assert cached.rows[0]["cell"]._path == "mem.rows[0]['cell']"
    cached.rows.insert(0, "head")
    assert cached.rows[1]["cell"]._path == "mem.rows[1]['cell']"
    assert cached.rows[0] == "head"


def test_memories_with_other_codecs_get_own_handles(
    cached: Memory, server_url: str, namespace: str
) -> None:
    other = Memory(server_url, namespace, pickle_key=b"another codec")
    assert other._store.cache is cached._store.cache
    cached.cfg = {"inner": {"k": 1}}
    mine = cached.cfg["inner"]
    theirs = other.cfg["inner"]
    assert mine._store is cached._store
    assert theirs._store is other._store
    assert cached.cfg["inner"]._store is cached._store
    assert other.cfg["inner"]._store is other._store


def test_writes_without_reads_read_own_messages(cached: Memory) -> None:
    cached.log = []
    assert len(cached.log) == 0  # subscribes
    cache = cached._store.cache
    assert cache is not None
    feed = cache._feed
    assert feed is not None
    log = cached.log
    for value in range(200):
        log.append(value)
    # Every 64th write reads the messages that have arrived, own ones included.
    assert feed.version >= cached._version() - 64
    assert cache.active


def test_killed_subscription_drops_copies(cached: Memory, namespace: str) -> None:
    cached.cfg = {"k": "old"}
    assert cached.cfg["k"] == "old"
    assert cached.cfg["k"] == "old"
    client = _new_client(cached)
    assert client.client_kill_filter(_type="pubsub") >= 1
    # The change message is lost, because no subscription is left to get it.
    writer = Memory(namespace=namespace, client=_new_client(cached))
    writer.cfg["k"] = "new"
    time.sleep(0.05)
    assert cached.cfg["k"] == "new"
    cache = cached._store.cache
    assert cache is not None
    deadline = time.monotonic() + 10
    while not cache.active and time.monotonic() < deadline:
        assert cached.cfg["k"] == "new"
        time.sleep(0.05)
    assert cache.active
    writer.cfg["k"] = "newer"
    assert cache.sync(writer._version(), 10)
    assert cached.cfg["k"] == "newer"


def test_health_check_on_silent_subscription(
    cached: Memory, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis_memory import inline_feed

    monkeypatch.setattr(inline_feed, "_HEALTH_SECONDS", 0.0)
    cached.cfg = {"k": 0}
    writer = Memory(namespace=namespace, client=_new_client(cached))
    for value in range(1, 6):
        assert cached.cfg["k"] == value - 1
        writer.cfg["k"] = value
        assert cached._store.cache is not None
        assert cached._store.cache.sync(writer._version(), 10)
    assert cached.cfg["k"] == 5
    assert cached._store.cache.active


def test_threads_read_while_other_client_writes(cached: Memory, namespace: str) -> None:
    import threading

    cached.counter = {"n": 0}
    writer = Memory(namespace=namespace, client=_new_client(cached))
    errors: list[BaseException] = []
    reads = [0] * 4
    stop = threading.Event()

    def read(slot: int) -> None:
        try:
            while not stop.is_set():
                assert isinstance(cached.counter["n"], int)
                reads[slot] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for value in range(1, 201):
        writer.counter["n"] = value
    stop.set()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert min(reads) > 0
    assert cached._store.cache is not None
    assert cached._store.cache.sync(writer._version(), 10)
    assert cached.counter["n"] == 200


def test_subclass_keeps_its_class_attributes(server_url: str, namespace: str) -> None:
    class Notes(Memory):
        kind = "notes"

        def count(self) -> int:
            return len(self)

    notes = Notes(server_url, namespace)
    try:
        notes.x = [1]
        assert notes.kind == "notes"
        assert notes.count() == 1
        assert notes.x == [1]
        assert "kind" not in notes
    finally:
        notes._clear()
        notes._close()


def test_uncached_write_drops_cached_copies(cached: Memory, server_url: str) -> None:
    plain = Memory(server_url, cached._namespace, cache=False)
    assert plain._store.connection is cached._store.connection
    cache = cached._store.cache
    assert cache is not None
    cached.cfg = {"k": 0}
    for value in range(1, 4):
        assert cached.cfg["k"] == value - 1
        assert cached.cfg["k"] == value - 1
        node = ("node", cached.cfg._id)
        assert cache._buckets.get(node)
        plain.cfg["k"] = value
        # Dropped by the write itself, not by its change message, which may come later.
        assert cache._buckets.get(node) is None
        assert cached.cfg["k"] == value


def test_own_message_drops_after_unsure_write(cached: Memory, namespace: str) -> None:
    cache = cached._store.cache
    assert cache is not None
    cached.cfg = {"k": 1}
    assert cached.cfg["k"] == 1
    assert cached.cfg["k"] == 1
    # A change that this process sent, whose reply was lost, applied late.
    late = Memory(namespace=namespace, client=_new_client(cached))
    late._store._origin = cache.origin
    cache.after_unsure_write()
    late.cfg["k"] = 2
    assert cache.sync(late._version(), 10)
    assert cached.cfg["k"] == 2


def test_reads_soon_after_a_poll_skip_polling(
    cached: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached.cfg = {"k": "v"}
    assert cached.cfg["k"] == "v"
    feed, polls = count_polls(cached, monkeypatch)
    monkeypatch.setattr(inline_feed, "_QUIET_SECONDS", 60.0)
    feed._quiet_until = 0.0
    for _ in range(5):
        assert cached.cfg["k"] == "v"
    assert len(polls) == 1

    monkeypatch.setattr(inline_feed, "_QUIET_SECONDS", 0.0)
    feed._quiet_until = 0.0
    for _ in range(5):
        assert cached.cfg["k"] == "v"
    assert len(polls) == 1 + 5 * 2


def test_sync_polls_despite_quiet_window(
    cached: Memory, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_feed, "_QUIET_SECONDS", 60.0)
    cached.cfg = {"k": "old"}
    assert cached.cfg["k"] == "old"
    writer = Memory(namespace=namespace, client=_new_client(cached))
    writer.cfg["k"] = "new"
    time.sleep(0.05)
    # The quiet window hides the change from plain reads, but not from a sync.
    assert cached.cfg["k"] == "old"
    assert cached._store.cache is not None
    assert cached._store.cache.sync(writer._version(), 10)
    assert cached.cfg["k"] == "new"


def test_read_after_own_write_skips_poll(
    cached: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import select

    # A long quiet window, so that only the read right after the write could poll.
    monkeypatch.setattr(inline_feed, "_QUIET_SECONDS", 60.0)
    cached.cfg = {"k": 0}
    cfg = cached.cfg
    assert cfg["k"] == 0
    feed, polls = count_polls(cached, monkeypatch)
    assert feed._socket is not None
    # The write goes through the pool, so its change message arrives apart.
    monkeypatch.setattr(feed, "carries", False)
    cfg["k"] = 1
    assert feed.own_message_due
    # Wait for the change message without touching the feed.
    assert select.select([feed._socket], [], [], 10)[0]

    assert cached.cfg["k"] == 1
    assert polls == []
    assert feed.version == cached._version()
    assert not feed.own_message_due

"""Writes sent on the read cache's subscription, which RESP3 lets run commands.

Each test checks what the subscription contains right after a write: whether
the write took in its own change message and those published before it, and
that every failure leaves the value stored once and the cache correct.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from conftest import count_polls
from redis_memory import Memory, OutcomeUnknownError, inline_feed
from redis_memory.inline_feed import InlineFeed


def _feed(memory: Memory) -> InlineFeed:
    cache = memory._store.cache
    assert cache is not None
    feed = cache._feed
    assert feed is not None, "the read cache is not subscribed"
    return feed


def _pending(feed: InlineFeed, wait: float = 0.05) -> bool:
    """Return whether the subscription's socket has unread data within ``wait`` seconds."""
    assert feed._socket is not None
    return bool(select.select([feed._socket], [], [], wait)[0])


def _socket_path(memory: Memory) -> str:
    path: str = memory._store.connection.client.connection_pool.connection_kwargs[
        "path"
    ]
    return path


@pytest.fixture
def subscribed(cached: Memory) -> Iterator[Memory]:
    """The cached Memory with a value read, so that its cache is subscribed."""
    cached.cfg = {"k": 0}
    assert cached.cfg["k"] == 0
    yield cached


def test_write_takes_its_own_message_with_the_reply(subscribed: Memory) -> None:
    feed = _feed(subscribed)
    assert feed.carries
    subscribed.cfg["k"] = 1
    # The change message came with the reply, so nothing is left to read.
    assert not feed.own_message_due
    assert not _pending(feed)
    assert feed.version == subscribed._version()
    assert subscribed.cfg["k"] == 1


def test_write_handles_messages_published_before_it(
    subscribed: Memory, namespace: str
) -> None:
    subscribed.log = []
    assert subscribed.cfg["k"] == 0
    feed = _feed(subscribed)
    other = Memory(
        namespace=namespace,
        client=redis.Redis(unix_socket_path=_socket_path(subscribed)),
    )
    other.cfg["k"] = "theirs"
    assert _pending(feed, 10)

    subscribed.log.append(1)
    # The other process's message preceded the reply, so the write handled it.
    assert not _pending(feed)
    assert feed.version == subscribed._version()
    assert subscribed.cfg["k"] == "theirs"
    other._close()


def test_error_reply_keeps_the_subscription(subscribed: Memory) -> None:
    subscribed.items = [1]
    feed = _feed(subscribed)
    with pytest.raises(IndexError, match="list assignment index out of range"):
        subscribed.items[5] = 0
    assert _feed(subscribed) is feed
    subscribed.items[0] = 2
    assert not feed.own_message_due
    assert subscribed.items == [2]


def test_failed_send_goes_to_the_pool_once(subscribed: Memory, namespace: str) -> None:
    subscribed.items = []
    feed = _feed(subscribed)
    assert feed._socket is not None
    feed._socket.shutdown(socket.SHUT_WR)

    subscribed.items.append(1)
    assert feed.closed
    fresh = Memory(
        namespace=namespace,
        client=redis.Redis(unix_socket_path=_socket_path(subscribed)),
        cache=False,
    )
    assert fresh.items == [1]
    assert subscribed.items == [1]
    # After a backoff the cache subscribes again, and writes go on the new subscription.
    deadline = time.monotonic() + 10
    while subscribed._store.cache is not None and subscribed._store.cache._feed is None:
        assert time.monotonic() < deadline, "the read cache did not subscribe again"
        time.sleep(0.01)
        assert subscribed.items == [1]
    subscribed.items.append(2)
    assert not _feed(subscribed).own_message_due
    assert fresh.items == [1, 2]
    fresh._close()


def test_lost_reply_raises_outcome_unknown(
    subscribed: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribed.items = []
    feed = _feed(subscribed)

    def lose(sock: socket.socket, deadline: float | None) -> None:
        raise redis.ConnectionError("connection reset by the test")

    monkeypatch.setattr(feed, "_receive", lose)
    with pytest.raises(OutcomeUnknownError, match="may or may not have been applied"):
        subscribed.items.append(1)
    assert feed.closed
    # The change was applied although its reply was lost, and the cache shows it.
    assert subscribed.items == [1]


def test_threads_share_the_subscription(subscribed: Memory, namespace: str) -> None:
    subscribed.items = []
    items = subscribed.items
    feed = _feed(subscribed)
    carried = 0
    borrow = feed.borrow

    def counted(size: int) -> bool:
        nonlocal carried
        borrowed = borrow(size)
        carried += borrowed
        return borrowed

    feed.borrow = counted  # type: ignore[method-assign]

    def append(start: int) -> None:
        for i in range(start, start + 300):
            items.append(i)
            assert i in items

    threads = [threading.Thread(target=append, args=(n * 1000,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = sorted(n * 1000 + i for n in range(3) for i in range(300))
    assert sorted(items) == expected
    fresh = Memory(
        namespace=namespace,
        client=redis.Redis(unix_socket_path=_socket_path(subscribed)),
        cache=False,
    )
    assert fresh.items == list(items)
    assert _feed(subscribed) is feed
    # Some writes went on the subscription, and the rest through the pool.
    assert 0 < carried < 900
    fresh._close()


def test_memory_without_cache_writes_on_subscription(
    subscribed: Memory, namespace: str
) -> None:
    plain = Memory(subscribed._store.connection.url, namespace, cache=False)
    assert plain._store.connection is subscribed._store.connection
    # Its own origin, so that a feed subscription with include_own=False
    # skips its changes only.
    assert plain._store.origin != subscribed._store.origin
    plain.cfg["k"] = 5
    feed = _feed(subscribed)
    assert not _pending(feed)
    assert feed.version == subscribed._version()
    assert subscribed.cfg["k"] == 5


@pytest.mark.parametrize(
    "options",
    [{"protocol": 2}, {"protocol": 3, "encoding": "latin-1"}],
    ids=["resp2", "latin-1"],
)
def test_other_clients_write_through_the_pool(
    server_url: str, namespace: str, options: dict[str, object]
) -> None:
    client = redis.Redis.from_url(server_url, **options)
    memory = Memory(namespace=namespace, client=client, cache=True)
    try:
        memory.cfg = {"k": 0}
        assert memory.cfg["k"] == 0
        feed = _feed(memory)
        assert not feed.carries
        memory.cfg["k"] = 1
        assert feed.own_message_due
        assert memory.cfg["k"] == 1
        assert not feed.own_message_due
        # The message came apart from the reply, perhaps after the read above.
        memory._sync()
        assert feed.version == memory._version()
    finally:
        memory._clear()
        memory._close()


def test_write_that_took_its_message_starts_quiet_window(
    subscribed: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = subscribed.cfg
    feed = _feed(subscribed)
    monkeypatch.setattr(inline_feed, "_QUIET_SECONDS", 60.0)
    cfg["k"] = 2
    # The reply came after every earlier message, as after a poll that found none.
    assert feed._quiet_until > time.monotonic() + 30
    _, polls = count_polls(subscribed, monkeypatch)
    for _ in range(3):
        assert subscribed.cfg["k"] == 2
    assert polls == []


def test_large_write_goes_through_the_pool(subscribed: Memory) -> None:
    feed = _feed(subscribed)
    large = ["x" * 1000] * 20
    subscribed.big = large
    # The request was over the limit, so its own message came apart.
    assert feed.own_message_due
    assert subscribed.big == large
    assert _feed(subscribed) is feed
    subscribed.big.append("y")
    assert not feed.own_message_due
    assert len(subscribed.big) == 21


def test_interrupted_write_closes_the_subscription(
    subscribed: Memory, namespace: str
) -> None:
    subscribed.items = ["a", "b"]
    assert subscribed.items[0] == "a"
    feed = _feed(subscribed)

    def interrupt(sock: socket.socket, deadline: float | None) -> None:
        raise KeyboardInterrupt

    receive = feed._receive
    feed._receive = interrupt  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        subscribed.items.append("c")
    feed._receive = receive  # type: ignore[method-assign]
    # The reply to the interrupted append must not pass for the next request's.
    assert feed.closed
    subscribed.items.append("d")
    fresh = Memory(
        namespace=namespace,
        client=redis.Redis(unix_socket_path=_socket_path(subscribed)),
        cache=False,
    )
    assert fresh.items[-1] == "d"
    assert subscribed.items == fresh.items
    fresh._close()


def test_interrupted_health_check_closes_the_subscription(
    subscribed: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = _feed(subscribed)
    monkeypatch.setattr(inline_feed, "_HEALTH_SECONDS", 0.0)
    monkeypatch.setattr(inline_feed, "_QUIET_SECONDS", 0.0)

    def interrupt(done: object, timeout: float, request: str) -> list[object]:
        raise KeyboardInterrupt

    monkeypatch.setattr(feed, "_read_until", interrupt)
    time.sleep(0.01)
    with pytest.raises(KeyboardInterrupt):
        subscribed.cfg["k"]
    # PING's reply may still come, so the connection must not carry a request.
    assert feed.closed
    monkeypatch.undo()
    subscribed.cfg["k"] = 3
    assert subscribed.cfg["k"] == 3


def test_loading_reply_is_retried_through_the_pool(
    subscribed: Memory, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscribed.items = []
    feed = _feed(subscribed)
    send = feed.send

    def loading(packed: bytes) -> None:
        # As a server that is loading its data replies, without running the request.
        monkeypatch.setattr(feed, "send", send)
        feed._reader.feed(b"-LOADING Valkey is loading the dataset in memory\r\n")

    monkeypatch.setattr(feed, "send", loading)
    subscribed.items.append(1)
    fresh = Memory(
        namespace=namespace,
        client=redis.Redis(unix_socket_path=_socket_path(subscribed)),
        cache=False,
    )
    assert fresh.items == [1]
    assert not feed.closed
    fresh._close()


def test_pop_of_large_value_goes_through_the_pool(
    subscribed: Memory, admin: redis.Redis
) -> None:
    row = ["x" * 1000] * 200
    subscribed.rows = [row]
    feed = _feed(subscribed)
    limit = admin.config_get("client-output-buffer-limit")
    # A reply over a subscribed connection's output limit closes it, so a
    # reply that contains stored values must come through the pool.
    admin.config_set("client-output-buffer-limit", "pubsub 65536 65536 60")
    try:
        popped = subscribed.rows.pop()
    finally:
        admin.config_set(
            "client-output-buffer-limit", limit["client-output-buffer-limit"]
        )
    assert popped == row
    assert not feed.closed
    assert subscribed.rows == []

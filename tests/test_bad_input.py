"""Bad input: each case raises a clear error, stores nothing and damages nothing.

The cases run on the session's embedded server. "Damages nothing" is checked
by comparing the whole namespace, read with one script, before and after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from redis_memory import Memory
from redis_memory.errors import (
    CorruptValueError,
    UnsupportedTypeError,
    ValueTooLargeError,
)
from redis_memory.keys import KeySpace
from redis_processes import ServerProcess, scratch_dir, valkey_binary

ODD_NAMES = [
    "with spaces",
    "colon:separated:name",
    "{braces}",
    "}{",
    "emoji 🚀✨",
    "",
    "rm:{default}:meta",
    "\x00nul",
]


@pytest.fixture
def mem(real_mem: Memory) -> Memory:
    """A namespace holding values that no bad input may change."""
    real_mem.items = [1, [2, 3], {"k": "v"}]
    real_mem.cfg = {"users": [{"name": "ada"}], "n": 1}
    real_mem.text = "kept"
    return real_mem


def unchanged(
    mem: Memory, action: Callable[[], object], error: type, match: str
) -> None:
    """Run ``action``, expect ``error`` matching ``match``, and check nothing changed."""
    before = mem._asdict()
    version = mem._version()

    with pytest.raises(error, match=match):
        action()

    assert mem._asdict() == before
    assert mem._version() == version


# -- names ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [1, 2.5, None, b"bytes", ("t",)])
def test_non_string_item_name_error(mem: Memory, name: Any) -> None:
    def store() -> None:
        mem[name] = 1

    unchanged(mem, store, TypeError, "names in Memory are strings")
    unchanged(mem, lambda: mem[name], TypeError, "names in Memory are strings")


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_round_trip(mem: Memory, name: str) -> None:
    mem[name] = [name]

    assert mem[name] == [name]
    assert name in list(mem)
    assert Memory(namespace=mem._namespace)[name] == [name]
    del mem[name]
    assert name not in mem


@pytest.mark.parametrize("namespace", ODD_NAMES[:-3] + ["default", "a}b{c"])
def test_odd_namespaces_kept_apart(server_url: str, namespace: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    first = Memory(namespace=namespace + suffix)
    second = Memory(namespace=namespace + suffix + " ")

    first.value = "first"
    second.value = "second"

    assert Memory(namespace=namespace + suffix).value == "first"
    assert Memory(namespace=namespace + suffix + " ").value == "second"
    first._clear()
    second._clear()


def test_reserved_attribute_name_error(mem: Memory) -> None:
    def store() -> None:
        mem._private = 1

    unchanged(mem, store, AttributeError, "names starting with '_' are reserved")


# -- values -----------------------------------------------------------------------


def test_unsupported_type_deep_inside(mem: Memory) -> None:
    def store() -> None:
        mem.cfg = {"users": [{"name": "ada", "lock": object()}]}

    unchanged(
        mem,
        store,
        UnsupportedTypeError,
        r"cannot store mem\.cfg\['users'\]\[0\]\['lock'\]: values of type object",
    )


def test_unsupported_type_in_nested_append(mem: Memory) -> None:
    unchanged(
        mem,
        lambda: mem.items[1].append({"ok": [1, 2, {3}, lambda: 0]}),
        UnsupportedTypeError,
        "values of type function are not supported",
    )


def test_recursive_list_error(mem: Memory) -> None:
    loop: list[Any] = [1]
    loop.append([loop])

    def store() -> None:
        mem.items = loop

    unchanged(mem, store, ValueError, "the value contains itself")


def test_recursive_dict_error(mem: Memory) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = {"again": loop}

    unchanged(mem, lambda: mem.cfg.update(x=loop), ValueError, "contains itself")


@pytest.fixture
def small_server() -> Iterator[ServerProcess]:
    """A server that accepts at most 1 MB per request argument."""
    with scratch_dir("rmbig") as directory:
        server = ServerProcess(
            valkey_binary(), directory, ["--proto-max-bulk-len", "1mb"]
        )
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.mark.parametrize("value", ["x" * 2_000_000, ["y" * 2_000_000]])
def test_value_over_server_limit(small_server: ServerProcess, value: object) -> None:
    mem = Memory(url=small_server.url, namespace=f"big-{uuid.uuid4().hex[:8]}")
    mem.items = [1]

    with pytest.raises(ValueTooLargeError) as raised:
        mem.big = value
    with pytest.raises(ValueTooLargeError):
        mem.items.append(value)

    assert str(raised.value).startswith(
        f"Redis at {small_server.url} rejected the request because a value in it "
        "is larger than the server's proto-max-bulk-len setting"
    )
    assert list(mem) == ["items"]
    assert mem.items == [1]
    mem.items.append(2)
    assert mem.items == [1, 2]


# -- lists ------------------------------------------------------------------------


def test_index_out_of_range(mem: Memory) -> None:
    items = mem.items

    def assign() -> None:
        items[10] = 0

    def delete() -> None:
        del items[-10]

    unchanged(mem, lambda: items[3], IndexError, "list index out of range")
    unchanged(mem, assign, IndexError, "list assignment index out of range")
    unchanged(mem, delete, IndexError, "list assignment index out of range")
    unchanged(mem, lambda: items.pop(7), IndexError, "pop index out of range")
    unchanged(
        mem,
        lambda: items[2**70],
        IndexError,
        "cannot fit .int. into an index-sized integer",
    )


def test_slice_step_zero(mem: Memory) -> None:
    items = mem.items

    def assign() -> None:
        items[::0] = [1]

    def delete() -> None:
        del items[::0]

    unchanged(mem, lambda: items[::0], ValueError, "slice step cannot be zero")
    unchanged(mem, assign, ValueError, "slice step cannot be zero")
    unchanged(mem, delete, ValueError, "slice step cannot be zero")


def test_extended_slice_size_mismatch(mem: Memory) -> None:
    items = mem.items

    def assign() -> None:
        items[::2] = [1, 2, 3]

    unchanged(
        mem,
        assign,
        ValueError,
        r"attempt to assign sequence of size 3 to extended slice of size 2",
    )


def test_sort_key_raising_halfway(mem: Memory) -> None:
    mem.numbers = [5, 3, 9, 1, 7]
    calls = 0

    def key(value: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyError("boom")
        return value

    unchanged(mem, lambda: mem.numbers.sort(key=key), KeyError, "boom")
    assert mem.numbers == [5, 3, 9, 1, 7]


def test_sort_uncomparable_items(mem: Memory) -> None:
    unchanged(mem, mem.items.sort, TypeError, "not supported between instances")


def test_iterating_sees_a_snapshot_while_mutating(mem: Memory) -> None:
    mem.queue = [1, 2, 3]
    queue = mem.queue

    for item in queue:
        queue.append(item * 10)
    assert queue == [1, 2, 3, 10, 20, 30]

    for item in queue:
        queue.remove(item)
    assert queue == []


def test_remove_missing_value(mem: Memory) -> None:
    unchanged(mem, lambda: mem.items.remove(99), ValueError, r"not in list")


# -- dicts ------------------------------------------------------------------------


def test_unhashable_dict_key_error(mem: Memory) -> None:
    def store() -> None:
        mem.cfg[["list", "key"]] = 1  # type: ignore[index]

    unchanged(mem, store, TypeError, "unhashable type: 'list'")


def test_missing_dict_key(mem: Memory) -> None:
    unchanged(mem, lambda: mem.cfg["nope"], KeyError, "nope")
    unchanged(mem, lambda: mem.cfg.pop("nope"), KeyError, "nope")
    unchanged(mem, lambda: mem.nope, AttributeError, "nothing is stored under")


# -- data written under our keys by something else --------------------------------


@pytest.fixture
def raw(server_url: str) -> redis.Redis:
    return redis.Redis.from_url(server_url)


def plant_root_field(raw: redis.Redis, mem: Memory, name: str, entry: bytes) -> None:
    """Store ``entry`` as the top-level ``name``, as another program could."""
    keys = KeySpace(mem._namespace)
    field = f'"{name}"'
    raw.hset(keys.node("root"), field, entry)
    raw.rpush(keys.order("root"), field)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (b"not json {", "corrupt value at mem"),
        (b'{"$no-such-tag": 1}', "corrupt value at mem"),
        (b"\xff\xfe", "corrupt value at mem"),
    ],
)
def test_foreign_entry_is_corrupt(
    mem: Memory, raw: redis.Redis, entry: bytes, reason: str
) -> None:
    plant_root_field(raw, mem, "foreign", entry)

    with pytest.raises(CorruptValueError, match=reason):
        mem.foreign
    with pytest.raises(CorruptValueError):
        mem._asdict()

    assert list(mem) == ["items", "cfg", "text", "foreign"]
    assert "foreign" in mem
    assert mem.items[1] == [2, 3]
    del mem.foreign
    assert mem._asdict()["text"] == "kept"


def test_foreign_list_entry_is_corrupt(mem: Memory, raw: redis.Redis) -> None:
    keys = KeySpace(mem._namespace)
    raw.rpush(keys.node(mem.items._id), b"{{{")

    with pytest.raises(CorruptValueError, match=r"mem\.items\[3\]"):
        mem.items[3]
    with pytest.raises(CorruptValueError):
        list(mem.items)

    assert mem.items[:3] == [1, [2, 3], {"k": "v"}]
    assert list(mem) == ["items", "cfg", "text"]


DANGLING = b'{"$list":"0123456789abcdef"}'


def test_dangling_reference_read_is_corrupt(mem: Memory, raw: redis.Redis) -> None:
    plant_root_field(raw, mem, "dangling", DANGLING)

    assert list(mem) == ["items", "cfg", "text", "dangling"]
    with pytest.raises(CorruptValueError, match="node that does not exist"):
        len(mem.dangling)


def test_dangling_reference_in_asdict_is_corrupt(mem: Memory, raw: redis.Redis) -> None:
    plant_root_field(raw, mem, "dangling", DANGLING)

    with pytest.raises(CorruptValueError, match="node that does not exist"):
        mem._asdict()


def test_node_key_of_wrong_type_is_corrupt(mem: Memory, raw: redis.Redis) -> None:
    keys = KeySpace(mem._namespace)
    list_key = keys.node(mem.items._id)
    raw.delete(list_key)
    raw.set(list_key, b"a string where a list was")
    try:
        with pytest.raises(CorruptValueError):
            mem.items[0]
    finally:
        raw.delete(list_key)


def test_root_key_of_wrong_type_listing(mem: Memory, raw: redis.Redis) -> None:
    keys = KeySpace(mem._namespace)
    raw.delete(keys.node("root"))
    raw.set(keys.node("root"), b"overwritten")
    try:
        with pytest.raises(CorruptValueError):
            list(mem)
    finally:
        raw.delete(keys.node("root"))


def test_order_entry_without_value(mem: Memory, raw: redis.Redis) -> None:
    keys = KeySpace(mem._namespace)
    raw.rpush(keys.order("root"), '"dangling"')

    names = list(mem)

    assert names[:3] == ["items", "cfg", "text"]
    with pytest.raises((CorruptValueError, AttributeError)):
        mem.dangling

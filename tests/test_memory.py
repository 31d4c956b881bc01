"""Memory: names as attributes and items, namespaces, values, errors."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal

import pytest

from redis_memory import CorruptValueError, Memory, SyncedList, UnsupportedTypeError


def test_attribute_and_item_access(mem: Memory, other: Memory) -> None:
    mem.x = 1
    mem["not an identifier"] = [1]
    mem["_private"] = "ok"
    assert other["x"] == 1
    assert other["not an identifier"] == [1]
    assert other["_private"] == "ok"
    assert "x" in other
    assert 5 not in other
    assert sorted(other) == ["_private", "not an identifier", "x"]
    assert len(other) == 3
    assert "x" in dir(other)


def test_missing_name(mem: Memory) -> None:
    with pytest.raises(
        AttributeError, match="'Memory' object has no attribute 'nothing'"
    ):
        mem.nothing
    with pytest.raises(KeyError, match="'nothing'"):
        mem["nothing"]
    with pytest.raises(AttributeError, match="'nothing'"):
        del mem.nothing


def test_reserved_and_bad_names(mem: Memory) -> None:
    with pytest.raises(AttributeError, match="reserved"):
        mem._thing = 1
    with pytest.raises(TypeError, match="names in Memory are strings, not int: 5"):
        mem[5] = 1
    with pytest.raises(TypeError, match="names in Memory are strings"):
        mem[("a",)]


def test_names_never_shadow_the_api(mem: Memory, other: Memory) -> None:
    for name in ("keys", "items", "values", "get", "update", "clear", "names", "copy"):
        mem[name] = name.upper()
    for name in ("keys", "items", "values", "get", "update", "clear", "names", "copy"):
        assert getattr(other, name) == name.upper()


def test_delete_removes_every_key(mem: Memory, backend: str) -> None:
    client = mem._store.connection.client
    prefix = mem._store.keys.prefix
    before = set(client.scan_iter(match=f"{_escape(prefix)}*"))
    mem.tree = {"a": [1, {"b": [2, [3]]}], "c": {"d": {}}}
    mem.tree = {"replaced": [1]}
    mem.tree["replaced"] = [2]
    mem.tree["replaced"][0] = [3, [4]]
    del mem.tree
    after = set(client.scan_iter(match=f"{_escape(prefix)}*"))
    nodes = {key for key in after if b":n:" in key or b":o:" in key}
    assert nodes <= {key for key in before if b":n:" in key or b":o:" in key}
    assert client.hlen(mem._store.keys.meta) == 0


def _escape(text: str) -> str:
    return "".join("\\" + char if char in "[]*?{}" else char for char in text)


def test_namespaces_are_isolated(server_url: str) -> None:
    first = Memory(namespace=f"a:{{b}} {uuid.uuid4().hex}")
    second = Memory(namespace=f"a:{{b}} {uuid.uuid4().hex}-other")
    try:
        first.x = 1
        assert "x" not in second
        assert Memory(namespace=first._namespace).x == 1
    finally:
        first._clear()
        second._clear()


SCALARS = [
    None,
    True,
    False,
    0,
    -(2**100),
    1.5,
    -0.0,
    math.inf,
    -math.inf,
    "text ✓",
    "",
    b"\x00\xff",
    (1, "a", (2,)),
    {1, 2},
    frozenset({"a"}),
    dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
    dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.date(2024, 5, 6),
    dt.time(7, 8, 9),
    dt.timedelta(days=1, seconds=2, microseconds=3),
    Decimal("1.10"),
    uuid.UUID(int=7),
    complex(1, -2),
]


@pytest.mark.parametrize("value", SCALARS, ids=[repr(value)[:30] for value in SCALARS])
def test_scalar_round_trip(mem: Memory, other: Memory, value: object) -> None:
    mem.value = value
    mem.inside = [value]
    got = other.value
    assert type(got) is type(value)
    assert got == value
    assert other.inside[0] == value


def test_nan_round_trip(mem: Memory, other: Memory) -> None:
    mem.value = math.nan
    assert math.isnan(other.value)


def test_unsupported_type_names_path_and_writes_nothing(mem: Memory) -> None:
    mem.cfg = {"users": [1, 2, 3]}
    with pytest.raises(
        UnsupportedTypeError, match=r"mem\.cfg\['users'\]\[<new item 0>\]"
    ):
        mem.cfg["users"].append(object())
    with pytest.raises(
        TypeError, match=r"cannot store mem\.cfg\['users'\]\[2\]: .*object"
    ):
        mem.cfg["users"][2] = object()
    with pytest.raises(
        TypeError, match=r"cannot store mem\.cfg\['new'\]\['deep'\]\[1\]"
    ):
        mem.cfg["new"] = {"deep": [1, object()]}
    with pytest.raises(TypeError, match=r"cannot store mem\.other"):
        mem.other = {"a": 1, "b": lambda: 1}
    assert mem.cfg == {"users": [1, 2, 3]}
    assert "other" not in mem


def test_self_containing_value(mem: Memory) -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(
        ValueError, match=r"cannot store mem\.loop\[1\]: the value contains itself"
    ):
        mem.loop = loop
    assert "loop" not in mem
    d: dict[str, object] = {}
    d["self"] = d
    with pytest.raises(ValueError, match="contains itself"):
        mem.d = d


def test_shared_value_is_copied(mem: Memory) -> None:
    shared = [1]
    mem.pair = [shared, shared]
    mem.pair[0].append(2)
    assert mem.pair == [[1, 2], [1]]


def test_assigning_synced_value_copies(mem: Memory) -> None:
    mem.a = [1, {"b": 2}]
    mem.c = mem.a
    mem.c[1]["b"] = 3
    assert mem.a == [1, {"b": 2}]
    assert mem.c == [1, {"b": 3}]
    assert isinstance(mem.c, SyncedList)


def test_subclass_of_list_rejected(mem: Memory) -> None:
    class MyList(list):  # type: ignore[type-arg]
        pass

    with pytest.raises(TypeError, match="subclass of list"):
        mem.x = MyList([1])


def test_asdict_and_clear(mem: Memory, other: Memory) -> None:
    mem.a = 1
    mem.b = [1, {"c": 2}]
    assert other._asdict() == {"a": 1, "b": [1, {"c": 2}]}
    assert other._names() == ["a", "b"]
    mem._update(c=3)
    assert other.c == 3
    version = other._version()
    mem._clear()
    assert list(other) == []
    assert other._version() > version


def test_repr(mem: Memory) -> None:
    assert repr(mem).startswith("Memory(url=")
    assert mem._namespace in repr(mem)


def test_deep_nesting(mem: Memory) -> None:
    value: list[object] = []
    inner = value
    for _ in range(50):
        nxt: list[object] = []
        inner.append(nxt)
        inner = nxt
    inner.append("bottom")
    mem.deep = value
    assert mem.deep.aslist() == value
    handle = mem.deep
    for _ in range(50):
        handle = handle[0]
    assert handle == ["bottom"]


def test_augmented_assignment_keeps_handles(mem: Memory, other: Memory) -> None:
    mem.tasks = [1]
    held = mem.tasks
    mem.tasks += [2]
    mem.d = {"n": [1], "s": {"a"}}
    inner = mem.d["n"]
    mem.d["n"] += [2]
    mem.grid = [[1]]
    row = mem.grid[0]
    mem.grid[0] += [2]
    mem.counts = {"a": 1}
    counts = mem.counts
    mem.counts |= {"b": 2}
    held.append(3)
    inner.append(3)
    row.append(3)
    counts["c"] = 3
    assert other.tasks == [1, 2, 3]
    assert other.d["n"] == [1, 2, 3]
    assert other.grid == [[1, 2, 3]]
    assert other.counts == {"a": 1, "b": 2, "c": 3}


def test_assigning_a_handle_elsewhere_copies(mem: Memory, other: Memory) -> None:
    mem.a = [1]
    mem.d = {"x": mem.a}
    mem.grid = [0]
    mem.grid[0] = mem.a
    mem.a.append(2)
    assert other.d == {"x": [1]}
    assert other.grid == [[1]]
    assert other.a == [1, 2]


def test_cycle_in_foreign_data_is_reported(mem: Memory) -> None:
    mem.x = [1]
    client = mem._store.connection.client
    keys = mem._store.keys
    entry = client.hget(keys.node("root"), '"x"')
    node_id = entry.decode().split('"')[3]
    client.rpush(keys.node(node_id), entry)  # x now contains itself
    with pytest.raises(CorruptValueError, match="referenced twice"):
        mem.x.aslist()
    with pytest.raises(CorruptValueError, match="referenced twice"):
        mem._asdict()
    del mem.x
    assert "x" not in mem
    assert client.exists(keys.node(node_id)) == 0


def test_wrong_redis_type_is_reported(mem: Memory) -> None:
    mem.x = [1, 2]
    client = mem._store.connection.client
    keys = mem._store.keys
    node_id = client.hget(keys.node("root"), '"x"').decode().split('"')[3]
    client.delete(keys.node(node_id))
    client.set(keys.node(node_id), "not a list")
    with pytest.raises(CorruptValueError, match="another kind of Redis value"):
        len(mem.x)
    mem.x = "fixed"
    assert mem.x == "fixed"


def test_too_deep_value_is_a_clear_error(mem: Memory) -> None:
    value: list[object] = []
    inner = value
    for _ in range(5000):
        deeper: list[object] = []
        inner.append(deeper)
        inner = deeper
    with pytest.raises(
        ValueError, match=r"cannot store mem\.deep: it is nested too deeply"
    ):
        mem.deep = value
    assert "deep" not in mem


def test_memory_cannot_be_pickled(mem: Memory) -> None:
    import copy
    import pickle

    with pytest.raises(TypeError, match="a Memory cannot be pickled or copied"):
        pickle.dumps(mem)
    with pytest.raises(TypeError, match="a Memory cannot be pickled or copied"):
        copy.copy(mem)

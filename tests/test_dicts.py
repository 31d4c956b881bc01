"""SyncedDict against a plain dict, on both backends."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
from decimal import Decimal

import pytest

from redis_memory import Memory, StaleReferenceError, SyncedDict


def test_set_update_and_order(mem: Memory, other: Memory) -> None:
    mem.config = {"theme": "dark", "lang": "en"}
    mem.config["notifications"] = True
    mem.config.update({"font": "Arial", "size": 12})
    mem.config.update([("a", 1), ("b", 2)], c=3)
    mem.config["theme"] = "light"  # an existing key keeps its place
    assert list(other.config) == [
        "theme",
        "lang",
        "notifications",
        "font",
        "size",
        "a",
        "b",
        "c",
    ]
    assert other.config["theme"] == "light"
    assert repr(other.config) == repr(
        {
            "theme": "light",
            "lang": "en",
            "notifications": True,
            "font": "Arial",
            "size": 12,
            "a": 1,
            "b": 2,
            "c": 3,
        }
    )


def test_delete_and_reinsert_moves_to_end(mem: Memory) -> None:
    mem.d = {"a": 1, "b": 2, "c": 3}
    del mem.d["a"]
    mem.d["a"] = 4
    assert list(mem.d.items()) == [("b", 2), ("c", 3), ("a", 4)]


def test_missing_keys(mem: Memory) -> None:
    mem.d = {"a": 1}
    with pytest.raises(KeyError, match="'x'"):
        mem.d["x"]
    with pytest.raises(KeyError, match="'x'"):
        del mem.d["x"]
    with pytest.raises(KeyError, match="'x'"):
        mem.d.pop("x")
    assert mem.d.pop("x", None) is None
    assert mem.d.get("x") is None
    assert mem.d.get("x", 5) == 5
    assert mem.d.get("a") == 1


def test_pop_popitem_lifo(mem: Memory, other: Memory) -> None:
    mem.d = {"a": 1, "b": [1, {"c": 2}], "z": 26}
    assert mem.d.popitem() == ("z", 26)
    value = mem.d.pop("b")
    assert value == [1, {"c": 2}]
    assert type(value) is list
    assert mem.d.popitem() == ("a", 1)
    with pytest.raises(KeyError, match=r"popitem\(\): dictionary is empty"):
        mem.d.popitem()
    assert other.d == {}


def test_setdefault(mem: Memory, other: Memory) -> None:
    mem.d = {}
    assert mem.d.setdefault("a", 1) == 1
    assert mem.d.setdefault("a", 2) == 1
    assert mem.d.setdefault("n") is None
    groups = mem.d.setdefault("groups", [])
    groups.append("x")  # the stored default is live
    assert other.d == {"a": 1, "n": None, "groups": ["x"]}


def test_clear_and_ior(mem: Memory, other: Memory) -> None:
    mem.d = {"a": {"deep": [1]}}
    d = mem.d
    d |= {"b": 2}
    assert other.d == {"a": {"deep": [1]}, "b": 2}
    assert mem.d | {"c": 3} == {"a": {"deep": [1]}, "b": 2, "c": 3}
    assert {"c": 3} | mem.d == {"c": 3, "a": {"deep": [1]}, "b": 2}
    mem.d.clear()
    assert other.d == {}
    assert len(other.d) == 0


def test_typed_keys(mem: Memory, other: Memory) -> None:
    mem.d = {1: "int", "1": "str", (1, 2): "tuple", None: "none", 2.5: "float"}
    mem.d[frozenset({1, 2})] = "frozenset"
    mem.d[dt.date(2024, 1, 2)] = "date"
    mem.d[Decimal("1.5")] = "decimal"
    mem.d[b"raw"] = "bytes"
    got = other.d.asdict()
    assert got == {
        1: "int",
        "1": "str",
        (1, 2): "tuple",
        None: "none",
        2.5: "float",
        frozenset({1, 2}): "frozenset",
        dt.date(2024, 1, 2): "date",
        Decimal("1.5"): "decimal",
        b"raw": "bytes",
    }
    assert [type(key) for key in got] == [
        int,
        str,
        tuple,
        type(None),
        float,
        frozenset,
        dt.date,
        Decimal,
        bytes,
    ]


def test_equal_numbers_are_one_key(mem: Memory) -> None:
    plain: dict[object, str] = {1: "a"}
    mem.d = {1: "a"}
    for key, value in [(1.0, "b"), (True, "c")]:
        plain[key] = value
        mem.d[key] = value
    assert mem.d.asdict() == plain
    assert list(mem.d) == list(plain)
    assert type(next(iter(mem.d))) is int
    assert mem.d[1.0] == "c"
    assert True in mem.d
    del mem.d[True]
    assert mem.d == {}


def test_unhashable_key(mem: Memory) -> None:
    mem.d = {}
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        mem.d[[1]] = 2
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        mem.d[[1]]


def test_update_errors_change_nothing(mem: Memory) -> None:
    mem.d = {"a": 1}
    with pytest.raises(
        ValueError, match="dictionary update sequence element #1 has length 3"
    ):
        mem.d.update([("b", 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="cannot store"):
        mem.d.update({"b": 2, "c": object()})
    assert mem.d == {"a": 1}


def test_views(mem: Memory) -> None:
    mem.d = {"a": 1, "b": [2]}
    keys = mem.d.keys()
    assert list(keys) == ["a", "b"]
    assert "a" in keys
    assert list(mem.d.values()) == [1, [2]]
    assert [2] in mem.d.values()
    assert list(mem.d.items()) == [("a", 1), ("b", [2])]
    assert ("a", 1) in mem.d.items()
    mem.d["c"] = 3
    assert len(keys) == 3  # the view is live
    assert list(reversed(mem.d)) == ["c", "b", "a"]
    _, nested = list(mem.d.items())[1]
    nested.append(3)
    assert mem.d["b"] == [2, 3]


def test_copies_are_plain(mem: Memory) -> None:
    mem.d = {"a": [1, {"b": 2}]}
    for made in (
        mem.d.copy(),
        copy.copy(mem.d),
        copy.deepcopy(mem.d),
        pickle.loads(pickle.dumps(mem.d)),
        mem.d.asdict(),
        dict(mem.d.items()) if False else mem.d.asdict(),
    ):
        assert made == {"a": [1, {"b": 2}]}
        assert type(made) is dict
        assert type(made["a"]) is list
        assert type(made["a"][1]) is dict


def test_nested_dict_handle(mem: Memory, other: Memory) -> None:
    mem.complex = {
        "users": [{"name": "Ann", "scores": [95, 87]}],
        "settings": {"push": False},
    }
    settings = mem.complex["settings"]
    assert isinstance(settings, SyncedDict)
    settings["push"] = True
    mem.complex["users"][0]["scores"].append(96)
    assert other.complex["users"][0]["scores"] == [95, 87, 96]
    assert other.complex["settings"]["push"] is True


def test_equality(mem: Memory) -> None:
    mem.d = {"a": 1, "b": 2}
    assert mem.d == {"b": 2, "a": 1}
    assert mem.d != {"a": 1}
    assert mem.d != [("a", 1)]
    mem.e = {"b": 2, "a": 1}
    assert mem.d == mem.e


def test_lookup_with_unstorable_key_is_absent(mem: Memory) -> None:
    import enum

    class Color(enum.IntEnum):
        RED = 1

    mem.d = {1: "one", "a": 1}
    plain = {1: "one", "a": 1}
    assert Color.RED in mem.d
    assert mem.d[Color.RED] == "one"
    assert mem.d.get(object()) is None
    assert (object() in mem.d) is (object() in plain)
    with pytest.raises(KeyError):
        mem.d[object()]
    with pytest.raises(TypeError, match="unhashable"):
        [] in mem.d


def test_huge_int_key_pop_keeps_value(mem: Memory) -> None:
    key = 10**5000
    mem.d = {key: "precious", "other": 1}
    assert mem.d.pop(key) == "precious"
    assert mem.d == {"other": 1}


def test_fromkeys_gives_plain_dict(mem: Memory) -> None:
    mem.d = {}
    made = type(mem.d).fromkeys(["a", "b"], 0)
    assert made == {"a": 0, "b": 0}
    assert type(made) is dict
    mem.d.update(made)
    assert mem.d == {"a": 0, "b": 0}


def test_stale_handle_writes_nothing(mem: Memory, other: Memory) -> None:
    mem.cfg = {"inner": {"a": 1}}
    inner = mem.cfg["inner"]
    other.cfg = {}
    for write in (
        lambda: inner.__setitem__("a", 2),
        lambda: inner.__setitem__("b", 2),
        lambda: inner.update({"a": 3, "c": [4]}),
    ):
        with pytest.raises(
            StaleReferenceError, match=r"mem.cfg\['inner'\] no longer exists"
        ):
            write()
    assert other.cfg == {}
    store = inner._store
    assert not store.connection.command("EXISTS", store.keys.node(inner._id))

"""A dict's insertion order: a LIST whose deleted keys stay as stale entries.

Deletes leave the key's field in the order list, so these tests check that
reads skip them, that a key added again counts at its new place, that the
list is rewritten before stale entries pile up, and that an order kept as a
sorted set (the format of version 0.1) still reads and is rewritten on write.
"""

from __future__ import annotations

import random

import pytest
import redis

from redis_memory import Memory
from redis_memory.errors import CorruptValueError
from redis_memory.keys import KeySpace


def test_deleted_and_readded_keys_keep_dict_order(mem: Memory, other: Memory) -> None:
    plain = {f"k{index}": index for index in range(6)}
    mem.d = dict(plain)
    for key in ("k1", "k3", "k1", "k5"):
        if key in plain:
            del plain[key]
            del mem.d[key]
        else:
            plain[key] = "back"
            mem.d[key] = "back"
    plain["k0"] = "kept in place"
    mem.d["k0"] = "kept in place"

    assert list(other.d.items()) == list(plain.items())
    assert other.d.asdict() == plain
    assert repr(other.d) == repr(plain)
    assert len(other.d) == len(plain)


def test_popitem_skips_stale_entries(mem: Memory, other: Memory) -> None:
    plain = {"a": 1, "b": 2, "c": 3, "d": 4}
    mem.d = dict(plain)
    for key in ("d", "b"):
        del plain[key]
        del mem.d[key]
    plain["b"] = 20
    mem.d["b"] = 20

    assert mem.d.popitem() == plain.popitem() == ("b", 20)
    assert mem.d.popitem() == plain.popitem() == ("c", 3)
    assert list(other.d.items()) == list(plain.items())
    assert mem.d.popitem() == ("a", 1)
    assert len(other.d) == 0


def test_random_deletes_match_a_dict(mem: Memory, other: Memory) -> None:
    rng = random.Random(7)
    plain: dict[int, int] = {}
    mem.d = {}
    for step in range(300):
        key = rng.randrange(12)
        action = rng.random()
        if action < 0.5:
            plain[key] = step
            mem.d[key] = step
        elif action < 0.8:
            assert mem.d.pop(key, None) == plain.pop(key, None)
        elif plain:
            assert mem.d.popitem() == plain.popitem()
    assert list(other.d.items()) == list(plain.items())


def _order_length(admin: redis.Redis, mem: Memory, node_id: str) -> int:
    return int(admin.llen(KeySpace(mem._namespace).order(node_id)))


def test_order_list_is_rewritten_as_deletes_pile_up(
    real_mem: Memory, admin: redis.Redis
) -> None:
    real_mem.d = {"anchor": 0}
    node_id = real_mem.d._id
    longest = 0
    for index in range(500):
        real_mem.d[index] = index
        del real_mem.d[index]
        longest = max(longest, _order_length(admin, real_mem, node_id))

    assert longest <= 2 * 1 + 16 + 1
    assert list(real_mem.d.items()) == [("anchor", 0)]


def test_emptied_dict_leaves_no_order_key(real_mem: Memory, admin: redis.Redis) -> None:
    real_mem.d = {"a": 1, "b": 2}
    node_id = real_mem.d._id
    del real_mem.d["a"]
    real_mem.d.popitem()

    assert not admin.exists(KeySpace(real_mem._namespace).order(node_id))
    real_mem.d["c"] = 3
    assert list(real_mem.d.items()) == [("c", 3)]


def _plant_sorted_set_order(admin: redis.Redis, mem: Memory, node_id: str) -> None:
    """Rewrite a dict's order as version 0.1 kept it: field -> insertion counter."""
    order = KeySpace(mem._namespace).order(node_id)
    fields = admin.lrange(order, 0, -1)
    admin.delete(order)
    admin.zadd(order, {field: rank for rank, field in enumerate(fields, 1)})


def test_sorted_set_order_reads_and_upgrades(
    real_mem: Memory, admin: redis.Redis
) -> None:
    real_mem.d = {"x": 1, "y": 2, "z": 3}
    node_id = real_mem.d._id
    _plant_sorted_set_order(admin, real_mem, node_id)
    order = KeySpace(real_mem._namespace).order(node_id)

    assert list(Memory(namespace=real_mem._namespace, cache=False).d) == ["x", "y", "z"]
    assert admin.type(order) == b"zset"
    real_mem.d["w"] = 4
    assert admin.type(order) == b"list"
    assert list(real_mem.d.items()) == [("x", 1), ("y", 2), ("z", 3), ("w", 4)]


def test_sorted_set_order_upgrades_on_pop(real_mem: Memory, admin: redis.Redis) -> None:
    real_mem.d = {"x": 1, "y": 2, "z": 3}
    _plant_sorted_set_order(admin, real_mem, real_mem.d._id)
    assert real_mem.d.popitem() == ("z", 3)

    real_mem.e = {"x": 1, "y": 2, "z": 3}
    _plant_sorted_set_order(admin, real_mem, real_mem.e._id)
    assert real_mem.e.pop("x") == 1
    assert real_mem.e.setdefault("v", 5) == 5
    assert list(real_mem.d.items()) == [("x", 1), ("y", 2)]
    assert list(real_mem.e.items()) == [("y", 2), ("z", 3), ("v", 5)]


def test_order_that_misses_a_key_is_reported(
    real_mem: Memory, admin: redis.Redis
) -> None:
    # As many order entries as keys, yet one names a key the hash lacks:
    # the hash holds a key that the order does not list, so data are broken.
    real_mem.d = {"a": 1, "b": 2}
    keys = KeySpace(real_mem._namespace)
    node_id = real_mem.d._id
    admin.hdel(keys.node(node_id), '"a"')
    admin.hset(keys.node(node_id), '"c"', "3")

    with pytest.raises(CorruptValueError, match="order entry without a value"):
        real_mem.d.asdict()

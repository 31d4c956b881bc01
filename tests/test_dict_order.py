"""A dict's insertion order: inline in a small dict's hash, else a LIST.

A small dict keeps its order in its own hash, under a field that no key can
have. A larger one keeps it in a LIST where deletes leave stale entries. These
tests check that reads skip stale entries and that a key added again counts
at its new place, in both forms. They also check that the LIST is rewritten
before stale entries pile up, and that an order kept as a sorted set (the
format of version 0.1) still reads and is rewritten on write.
"""

from __future__ import annotations

import random

import pytest
import redis

from redis_memory import Memory
from redis_memory.errors import CorruptValueError
from redis_memory.keys import KeySpace

# The hash field of an inline order.
ORDER = b"\0order"

# Keys enough that a dict's order no longer fits in its hash, or none.
PADDINGS = {"inline": {}, "list": {f"padding-{index:02}": index for index in range(8)}}


@pytest.fixture(params=sorted(PADDINGS))
def padding(request: pytest.FixtureRequest) -> dict[str, int]:
    """Keys stored first in each dict, so that the order is inline or a LIST."""
    return dict(PADDINGS[request.param])


def test_deleted_and_readded_keys_keep_dict_order(
    mem: Memory, other: Memory, padding: dict[str, int]
) -> None:
    plain: dict[str, object] = {**padding, **{f"k{index}": index for index in range(6)}}
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


def test_popitem_skips_stale_entries(
    mem: Memory, other: Memory, padding: dict[str, int]
) -> None:
    plain: dict[str, int] = {**padding, "a": 1, "b": 2, "c": 3, "d": 4}
    mem.d = dict(plain)
    for key in ("d", "b"):
        del plain[key]
        del mem.d[key]
    plain["b"] = 20
    mem.d["b"] = 20

    assert mem.d.popitem() == plain.popitem() == ("b", 20)
    assert mem.d.popitem() == plain.popitem() == ("c", 3)
    assert list(other.d.items()) == list(plain.items())
    assert mem.d.popitem() == plain.popitem() == ("a", 1)
    assert len(other.d) == len(plain)


def test_random_deletes_match_a_dict(
    mem: Memory, other: Memory, padding: dict[str, int]
) -> None:
    rng = random.Random(7)
    plain: dict[object, int] = dict(padding)
    mem.d = dict(padding)
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
        assert len(mem.d) == len(plain)
    assert list(other.d.items()) == list(plain.items())


def _order_length(admin: redis.Redis, mem: Memory, node_id: str) -> int:
    return int(admin.llen(KeySpace(mem._namespace).order(node_id)))


def test_order_list_is_rewritten_as_deletes_pile_up(
    real_mem: Memory, admin: redis.Redis
) -> None:
    real_mem.d = dict(PADDINGS["list"])
    node_id = real_mem.d._id
    longest = 0
    for index in range(500):
        real_mem.d[index] = index
        del real_mem.d[index]
        longest = max(longest, _order_length(admin, real_mem, node_id))

    assert longest <= 2 * len(PADDINGS["list"]) + 16 + 1
    assert list(real_mem.d.items()) == list(PADDINGS["list"].items())


def test_small_dict_keeps_order_in_its_hash(
    real_mem: Memory, admin: redis.Redis
) -> None:
    keys = KeySpace(real_mem._namespace)
    real_mem.d = {"a": 1, "b": 2}
    node_id = real_mem.d._id
    real_mem.d["c"] = 3
    del real_mem.d["a"]

    assert admin.hget(keys.node(node_id), ORDER) == b'\0"b"\0"c"\0'
    assert not admin.exists(keys.order(node_id))
    assert len(real_mem.d) == 2
    assert list(real_mem.d) == ["b", "c"]


def test_growing_dict_moves_order_to_list(real_mem: Memory, admin: redis.Redis) -> None:
    keys = KeySpace(real_mem._namespace)
    real_mem.d = {"a": 1}
    node_id = real_mem.d._id
    real_mem.d.update(PADDINGS["list"])

    assert not admin.hexists(keys.node(node_id), ORDER)
    assert admin.lrange(keys.order(node_id), 0, 0) == [b'"a"']
    assert list(real_mem.d) == ["a", *PADDINGS["list"]]
    assert len(real_mem.d) == 1 + len(PADDINGS["list"])


def test_emptied_dict_leaves_no_keys(
    real_mem: Memory, admin: redis.Redis, padding: dict[str, int]
) -> None:
    keys = KeySpace(real_mem._namespace)
    real_mem.d = {**padding, "a": 1, "b": 2}
    node_id = real_mem.d._id
    del real_mem.d["a"]
    while real_mem.d:
        real_mem.d.popitem()

    assert not admin.exists(keys.order(node_id))
    assert not admin.exists(keys.node(node_id))
    real_mem.d["c"] = 3
    assert list(real_mem.d.items()) == [("c", 3)]
    assert real_mem.d.setdefault("e", 5) == 5
    assert list(real_mem.d.items()) == [("c", 3), ("e", 5)]


def _plant_sorted_set_order(admin: redis.Redis, mem: Memory, node_id: str) -> None:
    """Rewrite a dict's order as version 0.1 kept it: field -> insertion counter."""
    keys = KeySpace(mem._namespace)
    inline = admin.hget(keys.node(node_id), ORDER)
    if inline is None:
        fields = admin.lrange(keys.order(node_id), 0, -1)
    else:
        fields = inline.strip(b"\0").split(b"\0")
    admin.hdel(keys.node(node_id), ORDER)
    admin.delete(keys.order(node_id))
    admin.zadd(
        keys.order(node_id), {field: rank for rank, field in enumerate(fields, 1)}
    )


def test_sorted_set_order_reads_and_upgrades(
    real_mem: Memory, admin: redis.Redis
) -> None:
    real_mem.d = {"x": 1, "y": 2, "z": 3}
    node_id = real_mem.d._id
    _plant_sorted_set_order(admin, real_mem, node_id)
    order = KeySpace(real_mem._namespace).order(node_id)

    assert list(Memory(namespace=real_mem._namespace, cache=False).d) == ["x", "y", "z"]
    assert len(real_mem.d) == 3
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
    # the hash contains a key that the order does not list, so data are broken.
    real_mem.d = dict(PADDINGS["list"])
    keys = KeySpace(real_mem._namespace)
    node_id = real_mem.d._id
    admin.hdel(keys.node(node_id), '"padding-00"')
    admin.hset(keys.node(node_id), '"c"', "3")

    with pytest.raises(CorruptValueError, match="order entry without a value"):
        real_mem.d.asdict()


def test_inline_order_that_misses_a_key_is_reported(
    real_mem: Memory, admin: redis.Redis
) -> None:
    real_mem.d = {"a": 1, "b": 2}
    keys = KeySpace(real_mem._namespace)
    admin.hdel(keys.node(real_mem.d._id), '"a"')

    with pytest.raises(CorruptValueError, match="order entry without a value"):
        real_mem.d.asdict()

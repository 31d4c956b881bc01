"""Random dict operations against a plain dict, with the stored order checked after each step.

A state machine runs the same random operations on one stored dict and on a
plain dict. The operations are ``d[k] = v``, ``del``, ``pop``, ``popitem``,
``setdefault``, ``update``, ``|=`` and ``clear``, assigning a whole new dict,
batches, and writes by a second Memory. A step may also rewrite the order as
the sorted set of version 0.1. The keys span the key encodings (str, unicode,
int, float, bool and complex keys that are one key, None, tuple, bytes,
frozenset, long text), so a dict's order crosses the 64-byte limit of the
inline order both ways.

After every step, the dict agrees with the plain dict when read through the
writing Memory (its read cache on), through a second Memory and through a
fresh one. The raw keys keep the layout of docs/storage-format.md:

- every key belongs to a live node, and every node is referenced once;
- a dict's order is inline or a LIST, never both;
- an inline order lists each key once in at most 64 bytes;
- an emptied dict has no keys;
- a LIST has at most twice as many entries as keys, plus 16;
- the order read by the documented rule is the plain dict's order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conftest import run_python
from redis_memory import Memory
from redis_memory.codec import Codec
from redis_memory.errors import CorruptValueError
from redis_memory.keys import KeySpace
from redis_memory.node import Node

# The hash field of an inline order, and the maximum length of an inline order in bytes.
ORDER = b"\0order"
INLINE_BYTES = 64

# Keys of every encoding. 1, 1.0, True and 1+0j are one key, and so are 0,
# 0.0 and False. Neither tuple contains a number, because numbers inside a
# tuple are not aliased (docs/storage-format.md).
KEYS: tuple[Any, ...] = (
    "a",
    "b",
    "c",
    "",
    " ",
    '"',
    "\\",
    "é",
    "日本語",
    "k" * 10,
    "long-" + "y" * 40,
    0,
    1,
    2,
    -7,
    10**20,
    0.0,
    1.0,
    2.5,
    True,
    False,
    1 + 0j,
    None,
    ("t", ("u",)),
    b"\x00\xff",
    b"",
    frozenset({"f"}),
)

keys = st.sampled_from(KEYS)
values = st.one_of(
    st.integers(-3, 99),
    st.text("vw", max_size=40),
    st.dictionaries(keys, st.integers(0, 9), max_size=6),
    st.builds(lambda n, m: [n, {"n": m}], st.integers(0, 3), st.integers(0, 3)),
)
pairs = st.lists(st.tuples(keys, values), max_size=12)
mappings = st.dictionaries(keys, values, max_size=12)
batch_ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), keys, values),
        st.tuples(st.just("del"), keys),
        st.tuples(st.just("update"), pairs),
        st.tuples(st.just("clear")),
    ),
    min_size=1,
    max_size=6,
)

# Where the dict under test lives. "namespace" is the namespace itself, whose
# keys are names (str) and whose order is always a LIST.
PLACES = ("top", "nested", "in_list", "namespace")

CODEC = Codec()


def plain_of(value: Any) -> Any:
    """Return a stored value as a plain one; other values as they are."""
    return value._plain() if isinstance(value, Node) else value


def outcome(call: Callable[[], Any]) -> tuple[str, str]:
    """Return the repr of what ``call`` returns, or the text of the KeyError it raises."""
    try:
        return ("ok", repr(plain_of(call())))
    except KeyError as exc:
        return ("KeyError", str(exc))


def setting(key: Any, value: Any) -> Callable[[dict[Any, Any]], None]:
    """Return a change that sets ``key`` of a plain dict."""

    def apply(plain: dict[Any, Any]) -> None:
        plain[key] = value

    return apply


def deleting(key: Any) -> Callable[[dict[Any, Any]], None]:
    """Return a change that deletes ``key`` of a plain dict, raising KeyError as del does."""

    def apply(plain: dict[Any, Any]) -> None:
        del plain[key]

    return apply


def updating(items: list[tuple[Any, Any]]) -> Callable[[dict[Any, Any]], None]:
    """Return a change that updates a plain dict with ``items``."""

    def apply(plain: dict[Any, Any]) -> None:
        plain.update(items)

    return apply


def field_of(key: Any) -> bytes:
    """Return the hash field of ``key``: its encoding."""
    return CODEC.encode_key(key, "").encode()


def inline_bytes(keys: Iterable[Any]) -> int:
    """Return the length of the inline order of ``keys``: NUL, then each field and NUL."""
    return 1 + sum(len(field_of(key)) + 1 for key in keys)


def order_by_rule(entries: list[bytes], fields: set[bytes]) -> list[bytes]:
    """Return the order of a LIST: each field at its last place, if the hash has it."""
    newest_first: list[bytes] = []
    seen: set[bytes] = set()
    for entry in reversed(entries):
        if entry in fields and entry not in seen:
            seen.add(entry)
            newest_first.append(entry)
    return newest_first[::-1]


def read_orders(
    admin: redis.Redis, namespace: str
) -> dict[str, tuple[str, list[bytes]]]:
    """Check the namespace's raw keys; return each dict node's (order kind, fields in order).

    The order kind is "inline", "list", "zset" or "none" (an empty dict).
    """
    raw: Any = admin
    keys = KeySpace(namespace)
    kinds = {
        node_id.decode(): kind.decode()
        for node_id, kind in raw.hgetall(keys.meta).items()
    }
    kinds["root"] = "dict"

    for key in raw.scan_iter(match=keys.prefix + "*", count=1000):
        rest = key.decode()[len(keys.prefix) :]
        if rest[:2] not in ("n:", "o:"):
            continue
        node_id = rest[2:]
        assert node_id in kinds, f"{key!r} belongs to no live node"
        if rest.startswith("o:"):
            assert kinds[node_id] == "dict", f"{key!r} is the order of a list"
        else:
            expected = b"hash" if kinds[node_id] == "dict" else b"list"
            assert raw.type(key) == expected, key

    # Every node but the root is referenced once, by a node that is itself reachable.
    reached = {"root"}
    pending = ["root"]
    while pending:
        node_id = pending.pop()
        if kinds[node_id] == "dict":
            entries = list(raw.hgetall(keys.node(node_id)).values())
        else:
            entries = raw.lrange(keys.node(node_id), 0, -1)
        for entry in entries:
            if not entry.startswith((b'{"$dict":', b'{"$list":')):
                continue
            child = json.loads(entry).popitem()[1]
            assert child not in reached, f"node {child} is referenced twice"
            reached.add(child)
            pending.append(child)
    assert reached == set(kinds), f"unreferenced nodes: {set(kinds) - reached}"

    orders: dict[str, tuple[str, list[bytes]]] = {}
    for node_id, kind in kinds.items():
        if kind == "dict":
            orders[node_id] = _read_order(admin, keys, node_id)
    return orders


def _read_order(
    admin: redis.Redis, keys: KeySpace, node_id: str
) -> tuple[str, list[bytes]]:
    """Check the order of one dict node; return its kind and the fields in order."""
    raw: Any = admin
    hash_ = raw.hgetall(keys.node(node_id))
    inline = hash_.pop(ORDER, None)
    fields = set(hash_)
    order_key = keys.order(node_id)
    order_type = raw.type(order_key)

    if inline is not None:
        assert node_id != "root", "the namespace keeps its order inline"
        assert fields, f"emptied dict {node_id} keeps its order field"
        assert order_type == b"none", (
            f"dict {node_id} has an order LIST and an inline one"
        )
        assert len(inline) <= INLINE_BYTES, inline
        assert inline[:1] == inline[-1:] == b"\0", inline
        order = inline[1:-1].split(b"\0")
        assert len(order) == len(set(order)), f"a field twice in {inline!r}"
        assert set(order) == fields, (inline, fields)
        return "inline", order

    if not fields:
        assert order_type == b"none", f"empty dict {node_id} keeps an order key"
        return "none", []

    if order_type == b"zset":
        order = raw.zrange(order_key, 0, -1)
        assert set(order) == fields
        return "zset", order

    assert order_type == b"list", (node_id, order_type)
    entries = raw.lrange(order_key, 0, -1)
    assert len(entries) <= 2 * len(fields) + 16, (len(entries), len(fields))
    order = order_by_rule(entries, fields)
    assert set(order) == fields, f"order LIST of {node_id} misses a key"
    return "list", order


def plant_sorted_set_order(admin: redis.Redis, namespace: str, node_id: str) -> None:
    """Rewrite a dict's order as version 0.1 kept it: a ZSET of field -> counter."""
    raw: Any = admin
    keys = KeySpace(namespace)
    _, order = _read_order(admin, keys, node_id)
    raw.hdel(keys.node(node_id), ORDER)
    raw.delete(keys.order(node_id))
    if order:
        # Gaps in the scores, as deletes left them in version 0.1.
        raw.zadd(keys.order(node_id), {f: 3 * n + 5 for n, f in enumerate(order)})


class DictMachine(RuleBasedStateMachine):
    """One stored dict and a plain dict, changed alike.

    ``mem`` keeps the read cache on where the backend allows, and ``other``
    writes over a client of its own, as another process would.
    """

    url = ""
    fake_server: Any = None
    # Whether the scripts go by EVALSHA, each with only the helpers it uses,
    # instead of as functions of the library.
    by_sha = False

    def __init__(self) -> None:
        super().__init__()
        self.namespace = f"fuzz-{uuid.uuid4().hex[:12]}"
        self.admin = self.client()
        if self.fake_server is None and not self.by_sha:
            self.mem = Memory(self.url, self.namespace, cache=True)
        else:
            self.mem = self.on_own_client()
        self.other = self.on_own_client()
        self.plain: dict[Any, Any] = {}
        self.where = "top"
        # Whether the order has left the hash for the LIST (or a ZSET).
        self.listed = False

    def client(self) -> redis.Redis:
        if self.fake_server is None:
            return redis.Redis.from_url(self.url)
        import fakeredis

        return fakeredis.FakeRedis(server=self.fake_server)

    def on_own_client(self) -> Memory:
        """Return a Memory without a cache on a client of its own."""
        mem = Memory(namespace=self.namespace, client=self.client())
        if self.by_sha:
            mem._store.connection._functions_usable = lambda *_: False  # type: ignore[method-assign]
        return mem

    def fresh(self) -> Memory:
        """Return a Memory without a cache, opened now."""
        if self.fake_server is None and not self.by_sha:
            return Memory(self.url, self.namespace, cache=False)
        return self.on_own_client()

    def teardown(self) -> None:
        self.mem._clear()
        self.mem._close()

    # -- the dict under test ------------------------------------------------

    def handle(self, mem: Memory) -> Any:
        if self.where == "top":
            return mem.d
        if self.where == "nested":
            return mem.outer["inner"]
        if self.where == "in_list":
            return mem.items[1]
        return mem._root

    def key(self, key: Any) -> Any:
        """Return ``key``, as a name when the dict is the namespace."""
        if self.where == "namespace" and not isinstance(key, str):
            return f"name {key!r}"
        return key

    def writer(self, by_other: bool) -> Any:
        return self.handle(self.other if by_other else self.mem)

    def change(self, apply: Callable[[dict[Any, Any]], Any]) -> Any:
        """Apply a change to the plain dict, following where its order is kept."""
        before = bool(self.plain)
        size = len(self.plain)
        result = apply(self.plain)
        if not self.plain or self.where == "namespace":
            self.listed = bool(self.plain)
        elif not before:
            self.listed = inline_bytes(self.plain) > INLINE_BYTES
        elif len(self.plain) > size and inline_bytes(self.plain) > INLINE_BYTES:
            self.listed = True
        return result

    @initialize(where=st.sampled_from(PLACES), start=mappings)
    def place(self, where: str, start: dict[Any, Any]) -> None:
        self.where = where
        start = {self.key(key): value for key, value in start.items()}
        if where == "top":
            self.mem.d = start
        elif where == "nested":
            self.mem.outer = {"before": 1, "inner": start, "after": [{"x": 1}]}
        elif where == "in_list":
            self.mem.items = [0, start, {"x": 1}]
        else:
            self.mem._update(start)
        self.change(lambda plain: plain.update(start))

    # -- rules ----------------------------------------------------------------

    @rule(key=keys, value=values, by_other=st.booleans())
    def set_item(self, key: Any, value: Any, by_other: bool) -> None:
        key = self.key(key)
        self.writer(by_other)[key] = value
        self.change(setting(key, value))

    @rule(key=keys, by_other=st.booleans())
    def del_item(self, key: Any, by_other: bool) -> None:
        key = self.key(key)
        got = outcome(lambda: self.writer(by_other).__delitem__(key))
        assert got == self.change(lambda plain: outcome(lambda: plain.__delitem__(key)))

    @precondition(lambda self: bool(self.plain))
    @rule(data=st.data(), by_other=st.booleans())
    def del_present_key(self, data: st.DataObject, by_other: bool) -> None:
        """Delete a key the dict has, which leaves a stale entry in an order LIST."""
        key = data.draw(st.sampled_from(list(self.plain)))
        del self.writer(by_other)[key]
        self.change(deleting(key))

    @rule(data=st.data(), keep=st.integers(0, 2), by_other=st.booleans())
    def delete_down_to(self, data: st.DataObject, keep: int, by_other: bool) -> None:
        """Delete keys by del and popitem, mixed, until ``keep`` keys are left.

        The checks then see the dict right after, before any key is added again.
        """
        target = self.writer(by_other)
        while len(self.plain) > keep:
            if data.draw(st.booleans(), label="popitem"):
                got = outcome(target.popitem)
                assert got == self.change(lambda plain: outcome(plain.popitem))
            else:
                key = data.draw(st.sampled_from(list(self.plain)), label="del")
                del target[key]
                self.change(deleting(key))

    @rule(key=keys, by_other=st.booleans())
    def pop(self, key: Any, by_other: bool) -> None:
        key = self.key(key)
        got = outcome(lambda: self.writer(by_other).pop(key, "missing"))
        assert got == self.change(
            lambda plain: outcome(lambda: plain.pop(key, "missing"))
        )

    @rule(by_other=st.booleans())
    def popitem(self, by_other: bool) -> None:
        got = outcome(self.writer(by_other).popitem)
        assert got == self.change(lambda plain: outcome(plain.popitem))

    @rule(key=keys, value=values, by_other=st.booleans())
    def setdefault(self, key: Any, value: Any, by_other: bool) -> None:
        key = self.key(key)
        got = outcome(lambda: self.writer(by_other).setdefault(key, value))
        assert got == self.change(
            lambda plain: outcome(lambda: plain.setdefault(key, value))
        )

    @rule(items=pairs, by_other=st.booleans())
    def update(self, items: list[tuple[Any, Any]], by_other: bool) -> None:
        items = [(self.key(key), value) for key, value in items]
        self.writer(by_other).update(items)
        self.change(updating(items))

    @rule(mapping=mappings)
    def merge(self, mapping: dict[Any, Any]) -> None:
        mapping = {self.key(key): value for key, value in mapping.items()}
        target = self.handle(self.mem)
        target |= mapping
        self.change(lambda plain: plain.update(mapping))

    @rule(by_other=st.booleans())
    def clear(self, by_other: bool) -> None:
        self.writer(by_other).clear()
        self.change(dict.clear)

    @rule(mapping=mappings, by_other=st.booleans())
    def assign(self, mapping: dict[Any, Any], by_other: bool) -> None:
        """Replace the dict with a new one, stored in one step."""
        mapping = {self.key(key): value for key, value in mapping.items()}
        mem = self.other if by_other else self.mem
        if self.where == "top":
            mem.d = mapping
        elif self.where == "nested":
            mem.outer["inner"] = mapping
        elif self.where == "in_list":
            mem.items[1] = mapping
        else:
            with mem._batch():
                mem._root.clear()
                mem._root.update(mapping)
        self.plain = {}
        self.change(lambda plain: plain.update(mapping))

    @rule(ops=batch_ops)
    def batch(self, ops: list[tuple[Any, ...]]) -> None:
        """Run changes in one batch; a del of a missing key stops it there."""
        target = self.handle(self.mem)
        applied: list[Callable[[dict[Any, Any]], Any]] = []
        missing: Any = None
        try:
            with self.mem._batch():
                for op in ops:
                    if op[0] == "set":
                        key, value = self.key(op[1]), op[2]
                        target[key] = value
                        applied.append(setting(key, value))
                    elif op[0] == "del":
                        key = self.key(op[1])
                        del target[key]
                        applied.append(deleting(key))
                    elif op[0] == "update":
                        items = [(self.key(k), v) for k, v in op[1]]
                        target.update(items)
                        applied.append(updating(items))
                    else:
                        target.clear()
                        applied.append(dict.clear)
        except KeyError as exc:
            missing = exc.args[0]
        for apply in applied:
            try:
                self.change(apply)
            except KeyError as exc:
                assert repr(exc.args[0]) == repr(missing)
                missing = None
                break
        assert missing is None

    @rule()
    def plant_sorted_set(self) -> None:
        """Rewrite the order as version 0.1 kept it, as if that version wrote the dict."""
        node_id = self.handle(self.mem)._id
        if self.plain:
            plant_sorted_set_order(self.admin, self.namespace, node_id)
            self.listed = bool(self.plain)

    # -- checks ---------------------------------------------------------------

    @invariant()
    def reads_match_plain_dict(self) -> None:
        self.mem._sync()
        expected = [repr(key) for key in self.plain]
        for mem in (self.mem, self.other, self.fresh()):
            synced = self.handle(mem)
            assert repr(synced) == repr(self.plain)
            assert [repr(key) for key in synced] == expected
            assert [repr(key) for key in reversed(synced)] == expected[::-1]
            assert len(synced) == len(self.plain)
            assert bool(synced) == bool(self.plain)
            assert synced.copy() == self.plain
        synced = self.handle(self.mem)
        for key in {self.key(key) for key in KEYS}:
            assert (key in synced) == (key in self.plain), key
            assert repr(plain_of(synced.get(key, "missing"))) == repr(
                self.plain.get(key, "missing")
            ), key

    @invariant()
    def storage_keeps_its_layout(self) -> None:
        orders = read_orders(self.admin, self.namespace)
        node_id = self.handle(self.fresh())._id
        kind, order = orders[node_id]
        event(f"{self.where}: order {kind}")
        assert order == [field_of(key) for key in self.plain]
        if not self.plain:
            assert kind == "none"
        elif self.listed:
            assert kind in ("list", "zset")
        else:
            assert kind == "inline"


def run_machine(
    url: str = "",
    fake_server: Any = None,
    *,
    examples: int,
    steps: int,
    by_sha: bool = False,
) -> None:
    machine = type(
        "DictMachine",
        (DictMachine,),
        {"url": url, "fake_server": fake_server, "by_sha": by_sha},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_random_operations_match_a_dict(server_url: str) -> None:
    run_machine(server_url, examples=60, steps=30)


def test_random_operations_on_fakeredis(fake_server: object) -> None:
    run_machine(fake_server=fake_server, examples=15, steps=25)


def test_random_operations_by_evalsha(server_url: str) -> None:
    run_machine(server_url, examples=15, steps=25, by_sha=True)


# -- the 64-byte limit, exactly --------------------------------------------------


def _kind(admin: redis.Redis, mem: Memory, node_id: str) -> str:
    return read_orders(admin, mem._namespace)[node_id][0]


def _key_of_size(size: int, letter: str = "x") -> str:
    # A str key of n ASCII letters takes n + 3 bytes of the order: quotes and NUL.
    return letter * (size - 3)


@pytest.mark.parametrize(
    "store",
    [
        pytest.param(lambda d, key: d.__setitem__(key, 1), id="setitem"),
        pytest.param(lambda d, key: d.update({key: 1}), id="update"),
        pytest.param(
            lambda d, key: d.setdefault(key, {"nested": [1]}), id="setdefault"
        ),
    ],
)
def test_64_byte_order_stays_inline(
    real_mem: Memory, admin: redis.Redis, store: Callable[[Any, str], Any]
) -> None:
    first = _key_of_size(30, "a")
    real_mem.d = {first: 0}
    node_id = real_mem.d._id
    store(real_mem.d, _key_of_size(INLINE_BYTES - 1 - 30, "b"))
    assert _kind(admin, real_mem, node_id) == "inline"

    store(real_mem.d, "c")
    assert _kind(admin, real_mem, node_id) == "list"
    del real_mem.d["c"]
    assert _kind(admin, real_mem, node_id) == "list"
    assert len(real_mem.d) == 2


def test_new_dicts_inline_up_to_limit(real_mem: Memory, admin: redis.Redis) -> None:
    fits = {_key_of_size(INLINE_BYTES - 1): 1}
    too_long = {_key_of_size(INLINE_BYTES): 1}
    real_mem.items = [fits, too_long, {"nested": too_long, "small": fits}]

    kinds = read_orders(admin, real_mem._namespace)
    del kinds["root"]
    assert sorted(kind for kind, _ in kinds.values()) == [
        "inline",
        "inline",
        "inline",
        "list",
        "list",
    ]
    assert real_mem.items == [fits, too_long, {"nested": too_long, "small": fits}]


def test_emptied_list_order_starts_inline_again(
    real_mem: Memory, admin: redis.Redis
) -> None:
    real_mem.d = {f"key-{index}": index for index in range(2500)}
    node_id = real_mem.d._id
    assert _kind(admin, real_mem, node_id) == "list"
    for index in range(2499):
        del real_mem.d[f"key-{index}"]
    assert list(real_mem.d.items()) == [("key-2499", 2499)]
    assert real_mem.d.popitem() == ("key-2499", 2499)
    assert _kind(admin, real_mem, node_id) == "none"

    real_mem.d[1] = "one"
    real_mem.d[True] = "true"
    real_mem.d.update({1.0: "float", 2: "two"})
    assert _kind(admin, real_mem, node_id) == "inline"
    assert list(real_mem.d.items()) == [(1, "float"), (2, "two")]
    assert [type(key) for key in real_mem.d] == [int, int]


def test_large_sorted_set_order_pops(real_mem: Memory, admin: redis.Redis) -> None:
    plain = {f"key-{index}": index for index in range(2500)}
    real_mem.d = plain
    node_id = real_mem.d._id
    plant_sorted_set_order(admin, real_mem._namespace, node_id)
    fresh = Memory(namespace=real_mem._namespace, cache=False)

    assert list(fresh.d) == list(plain)
    for _ in range(3):
        assert real_mem.d.popitem() == plain.popitem()
    assert _kind(admin, real_mem, node_id) == "list"
    assert list(fresh.d.items()) == list(plain.items())


# -- other processes ------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import json, random, sys, time
    from redis_memory import Memory

    url, namespace, tag, start = sys.argv[1:5]
    shared = Memory(url, namespace).d
    rng = random.Random(tag)
    plain = {}
    keys = [f"{tag}{index}" for index in range(6)]
    keys += [f"{tag}-long-{index}-" + "x" * 20 for index in range(3)]
    while time.time() < float(start):
        pass
    for step in range(300):
        key = rng.choice(keys)
        choice = rng.random()
        if choice < 0.45:
            shared[key] = step
            plain[key] = step
        elif choice < 0.75:
            assert shared.pop(key, None) == plain.pop(key, None)
        elif choice < 0.9:
            items = [(rng.choice(keys), step) for _ in range(rng.randrange(4))]
            shared.update(items)
            plain.update(items)
        else:
            assert shared.setdefault(key, -step) == plain.setdefault(key, -step)
    print(json.dumps(list(plain.items())))
    """
)


def test_concurrent_processes_keep_own_order(
    cached: Memory, server_url: str, admin: redis.Redis
) -> None:
    """Three processes change disjoint keys of one dict at once.

    Each one's keys end in the order its own changes give them, and a cached
    reader that syncs reads whole dicts, each key once, while they write.
    """
    cached.d = {}
    start = time.time() + 1.0
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WRITER,
                server_url,
                cached._namespace,
                tag,
                str(start),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in "ABC"
    ]
    while any(writer.poll() is None for writer in writers):
        cached._sync()
        read = list(cached.d)
        assert len(read) == len(set(read))
    outputs = [writer.communicate(timeout=60)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0]

    cached._sync()
    final = list(cached.d.items())
    assert final == list(Memory(server_url, cached._namespace, cache=False).d.items())
    assert len(cached.d) == len(final)
    for tag, output in zip("ABC", outputs, strict=True):
        own = [(key, value) for key, value in final if key.startswith(tag)]
        assert own == [tuple(pair) for pair in json.loads(output)]
    read_orders(admin, cached._namespace)


def test_cached_reader_sees_other_process(cached: Memory, admin: redis.Redis) -> None:
    cached.d = {"a": 1}
    assert list(cached.d.items()) == [("a", 1)]
    assert len(cached.d) == 1

    popped = run_python(
        """
        shared = mem.d
        shared.update({f"key-{index}": index for index in range(10)})
        del shared["a"]
        emit(shared.popitem())
        """,
        namespace=cached._namespace,
    )
    assert popped == ["key-9", 9]

    cached._sync()
    expected = {f"key-{index}": index for index in range(9)}
    assert list(cached.d.items()) == list(expected.items())
    assert len(cached.d) == 9
    assert cached.d["key-0"] == 0
    assert "a" not in cached.d
    assert _kind(admin, cached, cached.d._id) == "list"


# -- a popitem that fails ---------------------------------------------------------


def _break_child(admin: redis.Redis, namespace: str, node_id: str) -> None:
    """Delete a nested node but keep its reference, as a foreign writer could."""
    keys = KeySpace(namespace)
    admin.hdel(keys.meta, node_id)
    admin.delete(keys.node(node_id), keys.order(node_id))


@pytest.mark.parametrize(
    "padding",
    [
        pytest.param({}, id="inline"),
        pytest.param({f"padding-{index:02}": index for index in range(8)}, id="list"),
    ],
)
def test_popitem_that_fails_changes_nothing(
    real_mem: Memory, admin: redis.Redis, padding: dict[str, int]
) -> None:
    # The newest value references a node that is gone, so its dump fails, and
    # a deleted key after it leaves a stale entry at the end of an order LIST.
    real_mem.d = {**padding, "first": 1, "last": {"x": 1}, "gone": 2}
    del real_mem.d["gone"]
    _break_child(admin, real_mem._namespace, real_mem.d["last"]._id)
    expected = [*padding, "first", "last"]

    with pytest.raises(CorruptValueError, match="node that does not exist"):
        real_mem.d.popitem()

    assert list(real_mem.d) == expected
    assert len(real_mem.d) == len(expected)
    with pytest.raises(CorruptValueError, match="node that does not exist"):
        real_mem.d.popitem()


def test_namespace_popitem_that_fails_changes_nothing(
    real_mem: Memory, admin: redis.Redis
) -> None:
    real_mem.cfg = {"k": "v"}
    real_mem.last = [1]
    _break_child(admin, real_mem._namespace, real_mem.last._id)

    with pytest.raises(CorruptValueError, match="node that does not exist"):
        real_mem._root.popitem()

    assert list(real_mem) == ["cfg", "last"]
    assert len(real_mem) == 2

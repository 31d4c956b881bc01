"""mem._batch(): queued changes, sent in one script call when the block ends."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from redis_memory import Memory, StaleReferenceError
from redis_memory.batch import Batch


def record_script_calls(mem: Memory, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every script that ``mem`` sends from now on."""
    connection = mem._store.connection
    sent: list[str] = []
    original = connection.script

    def record(script: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(script.name)
        return original(script, *args, **kwargs)

    monkeypatch.setattr(connection, "script", record)
    return sent


# -- what a batch sends --------------------------------------------------------


def test_batch_appends_persist(mem: Memory, other: Memory) -> None:
    mem.items = [0]
    items = mem.items
    with mem._batch():
        for value in range(1, 101):
            items.append(value)
        assert other.items == [0]
    assert other.items == list(range(101))


def test_batch_sends_one_script_call(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem.items = []
    mem.cfg = {}
    items, cfg = mem.items, mem.cfg
    sent = record_script_calls(mem, monkeypatch)
    with mem._batch():
        for value in range(50):
            items.append(value)
            cfg[f"k{value}"] = value
    assert sent == ["batch"]
    assert len(mem.items) == 50
    assert len(mem.cfg) == 50


def test_empty_batch_sends_nothing(
    mem: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_script_calls(mem, monkeypatch)
    with mem._batch() as batch:
        assert len(batch) == 0
    assert sent == []


def test_batch_applies_operations_in_order(mem: Memory, other: Memory) -> None:
    mem.items = [1, 2, 3]
    mem.cfg = {"a": 1, "b": 2}
    mem.obsolete = "x"
    items, cfg = mem.items, mem.cfg
    expected_items = [1, 2, 3]
    expected_cfg = {"a": 1, "b": 2}
    with mem._batch():
        items.append(4)
        expected_items.append(4)
        items.insert(0, 0)
        expected_items.insert(0, 0)
        items[2] = "two"
        expected_items[2] = "two"
        items[1:3] = [10, 20, 30]
        expected_items[1:3] = [10, 20, 30]
        del items[-1]
        del expected_items[-1]
        del items[0:1]
        del expected_items[0:1]
        items.extend([[5, 6], {"k": "v"}])
        expected_items.extend([[5, 6], {"k": "v"}])
        items.append(7)
        expected_items.append(7)
        items.reverse()
        expected_items.reverse()
        cfg["c"] = [1, {"d": 2}]
        expected_cfg["c"] = [1, {"d": 2}]
        cfg.update({"a": 10}, e=5)
        expected_cfg.update({"a": 10}, e=5)
        del cfg["b"]
        del expected_cfg["b"]
        cfg |= {"f": None}
        expected_cfg |= {"f": None}
        mem.new = {"n": [1]}
        del mem.obsolete
    assert other.items == expected_items
    assert other.cfg == expected_cfg
    assert other.new == {"n": [1]}
    assert "obsolete" not in other


def test_batch_merges_appends_in_order(mem: Memory, other: Memory) -> None:
    mem.a = []
    mem.b = []
    a, b = mem.a, mem.b
    with mem._batch() as batch:
        a.append(1)
        a.append([2, [3]])
        a.extend([4, {"five": 5}])
        b.append("b1")
        a.append(6)
        a += [7]
        assert len(batch) == 3
    assert other.a == [1, [2, [3]], 4, {"five": 5}, 6, 7]
    assert other.b == ["b1"]


def test_batch_clear_and_namespace_writes(mem: Memory, other: Memory) -> None:
    mem.items = [1, [2]]
    mem.keep = 1
    items = mem.items
    with mem._batch():
        items.clear()
        items.append(3)
        mem._update(x=1, y=[2])
    assert other.items == [3]
    assert other._asdict() == {"items": [3], "keep": 1, "x": 1, "y": [2]}


# -- reads inside a batch ----------------------------------------------------


def test_reads_ignore_queued_changes(mem: Memory) -> None:
    mem.items = [1]
    items = mem.items
    with mem._batch():
        items.append(2)
        assert items.aslist() == [1]
        assert len(items) == 1
        mem.fresh = 1
        with pytest.raises(AttributeError, match="fresh"):
            mem.fresh
    assert mem.items == [1, 2]
    assert mem.fresh == 1


def test_cached_reads_see_batch_writes(real_mem: Memory) -> None:
    real_mem.items = [1]
    real_mem.cfg = {"a": 1}
    assert real_mem.items == [1]
    assert real_mem.cfg["a"] == 1
    items, cfg = real_mem.items, real_mem.cfg
    with real_mem._batch():
        items.append(2)
        cfg["a"] = 2
    assert real_mem.items == [1, 2]
    assert real_mem.cfg["a"] == 2


# -- errors --------------------------------------------------------------------


def test_exception_in_block_discards_queue(mem: Memory, other: Memory) -> None:
    mem.items = [1]
    items = mem.items
    with pytest.raises(ZeroDivisionError):
        with mem._batch():
            items.append(2)
            mem.other = 3
            1 / 0
    assert other.items == [1]
    assert "other" not in other


@pytest.mark.parametrize(
    ("operation", "method"),
    [
        (lambda mem: mem.items.pop(), "SyncedList.pop()"),
        (lambda mem: mem.items.remove(1), "SyncedList.remove()"),
        (lambda mem: mem.items.sort(), "SyncedList.sort()"),
        (lambda mem: mem.items.__imul__(2), "SyncedList *="),
        (lambda mem: mem.cfg.pop("a"), "SyncedDict.pop()"),
        (lambda mem: mem.cfg.popitem(), "SyncedDict.popitem()"),
        (lambda mem: mem.cfg.setdefault("z", 1), "SyncedDict.setdefault()"),
    ],
)
def test_result_needing_operation_raises(
    mem: Memory, other: Memory, operation: Any, method: str
) -> None:
    mem.items = [1, 2]
    mem.cfg = {"a": 1}
    message = re.escape(f"{method} cannot run inside mem._batch()")
    with pytest.raises(TypeError, match=message):
        with mem._batch():
            mem.items.append(3)
            operation(mem)
    assert other.items == [1, 2]
    assert other.cfg == {"a": 1}


def test_failed_operation_stops_batch(mem: Memory, other: Memory) -> None:
    mem.items = [1]
    mem.cfg = {}
    items, cfg = mem.items, mem.cfg
    with pytest.raises(IndexError, match="list assignment index out of range") as info:
        with mem._batch():
            cfg["before"] = 1
            items[5] = "x"
            cfg["after"] = 2
    assert other.cfg == {"before": 1}
    assert other.items == [1]
    notes = getattr(info.value, "__notes__", None)
    if notes is not None:
        assert "call 2 of 3" in notes[0]


def test_missing_key_delete_raises_at_exit(mem: Memory, other: Memory) -> None:
    mem.cfg = {"a": 1}
    cfg = mem.cfg
    with pytest.raises(KeyError, match="'nope'"):
        with mem._batch():
            cfg["b"] = 2
            del cfg["nope"]
            cfg["c"] = 3
    assert other.cfg == {"a": 1, "b": 2}


def test_deleted_node_fails_before_writing(mem: Memory, other: Memory) -> None:
    mem.items = [1]
    mem.cfg = {}
    items, cfg = mem.items, mem.cfg
    with pytest.raises(StaleReferenceError):
        with mem._batch():
            cfg["written"] = True
            items.append(2)
            del other.items
    assert other.cfg == {}
    assert "items" not in other


def test_node_deleted_by_batch_stops_it(mem: Memory, other: Memory) -> None:
    mem.items = [1]
    mem.cfg = {}
    items, cfg = mem.items, mem.cfg
    with pytest.raises(StaleReferenceError):
        with mem._batch():
            cfg["first"] = 1
            del mem.items
            items.append(2)
            cfg["last"] = 2
    assert other.cfg == {"first": 1}
    assert "items" not in other


def test_unsupported_value_raises_in_block(mem: Memory, other: Memory) -> None:
    mem.items = []
    items = mem.items
    with pytest.raises(TypeError, match="object"):
        with mem._batch():
            items.append(1)
            items.append(object())
    assert other.items == []


def test_batch_survives_script_flush(mem: Memory, other: Memory) -> None:
    mem.items = []
    items = mem.items
    with mem._batch():
        items.append(1)
        mem._store.connection.client.script_flush()
    assert other.items == [1]


# -- threads and nesting -----------------------------------------------------


def test_other_threads_write_at_once(mem: Memory, other: Memory) -> None:
    mem.items = []
    mem.log = []
    items, log = mem.items, mem.log
    seen: list[Any] = []

    def write_elsewhere() -> None:
        log.append("thread")
        seen.append(other.log.aslist())

    with mem._batch():
        items.append("queued")
        thread = threading.Thread(target=write_elsewhere)
        thread.start()
        thread.join()
        assert other.items == []
    assert seen == [["thread"]]
    assert other.items == ["queued"]


def test_exit_from_other_thread_raises(mem: Memory) -> None:
    batch = mem._batch()
    batch.__enter__()
    errors: list[BaseException] = []

    def close() -> None:
        try:
            batch.__exit__(None, None, None)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join()
    batch.__exit__(None, None, None)
    assert len(errors) == 1
    assert "thread that opened it" in str(errors[0])


def test_nested_batch_joins_outer(
    mem: Memory, other: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem.items = []
    items = mem.items
    sent = record_script_calls(mem, monkeypatch)
    with mem._batch():
        items.append(1)
        with mem._batch():
            items.append(2)
        assert sent == []
        assert other.items == []
    assert sent == ["batch"]
    assert other.items == [1, 2]


def test_failed_inner_batch_discards_own_changes(mem: Memory, other: Memory) -> None:
    mem.items = []
    mem.cfg = {}
    items, cfg = mem.items, mem.cfg
    with mem._batch():
        items.append(1)
        try:
            with mem._batch():
                items.append(2)
                cfg["inner"] = True
                raise ValueError("inner")
        except ValueError:
            pass
        items.append(3)
    assert other.items == [1, 3]
    assert other.cfg == {}


def test_batch_cannot_be_reentered(mem: Memory) -> None:
    batch = mem._batch()
    with batch:
        pass
    with pytest.raises(RuntimeError, match="already entered"):
        with batch:
            pass


def test_batch_length_and_repr(mem: Memory) -> None:
    mem.items = []
    mem.cfg = {}
    items, cfg = mem.items, mem.cfg
    with mem._batch() as batch:
        items.append(1)
        items.append(2)
        cfg["a"] = 1
        assert isinstance(batch, Batch)
        assert len(batch) == 2
        assert repr(batch) == f"<Batch of 2 calls on {mem._namespace!r}>"

"""One run of every kind of Memory operation, checked against plain Python values.

The cluster, Sentinel and Redis 7 tests call `exercise_operations` to show
that each Lua script and plain command works on that deployment.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from redis_memory import Memory
from redis_memory.feed import Change


def exercise_operations(mem: Memory) -> None:
    """Run list, dict, namespace and nested operations on ``mem`` and check each result.

    ``mem`` must be an empty namespace. The namespace is left with the values
    that the end of the function checks.
    """
    # Scalars and names.
    mem.number = 42
    mem["name with spaces: {braces} ✓"] = "héllo"
    assert mem.number == 42
    assert mem["name with spaces: {braces} ✓"] == "héllo"
    assert "number" in mem

    # Lists: every script that changes a list.
    model: list[Any] = [1, 2, 3]
    mem.tasks = [1, 2, 3]
    tasks = mem.tasks
    for target in (tasks, model):
        target.append(4)
        target.extend([5, 6])
        target.insert(0, 0)
        target[1] = "one"
        del target[2]
        target[1:3] = ["a", "b", "c"]
        del target[::3]
        target.reverse()
        target.remove("a")
    assert tasks.pop() == model.pop()
    assert tasks.pop(0) == model.pop(0)
    assert tasks[1:] == model[1:]
    assert tasks[-1] == model[-1]
    assert len(tasks) == len(model)
    assert tasks == model

    mem.numbers = [5, 3, 9, 1]
    mem.numbers.sort(reverse=True)
    assert mem.numbers == [9, 5, 3, 1]

    # Dicts, nested containers and the namespace's own update.
    mem.cfg = {"users": [{"name": "ada", "tags": ["x"]}], "n": 1}
    cfg = mem.cfg
    cfg["users"][0]["tags"].append("y")
    cfg.update(extra=1)
    cfg.setdefault("opts", {})["k"] = 2
    assert cfg.pop("n") == 1
    assert cfg.popitem() == ("opts", {"k": 2})
    del cfg["users"][0]["name"]
    assert cfg == {"users": [{"tags": ["x", "y"]}], "extra": 1}
    mem._update(a=1, b=[1, {"c": 2}])

    # Reads of the whole namespace, the version counter and deletion.
    version = mem._version()
    assert version > 0
    del mem.number
    assert "number" not in mem
    assert mem._version() == version + 1
    assert mem._asdict() == {
        "name with spaces: {braces} ✓": "héllo",
        "tasks": model,
        "numbers": [9, 5, 3, 1],
        "cfg": {"users": [{"tags": ["x", "y"]}], "extra": 1},
        "a": 1,
        "b": [1, {"c": 2}],
    }
    assert list(mem) == [
        "name with spaces: {braces} ✓",
        "tasks",
        "numbers",
        "cfg",
        "a",
        "b",
    ]
    cfg.clear()
    assert len(mem.cfg) == 0


def wait_for_change(
    changes: queue.Queue[Change], predicate: Callable[[Change], bool], timeout: float
) -> Change:
    """Take changes from ``changes`` until one matches ``predicate``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching change within {timeout} s")
        try:
            change = changes.get(timeout=remaining)
        except queue.Empty:
            continue
        if predicate(change):
            return change

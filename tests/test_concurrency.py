"""Several processes writing one namespace at once lose nothing."""

from __future__ import annotations

import multiprocessing

import pytest

from redis_memory import Memory

pytestmark = pytest.mark.slow


def _append_worker(namespace: str, worker: int, count: int) -> None:
    mem = Memory(namespace=namespace)
    items = mem.shared
    for i in range(count):
        items.append((worker, i))


def _setdefault_worker(namespace: str, worker: int, count: int) -> None:
    mem = Memory(namespace=namespace)
    groups = mem.groups
    for i in range(count):
        groups.setdefault(f"g{i % 10}", []).append(worker)
        groups.setdefault("first", worker)


def _nested_worker(namespace: str, worker: int, count: int) -> None:
    mem = Memory(namespace=namespace)
    for i in range(count):
        mem.tree["users"][i % 3]["scores"].append(worker)
        mem.tree["counters"][f"w{worker}"] = i
        mem.tree["log"].insert(0, worker)
        if i % 5 == 0:
            mem.tree["log"].pop()


def _run_workers(target: object, namespace: str, processes: int, count: int) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=target, args=(namespace, worker, count))
        for worker in range(processes)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0


def test_concurrent_appends_lose_nothing(real_mem: Memory, namespace: str) -> None:
    real_mem.shared = []
    _run_workers(_append_worker, namespace, processes=4, count=500)
    items = real_mem.shared.aslist()
    assert len(items) == 2000
    assert sorted(items) == sorted((w, i) for w in range(4) for i in range(500))
    for worker in range(4):
        assert [i for w, i in items if w == worker] == list(range(500))


def test_concurrent_setdefault(real_mem: Memory, namespace: str) -> None:
    real_mem.groups = {}
    _run_workers(_setdefault_worker, namespace, processes=4, count=200)
    groups = real_mem.groups.asdict()
    assert sum(len(groups[f"g{i}"]) for i in range(10)) == 800
    for i in range(10):
        assert sorted(groups[f"g{i}"]) == sorted([0, 1, 2, 3] * 20)
    assert groups["first"] in range(4)


def test_concurrent_nested_updates(real_mem: Memory, namespace: str) -> None:
    real_mem.tree = {
        "users": [{"scores": []}, {"scores": []}, {"scores": []}],
        "counters": {},
        "log": [],
    }
    _run_workers(_nested_worker, namespace, processes=4, count=150)
    tree = real_mem.tree.asdict()
    scores = [score for user in tree["users"] for score in user["scores"]]
    assert sorted(scores) == sorted([0, 1, 2, 3] * 150)
    assert tree["counters"] == {f"w{w}": 149 for w in range(4)}
    assert len(tree["log"]) == 4 * 150 - 4 * 30

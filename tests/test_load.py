"""Concurrency under load: the final state equals a serial replay of every change.

Eight processes make 2,000 mixed changes each to one shared nested structure.
Each process logs its successful changes in order. The test follows the
change feed, whose messages carry the namespace version and the writer's
origin id, so the k-th message of an origin is that process's k-th logged
change. Replaying the logs in version order on plain Python values must give
the stored state, with every version from first to last seen exactly once.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import random
import time
from pathlib import Path
from typing import Any

import pytest

from redis_memory import Memory, feed

pytestmark = pytest.mark.slow

PROCESSES = 8
OPERATIONS = 2_000
LISTS = 3


# The feed's operation name for each kind of logged change.
_FEED_OPERATIONS = {
    "append": "append",
    "insert": "insert",
    "pop": "pop",
    "setitem": "setitem",
    "delitem": "delitem",
    "extend": "extend",
    "log": "append",
}


def initial_state() -> dict[str, Any]:
    return {"lists": [[] for _ in range(LISTS)], "counters": {}, "log": []}


def _worker(namespace: str, worker: int, log_path: str) -> None:
    """Make OPERATIONS random changes, then write (origin, [change, ...]) as JSON.

    A change is [kind, list index or deleted key number, operation number].
    """
    mem = Memory(namespace=namespace)
    shared = mem.shared
    lists = [shared["lists"][index] for index in range(LISTS)]
    counters = shared["counters"]
    log = shared["log"]
    chooser = random.Random(worker)
    done: list[list[Any]] = []
    for number in range(OPERATIONS):
        item = f"{worker}:{number}"
        index = chooser.randrange(LISTS)
        kind = chooser.choice(
            ["append", "insert", "pop", "setitem", "delitem", "extend", "log"]
        )
        try:
            if kind == "append":
                lists[index].append(item)
            elif kind == "insert":
                lists[index].insert(0, item)
            elif kind == "pop":
                lists[index].pop()
            elif kind == "setitem":
                counters[f"k{number % 7}"] = item
            elif kind == "delitem":
                index = chooser.randrange(7)
                del counters[f"k{index}"]
            elif kind == "extend":
                lists[index].extend([item, item + "b"])
            else:
                log.append(item)
        except (IndexError, KeyError):
            continue
        done.append([kind, index, number])
    Path(log_path).write_text(json.dumps([mem._store.origin, done]))


def _replay(state: dict[str, Any], worker: int, change: list[Any]) -> None:
    kind, index, number = change
    item = f"{worker}:{number}"
    if kind == "append":
        state["lists"][index].append(item)
    elif kind == "insert":
        state["lists"][index].insert(0, item)
    elif kind == "pop":
        state["lists"][index].pop()
    elif kind == "setitem":
        state["counters"][f"k{number % 7}"] = item
    elif kind == "delitem":
        del state["counters"][f"k{index}"]
    elif kind == "extend":
        state["lists"][index].extend([item, item + "b"])
    elif kind == "log":
        state["log"].append(item)
    else:
        raise AssertionError(f"unexpected change {change}")


def test_parallel_changes_equal_serial_replay(
    real_mem: Memory, namespace: str, tmp_path: Path
) -> None:
    real_mem.shared = initial_state()
    start_version = real_mem._version()
    changes: queue.Queue[feed.Change] = queue.Queue()
    context = multiprocessing.get_context("spawn")
    log_paths = [tmp_path / f"worker{worker}.json" for worker in range(PROCESSES)]
    workers = [
        context.Process(target=_worker, args=(namespace, worker, str(path)))
        for worker, path in enumerate(log_paths)
    ]

    with feed.subscribe(real_mem, changes.put):
        started = time.monotonic()
        for process in workers:
            process.start()
        for process in workers:
            process.join(240)
        elapsed = time.monotonic() - started
        for process in workers:
            assert process.exitcode == 0
        logs = [json.loads(path.read_text()) for path in log_paths]
        total = sum(len(done) for _, done in logs)
        received = _receive(changes, total)

    print(f"{PROCESSES} x {OPERATIONS} changes in {elapsed:.1f} s, {total} applied")
    versions = [change.version for change in received]
    assert versions == list(range(start_version + 1, start_version + total + 1))
    worker_of = {origin: worker for worker, (origin, _) in enumerate(logs)}
    positions = dict.fromkeys(worker_of, 0)
    state = initial_state()
    for change in received:
        worker = worker_of[change.origin]
        logged = logs[worker][1][positions[change.origin]]
        positions[change.origin] += 1
        assert change.op == _FEED_OPERATIONS[logged[0]]
        _replay(state, worker, logged)
    assert positions == {origin: len(done) for origin, done in logs}
    assert real_mem.shared.asdict() == state


def _receive(changes: queue.Queue[feed.Change], total: int) -> list[feed.Change]:
    received: list[feed.Change] = []
    deadline = time.monotonic() + 60
    while len(received) < total and time.monotonic() < deadline:
        try:
            change = changes.get(timeout=1)
        except queue.Empty:
            continue
        assert not change.resync
        received.append(change)
    return sorted(received, key=lambda change: change.version)

"""Timing of operations in repeated, interleaved rounds.

Every contender (raw redis-py, redis-memory, pottery) runs one round in turn,
so that a slow phase of the machine hits all of them alike. A round runs a
fixed count of operations but stops early once its time budget is spent, so
slow contenders at large sizes cannot stretch the run. The result of a
contender is the median over rounds of the seconds per operation.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Contender", "Settings", "measure", "time_once"]

Operation = Callable[[int], object]
"""One operation; it receives its sequence number within the round."""

Reset = Callable[[int], None]
"""Restores the state after a round of ``done`` operations; not timed."""


@dataclass(frozen=True)
class Settings:
    """How long to measure.

    Attributes
    ----------
    rounds : int
        Rounds per contender; the median is reported.
    ops : int
        Operations per round of a cheap operation.
    budget : float
        Seconds after which a round stops even when ``ops`` are not done.
    """

    rounds: int
    ops: int
    budget: float


@dataclass(frozen=True)
class Contender:
    """One implementation of an operation.

    Attributes
    ----------
    name : str
        ``"raw"``, ``"ours"`` or ``"pottery"``.
    operation : Operation
        The timed call.
    reset : Reset or None
        Brings the data back to its size before the round, untimed.
    """

    name: str
    operation: Operation
    reset: Reset | None = None


def measure(
    contenders: Sequence[Contender], settings: Settings, *, ops: int | None = None
) -> dict[str, float]:
    """Return each contender's median seconds per operation.

    Parameters
    ----------
    contenders : sequence of Contender
        Timed in turn, once per round.
    settings : Settings
        Rounds and time budget.
    ops : int, optional
        Operations per round, instead of ``settings.ops``; 1 for whole reads.
    """
    count = settings.ops if ops is None else ops
    samples: dict[str, list[float]] = {contender.name: [] for contender in contenders}
    for _ in range(settings.rounds):
        for contender in contenders:
            gc.collect()
            done, elapsed = _run_round(contender.operation, count, settings.budget)
            samples[contender.name].append(elapsed / done)
            if contender.reset is not None:
                contender.reset(done)
    return {name: statistics.median(values) for name, values in samples.items()}


def time_once(action: Callable[[], object]) -> float:
    """Return the seconds that one call of ``action`` takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _run_round(operation: Operation, count: int, budget: float) -> tuple[int, float]:
    # Reading the clock after every operation costs 40 ns (timeit, Python 3.11),
    # the same for every contender, and stops slow operations once the budget is spent.
    clock = time.perf_counter
    start = clock()
    deadline = start + budget
    done = 0
    while done < count:
        operation(done)
        done += 1
        if clock() > deadline:
            break
    return done, clock() - start

"""Timing of operations in repeated rounds of finely interleaved slices.

Within a round, the contenders (raw redis-py, redis-memory, pottery) take
turns in slices of about a millisecond each, so that a slow phase of the
machine, caused for example by other programs, hits all of them alike. A round
gives each contender a fixed count of operations but ends early once its time
budget is spent, so slow contenders at large sizes cannot stretch the run. The
result of a contender is the median over rounds of its seconds per operation.
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

# A slice ends after this many operations or seconds, whichever comes first.
_SLICE_OPS = 50
_SLICE_SECONDS = 0.001


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
        Seconds per contender after which a round stops even when ``ops``
        are not done.
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
        Timed in turn, slice by slice, in every round.
    settings : Settings
        Rounds and time budget per contender and round.
    ops : int, optional
        Operations per round, instead of ``settings.ops``; 1 for whole reads.
    """
    count = settings.ops if ops is None else ops
    samples: dict[str, list[float]] = {contender.name: [] for contender in contenders}
    for _ in range(settings.rounds):
        gc.collect()
        done, spent = _run_round(contenders, count, settings.budget)
        for index, contender in enumerate(contenders):
            samples[contender.name].append(spent[index] / done[index])
            if contender.reset is not None:
                contender.reset(done[index])
    return {name: statistics.median(values) for name, values in samples.items()}


def time_once(action: Callable[[], object]) -> float:
    """Return the seconds that one call of ``action`` takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _run_round(
    contenders: Sequence[Contender], count: int, budget: float
) -> tuple[list[int], list[float]]:
    """Return the operations done and the seconds spent by each contender."""
    clock = time.perf_counter
    done = [0] * len(contenders)
    spent = [0.0] * len(contenders)
    deadline = clock() + budget * len(contenders)
    while clock() < deadline:
        pending = False
        for index, contender in enumerate(contenders):
            if done[index] >= count:
                continue
            operation = contender.operation
            number = done[index]
            stop = min(count, number + _SLICE_OPS)
            # Reading the clock after every operation costs 40 ns (timeit,
            # Python 3.11), the same for every contender.
            start = clock()
            slice_end = start + _SLICE_SECONDS
            while number < stop:
                operation(number)
                number += 1
                if clock() > slice_end:
                    break
            spent[index] += clock() - start
            done[index] = number
            pending = pending or number < count
        if not pending:
            break
    return done, spent

"""10,000 appends: one by one, in a ``mem._batch()``, and in a raw pipeline."""

from __future__ import annotations

from fixtures import Context
from results import Row
from timing import Contender, measure

__all__ = ["APPENDS", "measure_batches"]

APPENDS = 10_000
SECTION = "Batches"


def measure_batches(context: Context) -> list[Row]:
    """Time 10,000 appends unbatched, batched and as a raw MULTI/EXEC pipeline.

    Times in the rows are per append. The batched row's target compares it
    with the raw pipeline. The speed-up over unbatched appends is a row of
    its own, whose "raw" figure is the unbatched time.
    """
    raw, mem = context.raw, context.mem
    if not hasattr(mem, "_batch"):
        return []
    raw.delete("raw:batch")
    mem.batch = []
    ours = mem.batch
    values = range(APPENDS)

    def unbatched(i: int) -> None:
        for value in values:
            ours.append(value)

    def batched(i: int) -> None:
        with mem._batch():
            for value in values:
                ours.append(value)

    def pipelined(i: int) -> None:
        pipe = raw.pipeline(transaction=True)
        for value in values:
            pipe.rpush("raw:batch", value)
        pipe.execute()

    def clear_ours(done: int) -> None:
        ours.clear()

    def clear_raw(done: int) -> None:
        raw.delete("raw:batch")

    times = measure(
        [
            Contender("raw", pipelined, clear_raw),
            Contender("ours", batched, clear_ours),
            Contender("unbatched", unbatched, clear_ours),
        ],
        context.settings,
        ops=1,
    )
    del mem.batch
    raw.delete("raw:batch")
    per_append = {name: seconds / APPENDS for name, seconds in times.items()}
    return [
        Row(
            SECTION,
            f"{APPENDS:,} `append` in `with mem._batch()`",
            per_append["ours"],
            per_append["raw"],
            min_ratio=0.5,
            target=">= 0.5x raw",
            note="raw: one MULTI/EXEC pipeline of RPUSH; rates are appends per second",
        ),
        Row(
            SECTION,
            f"{APPENDS:,} `append` in a batch, against unbatched",
            per_append["ours"],
            per_append["unbatched"],
            min_ratio=10.0,
            target=">= 10x unbatched",
            note="the raw column here is redis-memory without a batch",
        ),
    ]

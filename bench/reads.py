"""Reads: whole collections, a nested value, and small reads of unchanged data.

The raw contender reads the same data from plain keys and gets bytes back,
while redis-memory and pottery return decoded Python values.
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any
from urllib.parse import unquote

import redis
from fixtures import Context
from pottery import RedisDict, RedisList
from results import LatencyRow, Row
from timing import Contender, measure

from redis_memory import Memory

__all__ = [
    "count_round_trips",
    "measure_coherence",
    "measure_reads",
    "nested_value",
]

LIST_SIZE = 100_000
# Seconds after which a change not yet seen by a cached read counts as a timeout.
_COHERENCE_TIMEOUT = 1.0
# 1,000 records of 100 scalars each: an id, a name and 98 scores.
RECORDS = 1_000
SCORES = 98


def nested_value() -> dict[str, Any]:
    """Return the nested value of 100,000 scalars that the load is timed on."""
    return {
        "rows": [
            {"id": index, "name": f"user-{index}", "scores": list(range(SCORES))}
            for index in range(RECORDS)
        ]
    }


def measure_reads(context: Context) -> list[Row]:
    """Time whole-list reads, the nested load, and small reads with and without the cache."""
    with warnings.catch_warnings():
        # pottery warns that reading a whole list is slow.
        warnings.simplefilter("ignore")
        return [
            _whole_list(context),
            _nested_load(context),
            *_small_reads(context),
        ]


def _whole_list(context: Context) -> Row:
    raw, mem = context.raw, context.mem
    raw.delete("raw:whole", "pottery:whole")
    raw.rpush("raw:whole", *range(LIST_SIZE))
    mem.whole = list(range(LIST_SIZE))
    ours = mem.whole
    pottery = RedisList(range(LIST_SIZE), redis=context.pottery, key="pottery:whole")

    times = measure(
        [
            Contender("raw", lambda i: raw.lrange("raw:whole", 0, -1)),
            Contender("ours", lambda i: ours.aslist()),
            Contender("pottery", lambda i: pottery.to_list()),
        ],
        context.settings,
        ops=1,
    )
    del mem.whole
    raw.delete("raw:whole", "pottery:whole")
    return Row(
        "Whole reads",
        f"`aslist()` of a {LIST_SIZE:,}-element list",
        times["ours"],
        times["raw"],
        times["pottery"],
        min_ratio=0.5,
        target="<= 2x raw time",
        note="raw: LRANGE 0 -1 returning bytes; ours and pottery decode ints",
    )


def _store_plain_nested(client: redis.Redis) -> None:
    """Store the nested value as plain keys: a HASH and a LIST per record."""
    pipe = client.pipeline(transaction=False)
    for index in range(RECORDS):
        pipe.hset(f"raw:rec:{index}", mapping={"id": index, "name": f"user-{index}"})
        pipe.rpush(f"raw:rec:{index}:scores", *range(SCORES))
    pipe.execute()


def _read_plain_nested(client: redis.Redis) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for index in range(RECORDS):
        pipe.hgetall(f"raw:rec:{index}")
        pipe.lrange(f"raw:rec:{index}:scores", 0, -1)
    return pipe.execute()


def _nested_load(context: Context) -> Row:
    raw, mem = context.raw, context.mem
    value: Any = nested_value()
    _store_plain_nested(raw)
    mem.nested = value
    ours = mem.nested
    raw.delete("pottery:nested")
    pottery = RedisDict(value, redis=context.pottery, key="pottery:nested")

    times = measure(
        [
            Contender("raw", lambda i: _read_plain_nested(raw)),
            Contender("ours", lambda i: ours.asdict()),
            Contender("pottery", lambda i: pottery.to_dict()),
        ],
        context.settings,
        ops=1,
    )
    del mem.nested
    raw.delete("pottery:nested")
    raw.delete(*[f"raw:rec:{index}" for index in range(RECORDS)])
    raw.delete(*[f"raw:rec:{index}:scores" for index in range(RECORDS)])
    return Row(
        "Whole reads",
        f"`asdict()` of a nested value of {RECORDS * (SCORES + 2):,} scalars",
        times["ours"],
        times["raw"],
        times["pottery"],
        min_ratio=0.5,
        target="<= 2x raw time",
        note=(
            f"raw: one pipeline of {RECORDS:,} HGETALL and {RECORDS:,} LRANGE; "
            "pottery stores the nested part as one JSON text"
        ),
    )


def _small_reads(context: Context) -> list[Row]:
    raw = context.raw
    raw.delete("raw:cfg", "raw:items", "pottery:cfg", "pottery:items")
    raw.hset("raw:cfg", "k", "v")
    raw.rpush("raw:items", *range(1_000))
    config: Any = {"k": "v"}
    pottery_cfg = RedisDict(config, redis=context.pottery, key="pottery:cfg")
    pottery_items = RedisList(range(1_000), redis=context.pottery, key="pottery:items")

    def iterate_pottery(i: int) -> None:
        for _ in pottery_items:
            pass

    rows = []
    for mem, cached in ((context.cached_mem, True), (context.mem, False)):
        mem.cfg = {"k": "v"}
        mem.items = list(range(1_000))

        def read_ours(i: int, mem: Memory = mem) -> object:
            return mem.cfg["k"]

        def length_ours(i: int, mem: Memory = mem) -> int:
            return len(mem.items)

        def iterate_ours(i: int, mem: Memory = mem) -> None:
            for _ in mem.items:
                pass

        # (operation, contenders, what raw runs, operations per round)
        cases: list[tuple[str, list[Contender], str, int]] = [
            (
                "`mem.cfg['k']`",
                [
                    Contender("raw", lambda i: raw.hget("raw:cfg", "k")),
                    Contender("ours", read_ours),
                    Contender("pottery", lambda i: pottery_cfg["k"]),
                ],
                "raw: HGET",
                context.settings.ops,
            ),
            (
                "`len(mem.items)`",
                [
                    Contender("raw", lambda i: raw.llen("raw:items")),
                    Contender("ours", length_ours),
                    Contender("pottery", lambda i: len(pottery_items)),
                ],
                "raw: LLEN",
                context.settings.ops,
            ),
            (
                "iterate `mem.items` (1,000 elements)",
                [
                    Contender("raw", lambda i: raw.lrange("raw:items", 0, -1)),
                    Contender("ours", iterate_ours),
                    Contender("pottery", iterate_pottery),
                ],
                "raw: LRANGE 0 -1",
                max(1, context.settings.ops // 10),
            ),
        ]
        for operation, contenders, note, ops in cases:
            times = measure(contenders, context.settings, ops=ops)
            if operation.startswith("iterate") and cached:
                note += _loop_floor(context, times["raw"], ops)
            rows.append(
                Row(
                    "Reads of unchanged values",
                    f"{operation}, read cache {'on' if cached else 'off'}",
                    times["ours"],
                    times["raw"],
                    times["pottery"],
                    min_ratio=20.0 if cached else None,
                    target=">= 20x raw" if cached else "",
                    note=f"{note}; ours reads the handle from mem first",
                )
            )
        del mem.cfg
        del mem.items
    raw.delete("raw:cfg", "raw:items", "pottery:cfg", "pottery:items")
    return rows


def _loop_floor(context: Context, raw_seconds: float, ops: int) -> str:
    """Return a note on the time a bare Python loop over 1,000 items takes."""
    items = tuple(range(1_000))

    def bare_loop(i: int) -> None:
        for _ in items:
            pass

    floor = measure([Contender("loop", bare_loop)], context.settings, ops=ops)["loop"]
    return (
        f"; a bare Python loop over a 1,000-tuple takes {floor * 1e6:.1f} us here, "
        f"{raw_seconds / floor:.1f}x raw by itself"
    )


def measure_coherence(context: Context, changes: int) -> list[LatencyRow]:
    """Time how long a cached read keeps returning a value another client changed.

    A second Memory on its own connection, without a cache, stands for
    another process. After each of its writes, ``mem.cfg['k']`` is read in a
    loop on the cached Memory until it returns the new value. The delay runs
    from the write's return to that read's return.
    """
    reader = context.cached_mem
    path = unquote(context.url.removeprefix("unix://"))
    writer = Memory(
        namespace=reader._namespace, client=redis.Redis(unix_socket_path=path)
    )
    writer.cfg = {"k": -1}
    delays, timeouts = _change_delays(reader, writer, changes)
    del writer.cfg
    note = f"{len(delays)} changes"
    if delays:
        note += f"; maximum {delays[-1] * 1e3:.2f} ms"
    if timeouts:
        note += f"; {timeouts} not seen within {_COHERENCE_TIMEOUT:g} s"
    return [
        LatencyRow(
            "another client's change seen by a cached read: median",
            statistics.median(delays) if delays else None,
            0.005,
            note,
        ),
        LatencyRow(
            "the same: 95th percentile",
            delays[int(len(delays) * 0.95)] if delays else None,
            0.005,
        ),
    ]


def _change_delays(
    reader: Memory, writer: Memory, changes: int
) -> tuple[list[float], int]:
    """Return the sorted delays until ``reader`` saw each change, and the timeouts."""
    delays = []
    timeouts = 0
    for value in range(changes):
        reader.cfg["k"]  # the value is cached now
        writer.cfg["k"] = value
        start = time.perf_counter()
        deadline = start + _COHERENCE_TIMEOUT
        while reader.cfg["k"] != value:
            if time.perf_counter() > deadline:
                timeouts += 1
                break
        else:
            delays.append(time.perf_counter() - start)
    delays.sort()
    return delays, timeouts


class _CountingConnection(redis.UnixDomainSocketConnection):
    """A connection that counts the requests it sends: one per round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


def count_round_trips(
    context: Context, depths: tuple[int, ...]
) -> list[tuple[str, int]]:
    """Return the round trips of ``mem.x.asdict()`` for values nested ``depths`` deep.

    Each value contains 1,000 scalars at its deepest level, inside single-key
    dicts down to that depth.
    """
    path = unquote(context.url.removeprefix("unix://"))
    pool = redis.ConnectionPool(connection_class=_CountingConnection, path=path)
    counted = Memory(
        namespace="bench-round-trips", client=redis.Redis(connection_pool=pool)
    )
    results = []
    for depth in depths:
        value: Any = list(range(1_000))
        for level in range(depth - 1):
            value = {f"level{level}": value}
        counted.x = value
        _CountingConnection.sent = 0
        if isinstance(value, dict):
            counted.x.asdict()
        else:
            counted.x.aslist()
        results.append(
            (f"nested {depth} deep, 1,000 scalars", _CountingConnection.sent)
        )
    counted._clear()
    pool.disconnect()
    return results

"""Single mutations at each collection size: redis-memory, raw redis-py, pottery.

Each size gets its own list, dict and three-level dict per contender. A round
of appends or front inserts grows the list from its size by the round's
operations, and the list is trimmed back afterwards. A round of pops starts
that many elements above the size and ends at it. Dict sets overwrite existing keys, so
the dict keeps its size. The raw contender runs the one command that does the
same to plain keys: RPUSH, RPOP, LPUSH, HSET, and HSET on the key of the
innermost dict for the deep set.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fixtures import Context
from pottery import RedisDict, RedisList
from results import Row, Series, ServerTimeRow
from timing import Contender, measure

__all__ = ["OPERATIONS", "measure_mutations", "measure_server_time"]

# Operations measured at every size, in table order.
OPERATIONS = (
    "append",
    "insert(0, x)",
    # Last of the list operations, because it leaves the lists longer by one round.
    "pop()",
    "d[k] = v",
    "mem.d['a']['b'][k] = v",
)

SECTION = "Single mutations"

# Operations timed on the default Memory(), with the read cache on, and the
# words their rows add.
_CACHED_OPERATIONS = {"mem.d['a']['b'][k] = v": ", read cache on"}
_NOTES = {
    "mem.d['a']['b'][k] = v": (
        "`Memory()` default: the three reads of the path come from the read cache"
    )
}

# Commands of the raw contender, for the server time from INFO commandstats.
_RAW_COMMANDS = {
    "append": "rpush",
    "pop()": "rpop",
    "insert(0, x)": "lpush",
    "d[k] = v": "hset",
    "mem.d['a']['b'][k] = v": "hset",
}


class _Sized:
    """The data of one size for all three contenders."""

    def __init__(self, context: Context, size: int) -> None:
        self.context = context
        self.size = size
        self.keys = [f"k{index}" for index in range(size)]
        raw, mem = context.raw, context.mem

        # Plain keys of the raw contender.
        self.raw_list = f"raw:list:{size}"
        self.raw_dict = f"raw:dict:{size}"
        self.raw_deep = f"raw:deep:{size}:a:b"
        raw.delete(self.raw_list, self.raw_dict, self.raw_deep)
        raw.rpush(self.raw_list, *range(size))
        raw.hset(self.raw_dict, mapping=dict.fromkeys(self.keys, 0))
        raw.hset(self.raw_deep, mapping=dict.fromkeys(self.keys, 0))

        # redis-memory: the handles are read once, as a program that keeps them would.
        self.list_name = f"list{size}"
        self.deep_name = f"deep{size}"
        mem[self.list_name] = list(range(size))
        mem[f"dict{size}"] = dict.fromkeys(self.keys, 0)
        mem[self.deep_name] = {"a": {"b": dict.fromkeys(self.keys, 0)}}
        # The deep set written out is timed on the default Memory(), whose read
        # cache serves the path, as it serves a program's.
        context.cached_mem[self.deep_name] = {"a": {"b": dict.fromkeys(self.keys, 0)}}
        self.ours_list = mem[self.list_name]
        self.ours_dict = mem[f"dict{size}"]

        # pottery keeps a nested value as one JSON text in its parent's hash field.
        self.pottery_list = RedisList(
            range(size), redis=context.pottery, key=f"pottery:list:{size}"
        )
        flat: Any = dict.fromkeys(self.keys, 0)
        deep: Any = {"a": {"b": dict.fromkeys(self.keys, 0)}}
        self.pottery_dict = RedisDict(
            flat,
            redis=context.pottery,
            key=f"pottery:dict:{size}",
        )
        self.pottery_deep = RedisDict(
            deep,
            redis=context.pottery,
            key=f"pottery:deep:{size}",
        )

    def contenders(self, operation: str) -> list[Contender]:
        """Return the raw, ours and pottery contenders of ``operation``."""
        builders: dict[str, Callable[[], list[Contender]]] = {
            "append": self._append,
            "pop()": self._pop,
            "insert(0, x)": self._insert_front,
            "d[k] = v": self._dict_set,
            "mem.d['a']['b'][k] = v": self._deep_set,
        }
        return builders[operation]()

    def _append(self) -> list[Contender]:
        raw, size = self.context.raw, self.size
        ours, pottery = self.ours_list, self.pottery_list

        def trim_ours(done: int) -> None:
            del ours[size:]

        return [
            Contender(
                "raw",
                lambda i: raw.rpush(self.raw_list, i),
                lambda done: _trim(raw, self.raw_list, 0, size - 1),
            ),
            Contender("ours", ours.append, trim_ours),
            Contender(
                "pottery",
                pottery.append,
                lambda done: _trim(raw, pottery.key, 0, size - 1),
            ),
        ]

    def _pop(self) -> list[Contender]:
        raw = self.context.raw
        ours, pottery = self.ours_list, self.pottery_list
        ops = self.context.settings.ops
        # Each round pops down to the size from ops elements above it.
        raw.rpush(self.raw_list, *range(ops))
        ours.extend(range(ops))
        pottery.extend(range(ops))

        def refill_ours(done: int) -> None:
            ours.extend(range(done))

        def refill_pottery(done: int) -> None:
            pottery.extend(range(done))

        return [
            Contender(
                "raw",
                lambda i: raw.rpop(self.raw_list),
                lambda done: _refill(raw, self.raw_list, done),
            ),
            Contender("ours", lambda i: ours.pop(), refill_ours),
            Contender("pottery", lambda i: pottery.pop(), refill_pottery),
        ]

    def _insert_front(self) -> list[Contender]:
        raw = self.context.raw
        ours, pottery = self.ours_list, self.pottery_list

        def trim_ours(done: int) -> None:
            del ours[:done]

        return [
            Contender(
                "raw",
                lambda i: raw.lpush(self.raw_list, i),
                lambda done: _trim(raw, self.raw_list, done, -1),
            ),
            Contender("ours", lambda i: ours.insert(0, i), trim_ours),
            Contender(
                "pottery",
                lambda i: pottery.insert(0, i),
                lambda done: _trim(raw, pottery.key, done, -1),
            ),
        ]

    def _dict_set(self) -> list[Contender]:
        raw, keys, size = self.context.raw, self.keys, self.size
        ours, pottery = self.ours_dict, self.pottery_dict

        def set_ours(i: int) -> None:
            ours[keys[i % size]] = i

        def set_pottery(i: int) -> None:
            pottery[keys[i % size]] = i

        return [
            Contender("raw", lambda i: raw.hset(self.raw_dict, keys[i % size], i)),
            Contender("ours", set_ours),
            Contender("pottery", set_pottery),
        ]

    def _deep_set(self) -> list[Contender]:
        raw, keys, size = self.context.raw, self.keys, self.size
        mem = self.context.cached_mem
        name, pottery = self.deep_name, self.pottery_deep

        def set_ours(i: int) -> None:
            mem[name]["a"]["b"][keys[i % size]] = i

        def set_pottery(i: int) -> None:
            # pottery returns a detached copy, so the nested value is written back whole.
            value: Any = pottery["a"]
            value["b"][keys[i % size]] = i
            pottery["a"] = value

        return [
            Contender("raw", lambda i: raw.hset(self.raw_deep, keys[i % size], i)),
            Contender("ours", set_ours),
            Contender("pottery", set_pottery),
        ]


def _trim(client: Any, key: str, start: int, stop: int) -> None:
    client.ltrim(key, start, stop)


def _refill(client: Any, key: str, count: int) -> None:
    if count:
        client.rpush(key, *range(count))


def measure_mutations(context: Context) -> tuple[list[Row], list[Series]]:
    """Time every single mutation at every size.

    Returns
    -------
    rows : list of Row
        The main table's rows, at ``context.main_size``, plus extra rows there.
    series : list of Series
        Seconds per operation of each contender at each size, for the plot.
    """
    timings: dict[str, dict[int, dict[str, float]]] = {op: {} for op in OPERATIONS}
    with warnings.catch_warnings():
        # pottery warns about operations it considers slow, such as insert(0, x).
        warnings.simplefilter("ignore")
        every_size = {size: _Sized(context, size) for size in context.sizes}
        for operation in OPERATIONS:
            _progress(f"  {operation}")
            # Every size runs in each round, so a slow phase of the machine
            # hits all sizes alike and cannot pass for a cost that grows.
            contenders = [
                replace(contender, name=f"{size} {contender.name}")
                for size, sized in every_size.items()
                for contender in sized.contenders(operation)
            ]
            # pottery runs in rounds of its own: its deep set rewrites the whole
            # value, and interleaved it slowed the other two by up to 50%.
            times = measure(
                [c for c in contenders if not c.name.endswith("pottery")],
                context.settings,
            )
            times |= measure(
                [c for c in contenders if c.name.endswith("pottery")],
                context.settings,
            )
            for size in context.sizes:
                timings[operation][size] = {
                    name: times[f"{size} {name}"] for name in ("raw", "ours", "pottery")
                }
        rows = _extra_rows(context, every_size[context.main_size])
        for sized in every_size.values():
            _drop(context, sized)

    for operation in OPERATIONS:
        at_main = timings[operation][context.main_size]
        rows.insert(
            OPERATIONS.index(operation),
            Row(
                SECTION,
                f"`{operation}`{_CACHED_OPERATIONS.get(operation, '')} "
                f"({context.main_size:,} elements)",
                at_main["ours"],
                at_main["raw"],
                at_main["pottery"],
                min_ratio=0.8,
                target=">= 0.8x raw",
                note=_NOTES.get(operation, ""),
            ),
        )
    series = [
        Series(
            operation,
            context.sizes,
            tuple(timings[operation][size]["ours"] for size in context.sizes),
            tuple(timings[operation][size]["raw"] for size in context.sizes),
            tuple(timings[operation][size]["pottery"] for size in context.sizes),
        )
        for operation in OPERATIONS
    ]
    return rows, series


def _extra_rows(context: Context, sized: _Sized) -> list[Row]:
    """Return the deep set through a kept handle and the dict set of a new key."""
    raw, keys, size = context.raw, sized.keys, sized.size
    handle = context.mem[sized.deep_name]["a"]["b"]

    def set_held(i: int) -> None:
        handle[keys[i % size]] = i

    def set_uncached(i: int) -> None:
        context.mem[sized.deep_name]["a"]["b"][keys[i % size]] = i

    held = measure(
        [
            Contender("raw", lambda i: raw.hset(sized.raw_deep, keys[i % size], i)),
            Contender("ours", set_held),
        ],
        context.settings,
    )
    uncached = measure(
        [
            Contender("raw", lambda i: raw.hset(sized.raw_deep, keys[i % size], i)),
            Contender("ours", set_uncached),
        ],
        context.settings,
    )

    ours, pottery = sized.ours_dict, sized.pottery_dict

    def add_ours(i: int) -> None:
        ours[f"new{i}"] = i

    def add_pottery(i: int) -> None:
        pottery[f"new{i}"] = i

    def remove_ours(done: int) -> None:
        for index in range(done):
            del ours[f"new{index}"]

    def remove_pottery(done: int) -> None:
        for index in range(done):
            del pottery[f"new{index}"]

    added = measure(
        [
            Contender(
                "raw",
                lambda i: raw.hset(sized.raw_dict, f"new{i}", i),
                lambda done: _remove_fields(raw, sized.raw_dict, done),
            ),
            Contender("ours", add_ours, remove_ours),
            Contender("pottery", add_pottery, remove_pottery),
        ],
        context.settings,
    )
    return [
        *_cached_rows(context, sized),
        Row(
            SECTION,
            f"`h[k] = v`, h = mem.d['a']['b'] kept ({size:,} elements)",
            held["ours"],
            held["raw"],
            note="the deep set without reading the path first",
        ),
        Row(
            SECTION,
            f"`mem.d['a']['b'][k] = v`, read cache off ({size:,} elements)",
            uncached["ours"],
            uncached["raw"],
            note="three reads of the path, one round trip each, then the write",
        ),
        Row(
            SECTION,
            f"`d[new_key] = v` ({size:,} elements)",
            added["ours"],
            added["raw"],
            added["pottery"],
            note="adds the key to the dict's order (a LIST) too",
        ),
    ]


def _cached_rows(context: Context, sized: _Sized) -> list[Row]:
    """Return append and dict set on a Memory with the read cache on.

    Every write then goes on the cache's subscription (RESP3), and its own
    change message comes back with the reply.
    """
    raw, mem, keys, size = context.raw, context.cached_mem, sized.keys, sized.size
    mem.items = list(range(size))
    mem.cfg = dict.fromkeys(keys, 0)
    items, cfg = mem.items, mem.cfg

    def trim_items(done: int) -> None:
        del items[size:]

    def set_cfg(i: int) -> None:
        cfg[keys[i % size]] = i

    appends = measure(
        [
            Contender(
                "raw",
                lambda i: raw.rpush(sized.raw_list, i),
                lambda done: _trim(raw, sized.raw_list, 0, size - 1),
            ),
            Contender("ours", items.append, trim_items),
        ],
        context.settings,
    )
    sets = measure(
        [
            Contender("raw", lambda i: raw.hset(sized.raw_dict, keys[i % size], i)),
            Contender("ours", set_cfg),
        ],
        context.settings,
    )
    del mem.items
    del mem.cfg
    note = "`Memory()` default: sent on the cache's subscription, own change message read with the reply"
    return [
        Row(
            SECTION,
            f"`append`, read cache on ({size:,} elements)",
            appends["ours"],
            appends["raw"],
            min_ratio=0.8,
            target=">= 0.8x raw",
            note=note,
        ),
        Row(
            SECTION,
            f"`d[k] = v`, read cache on ({size:,} elements)",
            sets["ours"],
            sets["raw"],
            min_ratio=0.8,
            target=">= 0.8x raw",
            note=note,
        ),
    ]


def _remove_fields(client: Any, key: str, done: int) -> None:
    if done:
        client.hdel(key, *[f"new{index}" for index in range(done)])


def _drop(context: Context, sized: _Sized) -> None:
    mem, raw, size = context.mem, context.raw, sized.size
    for name in (sized.list_name, f"dict{size}", sized.deep_name):
        del mem[name]
    del context.cached_mem[sized.deep_name]
    raw.delete(
        sized.raw_list,
        sized.raw_dict,
        sized.raw_deep,
        sized.pottery_list.key,
        sized.pottery_dict.key,
        sized.pottery_deep.key,
    )


# The commands that call a script: FCALL where the server has functions, else EVALSHA.
_SCRIPT_CALLS = ("fcall", "evalsha")


def measure_server_time(context: Context, count: int) -> list[ServerTimeRow]:
    """Return the server-side cost of each operation at the main size.

    ``CONFIG RESETSTAT`` clears ``INFO commandstats`` before ``count``
    operations of one contender, and the stats are read after them.
    """
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sized = _Sized(context, context.main_size)
        for operation in OPERATIONS:
            contenders = {c.name: c for c in sized.contenders(operation)}
            ours, ours_seconds = _median_stats(context, contenders["ours"], count)
            raw, raw_seconds = _median_stats(context, contenders["raw"], count)
            ours_inner = sum(
                calls for name, (calls, _) in ours.items() if name not in _SCRIPT_CALLS
            )
            raw_name = _RAW_COMMANDS[operation]
            rows.append(
                ServerTimeRow(
                    operation,
                    ours_us=sum(ours.get(name, (0, 0.0))[1] for name in _SCRIPT_CALLS)
                    / count,
                    ours_commands=ours_inner / count,
                    raw_us=raw.get(raw_name, (0, 0.0))[1] / count,
                    ours_total_us=ours_seconds / count * 1e6,
                    raw_total_us=raw_seconds / count * 1e6,
                )
            )
        _drop(context, sized)
    return rows


def _median_stats(
    context: Context, contender: Contender, count: int
) -> tuple[dict[str, tuple[int, float]], float]:
    """Return the stats of the pass whose elapsed time is the median of three."""
    passes = sorted(
        (_command_stats(context, contender, count) for _ in range(3)),
        key=lambda result: result[1],
    )
    return passes[1]


def _command_stats(
    context: Context, contender: Contender, count: int
) -> tuple[dict[str, tuple[int, float]], float]:
    """Run ``count`` operations; return calls and microseconds per command, and seconds."""
    context.raw.config_resetstat()
    start = time.perf_counter()
    for number in range(count):
        contender.operation(number)
    elapsed = time.perf_counter() - start
    stats = context.raw.info("commandstats")
    if contender.reset is not None:
        contender.reset(count)
    result = {}
    for name, values in stats.items():
        command = name.removeprefix("cmdstat_")
        if command in ("config|resetstat", "info"):
            continue
        result[command] = (int(values["calls"]), float(values["usec"]))
    return result, elapsed


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)

"""The benchmark page (Markdown) and the scaling plot (PNG) of one run."""

from __future__ import annotations

import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from results import LatencyRow, Results, Row, Series

__all__ = ["plot_scaling", "render_markdown", "render_text"]

_LABELS = {"ours": "redis-memory", "raw": "raw redis-py", "pottery": "pottery"}


def _rate(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    rate = 1.0 / seconds
    return f"{rate:,.0f}/s" if rate >= 100 else f"{rate:,.1f}/s"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met(value: bool | None) -> str:
    if value is None:
        return "-"
    return "met" if value else "**not met**"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _row_cells(row: Row) -> list[str]:
    return [
        row.operation,
        _rate(row.ours),
        _rate(row.raw),
        _ratio(row.ratio),
        _rate(row.pottery),
        _ratio(row.pottery_ratio),
        row.target or "-",
        _met(row.met),
        row.note,
    ]


def _main_tables(results: Results) -> list[str]:
    lines: list[str] = []
    header = [
        "operation",
        "redis-memory",
        "raw redis-py",
        "ours / raw",
        "pottery",
        "pottery / raw",
        "target",
        "met",
        "note",
    ]
    sections = list(dict.fromkeys(row.section for row in results.rows))
    for section in sections:
        lines += ["", f"### {section}", ""]
        rows = [row for row in results.rows if row.section == section]
        lines += _table(header, [_row_cells(row) for row in rows])
    return lines


def _scaling_tables(results: Results) -> list[str]:
    lines = [
        "",
        "## Cost versus collection size",
        "",
        "Microseconds per operation. Target: redis-memory's cost flat within 20% "
        "(slowest size / fastest size <= 1.2) and at least 0.8x the raw rate at "
        "every size.",
        "",
        "![cost per operation versus collection size](benchmarks-scaling.png)",
    ]
    for series in results.scaling:
        lines += ["", f"`{series.operation}`:", ""]
        rows = [
            [
                f"{size:,}",
                _us(ours),
                _us(raw),
                _ratio(raw / ours),
                _us(pottery),
            ]
            for size, ours, raw, pottery in zip(
                series.sizes, series.ours, series.raw, series.pottery, strict=True
            )
        ]
        lines += _table(
            ["elements", "redis-memory us", "raw us", "ours / raw", "pottery us"], rows
        )
        worst = min(
            raw / ours for ours, raw in zip(series.ours, series.raw, strict=True)
        )
        flat = series.spread <= 1.2
        lines += [
            "",
            f"Spread {series.spread:.2f} (flat: {_met(flat)}); lowest ratio to raw "
            f"{worst:.2f}x ({_met(worst >= 0.8)}).",
        ]
    return lines


def _server_table(results: Results) -> list[str]:
    if not results.server_time:
        return []
    rows = [
        [
            f"`{entry.operation}`",
            f"{entry.ours_total_us:.1f}",
            f"{entry.ours_us:.1f}",
            f"{entry.ours_commands:.1f}",
            f"{entry.ours_total_us - entry.ours_us:.1f}",
            f"{entry.raw_total_us:.1f}",
            f"{entry.raw_us:.2f}",
            f"{entry.raw_total_us - entry.raw_us:.1f}",
        ]
        for entry in results.server_time
    ]
    return [
        "",
        "## Where the time goes",
        "",
        "One pass of operations per contender at "
        f"{results.main_size:,} elements gives the time per operation seen by the "
        "client and the server's share of it from `INFO commandstats` (FCALL "
        "and EVALSHA for redis-memory, the command for raw). The rest is the "
        "round trip and the client: Python, argument packing and reply parsing. "
        "The deep set runs one script, the write, because the read cache serves "
        "the three reads of the path.",
        "",
        *_table(
            [
                "operation",
                "ours total us",
                "ours server us",
                "commands inside the scripts",
                "ours rest us",
                "raw total us",
                "raw server us",
                "raw rest us",
            ],
            rows,
        ),
    ]


def _other_tables(results: Results) -> list[str]:
    lines: list[str] = []
    if results.round_trips:
        lines += ["", "## Round trips of a nested load", ""]
        lines += _table(
            ["`mem.x.asdict()` of", "round trips"],
            [[what, str(count)] for what, count in results.round_trips],
        )
        lines += [
            "",
            "Counted as requests sent on the connection: one to read the handle "
            "`mem.x`, one to read the whole value.",
        ]
    if results.memory:
        lines += ["", "## Memory per stored scalar", ""]
        lines += _table(
            [
                "value",
                "redis-memory bytes / scalar",
                "plain keys bytes / scalar",
                "ratio",
                "target",
                "met",
            ],
            [
                [
                    row.structure,
                    f"{row.ours_bytes / row.scalars:.1f}",
                    f"{row.plain_bytes / row.scalars:.1f}",
                    _ratio(row.ratio),
                    f"<= {row.max_ratio:g}x",
                    _met(row.met),
                ]
                for row in results.memory
            ],
        )
        lines += [
            "",
            "`MEMORY USAGE key SAMPLES 0`, summed over every key of the namespace "
            "(nodes, dict orders, node kinds, version and change times) and over the "
            "plain LIST / HASH keys that hold the same scalars.",
        ]
    if results.coherence:
        lines += ["", "## Coherence of cached reads", ""]
        lines += _latency_table(results.coherence)
        lines += [
            "",
            "A second Memory on its own connection, without a cache, stands for "
            "another process: after each of its writes, the cached Memory reads "
            "the value in a loop until it sees the change.",
        ]
    if results.startup:
        lines += ["", "## Start-up", ""]
        lines += _latency_table(results.startup)
        lines += [
            "",
            "Imports are timed inside new interpreters (median of several), so the "
            "interpreter's own start is not included.",
        ]
    return lines


def _latency_table(rows: list[LatencyRow]) -> list[str]:
    return _table(
        ["what", "ms", "target", "met", "note"],
        [
            [
                row.what,
                "-" if row.seconds is None else f"{row.seconds * 1e3:.3f}",
                "-" if row.limit is None else f"< {row.limit * 1e3:g} ms",
                _met(row.met),
                row.note,
            ]
            for row in rows
        ],
    )


def render_markdown(results: Results) -> str:
    """Return the whole benchmark page."""
    settings = results.settings
    date = datetime.date.today().isoformat()
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `bench/run.py` on {date} in {results.seconds:.0f} s; do not "
        "edit by hand. To measure again on your machine:",
        "",
        "```sh",
        results.command,
        "```",
        "",
    ]
    if results.quick:
        lines += [
            "This is a quick run (`--quick`): fewer rounds and operations, so the "
            "figures are noisier than a full run's.",
            "",
        ]
    lines += [
        "The run starts its own embedded server in a temporary directory and "
        "measures, side by side over the same unix socket: raw redis-py sending the "
        "one command that does the same to plain keys, redis-memory, and pottery's "
        "`RedisList` / `RedisDict`. In each round every contender gets "
        f"{settings.ops:,} operations (one for whole reads and batches), or "
        f"{settings.budget:g} s if that ends first. The contenders take turns "
        "in slices of about 1 ms, so that other programs on the machine slow them "
        "alike. For the cost versus size, every size takes its turns in the same "
        "rounds, and pottery's single mutations run in rounds of their own, "
        "because its deep set rewrites the whole value and slowed the others "
        f"by up to 50%. A figure is the median of {settings.rounds} rounds. Rates are "
        "operations per second; ratios divide a rate by the raw rate, so higher is "
        "better. redis-memory runs with `Memory(url, namespace, cache=False)`, so "
        'that its writes are timed alone, except in rows that say "read cache '
        'on", which use the default `Memory()` with its read cache. pottery 3.0 '
        "needs a `host` in its client's connection arguments, so its client "
        "carries a placeholder that the unix socket connection ignores.",
        "",
        "## Environment",
        "",
        *_table(
            ["", ""], [[name, value] for name, value in results.environment.items()]
        ),
        "",
        "## Results and targets",
        *_main_tables(results),
        *_scaling_tables(results),
        *_server_table(results),
        *_other_tables(results),
        "",
    ]
    return "\n".join(lines)


def render_text(results: Results) -> str:
    """Return the main table as plain text for the terminal."""
    lines = []
    for row in results.rows:
        lines.append(
            f"{row.operation[:58]:58} ours {_rate(row.ours):>12} raw {_rate(row.raw):>12} "
            f"{_ratio(row.ratio):>7} pottery {_rate(row.pottery):>10} {_met(row.met)}"
        )
    for series in results.scaling:
        lines.append(f"{series.operation:58} spread {series.spread:.2f}")
    for memory in results.memory:
        lines.append(f"{memory.structure:58} memory ratio {memory.ratio:.2f}")
    for latency in [*results.coherence, *results.startup]:
        shown = "-" if latency.seconds is None else f"{latency.seconds * 1e3:.3f} ms"
        lines.append(
            f"{latency.what[:58]:58} {shown} {_met(latency.met)} {latency.note}"
        )
    for what, count in results.round_trips:
        lines.append(f"{what:58} {count} round trips")
    return "\n".join(lines)


def plot_scaling(series_list: list[Series], path: Path) -> None:
    """Plot microseconds per operation against collection size, one panel per operation."""
    columns = 3
    rows = (len(series_list) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows))
    flat_axes = list(axes.flat)
    for axis, series in zip(flat_axes, series_list, strict=False):
        for name, style in (("ours", "o-"), ("raw", "s--"), ("pottery", "^:")):
            values = getattr(series, name)
            axis.plot(
                series.sizes,
                [seconds * 1e6 for seconds in values],
                style,
                label=_LABELS[name],
            )
        axis.set_xscale("log")
        costs = [*series.ours, *series.raw, *series.pottery]
        # A log scale only where costs differ tenfold; else a linear one from 0,
        # on which a flat cost looks flat.
        if max(costs) > 10 * min(costs):
            axis.set_yscale("log")
        else:
            axis.set_ylim(bottom=0, top=max(costs) * 1.15e6)
        axis.set_title(series.operation, fontsize=10)
        axis.set_xlabel("elements")
        axis.set_ylabel("us per operation")
        axis.grid(True, which="major", alpha=0.3)
    for axis in flat_axes[len(series_list) :]:
        axis.axis("off")
    flat_axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

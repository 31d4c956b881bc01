"""Measure redis-memory against raw redis-py and pottery, and write docs/benchmarks.md.

Usage::

    .venv/bin/python bench/run.py            # full run, a few minutes
    .venv/bin/python bench/run.py --quick    # short run, under a minute
    .venv/bin/python bench/run.py --quick --no-write

The run starts a private embedded server in a new directory under /tmp, so it
never touches the user's own server or data, and stops it at the end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Set before redis_memory reads it, so nothing can reach the user's own data directory.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="rmbench-", dir="/tmp"))
os.environ["REDIS_MEMORY_DATA_DIR"] = str(_DATA_DIR)
for _name in ("REDIS_MEMORY_URL", "REDIS_URL", "REDIS_MEMORY_NAMESPACE"):
    os.environ.pop(_name, None)

import redis  # noqa: E402
from batches import measure_batches  # noqa: E402
from fixtures import Context, pottery_client  # noqa: E402
from footprint import measure_memory, measure_startup  # noqa: E402
from machine import describe  # noqa: E402
from mutations import measure_mutations, measure_server_time  # noqa: E402
from reads import (  # noqa: E402
    count_round_trips,
    measure_coherence,
    measure_reads,
)
from report import plot_scaling, render_markdown, render_text  # noqa: E402
from results import Results  # noqa: E402
from timing import Settings  # noqa: E402

from redis_memory import Memory  # noqa: E402
from redis_memory.server import EmbeddedServer  # noqa: E402

_DOCS = Path(__file__).resolve().parent.parent / "docs"
_FULL = Settings(rounds=11, ops=1_000, budget=0.2)
_QUICK = Settings(rounds=3, ops=200, budget=0.1)
_FULL_SIZES = (10, 100, 1_000, 10_000, 100_000)
_QUICK_SIZES = (10, 10_000, 100_000)
_MAIN_SIZE = 10_000


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds, operations and sizes"
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print the results only; leave docs/benchmarks.md and the plot alone",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=_DOCS,
        help="folder for benchmarks.md and benchmarks-scaling.png (default: docs/)",
    )
    return parser.parse_args(argv)


_STARTED = time.perf_counter()


def _step(message: str) -> None:
    print(
        f"[{time.perf_counter() - _STARTED:5.1f} s] {message}",
        file=sys.stderr,
        flush=True,
    )


def run(context: Context, command: str) -> Results:
    """Run every measurement on ``context`` and return the results."""
    started = time.perf_counter()
    environment = describe(context.raw)
    environment["load average at the start"] = _load_average()
    results = Results(
        command, context.quick, environment, context.settings, context.main_size
    )

    _step("single mutations")
    rows, results.scaling = measure_mutations(context)
    results.rows += rows
    _step("server time per operation")
    results.server_time = measure_server_time(context, min(context.settings.ops, 1_000))
    _step("reads")
    results.rows += measure_reads(context)
    results.round_trips = count_round_trips(context, (1, 2, 8))
    _step("coherence of cached reads")
    results.coherence = measure_coherence(context, 50 if context.quick else 300)
    _step("batches")
    results.rows += measure_batches(context)
    _step("memory")
    results.memory = measure_memory(context)
    _step("start-up")
    results.startup = measure_startup(context)
    results.seconds = time.perf_counter() - started
    results.environment["load average at the end"] = _load_average()
    return results


def _load_average() -> str:
    """Return the 1, 5 and 15 minute load averages, other programs' share of the CPU."""
    try:
        return " / ".join(f"{load:.2f}" for load in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write the page and the plot unless ``--no-write``."""
    options = _parse(argv)
    command = ".venv/bin/python bench/run.py" + (" --quick" if options.quick else "")
    if options.docs != _DOCS:
        command += f" --docs {shlex.quote(str(options.docs))}"

    server = EmbeddedServer(_DATA_DIR)
    try:
        url = server.ensure_running()
        raw = redis.Redis.from_url(url)
        context = Context(
            url=url,
            data_dir=_DATA_DIR,
            raw=raw,
            pottery=pottery_client(url),
            mem=Memory(url=url, namespace="bench", cache=False),
            cached_mem=Memory(url=url, namespace="bench-cached", cache=True),
            settings=_QUICK if options.quick else _FULL,
            sizes=_QUICK_SIZES if options.quick else _FULL_SIZES,
            main_size=_MAIN_SIZE,
            quick=options.quick,
        )
        try:
            results = run(context, command)
        finally:
            context.cached_mem._close()
    finally:
        server.stop()
        shutil.rmtree(_DATA_DIR, ignore_errors=True)

    print(render_text(results))
    if not options.no_write:
        options.docs.mkdir(parents=True, exist_ok=True)
        (options.docs / "benchmarks.md").write_text(
            render_markdown(results), encoding="utf-8"
        )
        plot_scaling(results.scaling, options.docs / "benchmarks-scaling.png")
        _step(f"wrote {options.docs / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

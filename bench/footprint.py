"""Memory per stored scalar, import time and the embedded server's first start."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

import redis
from fixtures import Context
from reads import RECORDS, SCORES, nested_value
from results import LatencyRow, MemoryRow

from redis_memory import Memory
from redis_memory.keys import KeySpace
from redis_memory.server import EmbeddedServer

__all__ = ["measure_memory", "measure_startup"]

MEMORY_SCALARS = 100_000


def _usage(client: redis.Redis, keys: list[Any]) -> int:
    """Return the bytes of ``keys``, every element counted (``SAMPLES 0``)."""
    return sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)


def _namespace_bytes(client: redis.Redis, namespace: str) -> int:
    prefix = KeySpace(namespace).prefix
    # SCAN MATCH treats [ ] * ? and backslash as pattern characters, and a
    # namespace's key prefix contains none of them (see redis_memory.keys).
    return _usage(client, list(client.scan_iter(match=prefix + "*", count=1000)))


def measure_memory(context: Context) -> list[MemoryRow]:
    """Compare our keys' bytes with plain keys holding the same scalars."""
    raw, url = context.raw, context.url
    rows = []

    mem = Memory(url=url, namespace="bench-memory-list", cache=False)
    mem.values = list(range(MEMORY_SCALARS))
    raw.rpush("plain:list", *range(MEMORY_SCALARS))
    rows.append(
        MemoryRow(
            f"list of {MEMORY_SCALARS:,} ints",
            MEMORY_SCALARS,
            _namespace_bytes(raw, "bench-memory-list"),
            _usage(raw, ["plain:list"]),
        )
    )
    mem._clear()

    mem = Memory(url=url, namespace="bench-memory-dict", cache=False)
    mapping: dict[Any, Any] = {f"key{index}": index for index in range(MEMORY_SCALARS)}
    mem.values = mapping
    raw.hset("plain:dict", mapping=mapping)
    rows.append(
        MemoryRow(
            f"dict of {MEMORY_SCALARS:,} str keys to ints",
            MEMORY_SCALARS,
            _namespace_bytes(raw, "bench-memory-dict"),
            _usage(raw, ["plain:dict"]),
        )
    )
    mem._clear()

    mem = Memory(url=url, namespace="bench-memory-nested", cache=False)
    mem.values = nested_value()
    plain_keys: list[Any] = []
    for index in range(RECORDS):
        raw.hset(f"plain:rec:{index}", mapping={"id": index, "name": f"user-{index}"})
        raw.rpush(f"plain:rec:{index}:scores", *range(SCORES))
        plain_keys += [f"plain:rec:{index}", f"plain:rec:{index}:scores"]
    rows.append(
        MemoryRow(
            f"{RECORDS:,} records of {SCORES + 2} scalars",
            RECORDS * (SCORES + 2),
            _namespace_bytes(raw, "bench-memory-nested"),
            _usage(raw, plain_keys),
        )
    )
    mem._clear()
    raw.delete("plain:list", "plain:dict", *plain_keys)
    return rows


def _python_seconds(code: str, env: dict[str, str]) -> float:
    """Run ``code`` in a new interpreter; return the float it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


_IMPORT = """
    import time
    start = time.perf_counter()
    import redis_memory
    print(time.perf_counter() - start)
"""

_FIRST_READ = """
    import time
    start = time.perf_counter()
    from redis_memory import Memory
    len(Memory(namespace="bench-startup"))
    print(time.perf_counter() - start)
"""

_LOAD_EXT = """
    import time
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    start = time.perf_counter()
    shell.run_line_magic("load_ext", "redis_memory")
    print(time.perf_counter() - start)
"""


def measure_startup(context: Context) -> list[LatencyRow]:
    """Time imports in new interpreters and the first start of a new server.

    The interpreters find the run's private server through
    ``REDIS_MEMORY_DATA_DIR``, so ``Memory()`` connects to a running server.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("REDIS_MEMORY_URL", "REDIS_URL", "REDIS_MEMORY_NAMESPACE")
    }
    env["REDIS_MEMORY_DATA_DIR"] = str(context.data_dir)
    repeats = 3 if context.quick else 7

    rows = [
        LatencyRow(
            "`import redis_memory`",
            statistics.median(_python_seconds(_IMPORT, env) for _ in range(repeats)),
            0.3,
        ),
        LatencyRow(
            "import, `Memory()` and `len(mem)`, server running",
            statistics.median(
                _python_seconds(_FIRST_READ, env) for _ in range(repeats)
            ),
            0.3,
            note="not a target of its own; shows the cost of the first connection",
        ),
    ]
    try:
        load_ext: float | None = statistics.median(
            _python_seconds(_LOAD_EXT, env) for _ in range(repeats)
        )
        note = ""
    except subprocess.CalledProcessError as exc:
        load_ext = None
        lines = exc.stderr.strip().splitlines()
        note = f"failed: {lines[-1] if lines else exc}"
    rows.append(
        LatencyRow("`%load_ext redis_memory`, server running", load_ext, 0.3, note)
    )

    starts = []
    for _ in range(1 if context.quick else 3):
        data_dir = tempfile.mkdtemp(prefix="rmbench-start-", dir="/tmp")
        server = EmbeddedServer(data_dir)
        try:
            starts.append(_timed_start(server))
        finally:
            server.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
    rows.append(
        LatencyRow(
            "first start of the embedded server",
            statistics.median(starts),
            1.0,
            note="a new data directory each time",
        )
    )
    return rows


def _timed_start(server: EmbeddedServer) -> float:
    start = time.perf_counter()
    server.ensure_running()
    return time.perf_counter() - start

"""The walkthrough behind ``redis-memory demo``: one process writes, a second reads.

It shows the whole core API on the configured server (the embedded one by
default), in its own namespace, and exits non-zero if the second process does
not see exactly what the first one wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, TextIO

from .memory import Memory

__all__ = ["EXPECTED", "read_back", "run_demo", "write_walkthrough"]

EXPECTED: dict[str, Any] = {
    "tasks": [0, 1, 2, 3, 4, 5, 6],
    "items": [10, 20, 30],
    "config": {
        "theme": "dark",
        "lang": "en",
        "notifications": True,
        "font": "Arial",
        "size": 12,
    },
    "complex": {
        "users": [{"name": "Ann", "scores": [95, 87, 96]}],
        "settings": {"push": True},
    },
}


def write_walkthrough(mem: Memory, out: TextIO) -> None:
    """Store the walkthrough's values in ``mem``, printing each step to ``out``."""

    def show(step: str) -> None:
        print(f">>> {step}", file=out)

    show("mem.tasks = [1, 2, 3]")
    mem.tasks = [1, 2, 3]
    show("mem.tasks.append(4); mem.tasks.extend([5, 6]); mem.tasks.insert(0, 0)")
    mem.tasks.append(4)
    mem.tasks.extend([5, 6])
    mem.tasks.insert(0, 0)
    show("mem.items = [1, 2, 3]; mem.items[0] = 10; mem.items[1:3] = [20, 30]")
    mem.items = [1, 2, 3]
    mem.items[0] = 10
    mem.items[1:3] = [20, 30]
    show('mem.config = {"theme": "dark", "lang": "en"}')
    mem.config = {"theme": "dark", "lang": "en"}
    show('mem.config["notifications"] = True')
    mem.config["notifications"] = True
    show('mem.config.update({"font": "Arial", "size": 12})')
    mem.config.update({"font": "Arial", "size": 12})
    show(
        'mem.complex = {"users": [{"name": "Ann", "scores": [95, 87]}], '
        '"settings": {"push": False}}'
    )
    mem.complex = {
        "users": [{"name": "Ann", "scores": [95, 87]}],
        "settings": {"push": False},
    }
    show('mem.complex["users"][0]["scores"].append(96)')
    mem.complex["users"][0]["scores"].append(96)
    show('mem.complex["settings"]["push"] = True')
    mem.complex["settings"]["push"] = True


def read_back(mem: Memory) -> dict[str, Any]:
    """Return the demo's names as plain values."""
    return {name: mem[name].copy() for name in EXPECTED}


def run_demo(url: str | None, namespace: str, out: TextIO | None = None) -> int:
    """Run the walkthrough; return 0 when a second process reads it back intact.

    ``out`` defaults to ``sys.stdout`` as it is when the function runs.
    """
    if out is None:
        out = sys.stdout
    mem = Memory(url, namespace)
    mem._clear()
    print(f"Writing to {mem!r}", file=out)
    write_walkthrough(mem, out)
    reader = (
        "import json, sys\n"
        "from redis_memory import Memory\n"
        "from redis_memory.demo import read_back\n"
        f"mem = Memory({url!r}, {namespace!r})\n"
        "print(json.dumps(read_back(mem)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", reader], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        print(f"the reading process failed:\n{result.stderr}", file=out)
        return 1
    seen = json.loads(result.stdout)
    print("\nA second process (a new Python interpreter) reads:", file=out)
    for name, value in seen.items():
        print(f"  mem.{name} = {value!r}", file=out)
    if seen != EXPECTED:
        print(f"MISMATCH: expected {EXPECTED!r}", file=out)
        return 1
    print("\nOK: the second process saw every change.", file=out)
    return 0

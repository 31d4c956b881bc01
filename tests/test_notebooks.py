"""Tests that execute the example notebooks in notebooks/ with real Jupyter kernels.

``pytest --nbval`` runs each notebook in a fresh kernel and compares every
cell's output with the saved one, after the replacements of
notebooks/nbval-sanitize.cfg. The kernels inherit ``REDIS_MEMORY_DATA_DIR``
from conftest.py, so they use the test session's embedded server. Two things
nbval cannot do are driven with nbclient here: running the producer and the
consumer notebooks side by side, and restarting the kernel in the middle of
the restart notebook.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import pytest

from redis_memory import Memory

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("nbval")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SANITIZE = NOTEBOOKS / "nbval-sanitize.cfg"
RESTART = NOTEBOOKS / "02-surviving-a-restart.ipynb"
PRODUCER = NOTEBOOKS / "03-sharing-between-notebooks-1-producer.ipynb"
CONSUMER = NOTEBOOKS / "03-sharing-between-notebooks-2-consumer.ipynb"
KERNEL_TIMEOUT = 120

pytestmark = pytest.mark.slow


def notebook_groups() -> list[list[Path]]:
    """Return the notebooks grouped so that each group runs on its own.

    The consumer notebook reads what the producer stored, so the two run in one
    nbval session, producer first (pytest collects files in name order).
    """
    groups: dict[str, list[Path]] = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        groups.setdefault(path.name.split("-", 1)[0], []).append(path)
    return list(groups.values())


def sanitize(text: str) -> str:
    """Apply the replacements of the sanitize file, as nbval does."""
    parser = ConfigParser()
    parser.read(SANITIZE, encoding="utf-8")
    for section in parser.sections():
        text = re.sub(parser[section]["regex"], parser[section]["replace"], text)
    return text


def text_outputs(cell: Any) -> str:
    """Return the printed text and the ``text/plain`` results of a code cell."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(output["data"].get("text/plain", ""))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return sanitize("".join(parts))


def new_client(notebook: Any) -> Any:
    return nbclient.NotebookClient(
        notebook,
        timeout=KERNEL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )


def test_notebook_groups_cover_every_notebook() -> None:
    groups = {
        group[0].name[:2]: [path.name for path in group] for group in notebook_groups()
    }

    assert groups["01"] == ["01-quickstart.ipynb"]
    assert groups["03"] == [PRODUCER.name, CONSUMER.name]
    assert sum(map(len, groups.values())) == len(list(NOTEBOOKS.glob("*.ipynb")))


@pytest.mark.parametrize(
    "group", notebook_groups(), ids=lambda group: group[0].name.split("-", 1)[0]
)
def test_notebook_outputs_match(group: list[Path], server_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-sanitize-with",
            str(SANITIZE),
            "-p",
            "no:cacheprovider",
            "-q",
            *map(str, group),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_producer_and_consumer_side_by_side(server_url: str) -> None:
    producer = nbformat.read(PRODUCER, as_version=4)
    consumer = nbformat.read(CONSUMER, as_version=4)
    saved_consumer = nbformat.read(CONSUMER, as_version=4)
    # The producer's kernel stays up until it has read the consumer's summary,
    # so the two kernels run at the same time and each reads the other's writes.
    producer.cells.append(
        nbformat.v4.new_code_cell(
            "import time\n"
            "deadline = time.monotonic() + 60\n"
            "while 'summary' not in mem and time.monotonic() < deadline:\n"
            "    time.sleep(0.05)\n"
            "print(mem.summary)"
        )
    )
    Memory(namespace="sharing")._clear()

    async def run_both() -> None:
        # Both kernels start together; the consumer's first cell waits for the producer.
        await asyncio.gather(
            new_client(consumer).async_execute(), new_client(producer).async_execute()
        )

    asyncio.run(run_both())

    code_cells = [cell for cell in consumer.cells if cell.cell_type == "code"]
    saved_cells = [cell for cell in saved_consumer.cells if cell.cell_type == "code"]
    for index, (cell, saved) in enumerate(zip(code_cells, saved_cells, strict=True)):
        assert text_outputs(cell) == text_outputs(saved), f"consumer cell {index}"
    assert text_outputs(producer.cells[-1]) == (
        "{'best_rate': 0.01, 'best_loss': 0.05, 'runs': 4}\n"
    )


# Run in the kernel after the restart: a %%remember cell that executes instead
# of restoring calls time.sleep(2), which then raises. The kernel itself sleeps
# for fractions of a millisecond between messages, so shorter sleeps still work.
_FORBID_SLEEP = """
import time
_real_sleep = time.sleep
def _forbidden_sleep(seconds):
    if seconds >= 1:
        raise RuntimeError("the unchanged %%remember cell was executed, not restored")
    _real_sleep(seconds)
time.sleep = _forbidden_sleep
"""


def test_restart_notebook_with_real_restart(server_url: str) -> None:
    notebook = nbformat.read(RESTART, as_version=4)
    saved = nbformat.read(RESTART, as_version=4)
    cells = notebook.cells
    restart_at = next(
        index
        for index, cell in enumerate(cells)
        if cell.source.startswith("## After the restart")
    )
    restored_cell = next(
        index
        for index in range(restart_at, len(cells))
        if cells[index].source.startswith("%%remember")
    )
    count = len(cells)
    # nbclient stores each executed cell back into the notebook, so the probes
    # run in one extra cell at the end.
    cells.append(nbformat.v4.new_code_cell(""))
    client = new_client(notebook)
    probes: dict[str, str] = {}

    async def probe(name: str, source: str) -> None:
        cells[count] = nbformat.v4.new_code_cell(source)
        await client.async_execute_cell(cells[count], count)
        probes[name] = text_outputs(cells[count])

    async def run() -> None:
        async with client.async_setup_kernel():
            for index in range(restart_at):
                await client.async_execute_cell(cells[index], index)
            await probe("pid before", "import os; print(os.getpid())")

            await client.km.restart_kernel(now=True)
            await client.kc.wait_for_ready(timeout=KERNEL_TIMEOUT)

            await probe("pid after", "import os; print(os.getpid())")
            await probe("squares before restore", "print('squares' in globals())")
            await probe("forbid sleep", _FORBID_SLEEP)
            for index in range(restart_at, restored_cell + 1):
                await client.async_execute_cell(cells[index], index)
            await probe("allow sleep", "time.sleep = _real_sleep")
            for index in range(restored_cell + 1, count):
                await client.async_execute_cell(cells[index], index)

    asyncio.run(run())

    assert probes["pid before"] != probes["pid after"]
    assert probes["squares before restore"] == "False\n"
    for index in range(restart_at, count):
        if cells[index].cell_type == "code":
            expected = text_outputs(saved.cells[index])
            assert text_outputs(cells[index]) == expected, f"cell {index}"
    assert "restored squares, summary" in text_outputs(cells[restored_cell])

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

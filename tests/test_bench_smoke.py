"""bench/run.py --quick runs to the end and writes its page and plot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.mark.slow
def test_quick_benchmark_writes_page(tmp_path: Path) -> None:
    pytest.importorskip("pottery")
    pytest.importorskip("matplotlib")
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--docs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    page = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert "quick run" in page
    assert "| `append` (10,000 elements) |" in page
    assert "## Memory per stored scalar" in page
    assert "## Start-up" in page
    assert (tmp_path / "benchmarks-scaling.png").stat().st_size > 0

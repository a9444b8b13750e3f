"""`make bench QUICK=1` works: the harness runs every figure and writes its table and chart.

It asserts no timing (the numbers of a one-minute run on a shared machine mean little); see
docs/benchmarks.md for the full run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.mark.timeout(480)
def test_quick_bench_runs_and_writes_a_table_of_every_figure(tmp_path: Path) -> None:
    """`python -m bench.run --quick` exits 0 and writes a PNG chart and a table with a row for
    every figure (1 to 12, 9a-9e included; 11 and 12 say they are skipped), none of them an error."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=450,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    table = tmp_path / "benchmarks-quick.md"
    chart = tmp_path / "benchmarks-quick.png"
    assert table.exists() and chart.exists()
    assert chart.read_bytes().startswith(b"\x89PNG")
    rows = re.findall(r"^\| (\d+[a-z]?) \|", table.read_text(), flags=re.MULTILINE)
    assert {row.rstrip("abcde") for row in rows} == {str(n) for n in range(1, 13)}
    assert {"9a", "9b", "9c", "9d", "9e"} <= set(rows)
    assert "| error |" not in table.read_text()

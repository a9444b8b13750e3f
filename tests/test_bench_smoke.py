"""`make bench QUICK=1` works: the harness runs every figure and writes its table and chart.

It asserts no timing (the numbers of a one-minute run on a shared machine mean little); see
docs/benchmarks.md for the full run. The figures run in two halves side by side, each on its
own stack (Redis, simulator, API): most of a quick figure's time is waiting, so the halves
share the cores without starving each other, and the test takes half as long.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.figures import ORDER

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# Two halves of about equal time. Figure 7 reads what figure 10 filled: they run together.
HALVES = (
    ("1", "2", "8", "4", "9b", "9d", "11", "12"),
    ("3", "5", "6", "10", "7", "9a", "9e", "9c"),
)


def test_the_halves_hold_every_figure_once() -> None:
    """Each figure of bench.figures.ORDER is in exactly one half (a new figure must be placed)."""
    placed = [number for half in HALVES for number in half]
    assert sorted(placed) == sorted(str(module.NUMBER) for module in ORDER)


@pytest.mark.timeout(400)
def test_quick_bench_runs_and_writes_a_table_of_every_figure(tmp_path: Path) -> None:
    """`python -m bench.run --quick` exits 0 for each half and writes a PNG chart and a table
    with a row for each of its figures; together every figure (1 to 12, 9a-9e included; 11
    and 12 say they are skipped), none of them an error."""
    runs = []
    for index, half in enumerate(HALVES):
        out = tmp_path / f"half-{index}"
        command = [sys.executable, "-m", "bench.run", "--quick", "--out", str(out), "--only"]
        runs.append(
            (
                out,
                subprocess.Popen(
                    [*command, *half],
                    cwd=REPO_ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    rows: set[str] = set()
    for out, run in runs:
        _, stderr = run.communicate(timeout=380)
        assert run.returncode == 0, stderr[-4000:]
        table = out / "benchmarks-quick.md"
        chart = out / "benchmarks-quick.png"
        assert table.exists() and chart.exists()
        assert chart.read_bytes().startswith(b"\x89PNG")
        assert "| error |" not in table.read_text()
        rows |= set(re.findall(r"^\| (\d+[a-z]?) \|", table.read_text(), flags=re.MULTILINE))
    assert {row.rstrip("abcde") for row in rows} == {str(n) for n in range(1, 13)}
    assert {"9a", "9b", "9c", "9d", "9e"} <= rows

"""The run's outputs: a Markdown table, a PNG chart (matplotlib, Agg), raw JSON, the summary."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.core import Row

NOISE = (
    "**Noise.** This machine's {cores} cores are shared with other work, and the workers, "
    "Redis, the simulator, the API and the load generator all run on them. Each figure is "
    "one run, not a median of several: expect differences of 10-20 % between runs, more "
    "when something else is busy."
)
HEADER = ("#", "Figure", "Value", "Reference", "Ratio", "Target", "Met")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _met(row: Row) -> str:
    return "n/a" if row.met is None else ("yes" if row.met else "**no**")


def _ratio(row: Row) -> str:
    return "—" if row.ratio is None or math.isnan(row.ratio) else f"{row.ratio:.2f}"


def table(rows: Sequence[Row]) -> str:
    """The results as a Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = (row.figure, row.name, row.value, row.reference, _ratio(row), row.target,
                 _met(row))  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def notes(rows: Sequence[Row]) -> str:
    """One bullet per row: how it was measured."""
    return "\n".join(f"- **{row.figure}** {row.name}: {row.notes}." for row in rows)


def preamble(meta: Mapping[str, str]) -> str:
    """Machine, versions, command and the noise warning."""
    return "\n".join(
        [
            f"- Measured: {meta['date']}, run took {meta['duration']}",
            f"- Command: {meta['command']}",
            f"- Machine: {meta['machine']}",
            f"- Versions: {meta['versions']}",
            "",
            NOISE.format(cores=meta["cores"]),
            "",
            "Every figure below comes from this one run, on this machine, with these versions "
            "and this command.",
        ]
    )


def write_table(rows: Sequence[Row], meta: Mapping[str, str], path: Path) -> None:
    """``benchmarks[-quick].md``: the table with its context and notes."""
    title = "voicecall benchmarks" + (" (quick run: tiny loads, numbers mean little)"
                                      if meta["mode"] == "quick" else "")  # fmt: skip
    text = f"# {title}\n\n{preamble(meta)}\n\n{table(rows)}\n\n## Notes\n\n{notes(rows)}\n"
    path.write_text(text)


def write_json(rows: Sequence[Row], meta: Mapping[str, str], path: Path) -> None:
    """Everything measured, raw."""
    path.write_text(json.dumps({"meta": dict(meta), "rows": [asdict(r) for r in rows]},
                               indent=2, default=str))  # fmt: skip


def _data(rows: Sequence[Row], figure: str) -> dict[str, Any]:
    return next((row.data for row in rows if row.figure == figure), {})


def write_chart(rows: Sequence[Row], meta: Mapping[str, str], path: Path) -> None:
    """Three panels: ratios against targets, scheduling lateness, OTP latency."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 5.2))
    fig.suptitle(f"voicecall benchmarks ({meta['mode']} run, {meta['cores']} shared cores, "
                 f"{meta['date']})")  # fmt: skip

    ratio_rows = [r for r in rows if r.ratio is not None and not math.isnan(r.ratio)]
    labels = [f"{r.figure} {r.name.split(':')[-1].strip()}"[:34] for r in ratio_rows]
    colours = ["tab:green" if r.met else "tab:red" if r.met is False else "tab:blue"
               for r in ratio_rows]  # fmt: skip
    ax1.barh(labels, [r.ratio or 0 for r in ratio_rows], color=colours)
    for i, r in enumerate(ratio_rows):
        goal = _target_number(r.target)
        if goal is not None:
            ax1.plot([goal, goal], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax1.invert_yaxis()
    ax1.set_xlabel("ratio (black bar: target; green met, red missed, blue no target)")
    ax1.set_title("Ratios")

    lateness = _data(rows, "3")
    groups = [("voicecall", lateness.get("voicecall", {})), ("plain Dramatiq",
              lateness.get("dramatiq", {}))]  # fmt: skip
    width = 0.38
    for j, (name, d) in enumerate(groups):
        values = [max(float(d.get(k, float("nan"))), 1e-3) for k in ("p50", "p99", "max")]
        hatch = "//" if d.get("missing") else None
        label = name + (" (lower bounds: jobs never sent)" if d.get("missing") else "")
        ax2.bar([x + j * width for x in range(3)], values, width, label=label, hatch=hatch)
    ax2.axhline(1.0, color="black", linestyle="--", linewidth=1, label="target p99 1 s")
    ax2.set_yscale("log")
    ax2.set_xticks([x + width / 2 for x in range(3)], ["p50", "p99", "max"])
    ax2.set_ylabel("lateness, s (log)")
    ax2.set_title("3 Scheduling precision")
    ax2.legend(fontsize=8)

    otp = _data(rows, "5")
    ax3.bar(["p50", "p99", "max"], [float(otp.get(k, float("nan"))) for k in ("p50", "p99", "max")],
            color="tab:purple")  # fmt: skip
    ax3.axhline(1.0, color="black", linestyle="--", linewidth=1, label="target p99 1 s")
    ax3.set_ylabel("enqueue to sent, s")
    ax3.set_title("5 OTP latency behind the bulk backlog")
    ax3.legend(fontsize=8)

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _target_number(target: str) -> float | None:
    for token in target.replace("≥", " ").split():
        try:
            return float(token)
        except ValueError:
            continue
    return None


SUMMARY_INTRO = """\
# Benchmarks

`make bench` measures the eight figures of issue 6 in one run (at most 10 minutes), each
beside its reference, and writes `bench/results/benchmarks.md` (table), `benchmarks.png`
(chart), `benchmarks.json` (raw numbers) and this page. `make bench QUICK=1` runs the same
harness with tiny loads in under a minute (`bench/results/benchmarks-quick.*`); `make test`
runs it once (`tests/test_bench_smoke.py`) to check that it works, asserting no timing.

The harness (`bench/run.py`, `bench/harness.py`, `bench/figures/`) starts everything as real
processes on 127.0.0.1, wired by environment variables as in production: a private
redis-server (AOF on, `noeviction`), the eSMS simulator, one API process and `voicecall
worker` processes; the reference is a bare Dramatiq actor (`bench/bare_dramatiq.py`) making
the same single `MakeCallRecord_V2` request, run with `python -m dramatiq` and the same
processes and threads. Settings are production defaults except the global send rate, the
per-phone limit and quiet hours, which are lifted so the figures measure capacity, not
policy. This page is rewritten by every full run.
"""


def _reflow(text: str, width: int = 96) -> str:
    """Re-wrap each paragraph (numbers substituted into a template leave ragged lines)."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    return "\n\n".join(textwrap.fill(p, width=width) for p in paragraphs)


def write_summary(rows: Sequence[Row], meta: Mapping[str, str], path: Path) -> None:
    """``docs/benchmarks.md``: context, table, chart, how each figure is measured, misses."""
    missed = [row for row in rows if row.met is False]
    if missed:
        why = "\n\n".join(
            f"### {row.figure} {row.name}: {row.value}"
            + (f", ratio {_ratio(row)}" if row.ratio is not None else "")
            + f" (target {row.target})\n\n{_reflow(row.why_missed)}"
            for row in missed
        )
    else:
        why = "Every figure with a target met it in this run."
    text = (
        f"{SUMMARY_INTRO}\n## Last full run\n\n{preamble(meta)}\n\n{table(rows)}\n\n"
        "![benchmark chart](../bench/results/benchmarks.png)\n\n"
        f"## How each figure is measured\n\n{notes(rows)}\n\n## Targets missed\n\n{why}\n"
    )
    path.write_text(text)

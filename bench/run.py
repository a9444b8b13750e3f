"""``python -m bench.run [--quick] [--out bench/results]``: every figure of issue 6, one run.

Starts a private stack (see :mod:`bench.harness`), runs the figures in
:data:`bench.figures.ORDER`, and writes the table, chart and raw JSON to ``--out``
(``benchmarks.*``, or ``benchmarks-quick.*`` with ``--quick``). A full run also rewrites
``docs/benchmarks.md``. A figure that fails becomes an error row and the exit code is 1;
the others still run. Exit 0 means every figure was measured (targets met or not).
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType

from bench import report
from bench.core import FULL, QUICK, Context, Row
from bench.environment import describe
from bench.figures import ORDER
from bench.harness import BenchStack

REPO_ROOT = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny loads, under a minute")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results",
                        help="directory for the table, chart and JSON (default bench/results)")  # fmt: skip
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md",
                        help="summary rewritten by a full run (default docs/benchmarks.md)")  # fmt: skip
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the summary")
    parser.add_argument("--only", nargs="*", default=None, metavar="N",
                        help="run only these figures (1-10, 9a), for development")  # fmt: skip
    return parser


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _error_row(module: ModuleType, exc: BaseException) -> Row:
    return Row(
        figure=str(module.NUMBER),
        name=str(module.TITLE),
        value="error",
        reference="—",
        ratio=None,
        target="—",
        met=None,
        notes=f"not measured: {type(exc).__name__}: {str(exc)[:300]}",
    )


def _figure_order(row: Row) -> tuple[int, str]:
    """Figure "10b" after "9a": by number, then letter."""
    digits = "".join(itertools.takewhile(str.isdigit, row.figure))
    return int(digits or 0), row.figure


def run_figures(ctx: Context, only: set[str] | None) -> tuple[list[Row], bool]:
    """Every figure in order; (rows, whether all were measured)."""
    rows: list[Row] = []
    ok = True
    for module in ORDER:
        if only is not None and module.NUMBER not in only:
            continue
        started = time.monotonic()
        _log(f"figure {module.NUMBER}: {module.TITLE} ...")
        try:
            new_rows = module.run(ctx)
        except Exception as exc:  # one broken figure must not hide the others
            traceback.print_exc()
            new_rows, ok = [_error_row(module, exc)], False
        rows.extend(new_rows)
        for row in new_rows:
            _log(f"  {row.figure} {row.name}: {row.value} (met: {row.met})")
        _log(f"figure {module.NUMBER} took {time.monotonic() - started:.0f} s")
    rows.sort(key=_figure_order)  # run order differs

    return rows, ok


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # stop every child process on the way out
    mode = "quick" if args.quick else "full"
    command = (
        f"`make bench{' QUICK=1' if args.quick else ''}` (runs "
        f"`.venv/bin/python -m bench.run{' --quick' if args.quick else ''}`)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stack = BenchStack()
    ok = False
    rows: list[Row] = []
    try:
        _log(f"{mode} run; processes and logs in {stack.directory}")
        stack.start()
        ctx = Context(stack=stack, sizes=QUICK if args.quick else FULL, quick=args.quick)
        rows, ok = run_figures(ctx, set(args.only) if args.only is not None else None)
    finally:
        stack.close(keep_logs=not ok)
        if not ok:
            _log(f"logs kept in {stack.directory}")
    meta = {
        "mode": mode,
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration": f"{time.monotonic() - started:.0f} s",
        **describe(),
    }
    stem = "benchmarks-quick" if args.quick else "benchmarks"
    report.write_table(rows, meta, args.out / f"{stem}.md")
    report.write_json(rows, meta, args.out / f"{stem}.json")
    report.write_chart(rows, meta, args.out / f"{stem}.png")
    if not args.quick and not args.no_docs and args.only is None:
        report.write_summary(rows, meta, args.docs)
    print(report.table(rows))
    print(f"\nwritten: {args.out / stem}.md, .png, .json ({meta['duration']})")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

"""Figure 8: scaling, full-path throughput with 2 worker processes ÷ with 1."""

from __future__ import annotations

import os

from bench.core import Context, Row
from bench.figures.paths import full_path

NUMBER, TITLE = "8", "Scaling 1 → 2 worker processes"


def run(ctx: Context) -> list[Row]:
    """Same load, same threads per process, 0 ms latency: 1 process, then 2."""
    s = ctx.sizes
    one = full_path(ctx, 1, s.threads, s.send_jobs)
    two = full_path(ctx, 2, s.threads, s.send_jobs)
    ratio = two.rate / one.rate
    cores = os.cpu_count() or 1
    total_ms = sum(two.cpu_ms_per_job.values())
    machine_cap = cores * 1000 / total_ms if total_ms else float("nan")
    one_worker_ms = one.cpu_ms_per_job.get("workers", 0.0)
    one_cap = min(1000 / one_worker_ms, machine_cap) if one_worker_ms else float("nan")
    return [
        Row(
            figure=NUMBER,
            name=TITLE,
            value=f"{two.rate:,.0f} vs {one.rate:,.0f} jobs/s",
            reference="2.0 (linear)",
            ratio=ratio,
            target="none set (linear is 2.0)",
            met=None,
            notes=(
                f"{s.send_jobs:,} record calls per run, {s.threads} threads per process, 0 ms "
                f"latency. All processes together use {total_ms:.1f} ms of CPU per job "
                f"({two.cpu_text()}), so this machine's {cores} cores cap the system near "
                f"{machine_cap:,.0f} jobs/s whatever the worker count, while one worker process "
                f"(one GIL, {one_worker_ms:.1f} ms per job) caps near {one_cap:,.0f}: the best "
                f"ratio here is about {machine_cap / one_cap:.2f}, not 2.0"
            ),
            data={"one": vars(one), "two": vars(two), "machine_cap": machine_cap},
        )
    ]

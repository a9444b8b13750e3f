"""Figure 9d: throughput of one worker process at 200 ms and at 2 s eSMS latency.

The full send path (:func:`bench.figures.paths.full_path`) with one ``voicecall worker``
process of the default 8 threads, every eSMS answer delayed 200 ms, then 2 s. Calls in flight
are coroutines of the send engine, so the rate is not capped at threads ÷ latency (8 ÷ 0.2 s =
40 calls/s, 8 ÷ 2 s = 4 calls/s). It is bounded by BULK_SEND_CONCURRENCY ÷ latency (record
calls at eSMS at once per process) or by CPU, whichever is lower; the notes give both.
"""

from __future__ import annotations

import os

from bench.core import Context, Row
from bench.figures.paths import Run, full_path
from voicecall.config.settings import Settings

NUMBER, TITLE = "9d", "Isolation: throughput per worker process"
LATENCIES_MS = (200.0, 2000.0)


def _cores_used(run: Run) -> tuple[float, float]:
    """Cores the worker process and every party used, on average, over the run."""
    per_job_s = {k: v / 1000 for k, v in run.cpu_ms_per_job.items()}
    jobs_per_s = run.n / max(run.seconds, 1e-6)
    return per_job_s["workers"] * jobs_per_s, sum(per_job_s.values()) * jobs_per_s


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    slots = Settings.model_fields["bulk_send_concurrency"].default  # bulk requests at eSMS
    # At most per_process_max_s of calls per latency: the slot ceiling bounds a slow eSMS.
    most = {ms: int(slots * s.per_process_max_s * 1000 // ms) for ms in LATENCIES_MS}
    results = {ms: full_path(ctx, 1, s.threads, min(s.per_process_jobs, most[ms]), latency_ms=ms)
               for ms in LATENCIES_MS}  # fmt: skip
    cores = os.cpu_count() or 1
    rows = []
    for ms, result in results.items():
        ceiling = s.threads / (ms / 1000)
        worker_cores, all_cores = _cores_used(result)
        rows.append(
            Row(
                figure=NUMBER,
                name=f"{TITLE} at {ms / 1000:g} s latency",
                value=f"{result.rate:,.1f} calls/s",
                reference=f"{s.threads} threads ÷ {ms / 1000:g} s = {ceiling:,.0f} calls/s",
                ratio=result.rate / ceiling,
                target="above the thread ceiling (bounded by BULK_SEND_CONCURRENCY or CPU)",
                met=result.rate > ceiling,
                notes=(
                    f"{result.n:,} record calls, 1 worker process × {s.threads} threads; "
                    f"the worker process used {worker_cores:.2f} cores, every party "
                    f"{all_cores:.2f} of {cores}; CPU ms per call: {result.cpu_text()}; "
                    f"slot ceiling BULK_SEND_CONCURRENCY ÷ latency = {slots / (ms / 1000):,.0f} "
                    "calls/s"
                ),
                why_missed=WHY_MISSED,
                data={"run": vars(result), "ceiling": ceiling, "worker_cores": worker_cores},
            )
        )
    return rows


WHY_MISSED = """\
Each call in flight is a coroutine, not a thread; the rate stops at what the CPU gives the
worker process (and Redis, the simulator and the producer on the same cores), or at
BULK_SEND_CONCURRENCY ÷ latency when that is lower."""

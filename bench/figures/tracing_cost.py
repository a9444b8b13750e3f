"""Figure 12: what OpenTelemetry tracing costs the send path (issue 21 §7).

Figure 1's full path twice in one run, with the same processes, threads and jobs: tracing off,
then on with 100 % sampling (``parentbased_always_on``), every span exported over OTLP/HTTP
(protobuf, the SDK's batch processor) to a collector stand-in in the bench process
(tests/fixtures/otlp_collector.py). The figure is the worker-side CPU per job that tracing
adds, and the jobs/s with it on against off.
"""

from __future__ import annotations

from bench.core import Context, Row
from bench.figures.paths import full_path
from tests.fixtures.otlp_collector import Collector

NUMBER, TITLE = "12", "Tracing cost (send path)"
TARGET_RATIO = 0.8  # tracing on keeps at least this share of the throughput


def run(ctx: Context) -> list[Row]:
    if ctx.quick:  # two more worker runs: the smoke test's minutes; the e2e tests trace it
        note = "not measured by --quick (tests/test_tracing_e2e.py traces real processes)"
        return [
            Row(figure=NUMBER, name=TITLE, value="skipped", reference="—", ratio=None,
                target=f"≥ {TARGET_RATIO} of the throughput", met=None, notes=note)
        ]  # fmt: skip
    s = ctx.sizes
    off = full_path(ctx, s.processes, s.threads, s.send_jobs)
    collector = Collector()
    try:
        on = full_path(
            ctx,
            s.processes,
            s.threads,
            s.send_jobs,
            worker_env={
                "otel_traces_exporter": "otlp",
                "otel_exporter_otlp_endpoint": collector.endpoint,
                "otel_traces_sampler": "parentbased_always_on",
            },
        )
        spans = len(collector.spans)
    finally:
        collector.close()
    workers_off = off.cpu_ms_per_job.get("workers", 0.0)
    workers_on = on.cpu_ms_per_job.get("workers", 0.0)
    ratio = on.rate / off.rate
    notes = (
        f"{s.send_jobs:,} record calls per side, {s.processes} processes × {s.threads} threads, "
        f"simulator at 0 ms; 100 % sampling, OTLP/HTTP to a local stand-in ({spans:,} spans "
        f"received, {spans / s.send_jobs:.1f} per job). Worker CPU per job: "
        f"{workers_off:.2f} ms off, {workers_on:.2f} ms on (+{workers_on - workers_off:.2f} ms). "
        f"Off: {off.cpu_text()}; on: {on.cpu_text()}"
    )
    return [
        Row(
            figure=NUMBER,
            name=TITLE,
            value=f"+{workers_on - workers_off:.2f} ms CPU per job",
            reference=f"{on.rate:,.0f} vs {off.rate:,.0f} jobs/s (on vs off)",
            ratio=ratio,
            target=f"≥ {TARGET_RATIO} of the throughput",
            met=ratio >= TARGET_RATIO,
            notes=notes,
            data={"off": vars(off), "on": vars(on), "spans": spans},
        )
    ]

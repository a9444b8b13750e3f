"""Figure 12: what OpenTelemetry tracing costs the send path (issue 21 §7).

Figure 1's full path twice in one run, with the same processes, threads and jobs: tracing off,
then on with 100 % sampling (``parentbased_always_on``), every span exported over OTLP/HTTP
(protobuf, the SDK's batch processor) to a collector stand-in in the bench process
(tests/fixtures/otlp_collector.py). The figure is the worker-side CPU per job that tracing
adds, and the jobs/s with it on against off. 12b: figure 6a's fixed-rate intake load on an
API process with tracing off, then on (same run, same exporter), at ``INTAKE_RATE_PER_S``
(one traced API process served 500 req/s at p99 14 ms on 2026-12-07, with 64-span exports;
with the SDK's 512 it saturated): intake's p99 and the API's CPU per request.
"""

from __future__ import annotations

from typing import cast

from bench import intake
from bench.core import Context, Row
from bench.figures.intake_rate import WARM_UP_S, Target
from bench.figures.paths import full_path
from bench.harness import API_TOKEN, cpu_seconds, process_tree
from tests.fixtures.otlp_collector import Collector

NUMBER, TITLE = "12", "Tracing cost (send path)"
TARGET_RATIO = 0.8  # tracing on keeps at least this share of the throughput
INTAKE_RATE_PER_S = 200.0


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
    tracing: dict[str, object] = {
        "otel_traces_exporter": "otlp",
        "otel_exporter_otlp_endpoint": collector.endpoint,
        "otel_traces_sampler": "parentbased_always_on",
    }
    try:
        on = full_path(ctx, s.processes, s.threads, s.send_jobs, worker_env=tracing)
        spans = len(collector.spans)
        intake_row = _intake(ctx, tracing)
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
        ),
        intake_row,
    ]


def _intake(ctx: Context, tracing: dict[str, object]) -> Row:
    """Figure 6a's fixed-rate load on one API process with tracing off, then on."""
    stack, s = ctx.stack, ctx.sizes
    results, cpu_ms = {}, {}
    for side, settings in (("off", {}), ("on", tracing)):
        stack.reset()
        api, url = stack.start_api(**settings)
        try:
            target = Target(url, API_TOKEN, stack.redis.url, stack.r.flushall)
            assert api.process is not None
            pids = process_tree(api.process.pid)
            before = cpu_seconds(pids)
            results[side] = intake.fixed_rate(
                cast(intake.Servers, target),
                INTAKE_RATE_PER_S,
                s.intake_duration_s,
                s.intake_threads,
                warmup_s=WARM_UP_S,
            )
            used = cpu_seconds(pids) - before
            cpu_ms[side] = 1000 * used / max(1, int(results[side]["sent"]))
        finally:
            stack.stop(api)
    on_p99, off_p99 = float(results["on"]["p99_ms"]), float(results["off"]["p99_ms"])
    return Row(
        figure=f"{NUMBER}b",
        name="Tracing cost (intake): POST /v1/calls p99, tracing on vs off",
        value=f"{on_p99:.1f} ms",
        reference=f"{off_p99:.1f} ms (off)",
        ratio=on_p99 / off_p99 if off_p99 else None,
        target="none (the cost of tracing at intake)",
        met=None,
        notes=(
            f"{INTAKE_RATE_PER_S:,.0f} req/s offered for {s.intake_duration_s:g} s (after "
            f"{WARM_UP_S:g} s of warm-up) to one API process per side, 100 % sampling; p50 "
            f"{results['on']['p50_ms']:.1f} vs {results['off']['p50_ms']:.1f} ms; API CPU per "
            f"request (warm-up included) {cpu_ms['on']:.2f} vs {cpu_ms['off']:.2f} ms; errors "
            f"{results['on']['errors']} vs {results['off']['errors']}"
        ),
        data={"on": results["on"], "off": results["off"], "api_cpu_ms": cpu_ms},
    )

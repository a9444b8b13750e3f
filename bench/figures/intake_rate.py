"""Figure 6: intake, ``POST /v1/calls`` at a fixed offered rate, and the Python API's cost.

Reuses :mod:`bench.intake`: its open-loop load generator runs as a separate process
(latency counted from each request's planned send time, so queueing cannot hide), and its
``enqueue_rates`` times ``VoiceCallClient.enqueue`` against a bare ``broker.enqueue`` of the
same message (what ``actor.send()`` does). No worker runs meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from bench import intake
from bench.core import Context, Row
from bench.harness import API_TOKEN

NUMBER, TITLE = "6", "Intake"
WARM_UP_RATE, WARM_UP_S = 50.0, 1.0


@dataclass
class Target:
    """What :mod:`bench.intake` needs of its ``Servers``: this run's API and Redis."""

    base_url: str
    token: str
    redis_url: str
    flush_redis: Any

    def flush(self) -> None:
        self.flush_redis()


def run(ctx: Context) -> list[Row]:
    """Two rows: 6a the HTTP API at a fixed rate, 6b the Python API ÷ raw enqueue."""
    stack, s = ctx.stack, ctx.sizes
    stack.reset()
    target = cast(
        intake.Servers, Target(stack.api_url, API_TOKEN, stack.redis.url, stack.r.flushall)
    )
    intake.fixed_rate(target, WARM_UP_RATE, WARM_UP_S, 8)
    stack.reset()
    cpu0, started = stack.cpu(), time.monotonic()
    fixed = intake.fixed_rate(target, s.intake_rate_per_s, s.intake_duration_s, s.intake_threads)
    cpu1, elapsed = stack.cpu(), time.monotonic() - started
    busy = {k: (cpu1[k] - cpu0[k]) / elapsed for k in ("api", "redis")}
    client_rate, raw_rate = intake.enqueue_rates(target, s.enqueue_jobs)
    stack.reset()
    offered = s.intake_rate_per_s
    achieved = float(fixed["achieved_rps"])
    http_row = Row(
        figure=f"{NUMBER}a",
        name=f"{TITLE}: POST /v1/calls",
        value=(
            f"{achieved:,.0f} req/s, p50 {fixed['p50_ms']:.1f} ms, p99 {fixed['p99_ms']:.1f} ms"
        ),
        reference=f"offered {offered:,.0f} req/s for {s.intake_duration_s:g} s",
        ratio=achieved / offered,
        target="none set",
        met=None,
        notes=(
            f"one API process (uvicorn); separate load process, {s.intake_threads} threads, "
            f"open loop, latency from each request's planned send time; {fixed['errors']} "
            f"errors of {fixed['sent']:,}. The API process used {busy['api']:.0%} of a core "
            f"and Redis {busy['redis']:.0%} (the load generator shares the same cores); "
            "one uvicorn process near 100 % is saturated and queues, which the p99 shows"
        ),
        data={**fixed, "api_core_share": busy["api"], "redis_core_share": busy["redis"]},
    )
    python_row = Row(
        figure=f"{NUMBER}b",
        name=f"{TITLE}: Python API enqueue",
        value=f"{client_rate:,.0f} jobs/s",
        reference=f"raw actor.send() {raw_rate:,.0f} msgs/s",
        ratio=client_rate / raw_rate,
        target="none set",
        met=None,
        notes=(
            f"{s.enqueue_jobs:,} record calls, one thread; the Python API validates the "
            "request (pydantic), creates the job atomically (Lua) and reads it back"
        ),
        data={"client_rate": client_rate, "raw_rate": raw_rate},
    )
    return [http_row, python_row]

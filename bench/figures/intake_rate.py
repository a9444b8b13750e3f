"""Figure 6: intake, ``POST /v1/calls`` at a fixed offered rate beside an anchor, and the
Python API's cost.

Reuses :mod:`bench.intake`: its open-loop load generator runs as a separate process
(latency counted from each request's planned send time, so queueing cannot hide; its own
garbage collection off while it measures; a warm-up at the target rate first). The anchor
(:mod:`bench.intake_anchor`) is a minimal FastAPI app doing the same Redis work (one Lua
create, one enqueue) under the same uvicorn, measured with the same load in the same run.
``enqueue_rates`` times ``VoiceCallClient.enqueue`` against a bare ``broker.enqueue`` of the
same message (what ``actor.send()`` does). No worker runs meanwhile.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Any, cast

import httpx

from bench import intake
from bench.core import Context, Row
from bench.harness import API_TOKEN, BenchStack, wait_until
from tests.fixtures.redis import free_port

NUMBER, TITLE = "6", "Intake"
WARM_UP_S = 1.0  # at the target rate, before each measured run
P99_TARGET_MS = 25.0  # issue 14 §3: at 500 req/s offered to one API process


@dataclass
class Target:
    """What :mod:`bench.intake` needs of its ``Servers``: this run's API and Redis."""

    base_url: str
    token: str
    redis_url: str
    flush_redis: Any

    def flush(self) -> None:
        self.flush_redis()


def _anchor(stack: BenchStack) -> tuple[Any, str]:
    """Start the anchor app; (its service, its base URL)."""
    port = free_port()
    env = {**stack.env(), "BENCH_REDIS_URL": stack.redis.url}
    service = stack._service(
        "anchor",
        ["-m", "uvicorn", "bench.intake_anchor:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--no-server-header"],
        env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/readyz", timeout=1).status_code == 200, 30, what="anchor")
    return service, url


def run(ctx: Context) -> list[Row]:
    """Three rows: 6a the HTTP API at a fixed rate (beside the anchor), 6b the Python API ÷
    raw enqueue, 6c the anchor itself."""
    stack, s = ctx.stack, ctx.sizes
    stack.reset()
    target = cast(
        intake.Servers, Target(stack.api_url, API_TOKEN, stack.redis.url, stack.r.flushall)
    )
    rate, duration, threads = s.intake_rate_per_s, s.intake_duration_s, s.intake_threads
    cpu0, started = stack.cpu(), time.monotonic()
    fixed = intake.fixed_rate(target, rate, duration, threads, warmup_s=WARM_UP_S)
    cpu1, elapsed = stack.cpu(), time.monotonic() - started
    busy = {k: (cpu1[k] - cpu0[k]) / elapsed for k in ("api", "redis")}
    stack.reset()
    service, anchor_url = _anchor(stack)
    try:
        anchor_target = cast(
            intake.Servers, Target(anchor_url, API_TOKEN, stack.redis.url, stack.r.flushall)
        )
        anchor = intake.fixed_rate(anchor_target, rate, duration, threads, warmup_s=WARM_UP_S)
    finally:
        stack.stop(service)
    stack.reset()
    client_rate, raw_rate = intake.enqueue_rates(target, s.enqueue_jobs)
    stack.reset()
    achieved = float(fixed["achieved_rps"])
    p99, anchor_p99 = float(fixed["p99_ms"]), float(anchor["p99_ms"])
    http_row = Row(
        figure=f"{NUMBER}a",
        name=f"{TITLE}: POST /v1/calls",
        value=f"{achieved:,.0f} req/s, p50 {fixed['p50_ms']:.1f} ms, p99 {p99:.1f} ms",
        reference=(
            f"anchor (minimal FastAPI, same Redis work) p50 {anchor['p50_ms']:.1f} ms, "
            f"p99 {anchor_p99:.1f} ms; offered {rate:,.0f} req/s for {duration:g} s"
        ),
        ratio=p99 / anchor_p99 if anchor_p99 else None,
        target=f"p99 ≤ {P99_TARGET_MS:g} ms at 500 req/s",
        met=p99 <= P99_TARGET_MS if rate >= 500 else None,
        notes=(
            f"one API process (uvicorn, {_server_flavour()}); separate load process, "
            f"{threads} threads, open loop, latency from each request's planned send time, "
            f"{WARM_UP_S:g} s warm-up at the same rate, its GC off while measuring; "
            f"{fixed['errors']} errors of {fixed['sent']:,}. The API process used "
            f"{busy['api']:.0%} of a core and Redis {busy['redis']:.0%} (the load generator "
            "shares the same cores); ratio: p99 ÷ the anchor's p99"
        ),
        why_missed=(
            "the load generator and the API share 2 cores with other work; see the anchor"
            if p99 > P99_TARGET_MS
            else ""
        ),
        data={**fixed, "api_core_share": busy["api"], "redis_core_share": busy["redis"],
              "anchor": anchor},
    )  # fmt: skip
    anchor_row = Row(
        figure=f"{NUMBER}c",
        name=f"{TITLE}: anchor (minimal FastAPI app)",
        value=(
            f"{float(anchor['achieved_rps']):,.0f} req/s, p50 {anchor['p50_ms']:.1f} ms, "
            f"p99 {anchor_p99:.1f} ms"
        ),
        reference=f"offered {rate:,.0f} req/s for {duration:g} s",
        ratio=None,
        target="none (the reference of 6a)",
        met=None,
        notes="one async route: one Lua create and one enqueue with redis.asyncio; no auth, "
        f"validation or logging; same uvicorn and load; {anchor['errors']} errors",
        data=anchor,
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
    return [http_row, python_row, anchor_row]


def _server_flavour() -> str:
    """Which event loop and HTTP parser uvicorn picks here ("auto" takes the fast ones)."""
    found = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name)]
    return " + ".join(found) if found else "asyncio + h11"

"""Figure 9b: OTP enqueue→sent while every webhook receiver is slow or trickles its answer.

Two receivers on loopback: one answers after 10 s, one trickles its answer a byte a second.
First the mixed load (:mod:`bench.figures.mixed_load`) runs with no webhooks (the baseline).
Then ``webhook_jobs`` record calls with webhooks finish first (the simulator's time sped up),
so their deliveries are under way, and the same load runs again with every job's webhook on
one of the two receivers. A delivery holds a coroutine and a slot of the webhooks queue for
at most WEBHOOK_TIMEOUT_S (one deadline for the whole delivery), never a worker thread.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bench.core import Context, Row, fmt_s, phone
from bench.figures.mixed_load import run_mixed
from bench.figures.paths import RECORD_ID
from bench.harness import wait_until
from tests.fixtures.webhook_receiver import Receiver, after, answer, trickle

NUMBER, TITLE = "9b", "Isolation: slow webhook receivers"
MARGIN_S = 0.5
SLOW_S = 10.0
SIM_KNOBS: dict[str, object] = {"time_scale": 0.01}  # calls end (and webhooks start) in ~1 s


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    baseline = run_mixed(ctx, "base", sim_knobs=SIM_KNOBS)
    slow = Receiver(after(SLOW_S, answer(200)))
    trickling = Receiver(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1.0))
    urls = (slow.url(), trickling.url())

    def options(i: int) -> dict[str, Any]:
        return {"webhook_url": urls[i % 2]}

    def webhooks_under_way() -> None:
        client = ctx.stack.client()
        for i in range(s.webhook_jobs):
            client.enqueue_record(phone(4 * 10**6 + i), RECORD_ID, **options(i))
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: len(slow.received) + len(trickling.received) >= s.webhook_jobs // 2,
                timeout=60,
                interval=0.2,
            )

    try:
        loaded = run_mixed(
            ctx, "hooks", sim_knobs=SIM_KNOBS, options=options, before=webhooks_under_way
        )
        deliveries = len(slow.received) + len(trickling.received)
    finally:
        slow.close()
        trickling.close()
    excess = loaded.otp_p99 - baseline.otp_p99
    met = loaded.missing == 0 and loaded.doubled == 0 and excess <= MARGIN_S
    return [
        Row(
            figure=NUMBER,
            name=TITLE,
            value=f"OTP p99 {fmt_s(loaded.otp_p99)} (p50 {fmt_s(loaded.otp_p50)})",
            reference=f"no webhooks: OTP p99 {fmt_s(baseline.otp_p99)} (p50 "
            f"{fmt_s(baseline.otp_p50)})",
            ratio=None,
            target=f"p99 ≤ baseline + {MARGIN_S} s",
            met=met,
            notes=(
                f"every webhook receiver answers after {SLOW_S:.0f} s or trickles a byte a "
                f"second; {s.webhook_jobs} jobs' webhooks under way before {loaded.n_otp} OTP "
                f"calls at {s.mixed_otp_rate_per_s:g}/s and {loaded.n_scheduled} scheduled "
                f"calls, each with a webhook; {deliveries} deliveries reached the receivers; "
                f"p99 − baseline = {fmt_s(excess)}; scheduled lateness p99 "
                f"{fmt_s(loaded.late_p99)} (baseline {fmt_s(baseline.late_p99)})"
            ),
            why_missed=WHY_MISSED,
            data={"loaded": vars(loaded), "baseline": vars(baseline), "deliveries": deliveries},
        )
    ]


WHY_MISSED = """\
Webhooks have their own queue, their own slots (WEBHOOK_CONCURRENCY) and one deadline per
delivery (WEBHOOK_TIMEOUT_S), so no OTP waits for a thread a receiver holds. A miss here is
CPU: every delivery and its retries cost some, on the same shared cores."""

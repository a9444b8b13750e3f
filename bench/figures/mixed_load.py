"""Load shared by figures 9a and 9b: OTP calls at a steady rate beside scheduled record calls.

While a ``voicecall worker`` runs, scheduled record calls are enqueued due evenly over a
window, then OTP calls are enqueued at a steady rate across that window. From the
simulator's ledger: OTP enqueue→sent (``accepted_at`` minus the time just before
``enqueue_otp``), scheduled lateness (``accepted_at`` minus the due time) and how many eSMS
calls each job caused (exactly one is the rule).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.core import Context, epoch, fmt_s, paced, percentile, phone
from bench.figures.paths import RECORD_ID
from bench.figures.scheduling import iso
from bench.harness import wait_until

OTP_TEXT = "Ma xac thuc cua ban la 123456"


@dataclass
class Mixed:
    """One run's figures (seconds); ``missing``: jobs with no eSMS call when the wait ended."""

    otp_p50: float
    otp_p99: float
    late_p50: float
    late_p99: float
    missing: int
    doubled: int  # jobs with more than one eSMS call
    n_otp: int
    n_scheduled: int
    hung: int  # eSMS answers the simulator withheld

    def text(self) -> str:
        missed = f", {self.missing} not sent" if self.missing else ""
        return (
            f"OTP p99 {fmt_s(self.otp_p99)} (p50 {fmt_s(self.otp_p50)}); scheduled lateness "
            f"p99 {fmt_s(self.late_p99)} (p50 {fmt_s(self.late_p50)}){missed}"
        )


def run_mixed(
    ctx: Context,
    tag: str,
    *,
    sim_knobs: dict[str, object],
    options: Callable[[int], dict[str, Any]] = lambda i: {},
    before: Callable[[], None] = lambda: None,
) -> Mixed:
    """One run on a fresh worker; ``options(i)``: extra enqueue options of the i-th job;
    ``before()`` runs once the worker is up, before the measured load."""
    stack, s = ctx.stack, ctx.sizes
    stack.reset(**sim_knobs)
    worker = stack.start_worker(s.processes, s.threads)
    try:
        before()
        earlier = stack.sim_calls()  # calls ``before()`` caused
        client = stack.client()
        lo, hi = s.mixed_window_s
        base = time.time() + lo
        n_sched = s.mixed_scheduled
        due = [base + (hi - lo) * i / max(n_sched - 1, 1) for i in range(n_sched)]
        sched_ids = [f"{tag}-s{i}" for i in range(n_sched)]
        for i, at in enumerate(due):
            client.enqueue_record(
                phone(2 * 10**6 + i), RECORD_ID, send_at=iso(at), id=sched_ids[i], **options(i)
            )
        wait_s = max(0.0, base - time.time())
        time.sleep(wait_s)  # OTP calls start as the first scheduled call falls due
        otp_ids: list[str] = []

        def otp(i: int) -> None:
            job = client.enqueue_otp(phone(3 * 10**6 + i), OTP_TEXT, **options(n_sched + i))
            otp_ids.append(job.id)

        enqueued_at = paced(s.mixed_otp, s.mixed_otp_rate_per_s, otp)
        total = earlier + n_sched + s.mixed_otp
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: stack.sim_calls() >= total, timeout=60, interval=0.2)
        calls = stack.sim.calls()
        hung = int(stack.sim.stats()["faults"].get("accept_then_hang", 0))
    finally:
        stack.stop(worker)
    ended = time.time()
    accepted: dict[str, float] = {}
    for call in calls:
        accepted.setdefault(str(call["request_id"]), epoch(str(call["accepted_at"])))
    per_job = Counter(str(call["request_id"]) for call in calls)
    otp_waits = [accepted.get(j, ended) - at for j, at in zip(otp_ids, enqueued_at, strict=True)]
    lateness = [accepted.get(j, ended) - at for j, at in zip(sched_ids, due, strict=True)]
    ids = [*sched_ids, *otp_ids]
    return Mixed(
        otp_p50=percentile(otp_waits, 0.5),
        otp_p99=percentile(otp_waits, 0.99),
        late_p50=percentile(lateness, 0.5),
        late_p99=percentile(lateness, 0.99),
        missing=sum(1 for j in ids if j not in accepted),
        doubled=sum(1 for j in ids if per_job[j] > 1),
        n_otp=len(otp_ids),
        n_scheduled=n_sched,
        hung=hung,
    )

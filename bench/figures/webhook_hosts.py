"""Figure 9e: one host's hanging webhook receivers and another host's webhooks.

Two receivers on two loopback addresses (two hosts). ``hanging_webhooks`` record calls end
with their webhook on a host that says nothing for longer than ``WEBHOOK_TIMEOUT_S``; once
those deliveries are under way, ``other_webhooks`` calls end with their webhook on the other
host, paced over a few seconds, all inside the first deliveries' deadline. Measured from
each job's own record: the delivery's end (attempt start plus its duration) minus the job's
end. The reference is the same other-host webhooks with no hanging host. Production
defaults (``WEBHOOK_CONCURRENCY`` 64, ``WEBHOOK_HOST_CONCURRENCY`` 8, ``WEBHOOK_TIMEOUT_S`` 10,
``REDRIVE_AFTER_S`` 30) on one worker process, whose 64 slots the 80 hanging deliveries would
exceed. Issue 18, finding 14: all 64 slots went to the hanging host and another host's
webhook waited ~29 s for the due set.
"""

from __future__ import annotations

import contextlib

from bench.core import Context, Row, fmt_s, paced, percentile, phone
from bench.figures.paths import RECORD_ID
from bench.harness import BenchStack, wait_until
from tests.fixtures.webhook_receiver import Receiver, after, answer

NUMBER, TITLE = "9e", "Isolation: one host's hanging webhook receivers"
TARGET_S = 2.0
HANG_S = 60.0  # longer than WEBHOOK_TIMEOUT_S: each delivery there is cut at its deadline
OTHER_RATE_PER_S = 4.0
SIM_KNOBS: dict[str, object] = {"time_scale": 0.01}  # calls end (and webhooks start) in ~1 s
PROCESSES = 1  # one process's 64 slots, as in the finding: 80 hanging deliveries exceed them


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    other = Receiver(answer(204), host="127.0.0.2")
    hanging = Receiver(after(HANG_S, answer(204)), host="127.0.0.1")
    try:
        reference = _other_host_delays(ctx, "ref", other, hanging=None)
        loaded = _other_host_delays(ctx, "hang", other, hanging=hanging)
        under_way = len(hanging.received)
    finally:
        hanging.close()
        other.close()
    worst, worst_ref = max(loaded, default=float("nan")), max(reference, default=float("nan"))
    missing = s.other_webhooks - len(loaded)
    met = missing == 0 and worst - worst_ref <= TARGET_S
    return [
        Row(
            figure=NUMBER,
            name=TITLE,
            value=f"max {fmt_s(worst)} (p50 {fmt_s(percentile(loaded, 0.5))})",
            reference=f"no hanging host: max {fmt_s(worst_ref)} "
            f"(p50 {fmt_s(percentile(reference, 0.5))})",
            ratio=None,
            target=f"max ≤ reference + {TARGET_S:.0f} s",
            met=met,
            notes=(
                f"{s.hanging_webhooks} webhooks to one host that answers after {HANG_S:.0f} s "
                f"({under_way} deliveries reached it, each cut at WEBHOOK_TIMEOUT_S), then "
                f"{s.other_webhooks} to another host at {OTHER_RATE_PER_S:g}/s: job end → "
                f"delivered; {missing} not delivered within 30 s; one worker process × "
                f"{s.threads} threads, defaults: WEBHOOK_HOST_CONCURRENCY 8 of "
                "WEBHOOK_CONCURRENCY 64 slots"
            ),
            why_missed=WHY_MISSED,
            data={"loaded": loaded, "reference": reference, "under_way": under_way},
        )
    ]


def _other_host_delays(
    ctx: Context, tag: str, other: Receiver, *, hanging: Receiver | None
) -> list[float]:
    """Seconds from each other-host job's end to its webhook delivered, on a fresh worker."""
    stack, s = ctx.stack, ctx.sizes
    stack.reset(**SIM_KNOBS)
    worker = stack.start_worker(PROCESSES, s.threads)
    client = stack.client()
    try:
        if hanging is not None:
            for i in range(s.hanging_webhooks):
                client.enqueue_record(phone(5 * 10**6 + i), RECORD_ID, webhook_url=hanging.url())
            shares = min(s.hanging_webhooks, 8 * PROCESSES)
            wait_until(lambda: len(hanging.received) >= shares, 60, what="the host's shares")
        ids: list[str] = []

        def enqueue(i: int) -> None:
            job = client.enqueue_record(
                phone(6 * 10**6 + i), RECORD_ID, webhook_url=other.url(), id=f"{tag}-o{i}"
            )
            ids.append(job.id)

        paced(s.other_webhooks, OTHER_RATE_PER_S, enqueue)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: _delivered(stack, ids) == len(ids), 30, interval=0.2)
        jobs = stack.store.get_many(ids)
    finally:
        stack.stop(worker)
    delays = []
    for job in jobs:
        if job is None or job.finished_at is None or job.webhook is None:
            continue
        if job.webhook.state == "delivered":
            last = job.webhook.deliveries[-1]
            delays.append(last.at + (last.duration_ms or 0) / 1000 - job.finished_at)
    return delays


def _delivered(stack: BenchStack, ids: list[str]) -> int:
    jobs = stack.store.get_many(ids)
    return sum(1 for j in jobs if j is not None and j.webhook and j.webhook.state == "delivered")


WHY_MISSED = """\
Each receiver host holds at most WEBHOOK_HOST_CONCURRENCY of a process's WEBHOOK_CONCURRENCY
slots; its other deliveries wait without one. A miss means the other host's webhooks found no
free slot (more hanging hosts than slots ÷ share) or the shared cores were busy."""

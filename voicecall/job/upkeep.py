"""The steps that keep a job going without moving its state: timers, leases, webhook attempts,
dead-letter housekeeping and retention. Like :mod:`voicecall.job.lifecycle`'s arrows, each
builds an :class:`~voicecall.job.steps.Op` that the store runs as one atomic Lua step.

- ``redrive``: a step that should have happened did not: send its message again.
- ``poll_pending``, ``webhook_due``: a timer of the due set came round.
- ``postpone``: no worker slot was free; ``renew_lease``: a claimed bulk call still waits for
  its place at eSMS.
- ``record_delivery``, ``redeliver``, ``dismiss``: webhook attempts and dead letters.
- ``purge``: retention is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voicecall.job import keys
from voicecall.job.layout import phone_entry
from voicecall.job.records import JobRecord
from voicecall.job.steps import Op, Verdict, job_op

# purge's dead-letter slots, by name (lua/purge.lua): both send queues' and the webhooks'.
DEAD_LETTER_SLOTS = {
    "dead_otp": keys.dead_letters(keys.QUEUE_OTP),
    "dead_bulk": keys.dead_letters(keys.QUEUE_BULK),
    "dead_webhooks": keys.dead_letters(keys.QUEUE_WEBHOOKS),
}


def poll_pending(job_id: str, *, next_at: float) -> Op:
    return job_op("poll_pending", job_id, {}, next_at=next_at)


def postpone(job_id: str, *, at: float) -> Op:
    """No worker slot was free: bring the queued job back at ``at``."""
    return job_op("postpone", job_id, {}, at=at)


def renew_lease(job_id: str, *, owner: str, attempt: int, lease_s: float) -> Op:
    """A claimed job still waits in its worker (for a place at eSMS): its lease runs
    ``lease_s`` from now, if it is still that worker's claim of that attempt (verdict
    ``renewed``, detail the new end), else verdict ``lost``."""
    return job_op("renew", job_id, {}, owner=owner, attempt=attempt, lease_s=lease_s)


def redrive(
    job_id: str,
    *,
    liveness_ms: int,
    lease_check_s: float,
    redrive_s: float,
    force: bool = False,
) -> Op:
    """Send again the message a job needs (``force``: before its time in the due set, for a
    job claimed by a worker found dead)."""
    return job_op(
        "redrive",
        job_id,
        {"workers": keys.WORKERS},
        liveness_ms=liveness_ms,
        lease_check_s=lease_check_s,
        redrive_s=redrive_s,
        force=force or None,
    )


def record_delivery(
    job_id: str, *, delivery: Mapping[str, Any], result: Verdict, next_at: float | None = None
) -> Op:
    """A webhook attempt: ``result`` is DELIVERED, RETRY (at ``next_at``) or GAVE_UP."""
    return job_op(
        "delivery",
        job_id,
        {"dead_letters": keys.dead_letters(keys.QUEUE_WEBHOOKS)},
        delivery={k: v for k, v in delivery.items() if v is not None},
        result=result,
        next_at=next_at,
    )


def dismiss(job_id: str, *, queue: str) -> Op:
    """An operator purges a dead letter (the job stays until its retention ends)."""
    return job_op("dismiss", job_id, {"dead_letters": keys.dead_letters(queue)})


def redeliver(job_id: str) -> Op:
    return job_op("redeliver", job_id, {"dead_letters": keys.dead_letters(keys.QUEUE_WEBHOOKS)})


def webhook_due(job_id: str) -> Op:
    return job_op("webhook_due", job_id, {})


def purge(job: JobRecord | None, job_id: str) -> Op:
    """Retention is over: the job and its index entries leave together. A final job's
    record has no TTL, so it is here to name them (``job`` None: only after someone deleted
    its record by hand; its state and due entries still go)."""
    chunk = None
    if job is not None and job.cid is not None and job.seq is not None:
        chunk = keys.campaign_chunk(job.cid, job.seq)
    smsid = job.smsid if job is not None else None
    return job_op(
        "purge",
        job_id,
        {
            **DEAD_LETTER_SLOTS,
            "phone_bucket": keys.phone_bucket(job.phone) if job is not None else None,
            "campaign_chunk": chunk,
            "smsid_bucket": keys.smsid_bucket(smsid) if smsid else None,
        },
        phone_entry=phone_entry(job) if job is not None else None,
        smsid=smsid,
        smsid_field=keys.smsid_field(smsid) if smsid else None,
    )

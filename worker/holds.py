"""Holding a job back: quiet hours, the global send rate and the per-phone limit (decision 6).

A held job is rescheduled (back to ``vc:schedule``) or gets a fresh delayed message; neither
spends one of its retries. An OTP over its phone's limit is rejected ``rate_limited`` (a late
OTP is useless); OTP is never held by quiet hours.
"""

from __future__ import annotations

from dramatiq.rate_limits import RateLimiter

from voicecall import keys
from voicecall.finish import finish
from voicecall.jobs import Kind, State
from voicecall.logs import get_logger
from voicecall.messages import send_message
from voicecall.metrics import RATE_LIMITED
from voicecall.store import Job, now_s
from voicecall.timefmt import from_epoch
from worker.runtime import Runtime
from worker.timing import quiet_window_end

log = get_logger(__name__)

WAITING = (State.QUEUED, State.RETRYING)
GLOBAL_LIMIT_DEFER_S = 1.0


def held_back(rt: Runtime, job: Job, now: float) -> bool:
    """Quiet hours and limits. True when the job was held back or refused (never a retry).

    The global rate is checked before the per-phone limit, so a job deferred by the global
    rate does not use up its phone's allowance. A limit set to 0 is off (no Redis round trips).
    """
    settings = rt.settings
    if job.kind is not Kind.VOICE_OTP:
        resume_at = quiet_window_end(now, settings.quiet_hours, settings.zone)
        if resume_at is not None:
            RATE_LIMITED.labels(kind=job.kind, limit="quiet_hours").inc()
            reschedule(rt, job, resume_at, reason="quiet_hours")
            return True
    if settings.global_send_rate_per_s and not _acquire(rt.global_send_limiter()):
        RATE_LIMITED.labels(kind=job.kind, limit="global").inc()
        defer(rt, job, GLOBAL_LIMIT_DEFER_S)
        return True
    if settings.phone_limit_calls and not _acquire(rt.phone_limiter(job.phone)):
        RATE_LIMITED.labels(kind=job.kind, limit="phone").inc()
        if job.kind is Kind.VOICE_OTP:
            finish(
                rt.store,
                rt.broker,
                job.id,
                State.REJECTED,
                allowed_from=WAITING,
                fields={"reason": "rate_limited"},
                note=f"over {settings.phone_limit_calls} calls per {settings.phone_limit_window_s} s to this phone",
            )
        else:
            reschedule(rt, job, now + settings.phone_limit_window_s / 2, reason="phone_rate_limit")
        return True
    return False


def _acquire(limiter: RateLimiter) -> bool:
    """One slot of a Dramatiq rate limiter, without waiting (a bucket slot is never released)."""
    with limiter.acquire(raise_on_failure=False) as acquired:
        return bool(acquired)


def defer(rt: Runtime, job: Job, delay_s: float) -> None:
    """Send a fresh delayed message (retries start at 0) and move the sweeper's deadline."""
    rt.store.redis.zadd(
        keys.INFLIGHT, {job.id: now_s() + delay_s + rt.settings.sweep_stale_queued_s}, xx=True
    )
    send_message(rt.broker, job.id, job.kind, delay_s=delay_s)


def reschedule(rt: Runtime, job: Job, at: float, *, reason: str) -> None:
    """Back into the schedule until ``at``; the scheduler releases it then."""
    rt.store.transition(
        job.id,
        State.SCHEDULED,
        allowed_from=WAITING,
        note=f"held back: {reason}",
        fields={"reason": reason},
        schedule=str(at),
        inflight="-",
    )
    log.info("send_held_back", job_id=job.id, reason=reason, resume_at=from_epoch(at).isoformat())

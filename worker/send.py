"""The send step: one eSMS call per job, whatever Dramatiq delivers (decision 1).

Order: read the job (a final or already-submitted job makes the message a no-op) → expire an
OTP past its time to live → hold back a bulk call in quiet hours or over a limit (rescheduled,
never spending a retry) → claim the job atomically (``queued|retrying → sending`` with a lease)
→ call eSMS with the job id as RequestId → record the result. A worker that dies after eSMS
accepted the call leaves the job ``sending``; once the lease passes, the sweeper re-drives it
and eSMS answers 124 to the repeated RequestId, so the callee is never called twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import dramatiq
import redis
import structlog
import tenacity
from dramatiq.middleware import CurrentMessage

from voicecall import keys
from voicecall.finish import finish
from voicecall.jobs import Kind, ScheduleMode, State
from voicecall.logs import get_logger
from voicecall.messages import poll_message
from voicecall.metrics import SEND_LATENESS, SEND_RETRIES
from voicecall.settings import Settings
from voicecall.store import Job, now_s
from worker.calls import place_call
from worker.esms import InvalidParameter, PermanentError, RetryableError, Submission
from worker.holds import WAITING, defer, held_back
from worker.poll import poll_entry
from worker.runtime import Runtime, runtime
from worker.timing import first_poll_at, retry_delay_s

log = get_logger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

CLAIMABLE = (State.QUEUED, State.RETRYING, State.SENDING)
EARLY_TOLERANCE_S = 0.05  # a delayed message may fire a few ms before its due time
MAX_RETRY_WINDOW_S = 24 * 3600 - 600  # eSMS forgets a RequestId after 24 h


class RetriesExhausted(Exception):
    """The job is ``failed``; its message goes to the dead-letter queue."""


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first delivery of the message
    retries: int  # Dramatiq's count of retries so far


def current_attempt() -> Attempt:
    message = CurrentMessage.get_current_message()
    retries = int(message.options.get("retries", 0)) if message is not None else 0
    return Attempt(number=retries + 1, retries=retries)


def send_job(job_id: str) -> None:
    """The body of the send actors."""
    rt = runtime()
    job = rt.store.get(job_id)
    if job is None:
        log.warning("send_unknown_job", job_id=job_id)
        return
    structlog.contextvars.bind_contextvars(kind=job.kind.value, trace_id=job.trace_id)
    if job.state not in CLAIMABLE:
        log.debug("send_noop", job_id=job_id, state=job.state.value)
        return
    now = now_s()
    if job.kind is Kind.VOICE_OTP and job.expires_at is not None and now > job.expires_at:
        _give_up(rt, job, State.EXPIRED, "ttl", "OTP past its time to live; not placed")
        return
    if _attempts_spent(rt, job, now):
        # Bounds a job whose attempts keep dying without an answer (a crash, a time limit):
        # the sweeper would otherwise re-drive it forever.
        _give_up(
            rt,
            job,
            State.FAILED,
            "attempts_exhausted",
            f"{job.attempts} attempts without an answer",
        )
        return
    worker_mode = job.schedule == ScheduleMode.WORKER
    if worker_mode and job.due_at > now + EARLY_TOLERANCE_S and job.state is State.QUEUED:
        defer(rt, job, job.due_at - now)
        return
    if job.state in WAITING and held_back(rt, job, now):
        return
    _claim_and_send(rt, job, now)


def _attempts_spent(rt: Runtime, job: Job, now: float) -> bool:
    settings = rt.settings
    if job.first_attempt_at is None:
        return False
    return job.attempts > settings.send_max_retries or now > _window_end(job, settings, now)


def _window_end(job: Job, settings: Settings, now: float) -> float:
    """Retries stop SEND_RETRY_WINDOW_S into the window, and never 24 h after the first try:
    eSMS forgets a RequestId after that, so a later send could call the person twice."""
    started = job.window_started_at or job.first_attempt_at or now
    return min(
        started + settings.send_retry_window_s, (job.first_attempt_at or now) + MAX_RETRY_WINDOW_S
    )


def _give_up(rt: Runtime, job: Job, state: State, reason: str, note: str) -> None:
    """End a job before any (further) call: from waiting, or from a dead attempt's lease."""
    finish(
        rt.store,
        rt.broker,
        job.id,
        state,
        allowed_from=CLAIMABLE,
        require_expired_lease=True,
        fields={"reason": reason},
        note=note,
    )


def _claim_and_send(rt: Runtime, job: Job, now: float) -> None:
    settings = rt.settings
    attempt = current_attempt()
    lease_until = now + settings.send_lease_s
    fields: dict[str, object] = {"lease_until": lease_until, "attempts": job.attempts + 1}
    if job.first_attempt_at is None:
        fields["first_attempt_at"] = now
    if job.window_started_at is None:
        fields["window_started_at"] = now
    claim = rt.store.transition(
        job.id,
        State.SENDING,
        allowed_from=CLAIMABLE,
        require_expired_lease=True,
        fields=fields,
        inflight=str(lease_until),
        note=f"attempt {job.attempts + 1}",
    )
    if not claim.applied:
        log.info("send_claim_lost", job_id=job.id, state=claim.previous)
        return
    SEND_LATENESS.labels(kind=job.kind).observe(
        max(0.0, now - job.due_at) if job.schedule == "worker" else 0.0
    )
    try:
        submission = place_call(rt, job)
    except (PermanentError, InvalidParameter) as exc:
        code = str(getattr(exc, "code", "") or "invalid_parameter")
        finish(
            rt.store,
            rt.broker,
            job.id,
            State.REJECTED,
            allowed_from=(State.SENDING,),
            fields={"error_code": code, "error_message": str(exc)[:500], "reason": "esms_refused"},
            note=f"eSMS refused: {code}",
        )
        return
    except RetryableError as exc:
        _retry_or_fail(rt, job, attempt, now, exc)
        return
    _record_submission(rt, job, submission, now)


def _record_submission(rt: Runtime, job: Job, submission: Submission, sent_at: float) -> None:
    settings = rt.settings
    start = max(sent_at, job.due_at)
    poll_at = first_poll_at(start, job.kind, job.payload, settings)
    fields: dict[str, object] = {"submitted_at": now_s(), "lease_until": 0}
    if submission.smsid:
        fields["smsid"] = submission.smsid
    if submission.duplicate and not submission.smsid:
        note = "eSMS answered 124: accepted earlier under this RequestId; SMSID unknown, result by callback"
        poll_at = sent_at + settings.poll_deadline_s
    elif submission.duplicate:
        note = "eSMS answered 124: accepted earlier under this RequestId"
    else:
        note = "accepted by eSMS (100)"
    if job.kind is Kind.VOICE_OTP:
        # The spoken code is a secret: once eSMS has it, voicecall keeps no copy.
        fields["payload"] = _without_content(job.payload)
    poll_score, poll_now = poll_entry(poll_at, settings)
    result = _durably(rt)(rt.store.transition)(
        job.id,
        State.SUBMITTED,
        allowed_from=(State.SENDING,),
        fields=fields,
        note=note,
        inflight="-",
        polls=str(poll_score),
        history_extra={"smsid": submission.smsid, "code": submission.code},
        index_smsid=bool(submission.smsid),
    )
    if not result.applied:
        # A callback finished the job while we waited for eSMS's answer.
        log.info("submission_after_final", job_id=job.id, state=result.previous)
        if job.kind is Kind.VOICE_OTP:
            rt.store.redis.hset(keys.job(job.id), "payload", _without_content(job.payload))
        return
    if poll_now:
        poll_message(rt.broker, job.id, delay_s=poll_at - now_s())
    log.info("job_submitted", job_id=job.id, smsid=submission.smsid, duplicate=submission.duplicate)


def _durably(rt: Runtime) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Retry a store write through a short Redis outage (bounded by the lease).

    Once eSMS has accepted a call, losing its SMSID would leave only the callback to finish
    the job, so the write that records it is worth waiting for.
    """
    return tenacity.retry(
        retry=tenacity.retry_if_exception_type((redis.ConnectionError, redis.TimeoutError)),
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        stop=tenacity.stop_after_delay(rt.settings.send_lease_s * 0.8),
        reraise=True,
    )


def _without_content(payload: dict[str, object]) -> str:
    return json.dumps({k: v for k, v in payload.items() if k != "content"}, separators=(",", ":"))


def _retry_or_fail(
    rt: Runtime, job: Job, attempt: Attempt, claimed_at: float, exc: RetryableError
) -> None:
    settings = rt.settings
    delay_s = retry_delay_s(attempt.retries, settings)
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after:
        delay_s = max(delay_s, float(retry_after))
    window_end = _window_end(job, settings, claimed_at)
    next_at = now_s() + delay_s
    error = {
        "error_code": str(getattr(exc, "code", "") or type(exc).__name__),
        "error_message": str(exc)[:500],
    }
    if attempt.retries >= settings.send_max_retries or next_at > window_end:
        finish(
            rt.store,
            rt.broker,
            job.id,
            State.FAILED,
            allowed_from=(State.SENDING,),
            fields={**error, "reason": "retries_exhausted"},
            note=f"gave up after {attempt.number} attempts: {type(exc).__name__}",
        )
        raise RetriesExhausted(f"job {job.id}: {exc}") from exc
    rt.store.transition(
        job.id,
        State.RETRYING,
        allowed_from=(State.SENDING,),
        fields={**error, "lease_until": 0},
        inflight=str(next_at + settings.sweep_stale_queued_s),
        note=f"attempt {attempt.number} failed ({type(exc).__name__}); next in {delay_s:.1f} s",
    )
    SEND_RETRIES.labels(kind=job.kind).inc()
    raise dramatiq.Retry(str(exc), delay=int(delay_s * 1000))

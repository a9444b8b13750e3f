"""The send step: one eSMS call per job, whatever Dramatiq delivers (decision 1).

Order: the claim (one Lua step: a job already moved makes the message a no-op; an OTP past its
time to live ends ``expired``; a bulk call in quiet hours or over its phone's limit goes back
to the schedule; the global rate makes it wait; then ``→ sending`` with this worker's lease)
→ eSMS with the job id as RequestId → the record: 100 → ``submitted`` with its SMSID; 124 →
``submitted`` (eSMS had accepted it before: never a second call); a permanent code →
``rejected``; a retryable error → ``retrying`` until its next attempt is due, or ``failed``
(a dead letter) once SEND_MAX_RETRIES or the retry window is spent. A worker that dies after
eSMS accepted the call leaves the job ``sending``; the sweeper re-drives it once the lease
ends (or the worker stops beating), and eSMS answers 124 to the repeated RequestId. A bulk
call waiting for its place at eSMS (BULK_SEND_CONCURRENCY) keeps its claim and renews its
lease: waiting spends no retry. The record is the only step that sets a job's SMSID; it
settles any callback report held while the SMSID was unknown (voicecall.esms.callbacks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal, TypeVar

import structlog

from voicecall.errors import VoicecallError
from voicecall.esms.callbacks import callback_url, count_held_endings
from voicecall.formats.timefmt import from_epoch
from voicecall.job import lifecycle, steps, upkeep
from voicecall.job.records import JobRecord
from voicecall.job.states import Kind, ScheduleMode
from voicecall.job.steps import Op, Step, Verdict
from voicecall.store.connection import now_s
from voicecall.telemetry import tracing
from voicecall.telemetry.finish import observe_finished
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import RATE_LIMITED, SEND_LATENESS, SEND_RETRIES
from worker.engine import MAX_RETRY_WINDOW_S, ClaimContext, Context, durably
from worker.esms import (
    InvalidParameter,
    PermanentError,
    RetryableError,
    Submission,
)
from worker.timing import first_poll_at, quiet_window_end, retry_delay_s

log = get_logger(__name__)
T = TypeVar("T")
LEASE_MARGIN_S = 5.0  # a bulk request starts at least this long before its lease would end


def claim_op(
    ctx: Context | ClaimContext,
    job_id: str,
    queue: str,
    limit_key: str | None,
    message_id: str | None = None,
) -> Op:
    """The claim of ``job_id`` as this worker, now (quiet hours read from the clock), which
    also acknowledges ``message_id``, the Dramatiq message being handled, if given."""
    settings = ctx.settings
    quiet = quiet_window_end(now_s(), settings.quiet_hours, settings.zone)
    return lifecycle.claim(
        job_id,
        rules=ctx.rules,
        queue=queue,
        limit_key=limit_key,
        quiet_until=quiet or 0,
        message_id=message_id,
    )


async def send_claimed(ctx: Context, job: JobRecord, queue: str) -> None:
    """Call eSMS for a job this worker has claimed, and record what eSMS answered. The
    message's consumer span covers it (worker.tracing): no span of its own, one less per job."""
    tracing.set_attributes(
        {"voicecall.job.kind": job.kind.value, "voicecall.attempt": job.attempts}
    )
    structlog.contextvars.bind_contextvars(
        job_id=job.id, kind=job.kind.value, trace_id=job.trace_id, attempt=job.attempts
    )
    now = now_s()
    lateness = max(0.0, now - job.due_at) if job.schedule is ScheduleMode.WORKER else 0.0
    SEND_LATENESS.labels(kind=job.kind.value).observe(lateness)
    try:
        # Bulk requests at eSMS are capped (BULK_SEND_CONCURRENCY): past what eSMS answers at
        # once they would only queue there, in front of any OTP sent meanwhile.
        async with _bulk_turn(ctx, job):
            now = now_s()  # a bulk call may have waited for its place
            submission = await ctx.esms.send(
                job.request,
                phone=job.phone,
                request_id=job.id,
                callback_url=callback_url(ctx.settings, job.id, job.callback_nonce),
                send_date=_send_date(job, now),
            )
            # Recorded before the place is given back: a crash loses the answers of calls
            # that hold a place, at most BULK_SEND_CONCURRENCY per process (those jobs end
            # smsid_unknown). Freed at the answer, places let a loaded loop pile up answered,
            # unrecorded calls without bound (the SIGKILL test saw 146).
            await _record(ctx, job, submission, now)
            return
    except (PermanentError, InvalidParameter) as exc:
        code = str(exc.code or "invalid_parameter")
        error = {"code": code, "message": str(exc)[:500]}
        step = await _durably(
            ctx, lifecycle.reject(job.id, error=error, note=f"eSMS refused: {code}")
        )
        observe_finished(step.job())
        return
    except RetryableError as exc:
        await _retry_or_fail(ctx, job, queue, now, exc)
        return
    except ClaimLost as exc:
        log.warning("send_abandoned", job_id=job.id, reason="claim_lost", state=str(exc))
        return
    except Stopping:
        await _give_back(ctx, job)


async def send_when_due(
    ctx: Context, job_id: str, queue: str, limit_key: str | None, wait_s: float
) -> None:
    """A job not due yet (or held by the global rate): wait here, in the loop, then claim
    and send it. The due set brings it back should this process die meanwhile."""
    while True:
        await asyncio.sleep(wait_s)
        step = await _durably(ctx, claim_op(ctx, job_id, queue, limit_key))
        if step.verdict is not Verdict.WAIT:
            break
        wait_s = float(step.detail)
    job = unclaimed_or_job(step, job_id)
    if job is not None:
        await send_claimed(ctx, job, queue)


class ClaimLost(VoicecallError):
    """The job is no longer this worker's claim: its lease lapsed while the call waited (the
    process stalled) and the job was claimed again. No call is made; the job is its new
    holder's."""


class Stopping(VoicecallError):
    """The engine stops while the call waits for its place: no call is made."""


@contextlib.asynccontextmanager
async def _bulk_turn(ctx: Context, job: JobRecord) -> AsyncIterator[None]:
    """One of the BULK_SEND_CONCURRENCY places for a bulk call's eSMS request (OTP needs
    none). Waiting for it is back-pressure of this worker, not a failed attempt: the call
    waits its turn (first come, first served) keeping its claim, and renews its lease before
    the lease would leave less than the request's whole budget (plus LEASE_MARGIN_S), so no
    sweeper re-drives a job still waiting here and no retry is spent on it. (Giving up and
    retrying instead made a slow eSMS burn SEND_MAX_RETRIES in seconds: jobs ended failed,
    some never called.) Its request starts with at least that much lease left, or half a
    lease when leases are shorter, renewing once more if needed. Raises ClaimLost if the
    claim is gone, Stopping if the engine stops first."""
    if job.kind is Kind.VOICE_OTP:
        yield
        return
    settings = ctx.settings
    need_s = settings.esms_attempt_budget_s + LEASE_MARGIN_S
    lease_end = job.lease.until if job.lease else now_s() + settings.send_lease_s
    if ctx.stopping.is_set():
        raise Stopping
    if ctx.bulk_requests.locked():
        lease_end = await _wait_for_place(ctx, job, lease_end, need_s)
    else:
        await ctx.bulk_requests.acquire()  # a place is free: no wait, no task
    try:
        if lease_end - now_s() < min(need_s, settings.send_lease_s / 2):
            await _renew_lease(ctx, job)
        yield
    finally:
        ctx.bulk_requests.release()


async def _wait_for_place(ctx: Context, job: JobRecord, lease_end: float, need_s: float) -> float:
    """Wait in line for a bulk place, renewing the lease; returns (holding the place) the
    lease's end."""
    place = asyncio.ensure_future(ctx.bulk_requests.acquire())
    stop = asyncio.ensure_future(ctx.stopping.wait())
    try:
        while not place.done():
            left_s = lease_end - now_s()
            await asyncio.wait(
                (place, stop),
                timeout=max(0.0, left_s - need_s, left_s / 2),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if place.done():
                break
            if stop.done():
                raise Stopping
            lease_end = await _renew_lease(ctx, job)
    except BaseException:
        _give_up_place(place, ctx.bulk_requests)
        raise
    finally:
        stop.cancel()
    return lease_end


def _give_up_place(place: asyncio.Task[Literal[True]], places: asyncio.Semaphore) -> None:
    """Stop waiting for a place, or give back the one that came meanwhile."""
    if not place.done():
        place.cancel()  # Semaphore.acquire hands on a place it was given as it is cancelled
    elif not place.cancelled() and place.exception() is None:
        places.release()


async def _renew_lease(ctx: Context, job: JobRecord) -> float:
    """Renew this worker's claim of ``job``; the lease's new end, or ClaimLost."""
    op = upkeep.renew_lease(
        job.id, owner=ctx.owner, attempt=job.attempts, lease_s=ctx.settings.send_lease_s
    )
    step = await _durably(ctx, op)
    if step.verdict is not Verdict.RENEWED:
        raise ClaimLost(step.state)
    return float(step.detail)


async def _give_back(ctx: Context, job: JobRecord) -> None:
    """The engine stops before the call had its place: the job goes back, uncalled."""
    note = "worker stopped while the call waited for its place at eSMS; no call made"
    op = lifecycle.unclaim(job.id, owner=ctx.owner, attempt=job.attempts, note=note)
    step = await _durably(ctx, op)
    log.info("send_given_back", job_id=job.id, verdict=step.verdict.value)


def unclaimed_or_job(step: Step, job_id: str) -> JobRecord | None:
    """The claimed job, or None after counting what the claim decided instead."""
    match step.verdict:
        case Verdict.CLAIMED:
            return step.job()
        case Verdict.FINAL:
            job = step.job()
            if job is not None and job.reason == "rate_limited":
                RATE_LIMITED.labels(kind=job.kind.value, limit="phone").inc()
            observe_finished(job)
        case Verdict.HELD:
            job = step.job()
            if job is not None:
                limit = "quiet_hours" if job.reason == "quiet_hours" else "phone"
                RATE_LIMITED.labels(kind=job.kind.value, limit=limit).inc()
                log.info("send_held_back", job_id=job_id, reason=job.reason)
        case verdict:
            log.debug("send_noop", job_id=job_id, verdict=verdict.value, state=step.state)
    return None


def _send_date(job: JobRecord, now: float) -> datetime | None:
    """Provider mode: eSMS waits until SendDate (the due time), unless that is now."""
    if job.schedule is ScheduleMode.PROVIDER and job.due_at > now + 1:
        return from_epoch(job.due_at)
    return None


async def _record(ctx: Context, job: JobRecord, submission: Submission, sent_at: float) -> None:
    settings = ctx.settings
    poll_at = first_poll_at(max(sent_at, job.due_at), job.request, settings)
    if submission.duplicate and not submission.smsid:
        note = (
            "eSMS answered 124: accepted earlier under this RequestId; SMSID unknown, so no "
            "result can be matched or polled: expires at the poll deadline"
        )
        poll_at = sent_at + settings.poll_deadline_s
    elif submission.duplicate:
        note = "eSMS answered 124: accepted earlier under this RequestId"
    else:
        note = "accepted by eSMS (100)"
    op = lifecycle.submit(
        job.id,
        smsid=submission.smsid,
        code=submission.code,
        poll_at=poll_at,
        note=note,
        hold_s=settings.callback_hold_s,
        redrive_s=settings.redrive_after_s,
    )
    step = await _durably(ctx, op, together=True)
    count_held_endings(step.extra)  # callbacks that came before this answer, now settled
    if step.verdict is Verdict.COMPLETED:  # CALLBACK_CONFIRM=off: a held callback's result applied
        observe_finished(step.job())
    if step.verdict is Verdict.LATE:  # another worker's 124 came first, or the job has ended
        log.info("submission_late", job_id=job.id, state=step.state, smsid=submission.smsid)
        return
    log.info("job_submitted", job_id=job.id, smsid=submission.smsid, duplicate=submission.duplicate)


async def _retry_or_fail(
    ctx: Context, job: JobRecord, queue: str, claimed_at: float, exc: RetryableError
) -> None:
    settings = ctx.settings
    delay_s = retry_delay_s(job.window_attempts - 1, settings)
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after:
        delay_s = max(delay_s, float(retry_after))
    started = job.window_started_at or job.first_attempt_at or claimed_at
    first = job.first_attempt_at or claimed_at
    window_end = min(started + settings.send_retry_window_s, first + MAX_RETRY_WINDOW_S)
    next_at = now_s() + delay_s
    error = {
        "code": str(exc.code or type(exc).__name__),
        "message": str(exc)[:500],
    }
    if job.window_attempts > settings.send_max_retries or next_at > window_end:
        note = f"gave up after {job.window_attempts} attempts: {type(exc).__name__}"
        step = await _durably(ctx, lifecycle.fail(job.id, queue=queue, error=error, note=note))
        observe_finished(step.job())
        log.warning("send_failed", job_id=job.id, error=type(exc).__name__, reason=exc.reason)
        return
    note = f"attempt {job.attempts} failed ({type(exc).__name__}); next in {delay_s:.1f} s"
    await _durably(ctx, lifecycle.retry_later(job.id, error=error, next_at=next_at, note=note))
    SEND_RETRIES.labels(kind=job.kind.value).inc()
    log.info(
        "send_retry",
        job_id=job.id,
        error=type(exc).__name__,
        reason=exc.reason,
        delay_s=round(delay_s, 2),
    )


async def _durably(ctx: Context, op: steps.Op, *, together: bool = False) -> Step:
    """Apply ``op`` through a short Redis outage (worker.engine.durably). ``together``: in one
    round trip with the same steps of other calls (AsyncJobStore.apply_together)."""
    run = ctx.store.apply_together if together else ctx.store.apply
    return await durably(ctx, lambda: run(op), op.script)

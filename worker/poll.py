"""Status polling by SMSID, the backstop behind callbacks (decision 4).

A poll is due when the job's time in the due set comes (the submit step sets the first one,
when eSMS's whole redial sequence can have ended); the sweeper then sends the poll message,
and this step asks eSMS once: a final answer completes the job, anything else plans the next
poll (backing off). A job already final (a callback came first) makes the poll a no-op, so
with working callbacks no status request is made for a call that ended before its poll.
With CALLBACK_CONFIRM=status (the default) a callback's final result only sends the poll at
once (voicecall.job.lifecycle.confirm), and this answer, not the callback's, completes the job.
Its store steps ride out a short Redis outage (worker.engine.durably): a poll's answer is
not lost to one, nor a poll to a connection the restarted Redis closed. A poll asks only
about the SMSID eSMS's send answer gave. A job without one (a 124 after a
lost answer: eSMS offers no lookup by RequestId) cannot be polled or matched to a callback:
it ends ``expired`` (reason ``smsid_unknown``) at the poll deadline.
"""

from __future__ import annotations

import structlog

from voicecall.config.settings import Settings
from voicecall.esms.results import Report
from voicecall.job import lifecycle, upkeep
from voicecall.job.records import JobRecord
from voicecall.job.states import State
from voicecall.job.steps import Op, Step, Verdict
from voicecall.store.connection import now_s
from voicecall.telemetry.finish import observe_finished
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import STATUS_REQUESTS
from worker.engine import Context, durably
from worker.esms import EsmsError, NotReady, RetryableError
from worker.timing import next_poll_in_s

log = get_logger(__name__)

RETRY_SOON_S = 30.0
CONFIRM_RETRY_MIN_S = 1.0


async def poll_step(ctx: Context, *, job_id: str) -> None:
    """The body behind the poll actor, in the message's consumer span (worker.tracing)."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
    job = await durably(ctx, lambda: ctx.store.get(job_id), "get")
    if job is None or job.state is not State.SUBMITTED:
        return  # final already (callback first), or unknown: nothing to do
    structlog.contextvars.bind_contextvars(kind=job.kind.value, trace_id=job.trace_id)
    settings = ctx.settings
    now = now_s()
    submitted_at = job.submitted_at or now
    deadline = submitted_at + settings.poll_deadline_s
    smsid = job.smsid
    if now >= deadline and not smsid:
        note = "eSMS never named this call's SMSID (a 124 after a lost answer): no result known"
        await _expire(ctx, job_id, "smsid_unknown", note)
        return
    if now >= deadline:
        await _expire(ctx, job_id, "no_result_by_deadline", "no result from eSMS by the deadline")
        return
    if not smsid:
        await _plan(ctx, job_id, deadline - now, deadline)  # a later send answer may name it
        return
    backoff_s = _next_poll_in_s(job, now, settings)
    try:
        report = await _ask(ctx, job, smsid)
    except NotReady:
        if now - submitted_at > settings.poll_not_found_deadline_s:
            await _expire(ctx, job_id, "smsid_not_found", "eSMS kept answering 105 for this SMSID")
        else:
            await _plan(ctx, job_id, backoff_s, deadline)
        return
    except EsmsError as exc:
        log.warning("poll_failed", job_id=job_id, error=type(exc).__name__, code=exc.code)
        soon = isinstance(exc, RetryableError)
        await _plan(ctx, job_id, RETRY_SOON_S if soon else backoff_s, deadline)
        return
    if report.outcome is None:
        await _plan(ctx, job_id, backoff_s, deadline)
        return
    op = lifecycle.complete(
        job_id,
        outcome=report.outcome,
        call=report.call_fields(),
        source="poll",
        smsid=smsid,
        note="result by status poll, confirming a callback" if job.reported else None,
    )
    step = await _apply(ctx, op)  # eSMS has answered: a Redis blip must not lose it
    if step.verdict is Verdict.ACCEPTED:
        observe_finished(step.job())


def _next_poll_in_s(job: JobRecord, now: float, settings: Settings) -> float:
    """When to ask again if this answer is not final. A callback already said the call ended
    (CALLBACK_CONFIRM=status): eSMS's status lags it briefly (105 for a just-sent SMSID), so
    ask again after as long as the report has waited, from 1 s (doubling, no state kept), up
    to the usual backoff; a confirmation answered 105 once waited that backoff (30 s)."""
    backoff_s = next_poll_in_s(job.polls, settings)
    if job.reported is None:
        return backoff_s
    return min(backoff_s, max(CONFIRM_RETRY_MIN_S, now - job.reported.at))


async def _ask(ctx: Context, job: JobRecord, smsid: str) -> Report:
    STATUS_REQUESTS.labels(kind=job.kind.value).inc()
    if job.kind.value == "voice_otp":
        return await ctx.esms.otp_status(smsid)
    return await ctx.esms.call_status(smsid)


async def _apply(ctx: Context, op: Op) -> Step:
    return await durably(ctx, lambda: ctx.store.apply(op), op.script)


async def _expire(ctx: Context, job_id: str, reason: str, note: str) -> None:
    step = await _apply(ctx, lifecycle.expire(job_id, reason=reason, note=note))
    if step.verdict is Verdict.ENDED:
        observe_finished(step.job())


async def _plan(ctx: Context, job_id: str, delay_s: float, deadline: float) -> None:
    at = now_s() + min(delay_s, max(1.0, deadline - now_s()))
    await _apply(ctx, upkeep.poll_pending(job_id, next_at=at))

"""Status polling by SMSID, the backstop behind callbacks (decision 4).

Each poll is a delayed message; nothing sleeps. A poll that finds the job already final
(a callback came first) does nothing, so with working callbacks no status request is made
for a call that ended before its first planned poll.
"""

from __future__ import annotations

import structlog

from voicecall import keys
from voicecall.finish import finish
from voicecall.jobs import Kind, State
from voicecall.logs import get_logger
from voicecall.messages import poll_message
from voicecall.metrics import STATUS_REQUESTS
from voicecall.results import Report, sms_outcome, voice_outcome
from voicecall.store import Job, now_s
from worker.esms import EsmsError, NotReady, PermanentError, RetryableError
from worker.runtime import Runtime, runtime
from worker.timing import next_poll_in_s

log = get_logger(__name__)

RETRY_SOON_S = 30.0


def poll_job(job_id: str) -> None:
    """The body of the poll actor."""
    rt = runtime()
    job = rt.store.get(job_id)
    if job is None or job.state is not State.SUBMITTED:
        return  # final already (callback first), or unknown: nothing to do
    structlog.contextvars.bind_contextvars(kind=job.kind.value, trace_id=job.trace_id)
    now = now_s()
    deadline = (job.submitted_at or now) + rt.settings.poll_deadline_s
    if now >= deadline:
        finish(
            rt.store,
            rt.broker,
            job_id,
            State.EXPIRED,
            allowed_from=(State.SUBMITTED,),
            fields={"reason": "no_result_by_deadline"},
            note="no result from eSMS by the deadline",
        )
        return
    if not job.smsid:
        _plan(rt, job, deadline - now)  # only a callback can tell; wait for the deadline
        return
    try:
        report = _ask(rt, job)
    except NotReady:
        if now - (job.submitted_at or now) > rt.settings.poll_not_found_deadline_s:
            finish(
                rt.store,
                rt.broker,
                job_id,
                State.EXPIRED,
                allowed_from=(State.SUBMITTED,),
                fields={"reason": "smsid_not_found"},
                note="eSMS kept answering 105 for this SMSID",
            )
            return
        _plan(rt, job, next_poll_in_s(job.polls, rt.settings), deadline=deadline)
        return
    except (RetryableError, PermanentError) as exc:
        log.warning(
            "poll_failed", job_id=job_id, error=type(exc).__name__, code=getattr(exc, "code", None)
        )
        _plan(
            rt,
            job,
            RETRY_SOON_S
            if isinstance(exc, RetryableError)
            else next_poll_in_s(job.polls, rt.settings),
            deadline=deadline,
        )
        return
    except EsmsError as exc:
        log.error("poll_error", job_id=job_id, error=repr(exc))
        _plan(rt, job, next_poll_in_s(job.polls, rt.settings), deadline=deadline)
        return
    if report.outcome is None:
        _plan(rt, job, next_poll_in_s(job.polls, rt.settings), deadline=deadline)
        return
    fields = {
        "call_status": report.call_status,
        "call_duration_s": report.duration_s,
        "price_vnd": report.price_vnd,
    }
    finish(
        rt.store,
        rt.broker,
        job_id,
        State.COMPLETED,
        allowed_from=(State.SUBMITTED,),
        outcome=report.outcome,
        fields={k: v for k, v in fields.items() if v is not None},
        note="result by status poll",
    )


def _ask(rt: Runtime, job: Job) -> Report:
    assert job.smsid is not None
    STATUS_REQUESTS.labels(kind=job.kind).inc()
    rt.store.redis.hincrby(keys.job(job.id), "polls", 1)
    if job.kind is Kind.VOICE_OTP:
        otp = rt.esms.otp_status(job.smsid)
        return Report(
            smsid=job.smsid,
            outcome=sms_outcome(otp.send_status, otp.send_success, otp.send_failed),
            price_vnd=otp.total_price,
        )
    call = rt.esms.call_status(job.smsid)
    return Report(
        smsid=job.smsid,
        outcome=voice_outcome(call.call_status, call.send_status, call.sent_result),
        call_status=call.call_status,
        duration_s=call.call_duration_s,
        price_vnd=call.price,
    )


def _plan(rt: Runtime, job: Job, delay_s: float, *, deadline: float | None = None) -> None:
    if deadline is not None:
        delay_s = min(delay_s, max(1.0, deadline - now_s()))
    at = now_s() + delay_s
    rt.store.plan_poll(job.id, at + rt.settings.poll_margin_s + 5)
    poll_message(rt.broker, job.id, delay_s=delay_s)

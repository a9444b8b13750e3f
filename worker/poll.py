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
from voicecall.settings import Settings
from voicecall.store import Job, now_s
from worker.esms import EsmsError, NotReady, RetryableError
from worker.runtime import Runtime, runtime
from worker.timing import next_poll_in_s

log = get_logger(__name__)

RETRY_SOON_S = 30.0
# A poll sent as a delayed message stays in vc:polls this long past its time, as a backstop:
# the scheduler re-sends it only if the message was lost (a worker killed, Redis restarted).
REDRIVE_AFTER_S = 30.0


def poll_entry(at: float, settings: Settings) -> tuple[float, bool]:
    """(score for ``vc:polls``, whether to send the delayed poll message now).

    Only polls due within the scheduler's horizon become Dramatiq delayed messages; later ones
    wait in the sorted set, so thousands of calls awaiting results never fill Dramatiq's delay
    queue (decision 2's head-of-line blocking, for polls).
    """
    if at - now_s() <= settings.schedule_horizon_s:
        return at + REDRIVE_AFTER_S, True
    return at, False


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
        _expire(rt, job_id, "no_result_by_deadline", "no result from eSMS by the deadline")
        return
    if not job.smsid:
        _plan(rt, job, deadline - now)  # only a callback can tell; wait for the deadline
        return
    backoff_s = next_poll_in_s(job.polls, rt.settings)
    try:
        report = _ask(rt, job)
    except NotReady:
        if now - (job.submitted_at or now) > rt.settings.poll_not_found_deadline_s:
            _expire(rt, job_id, "smsid_not_found", "eSMS kept answering 105 for this SMSID")
        else:
            _plan(rt, job, backoff_s, deadline=deadline)
        return
    except EsmsError as exc:
        log.warning(
            "poll_failed", job_id=job_id, error=type(exc).__name__, code=getattr(exc, "code", None)
        )
        soon = isinstance(exc, RetryableError)
        _plan(rt, job, RETRY_SOON_S if soon else backoff_s, deadline=deadline)
        return
    if report.outcome is None:
        _plan(rt, job, backoff_s, deadline=deadline)
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


def _expire(rt: Runtime, job_id: str, reason: str, note: str) -> None:
    finish(
        rt.store,
        rt.broker,
        job_id,
        State.EXPIRED,
        allowed_from=(State.SUBMITTED,),
        fields={"reason": reason},
        note=note,
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
    score, send_now = poll_entry(now_s() + delay_s, rt.settings)
    rt.store.plan_poll(job.id, score)
    if send_now:
        poll_message(rt.broker, job.id, delay_s=delay_s)

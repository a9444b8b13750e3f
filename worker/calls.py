"""The eSMS request for a job: its kind's endpoint, with the job id as RequestId."""

from __future__ import annotations

from voicecall.callbacks import callback_url
from voicecall.jobs import Kind, ScheduleMode
from voicecall.store import Job, now_s
from voicecall.timefmt import from_epoch
from worker.esms import Submission
from worker.runtime import Runtime


def place_call(rt: Runtime, job: Job) -> Submission:
    """Call eSMS for ``job``; provider mode passes ``SendDate`` (the due time)."""
    settings = rt.settings
    payload = job.payload
    url = callback_url(settings.public_base_url, settings.callback_secret, job.id)
    provider_mode = job.schedule == ScheduleMode.PROVIDER and job.due_at > now_s() + 1
    send_date = from_epoch(job.due_at) if provider_mode else None
    if job.kind is Kind.VOICE_OTP:
        return rt.esms.send_voice_otp(
            phone=job.phone,
            content=str(payload["content"]),
            request_id=job.id,
            callback_url=url,
            send_date=send_date,
            is_unicode=bool(payload.get("is_unicode", False)),
            brandname=payload.get("brandname"),
            sandbox=payload.get("sandbox"),
            campaign_id=payload.get("campaign_id"),
        )
    if job.kind is Kind.RECORD_CALL:
        return rt.esms.make_call_record(
            phone=job.phone,
            record_id=str(payload["record_id"]),
            request_id=job.id,
            callback_url=url,
            send_date=send_date,
            number_forward=payload.get("number_forward"),
            max_repeat=payload.get("max_repeat"),
            max_retry=payload.get("max_retry"),
            ivr=payload.get("ivr"),
            time_wait_to_ivr=payload.get("time_wait_to_ivr"),
            wait_retry=payload.get("wait_retry"),
        )
    return rt.esms.make_call_template(
        phone=job.phone,
        template_id=str(payload["template_id"]),
        variables=list(payload.get("variables", [])),
        request_id=job.id,
        callback_url=url,
        send_date=send_date,
        voice=payload.get("voice"),
        speed=payload.get("speed"),
    )

"""eSMS callbacks: the signed URL we give eSMS, and what a received callback does.

eSMS signs nothing and its voice callback carries no RequestId, so the URL path carries the
job id and an HMAC-SHA256 of it under ``CALLBACK_SECRET``:
``{PUBLIC_BASE_URL}/v1/esms/callback/{job_id}/{signature}``. eSMS's own fields arrive in the
query string. A callback is answered 200 quickly, repeats included (eSMS retries up to 5 times
until it gets 200); anything unsigned gets 403 and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum

import dramatiq

from voicecall.finish import REPORTABLE_STATES, finish
from voicecall.jobs import State
from voicecall.metrics import CALLBACKS
from voicecall.results import from_callback
from voicecall.store import JobStore

CALLBACK_PATH = "/v1/esms/callback"
SIGNATURE_HEX_CHARS = 32  # 128 bits of HMAC-SHA256


class CallbackResult(StrEnum):
    ACCEPTED = "accepted"  # the callback ended the job
    REPEAT = "repeat"  # the job had already ended (a repeat, or the poll came first)
    PENDING = "pending"  # a report that the call is not finished yet
    FORGED = "forged"  # bad signature
    UNKNOWN_JOB = "unknown_job"
    INVALID = "invalid"  # signed, but neither a voice nor an SMS-style callback


def sign(secret: str, job_id: str) -> str:
    return hmac.new(secret.encode(), job_id.encode(), hashlib.sha256).hexdigest()[
        :SIGNATURE_HEX_CHARS
    ]


def verify(secret: str, job_id: str, signature: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII text, and a forged path may carry any.
    return hmac.compare_digest(sign(secret, job_id).encode(), signature.encode())


def callback_url(public_base_url: str, secret: str, job_id: str) -> str:
    return f"{public_base_url.rstrip('/')}{CALLBACK_PATH}/{job_id}/{sign(secret, job_id)}"


def handle_callback(
    store: JobStore,
    broker: dramatiq.Broker | None,
    secret: str,
    job_id: str,
    signature: str,
    query: Mapping[str, str],
) -> CallbackResult:
    """Verify and apply one callback; the result is counted in ``voicecall_callbacks``."""
    result = _handle(store, broker, secret, job_id, signature, query)
    CALLBACKS.labels(result=result.value).inc()
    return result


def _handle(
    store: JobStore,
    broker: dramatiq.Broker | None,
    secret: str,
    job_id: str,
    signature: str,
    query: Mapping[str, str],
) -> CallbackResult:
    if not verify(secret, job_id, signature):
        return CallbackResult.FORGED
    report = from_callback(query)
    if report is None:
        return CallbackResult.INVALID
    job = store.get(job_id)
    if job is None:
        return CallbackResult.UNKNOWN_JOB
    if job.final:
        return CallbackResult.REPEAT
    if report.outcome is None:
        return CallbackResult.PENDING
    fields: dict[str, object] = {
        "call_status": report.call_status,
        "call_duration_s": report.duration_s,
        "price_vnd": report.price_vnd,
    }
    if report.smsid and not job.smsid:
        fields["smsid"] = report.smsid
        store.index_smsid(job_id, report.smsid)
    done = finish(
        store,
        broker,
        job_id,
        State.COMPLETED,
        allowed_from=REPORTABLE_STATES,
        outcome=report.outcome,
        fields={k: v for k, v in fields.items() if v is not None},
        note="result by callback",
    )
    return CallbackResult.ACCEPTED if done else CallbackResult.REPEAT

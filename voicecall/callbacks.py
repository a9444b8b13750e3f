"""eSMS callbacks: the signed URL we give eSMS, and what a received callback does.

eSMS signs nothing and its voice callback carries no RequestId, so the URL path carries the
job id, a random nonce stored with the job, and an HMAC-SHA256 of both under
``CALLBACK_SECRET``: ``{PUBLIC_BASE_URL}/v1/esms/callback/{job_id}/{nonce}/{signature}``.
The nonce dies with the job: a URL seen in a log or a proxy cannot set the result of a job
created again under the same id. eSMS's own fields arrive in the query string and are read
by :mod:`voicecall.results`; a report about another SMSID than the job's is refused. With
``CALLBACK_CONFIRM=status`` a final result is only a hint: one status request by SMSID
confirms it, and eSMS's answer ends the job (voicecall.lifecycle.confirm). A valid
callback is answered 200 quickly, repeats included (eSMS retries up to 5 times until it gets
200); anything forged gets 403 and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from voicecall import lifecycle
from voicecall.finish import observe_finished
from voicecall.metrics import CALLBACKS
from voicecall.results import ReportRefused, read_callback
from voicecall.settings import Settings
from voicecall.store import JobStore

CALLBACK_PATH = "/v1/esms/callback"
SIGNATURE_HEX_CHARS = 32  # 128 bits of HMAC-SHA256
NONCE_BYTES = 12


class CallbackResult(StrEnum):
    ACCEPTED = "accepted"  # the callback ended the job
    CONFIRMING = "confirming"  # CALLBACK_CONFIRM=status: eSMS's status answer will end it
    REPEAT = "repeat"  # the job had already ended (a repeat, or the poll came first)
    PENDING = "pending"  # a report that the call is not finished yet
    FORGED = "forged"  # bad signature, or a nonce that is not this job's
    MISMATCH = "smsid_mismatch"  # about another SMSID than the job's
    REFUSED = "refused"  # the job was never handed to eSMS: no call can have a result
    UNKNOWN_JOB = "unknown_job"
    INVALID = "invalid"  # signed, but not a readable callback


# The HTTP status of each result: 200 tells eSMS to stop resending.
HTTP_STATUS = {
    CallbackResult.FORGED: 403,
    CallbackResult.MISMATCH: 403,
    CallbackResult.REFUSED: 403,
    CallbackResult.INVALID: 400,
}


@dataclass(frozen=True)
class Confirm:
    """CALLBACK_CONFIRM=status: confirm a final result by one status poll (sent now; the due
    set re-sends it ``redrive_s`` later if it is lost)."""

    redrive_s: float


@dataclass(frozen=True)
class Outcome:
    result: CallbackResult
    detail: str = ""  # for INVALID: the field and the rule


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def sign(secret: str, job_id: str, nonce: str) -> str:
    message = f"{job_id}/{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX_CHARS]


def verify(secret: str, job_id: str, nonce: str, signature: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII text, and a forged path may carry any.
    expected = sign(secret, job_id, nonce).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def callback_url(settings: Settings, job_id: str, nonce: str) -> str:
    signature = sign(settings.callback_secret, job_id, nonce)
    return f"{settings.public_base_url.rstrip('/')}{CALLBACK_PATH}/{job_id}/{nonce}/{signature}"


def handle_callback(
    store: JobStore,
    secret: str,
    job_id: str,
    nonce: str,
    signature: str,
    query: Mapping[str, str],
    confirm: Confirm | None = None,
) -> Outcome:
    """Verify and apply one callback (or, with ``confirm``, have eSMS's status confirm it);
    the result is counted in ``voicecall_callbacks``."""
    outcome = _handle(store, secret, job_id, nonce, signature, query, confirm)
    CALLBACKS.labels(result=outcome.result.value).inc()
    return outcome


def _handle(
    store: JobStore,
    secret: str,
    job_id: str,
    nonce: str,
    signature: str,
    query: Mapping[str, str],
    confirm: Confirm | None,
) -> Outcome:
    if not verify(secret, job_id, nonce, signature):
        return Outcome(CallbackResult.FORGED)
    try:
        report = read_callback(query)
    except ReportRefused as exc:
        return Outcome(CallbackResult.INVALID, str(exc))
    if report is None:
        return Outcome(
            CallbackResult.INVALID,
            "query has neither voice fields (ReferenceId, CallStatus) nor SMS fields "
            "(SMSID, SendStatus)",
        )
    if report.outcome is None:
        job = store.get(job_id)
        if job is None:
            return Outcome(CallbackResult.UNKNOWN_JOB)
        if job.callback_nonce != nonce:
            return Outcome(CallbackResult.FORGED)
        if job.smsid and report.smsid != job.smsid:  # as complete.lua refuses a final one
            return Outcome(CallbackResult.MISMATCH)
        return Outcome(CallbackResult.PENDING)
    if confirm is not None:
        op = lifecycle.confirm(
            job_id,
            outcome=report.outcome,
            smsid=report.smsid,
            nonce=nonce,
            redrive_s=confirm.redrive_s,
        )
    else:
        op = lifecycle.complete(
            job_id,
            outcome=report.outcome,
            call=report.call_fields(),
            source="callback",
            smsid=report.smsid,
            nonce=nonce,
        )
    step = store.apply(op)
    result = {
        "accepted": CallbackResult.ACCEPTED,
        "confirming": CallbackResult.CONFIRMING,
        "repeat": CallbackResult.REPEAT,
        "forged": CallbackResult.FORGED,
        "smsid_mismatch": CallbackResult.MISMATCH,
        "refused": CallbackResult.REFUSED,
        "unknown_job": CallbackResult.UNKNOWN_JOB,
    }[step.verdict]
    if result is CallbackResult.ACCEPTED:
        observe_finished(step.job())
    return Outcome(result)

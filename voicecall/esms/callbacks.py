"""eSMS callbacks: the signed URL we give eSMS, and what a received callback does.

eSMS signs nothing and its voice callback carries no RequestId, so the URL path carries the
job id, a random nonce stored with the job, and an HMAC-SHA256 of both under
``CALLBACK_SECRET``: ``{PUBLIC_BASE_URL}/v1/esms/callback/{job_id}/{nonce}/{signature}``.
The nonce dies with the job: a URL seen in a log or a proxy cannot set the result of a job
created again under the same id. eSMS's own fields arrive in the query string and are read
by :mod:`voicecall.esms.results`; a report about another SMSID than the job's is refused.

Only eSMS's send answer names a job's SMSID; a callback never does. A final report that comes
before that answer is held on the job (at most ``lifecycle.HOLD_MAX_REPORTS``, each
``CALLBACK_HOLD_S``) and settled by the answer: applied if it is about the SMSID eSMS named,
refused (``smsid_mismatch``) if not; dropped if the job ends first or it waited too long.

With ``CALLBACK_CONFIRM=status`` (the default) a final result is only a hint: one status
request by SMSID confirms it, and eSMS's answer ends the job (voicecall.job.lifecycle.confirm).
With ``off`` a report about the job's SMSID ends the job as it says. A valid callback is
answered 200 quickly, repeats included (eSMS retries up to 5 times until it gets 200);
anything forged gets 403 and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from voicecall.config.settings import Settings
from voicecall.esms.results import ReportRefused, read_callback
from voicecall.job import lifecycle
from voicecall.job.steps import Verdict
from voicecall.store.job_store import JobStore
from voicecall.telemetry.finish import observe_finished
from voicecall.telemetry.metrics import CALLBACKS

CALLBACK_PATH = "/v1/esms/callback"
SIGNATURE_HEX_CHARS = 32  # 128 bits of HMAC-SHA256
NONCE_BYTES = 12


class CallbackResult(StrEnum):
    ACCEPTED = "accepted"  # the callback ended the job
    CONFIRMING = "confirming"  # CALLBACK_CONFIRM=status: eSMS's status answer will end it
    HELD = "held"  # before eSMS's send answer named the job's SMSID: kept until it does
    HOLD_FULL = "hold_full"  # as HELD, but the job already holds its share of reports
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
    CallbackResult.HOLD_FULL: 429,  # eSMS sends it again later, by when the SMSID may be known
}
# How held reports end, counted in ``voicecall_callbacks`` by whoever settles them (the send
# answer's step in the worker, a later callback, the job's final step).
HELD_ENDINGS = ("held_applied", "smsid_mismatch", "held_expired", "held_dropped", "repeat")


@dataclass(frozen=True)
class Policy:
    """What the receiver does with a final report: ``confirm`` (CALLBACK_CONFIRM=status)
    sends one status poll instead of trusting it (re-sent ``redrive_s`` later if lost); a
    report held for its SMSID waits at most ``hold_s`` (CALLBACK_HOLD_S)."""

    confirm: bool
    redrive_s: float
    hold_s: float = lifecycle.DEFAULT_HOLD_S

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            confirm=settings.callback_confirm == "status",
            redrive_s=settings.redrive_after_s,
            hold_s=settings.callback_hold_s,
        )


def count_held_endings(counts: Mapping[str, object]) -> None:
    """Count how held reports ended, from a step's ``extra`` (lib.lua ``settle_held``)."""
    for ending in HELD_ENDINGS:
        n = counts.get(ending)
        if isinstance(n, int) and n > 0:
            CALLBACKS.labels(result=ending).inc(n)


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
    policy: Policy,
) -> Outcome:
    """Verify and apply one callback (or, with ``policy.confirm``, have eSMS's status confirm
    it, or hold it for the job's SMSID); the result is counted in ``voicecall_callbacks``."""
    outcome = _handle(store, secret, job_id, nonce, signature, query, policy)
    CALLBACKS.labels(result=outcome.result.value).inc()
    return outcome


def _handle(
    store: JobStore,
    secret: str,
    job_id: str,
    nonce: str,
    signature: str,
    query: Mapping[str, str],
    policy: Policy,
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
    if policy.confirm:
        op = lifecycle.confirm(
            job_id,
            outcome=report.outcome,
            smsid=report.smsid,
            nonce=nonce,
            redrive_s=policy.redrive_s,
            hold_s=policy.hold_s,
        )
    else:
        op = lifecycle.complete(
            job_id,
            outcome=report.outcome,
            call=report.call_fields(),
            source="callback",
            smsid=report.smsid,
            nonce=nonce,
            hold_s=policy.hold_s,
        )
    step = store.apply(op)
    count_held_endings(step.extra)  # older held reports this step found past their time
    result = {
        Verdict.ACCEPTED: CallbackResult.ACCEPTED,
        Verdict.CONFIRMING: CallbackResult.CONFIRMING,
        Verdict.HELD: CallbackResult.HELD,
        Verdict.HOLD_FULL: CallbackResult.HOLD_FULL,
        Verdict.REPEAT: CallbackResult.REPEAT,
        Verdict.FORGED: CallbackResult.FORGED,
        Verdict.SMSID_MISMATCH: CallbackResult.MISMATCH,
        Verdict.REFUSED: CallbackResult.REFUSED,
        Verdict.UNKNOWN_JOB: CallbackResult.UNKNOWN_JOB,
    }[step.verdict]
    if result is CallbackResult.ACCEPTED:
        observe_finished(step.job())
    return Outcome(result)

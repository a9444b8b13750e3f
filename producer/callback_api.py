"""The eSMS callback receiver: ``GET /v1/esms/callback/{job_id}/{nonce}/{signature}``.

eSMS calls it by GET with its fields in the query string (voice: ReferenceId, CallStatus,
SentResult...; Voice OTP: SMSID, SendStatus, SendSuccess...). No bearer token: the path's
nonce and HMAC are the proof (see :mod:`voicecall.esms.callbacks`). Answers: 200 for a valid
callback and for its repeats (so eSMS stops resending), for one waiting for eSMS's status
to confirm it (CALLBACK_CONFIRM=status, the default), and for one held until eSMS's send
answer names the job's SMSID; 429 (with Retry-After) when the job already holds its share of
such reports; 403 for a bad signature, a nonce that is not the job's, a report about another
SMSID (or none), or a job never handed to eSMS (nothing changes); 400 for a signed request
that is not a readable callback, naming the field.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from producer import openapi
from producer.client import VoiceCallClient
from voicecall.config.settings import Settings
from voicecall.esms.callbacks import (
    CALLBACK_PATH,
    HTTP_STATUS,
    CallbackResult,
    Policy,
    handle_callback,
)
from voicecall.job.contract import JOB_ID_PATTERN
from voicecall.telemetry import tracing
from voicecall.telemetry.logs import get_logger

router = APIRouter(tags=["esms-callbacks"])
log = get_logger(__name__)

_MESSAGES = {
    CallbackResult.FORGED: "signature or nonce does not match this job",
    CallbackResult.MISMATCH: "the report is about another SMSID than this job's",
    CallbackResult.REFUSED: "this job was never handed to eSMS",
}
# A job holds at most lifecycle.HOLD_MAX_REPORTS reports before its SMSID is known; eSMS
# sends a refused callback again, by when the send answer has usually come.
HOLD_FULL_RETRY_AFTER_S = 30


@router.get(
    f"{CALLBACK_PATH}/{{job_id}}/{{nonce}}/{{signature}}",
    summary="eSMS result callback (signed URL)",
    operation_id="esms_callback",
    responses={
        200: {
            "model": openapi.CallbackAnswer,
            "description": "Applied, a repeat, pending, confirming, or held until eSMS's "
            "send answer names the job's SMSID.",
        },
        400: {"model": openapi.ErrorBody, "description": "Not a readable callback."},
        429: {
            "model": openapi.ErrorBody,
            "description": "The job already holds its share of reports waiting for its SMSID "
            "(hold_full); sent again after Retry-After, it may apply. Nothing changes.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        403: {
            "model": openapi.ErrorBody,
            "description": "Forged (signature or nonce), about another SMSID than the job's "
            "(smsid_mismatch), or for a job never handed to eSMS (refused). Nothing changes.",
        },
        422: {"model": openapi.ErrorBody, "description": "A path segment breaks its rule."},
        503: {"model": openapi.ErrorBody, "description": "Redis unreachable; eSMS retries."},
    },
)
def esms_callback(
    request: Request,
    job_id: Annotated[str, Path(max_length=50, pattern=JOB_ID_PATTERN)],
    nonce: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    signature: Annotated[str, Path(max_length=128)],
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    client: VoiceCallClient = request.app.state.client
    outcome = handle_callback(
        client.store,
        settings.callback_secret,
        job_id,
        nonce,
        signature,
        dict(request.query_params),
        Policy.of(settings),
    )
    result = outcome.result
    log.info("esms_callback", job_id=job_id, result=result.value)
    tracing.set_attributes({"voicecall.job.id": job_id, "voicecall.callback.result": result.value})
    status = HTTP_STATUS.get(result, 200)
    request_id = getattr(request.state, "request_id", None)
    if result is CallbackResult.INVALID:
        body: dict[str, object] = {
            "error": "invalid_callback",
            "message": outcome.detail,
            "request_id": request_id,
        }
    elif status == 403:
        body = {"error": "forbidden", "message": _MESSAGES[result], "request_id": request_id}
    elif result is CallbackResult.HOLD_FULL:
        body = {
            "error": "hold_full",
            "message": "this job already holds its share of reports waiting for its SMSID",
            "request_id": request_id,
        }
        headers = {"Retry-After": str(HOLD_FULL_RETRY_AFTER_S)}
        return JSONResponse(body, status_code=status, headers=headers)
    else:
        body = {"result": result.value}
    return JSONResponse(body, status_code=status)

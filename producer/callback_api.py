"""The eSMS callback receiver: ``GET /v1/esms/callback/{job_id}/{signature}``.

eSMS calls it by GET with its fields in the query string (voice: ReferenceId, CallStatus,
SentResult...; Voice OTP: SMSID, SendStatus, SendSuccess...). No bearer token: the path's
HMAC is the proof (see :mod:`voicecall.callbacks`). Answers: 200 for a valid callback and for
its repeats (so eSMS stops resending), 403 for a bad signature (nothing changes), 400 for a
signed request that is neither callback shape.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from producer.client import VoiceCallClient
from voicecall.callbacks import CALLBACK_PATH, CallbackResult, handle_callback
from voicecall.jobs import JOB_ID_PATTERN
from voicecall.logs import get_logger
from voicecall.settings import Settings

router = APIRouter(tags=["esms-callbacks"])
log = get_logger(__name__)

_STATUS = {
    CallbackResult.FORGED: 403,
    CallbackResult.INVALID: 400,
}


@router.get(
    f"{CALLBACK_PATH}/{{job_id}}/{{signature}}", summary="eSMS result callback (signed URL)"
)
def esms_callback(
    request: Request,
    job_id: Annotated[str, Path(max_length=50, pattern=JOB_ID_PATTERN)],
    signature: Annotated[str, Path(max_length=128)],
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    client: VoiceCallClient = request.app.state.client
    result = handle_callback(
        client.store,
        client.intake.broker,
        settings.callback_secret,
        job_id,
        signature,
        dict(request.query_params),
    )
    log.info("esms_callback", job_id=job_id, result=result.value)
    status = _STATUS.get(result, 200)
    body: dict[str, object] = {"result": result.value}
    if result is CallbackResult.FORGED:
        body = {"error": "forbidden", "message": "signature does not match this job id"}
    elif result is CallbackResult.INVALID:
        body = {
            "error": "invalid_callback",
            "message": "query has neither voice fields (ReferenceId, CallStatus) nor SMS fields (SMSID, SendStatus)",
        }
    return JSONResponse(body, status_code=status)

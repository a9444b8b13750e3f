"""The ``/v1/calls`` routes: enqueue (one or a batch), look up, cancel. Bearer auth on all.

``POST /v1/calls`` answers 202 with the job, for a new job and for a replay alike (a repeat of
an earlier request with the same ``idempotency_key`` and body); ``replay`` in the body (and the
``Idempotent-Replayed`` header) tells them apart. ``POST /v1/calls/batch`` answers 200 with one
result per item (its index, status 202/409/422/503 and the job or the error); the items are
independent, so some can fail while the others are stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from producer import openapi, quota
from producer.auth import client_name, require_token
from producer.body import read_object
from producer.client import VoiceCallClient
from producer.errors import (
    REDIS_UNAVAILABLE,
    ApiError,
    allowed_methods,
    from_domain,
    request_id_of,
    validation_error,
)
from producer.fields import validate_call
from producer.idempotency import IDEMPOTENCY_HEADER, IdempotencyHeader, with_header_key
from producer.intake import Intake
from voicecall.errors import IntakeError
from voicecall.formats.text import NO_CONTROL_PATTERN
from voicecall.job.contract import (
    CANCEL_REASON_MAX_CHARS,
    JOB_ID_PATTERN,
    RESERVED_JOB_IDS,
    validation_context,
    with_campaign,
)
from voicecall.job.esms_limits import REQUEST_ID_MAX_LEN
from voicecall.job.records import JobView
from voicecall.telemetry import tracing
from voicecall.telemetry.logs import get_logger

log = get_logger("voicecall.api")

_ERROR = {"model": openapi.ErrorBody}
_COMMON: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "No or wrong bearer token."},
    503: {**_ERROR, "description": "Redis unreachable; retry after Retry-After seconds."},
}
_POST: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    413: {**_ERROR, "description": "Body larger than API_MAX_BODY_BYTES."},
    415: {**_ERROR, "description": "The body is not application/json."},
    429: {
        **_ERROR,
        "description": "Over this client's API_TOKEN_QUOTA; retry after Retry-After seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
_CREATE_422 = {
    **_ERROR,
    "description": "Invalid JSON or fields; `errors` names each field. Besides the schema's "
    "rules, also for what JSON Schema cannot state: a phone that is no Vietnamese number, a "
    "`send_at` in the past or beyond SEND_AT_HORIZON_DAYS, a `webhook_url` the webhook policy "
    "refuses, rules across fields (`is_unicode` for non-ASCII content, `ivr` needing "
    "`number_forward`), an id that names a route (`batch`, `export`).",
}
_BATCH_422 = {
    **_ERROR,
    "description": "The batch itself is malformed (`errors` names the field): invalid JSON, no "
    "or too many `calls`, a call that is not an object, a bad `campaign`, an Idempotency-Key "
    "header (give each call its own `idempotency_key`), more calls than API_TOKEN_QUOTA lets "
    "a client submit in a whole window. A call that is an object but breaks a rule is refused "
    "on its own, in `results`.",
}
_JOB = {"model": openapi.JobView}
_BAD_ID = {**_ERROR, "description": "The id breaks its pattern; `errors` names `id`."}

router = APIRouter(prefix="/v1/calls", tags=["calls"], dependencies=[Depends(require_token)])


def _client(request: Request) -> VoiceCallClient:
    client: VoiceCallClient = request.app.state.client
    return client


def _job_response(job: JobView, status: int = 200) -> Response:
    headers = {"Location": f"/v1/calls/{job.id}"}
    if job.replay:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        job.json_bytes(), status_code=status, headers=headers, media_type="application/json"
    )


@router.post(
    "",
    status_code=202,
    summary="Enqueue one call",
    response_model=None,
    openapi_extra=openapi.call_body(),
    responses={
        202: {
            **_JOB,
            "description": "Stored (or replayed: `replay` is true).",
            "headers": {
                "Location": {"description": "The job's URL.", "schema": {"type": "string"}},
                "Idempotent-Replayed": {
                    "description": "`true` when an earlier request with the same idempotency "
                    "key made this job (absent otherwise).",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
        },
        409: {**_ERROR, "description": "idempotency_conflict or duplicate_id."},
        422: _CREATE_422,
        **_POST,
    },
)
async def create_call(request: Request, idempotency_key: IdempotencyHeader = None) -> Response:
    # Validation and the one Lua step run on the event loop (redis.asyncio): no thread-pool
    # hop, which is what made bursts queue (issue 14).
    data = with_header_key(await read_object(request), idempotency_key)
    settings = request.app.state.settings
    call = validate_call(data, validation_context(settings))
    await quota.charge(request, 1)
    intake: Intake = request.app.state.intake
    submitted = await intake.submit_async(
        call, client=client_name(request), trace_id=request_id_of(request)
    )
    job = JobView.of(submitted.job, history=False, replay=submitted.replay)
    tracing.set_attributes(
        {
            "voicecall.job.id": job.id,
            "voicecall.job.kind": job.kind.value,
            "voicecall.idempotency.replay": bool(submitted.replay),
        }
    )
    return _job_response(job, 202)


@router.post(
    "/batch",
    summary=f"Enqueue up to {openapi.MAX_BATCH} calls, each accepted or refused on its own",
    response_model=openapi.BatchResult,
    openapi_extra=openapi.batch_body(),
    responses={422: _BATCH_422, **_POST},
)
async def create_batch(request: Request) -> JSONResponse:
    # The Idempotency-Key header is not a parameter of this route (one key cannot name many
    # jobs), so the document lists no such header; sent anyway, it is refused, not ignored.
    if IDEMPOTENCY_HEADER in request.headers:
        raise validation_error(
            [
                {
                    "field": IDEMPOTENCY_HEADER,
                    "message": "is not taken by the batch route: give each call its own "
                    "idempotency_key",
                }
            ]
        )
    data = await read_object(request)
    calls = _batch_calls(data)
    await quota.charge(request, len(calls))
    result = await run_in_threadpool(
        submit_batch,
        _client(request).for_client(client_name(request)),
        calls,
        request_id_of(request),
        data.get("campaign"),
    )
    return JSONResponse(result)


def _batch_calls(data: dict[str, Any]) -> list[Any]:
    """The batch's calls (its ``campaign``, if any, checked)."""
    extra = sorted(set(data) - {"calls", "campaign"})
    if extra:
        raise validation_error(
            [{"field": name, "message": "Extra inputs are not permitted"} for name in extra]
        )
    calls = data.get("calls")
    problem = (
        "is required"
        if calls is None
        else "must be a list of call objects"
        if not isinstance(calls, list)
        else "must hold at least one call"
        if not calls
        else f"holds {len(calls)} calls; at most {openapi.MAX_BATCH} per batch"
        if len(calls) > openapi.MAX_BATCH
        else None
    )
    if problem:
        raise validation_error([{"field": "calls", "message": problem}])
    assert isinstance(calls, list)
    not_objects = [index for index, call in enumerate(calls) if not isinstance(call, dict)]
    if not_objects:  # the schema's shape: the batch is malformed, not one of its calls
        raise validation_error(
            [{"field": f"calls.{i}", "message": "must be a JSON object"} for i in not_objects[:20]]
        )
    if "campaign" not in data:
        return calls
    campaign = data["campaign"]
    if not isinstance(campaign, str):  # null too: the schema says a string, or no campaign
        raise validation_error([{"field": "campaign", "message": "must be a string"}])
    try:
        with_campaign({}, campaign)
    except ValueError as exc:
        raise validation_error([{"field": "campaign", "message": str(exc)}]) from None
    return calls


def _item_error(index: int, error: ApiError) -> dict[str, Any]:
    body = {"error": error.error, "message": error.message, **error.extra}
    return {"index": index, "status": error.status, "error": body}


def _request(item: dict[str, Any], campaign: str | None) -> dict[str, Any]:
    """A batch item as a request, with the batch's campaign label (refused on its own if it
    names another campaign)."""
    if campaign is None:
        return item
    try:
        return with_campaign(item, campaign)
    except ValueError as exc:
        raise validation_error([{"field": "labels.campaign", "message": str(exc)}]) from None


def submit_batch(
    client: VoiceCallClient, calls: list[Any], trace_id: str | None, campaign: str | None = None
) -> dict[str, Any]:
    """Submit each item; Redis failing after some items were stored ends the rest with 503.

    When Redis fails before anything was stored, the whole request answers 503 instead.
    """
    results: list[dict[str, Any]] = []
    accepted = replays = 0
    unavailable: ApiError | None = None
    for index, item in enumerate(calls):
        if unavailable is not None:
            results.append(_item_error(index, unavailable))
            continue
        try:
            job = client.enqueue(_request(item, campaign), trace_id=trace_id)
        except REDIS_UNAVAILABLE as exc:
            if accepted == 0:
                raise
            log.warning("batch_interrupted", index=index, error=repr(exc))
            unavailable = from_domain(exc)
            unavailable.message = "not attempted: the job store became unreachable; retry it"
            results.append(_item_error(index, unavailable))
            continue
        except (ApiError, ValueError, IntakeError) as exc:
            results.append(_item_error(index, from_domain(exc)))
            continue
        accepted += 1
        replays += bool(job.replay)
        results.append({"index": index, "status": 202, "job": job.json_body()})
    return {
        "accepted": accepted,
        "replays": replays,
        "failed": len(calls) - accepted,
        "results": results,
    }


JobIdPath = Annotated[
    str,
    Path(
        alias="id",
        min_length=1,
        max_length=REQUEST_ID_MAX_LEN,
        pattern=JOB_ID_PATTERN,
        description="The job id (eSMS RequestId); any other shape is refused with 422.",
    ),
]


@router.get(
    "/by-smsid/{smsid}",
    summary="Find a job by its eSMS SMSID",
    responses={
        200: _JOB,
        404: _ERROR,
        422: {**_ERROR, "description": "The SMSID is too long."},
        **_COMMON,
    },
)
def find_by_smsid(request: Request, smsid: Annotated[str, Path(max_length=200)]) -> Response:
    return _job_response(_client(request).find(smsid=smsid))


@router.get(
    "/{id}",
    summary="A job with its history",
    responses={200: _JOB, 404: _ERROR, 422: _BAD_ID, **_COMMON},
)
def get_call(request: Request, job_id: JobIdPath) -> Response:
    _not_a_route(request, job_id)
    return _job_response(_client(request).get(job_id))


@router.delete(
    "/{id}",
    summary="Cancel a job not yet handed to eSMS",
    responses={
        200: {**_JOB, "description": "Cancelled."},
        404: _ERROR,
        409: {**_ERROR, "description": "cancel_refused: handed to eSMS, or final."},
        422: _BAD_ID,
        **_COMMON,
    },
)
def cancel_call(
    request: Request,
    job_id: JobIdPath,
    reason: Annotated[
        str,
        Query(
            max_length=CANCEL_REASON_MAX_CHARS,
            pattern=NO_CONTROL_PATTERN,  # the rule of voicecall.job.contract.check_cancel_reason
            description="Kept in the job's history (no control characters: C0, DEL, C1, "
            "bidi overrides and isolates).",
        ),
    ] = "cancelled by API request",
) -> Response:
    _not_a_route(request, job_id)
    return _job_response(_client(request).cancel(job_id, reason=reason))


def _not_a_route(request: Request, job_id: str) -> None:
    """405 at /v1/calls/batch and /v1/calls/export: they are routes (with their own methods),
    and no job can have their names (voicecall.job.contract.RESERVED_JOB_IDS)."""
    if job_id in RESERVED_JOB_IDS:
        raise ApiError(
            405,
            "method_not_allowed",
            "Method Not Allowed",
            headers={"Allow": allowed_methods(request)},
        )

"""Bulk actions over HTTP (voicecall.store.bulk does the work): ``POST /v1/bulk/cancel-calls``
cancels every scheduled call the filters match (those of ``GET /v1/calls``; a campaign is
``label=campaign:NAME``), ``POST /v1/bulk/requeue-dead-letters?queue=Q`` requeues every dead
letter of a queue, and ``GET /v1/bulk/{id}`` says how far one got. Each answers 202 at once
with the operation; the work goes on in this API process, in chunks. One log line per action
names the client who asked (``bulk_started``). The console and the CLI use the same parts.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from producer import openapi
from producer.auth import client_name, require_token
from producer.errors import ApiError, validation_error
from producer.search import walk
from producer.search.filters import Filters
from producer.search.query import FILTER_PARAMS, parse_filters
from producer.search_api import FILTER_DOCS
from voicecall.errors import FieldRefused
from voicecall.formats.phones import mask_phones_in_text
from voicecall.job.contract import check_cancel_reason
from voicecall.job.keys import ALL_QUEUES
from voicecall.job.states import State
from voicecall.store import bulk
from voicecall.store.job_store import JobStore
from voicecall.telemetry.logs import get_logger

log = get_logger("voicecall.api")
CANCEL_PARAMS = tuple(p for p in FILTER_PARAMS if p not in ("state", "outcome"))
DEFAULT_REASON = "cancelled in bulk"
_ERROR = {"model": openapi.ErrorBody}
_COMMON: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "No or wrong bearer token."},
    503: {**_ERROR, "description": "Redis unreachable; retry after Retry-After seconds."},
}
_EXAMPLE = {
    "id": "5f0c1e2d3a4b6c7d",
    "action": "cancel",
    "target": "scheduled calls with label=campaign:tet-2030",
    "by": "billing",
    "state": "running",
    "total": 210,
    "processed": 100,
    "changed": 99,
    "skipped": 1,
    "started_at": "2030-01-01T00:00:00.000Z",
    "finished_at": None,
    "error": None,
}
_ACCEPTED = {
    "model": bulk.BulkOperation,
    "description": "Started; `Location` is the operation, to read until `state` is done.",
    "content": {"application/json": {"example": _EXAMPLE}},
}

router = APIRouter(prefix="/v1/bulk", tags=["bulk"], dependencies=[Depends(require_token)])


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


def scheduled_ids(store: JobStore, filters: Filters, client: str) -> list[str]:
    """The scheduled jobs ``filters`` match now, newest first (a bulk cancel's snapshot)."""
    filters = dataclasses.replace(filters, states=(State.SCHEDULED,), outcomes=())
    return [str(doc["id"]) for doc in walk.scan(store, filters, client=client)]


def describe(pairs: list[tuple[str, str]]) -> str:
    """The filters of a bulk cancel as one line (its record's ``target``), a phone number in
    them masked: the record is shown to every client and operator, and kept a week."""
    asked = " ".join(
        f"{name}={mask_phones_in_text(value) if name == 'phone' else value}"
        for name, value in pairs
        if name != "state"
    )
    return f"scheduled calls with {asked}" if asked else "every scheduled call"


def cancel_calls(
    store: JobStore, ids: list[str], *, target: str, by: str, reason: str
) -> bulk.BulkOperation:
    """Record a bulk cancel of ``ids`` and start it in the background."""
    op = bulk.begin(store, "cancel", target, by, len(ids))
    step = bulk.cancel_step(store, reason)
    bulk.in_background(lambda: bulk.run(store, op, step, ids))
    return op


def requeue_dead_letters(request: Request, queue: str, by: str) -> bulk.BulkOperation:
    """Record a requeue of every dead letter of ``queue`` and start it in the background."""
    store = _store(request)
    ids = bulk.dead_letter_ids(store, queue)
    op = bulk.begin(store, "requeue", f"dead letters of {queue}", by, len(ids))
    step = bulk.requeue_step(store, request.app.state.settings, queue)
    bulk.in_background(lambda: bulk.run(store, op, step, ids))
    return op


def _accepted(op: bulk.BulkOperation) -> JSONResponse:
    return JSONResponse(
        op.model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/bulk/{op.id}"}
    )


@router.post(
    "/cancel-calls",
    summary="Cancel every scheduled call the filters match (a campaign: label=campaign:NAME)",
    status_code=202,
    responses={
        202: _ACCEPTED,
        422: {**_ERROR, "description": "A filter or `reason` breaks its rule; `errors` names it."},
        **_COMMON,
    },
    openapi_extra={
        "parameters": [
            *[doc for doc in FILTER_DOCS if doc["name"] in CANCEL_PARAMS],
            {
                "name": "reason",
                "in": "query",
                "description": "Kept in each job's history.",
                "schema": {"type": "string", "maxLength": 200, "default": DEFAULT_REASON},
            },
        ]
    },
)
def bulk_cancel_calls(request: Request) -> JSONResponse:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "reason"]
    reason = request.query_params.get("reason", DEFAULT_REASON)
    try:
        check_cancel_reason(reason)
    except FieldRefused as exc:
        raise validation_error([{"field": "reason", "message": exc.rule}]) from None
    zone = request.app.state.settings.zone
    filters, _ = parse_filters(pairs, allowed=CANCEL_PARAMS, zone=zone)
    client = client_name(request)
    store = _store(request)
    ids = scheduled_ids(store, filters, client)
    op = cancel_calls(store, ids, target=describe(pairs), by=client, reason=reason)
    log.info("bulk_started", op=op.id, action="cancel", client=client, total=op.total)
    return _accepted(op)


@router.post(
    "/requeue-dead-letters",
    summary="Requeue every dead letter of a queue",
    status_code=202,
    responses={
        202: _ACCEPTED,
        422: {**_ERROR, "description": "`queue` is missing or no queue's name."},
        **_COMMON,
    },
    openapi_extra={
        "parameters": [
            {
                "name": "queue",
                "in": "query",
                "required": True,
                "description": "The queue.",
                "schema": {"type": "string", "enum": list(ALL_QUEUES)},
            },
        ]
    },
)
def bulk_requeue_dead_letters(request: Request) -> JSONResponse:
    queue = request.query_params.get("queue", "")
    extra = sorted(set(request.query_params) - {"queue"})
    if extra:
        raise validation_error([{"field": extra[0], "message": "is not a parameter here"}])
    if queue not in ALL_QUEUES:
        rule = "must be one of " + ", ".join(ALL_QUEUES)
        raise validation_error([{"field": "queue", "message": rule}])
    client = client_name(request)
    op = requeue_dead_letters(request, queue, client)
    log.info("bulk_started", op=op.id, action="requeue", client=client, total=op.total)
    return _accepted(op)


@router.get(
    "/{id}",
    summary="A bulk action and how far it got",
    response_model=bulk.BulkOperation,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        **_EXAMPLE,
                        "state": "done",
                        "processed": 210,
                        "changed": 208,
                        "skipped": 2,
                        "finished_at": "2030-01-01T00:00:02.000Z",
                    }
                }
            }
        },
        404: {**_ERROR, "description": "No such operation (or older than a week)."},
        **_COMMON,
    },
)
async def get_bulk_operation(
    request: Request, op_id: Annotated[str, Path(alias="id", max_length=64)]
) -> JSONResponse:
    op = await run_in_threadpool(bulk.read, _store(request), op_id)
    if op is None:
        raise ApiError(404, "not_found", f"no bulk operation {op_id}")
    return JSONResponse(op.model_dump(mode="json"))

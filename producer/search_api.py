"""Finding jobs over HTTP: ``GET /v1/calls`` (a page), ``GET /v1/calls/export`` (CSV) and the
campaigns (``GET /v1/campaigns``, ``GET /v1/campaigns/{name}``). Bearer auth on all.

The filters are query parameters (producer.search.query); an unknown one, a bad value, an
inverted range, a limit out of range or a cursor this API did not give gets 422 naming the
parameter. Pages come newest first; ``next_cursor`` is null on the last one.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from producer import openapi
from producer.auth import client_name, require_token
from producer.client import CallPage
from producer.search import cursors, export, walk
from producer.search.campaigns import CampaignSummary, campaign, campaigns, summarize
from producer.search.filters import Filters
from producer.search.query import FILTER_PARAMS, IDEMPOTENCY_KEY_MAX, PAGE_PARAMS, parse_filters
from producer.search.walk import MAX_LIMIT
from voicecall.config.clients import NAME_PATTERN
from voicecall.errors import SearchError
from voicecall.job.records import JobRecord, JobView
from voicecall.job.states import Kind, Outcome, State
from voicecall.store.job_store import JobStore

DEFAULT_LIMIT = 50
_ERROR = {"model": openapi.ErrorBody}
_COMMON: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "No or wrong bearer token."},
    422: {
        **_ERROR,
        "description": "A parameter breaks its rule; `errors` names it. Besides the schema's "
        "rules, also for what JSON Schema cannot state: a `phone` that is no Vietnamese number, "
        "a `cursor` this API did not sign for this client and these filters (or older than "
        "24 h), an inverted time range, a time outside 1970-9999.",
    },
    503: {**_ERROR, "description": "Redis unreachable; retry after Retry-After seconds."},
}

router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])


class CampaignList(BaseModel):
    data: list[CampaignSummary] = Field(description="Newest campaign first.")


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


def caller(request: Request) -> cursors.Caller:
    """The API client of ``request``, as a search's cursors are made for it."""
    return cursors.Caller(client_name(request), request.app.state.cursor_key)


def _query(request: Request, allowed: tuple[str, ...]) -> tuple[Filters, dict[str, str]]:
    zone = request.app.state.settings.zone  # a time without an offset: TIMEZONE, as intake
    return parse_filters(request.query_params.multi_items(), allowed=allowed, zone=zone)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        return int(raw)
    except ValueError:
        raise SearchError("limit", f"must be an integer between 1 and {MAX_LIMIT}") from None


# --- the OpenAPI description of the query parameters --------------------------------------


def _param(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _choices(values: list[str]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "enum": values}}


_TIME = {"type": "string", "examples": ["2030-01-01T00:00:00Z"]}
FILTER_DOCS = [
    _param("state", "Any of these states (repeat, or separate with commas).",
           _choices([s.value for s in State]), style="form", explode=True),
    _param("kind", "Any of these kinds.", _choices([k.value for k in Kind]),
           style="form", explode=True),
    _param("outcome", "Any of these outcomes (completed jobs).",
           _choices([o.value for o in Outcome]), style="form", explode=True),
    _param("label", "`key:value`; repeat to require several (e.g. `campaign:tet-2030`).",
           {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:"}},
           style="form", explode=True),
    _param("phone", "Normalised as at intake: `0901234567` finds `84901234567`.",
           {"type": "string", "maxLength": 20}),
    _param("idempotency_key", "The job created with this key by `client` (default: by you: "
           "keys are each client's own).",
           {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX}),
    _param("client", "Jobs made by this API client (its name in API_TOKENS; `python` and `cli`:"
           " the Redis-direct producers).",
           {"type": "string", "pattern": NAME_PATTERN, "examples": ["billing"]}),
    *[
        _param(f"{what}_{end}", f"{what} time {'at or after' if end == 'from' else 'at or before'}"
               " this (ISO 8601, read in TIMEZONE without an offset; or epoch seconds).", _TIME)
        for what in ("created", "due", "finished") for end in ("from", "to")
    ],
]  # fmt: skip
PAGE_DOCS = [
    _param("limit", f"Jobs per page, 1 to {MAX_LIMIT}.",
           {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
    _param("cursor", "`next_cursor` of the previous page, with the same filters, from the same "
           "client (24 h). Signed: an altered one is refused.",
           {"type": "string", "maxLength": cursors.MAX_CURSOR_LENGTH}),
]  # fmt: skip


def example_job() -> dict[str, Any]:
    """A completed job as the list shows it (no history)."""
    record = JobRecord.model_validate(
        {
            "id": "3f9c2a7e5b1d4c6a8e0f",
            "kind": "record_call",
            "phone": "84901234568",
            "state": "completed",
            "outcome": "answered",
            "request": {"kind": "record_call", "record_id": "rec-welcome"},
            "labels": {"campaign": "tet-2030"},
            "created_at": 1893456000.0,
            "updated_at": 1893456042.5,
            "due_at": 1893456000.0,
            "submitted_at": 1893456001.2,
            "finished_at": 1893456042.5,
            "smsid": "a1b2c3d4-0000-4e5f-9a8b-7c6d5e4f3a2b",
            "attempts": 1,
            "call": {"status": "ANSWERED", "duration_s": 23, "price_vnd": 880.0},
        }
    )
    return JobView.of(record, history=False).json_body()


def example_campaign() -> dict[str, Any]:
    figures = {
        "total": 50000,
        "completed": 48210,
        "failed": 312,
        "expired": 0,
        "cancelled": 20,
        "queued": 1458,
        "outcome:answered": 39006,
        "outcome:busy": 2410,
        "outcome:no_answer": 6794,
        "duration_s": 897138,
        "price_vnd": 34325520.0,
        "first_sent_at": 1893456001.2,
        "last_sent_at": 1893470403.9,
    }
    return summarize("tet-2030", figures).model_dump(mode="json")


def _json(example: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


# --- the routes ----------------------------------------------------------------------------


@router.get(
    "/calls",
    tags=["calls"],
    summary="List jobs, newest first, by state, kind, outcome, labels, phone and times",
    response_model=CallPage,
    responses={200: _json({"data": [example_job()], "next_cursor": None}), **_COMMON},
    openapi_extra={"parameters": FILTER_DOCS + PAGE_DOCS},
)
def list_calls(request: Request) -> JSONResponse:
    filters, rest = _query(request, FILTER_PARAMS + PAGE_PARAMS)
    page = walk.search(
        _store(request),
        filters,
        caller(request),
        limit=_limit(rest.get("limit")),
        cursor=rest.get("cursor"),
    )
    jobs = [JobView.of(job, history=False).json_body() for job in page.jobs]
    return JSONResponse({"data": jobs, "next_cursor": page.cursor})


_CSV_EXAMPLE = (
    ",".join(export.COLUMNS)
    + "\r\n3f9c2a7e5b1d4c6a8e0f,84901234568,record_call,completed,answered,"
    "2030-01-01T00:00:00.000Z,2030-01-01T00:00:00.000Z,2030-01-01T00:00:01.200Z,"
    '2030-01-01T00:00:42.500Z,1,ANSWERED,23,880.0,,,"{""campaign"":""tet-2030""}"\r\n'
)


@router.get(
    "/calls/export",
    tags=["calls"],
    summary="Every job the filters match, newest first, as CSV (streamed)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One row per job; columns: " + ", ".join(export.COLUMNS) + ".",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
        },
        **_COMMON,
    },
    openapi_extra={"parameters": FILTER_DOCS},
)
def export_calls(request: Request) -> StreamingResponse:
    filters, _ = _query(request, FILTER_PARAMS)
    chunks = export.chunks(walk.scan(_store(request), filters, client=client_name(request)))
    first = next(chunks)  # reads the first batch now: Redis down is a 503, not a cut stream
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'},
    )


@router.get(
    "/campaigns",
    tags=["campaigns"],
    summary="Every campaign with its figures",
    response_model=CampaignList,
    responses={200: _json({"data": [example_campaign()]}), **_COMMON},
)
def list_campaigns(request: Request) -> JSONResponse:
    _query(request, ())
    summaries = campaigns(_store(request))
    return JSONResponse({"data": [summary.model_dump(mode="json") for summary in summaries]})


CampaignName = Annotated[
    str, Path(min_length=1, max_length=256, description="The `campaign` label of its jobs.")
]


@router.get(
    "/campaigns/{name:path}",  # a name may hold "/" (%2F arrives decoded)
    tags=["campaigns"],
    summary="A campaign's figures: states, outcomes, answer rate, duration, cost, progress",
    response_model=CampaignSummary,
    responses={
        200: _json(example_campaign()),
        404: {**_ERROR, "description": "No job ever had this campaign label."},
        **_COMMON,
    },
)
def show_campaign(request: Request, name: CampaignName) -> JSONResponse:
    _query(request, ())
    return JSONResponse(campaign(_store(request), name).model_dump(mode="json"))

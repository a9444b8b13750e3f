"""The console's pages (GET, read only): overview, calls and a job's story, campaigns, dead
letters, scheduled jobs. Phone numbers are masked everywhere (reveal: producer.console.actions).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from producer.console import timeline
from producer.console.overview import overview
from producer.console.session import Session
from producer.console.web import current, page, store_of
from voicecall import cursors, export, keys, search
from voicecall.clients import CONSOLE_CLIENT
from voicecall.dead_letters import DeadLetters
from voicecall.errors import CampaignNotFound, SearchError
from voicecall.jobs import Kind, Outcome, State
from voicecall.search_query import FILTER_PARAMS, PAGE_PARAMS, parse_filters
from voicecall.settings import Settings

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50


def _liveness(request: Request) -> float:
    settings: Settings = request.app.state.settings
    return settings.worker_liveness_s


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> HTMLResponse:
    session = current(request)
    data = overview(store_of(request), _liveness(request))
    return page(request, "overview.html", session, data=data)


@router.get("/overview.json")
def overview_data(request: Request) -> JSONResponse:
    """The overview's figures, for its live refresh (console.js)."""
    current(request)
    data = overview(store_of(request), _liveness(request))
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


def _caller(request: Request) -> cursors.Caller:
    """The console searches as the client ``console`` (it makes no job of its own)."""
    return cursors.Caller(CONSOLE_CLIENT, request.app.state.cursor_key)


def _query(request: Request) -> list[tuple[str, str]]:
    """The search form's fields that were filled in (an empty field is no filter)."""
    return [(k, v) for k, v in request.query_params.multi_items() if v.strip() and k != "notice"]


@router.get("/calls", response_class=HTMLResponse)
def calls_page(request: Request) -> HTMLResponse:
    session = current(request)
    pairs = _query(request)
    form = dict(pairs)
    try:
        filters, rest = parse_filters(pairs, allowed=FILTER_PARAMS + PAGE_PARAMS)
        found = search.search(
            store_of(request), filters, _caller(request), limit=PAGE_SIZE, cursor=rest.get("cursor")
        )
    except SearchError as exc:
        return page(
            request, "calls.html", session, 422, form=form, jobs=[], error=exc, options=_options()
        )
    more = None
    if found.cursor:
        more = urlencode([(k, v) for k, v in pairs if k != "cursor"] + [("cursor", found.cursor)])
    return page(
        request, "calls.html", session, form=form, jobs=found.jobs, more=more, options=_options()
    )


def _options() -> dict[str, list[str]]:
    return {
        "state": [s.value for s in State],
        "kind": [k.value for k in Kind],
        "outcome": [o.value for o in Outcome],
    }


@router.get("/calls/export")
def export_page(request: Request) -> StreamingResponse:
    """The CSV export of GET /v1/calls/export, for a logged-in operator."""
    current(request)
    filters, _ = parse_filters(_query(request), allowed=FILTER_PARAMS)
    chunks = export.chunks(search.scan(store_of(request), filters, client=CONSOLE_CLIENT))
    first = next(chunks)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.csv"'},
    )


@router.get("/calls/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> HTMLResponse:
    session = current(request)
    return job_view(request, session, job_id)


def job_view(
    request: Request, session: Session, job_id: str, *, revealed: bool = False, notice: str = ""
) -> HTMLResponse:
    job = store_of(request).get(job_id)
    if job is None:
        return page(request, "missing.html", session, 404, what=f"job {job_id}")
    return page(
        request,
        "job.html",
        session,
        job=job,
        events=timeline.events(job),
        source=timeline.result_source(job),
        revealed=revealed,
        notice=notice or request.query_params.get("notice", ""),
    )


@router.get("/calls/{job_id}/cancel", response_class=HTMLResponse)
def cancel_confirm(request: Request, job_id: str) -> HTMLResponse:
    session = current(request)
    job = store_of(request).get(job_id)
    if job is None:
        return page(request, "missing.html", session, 404, what=f"job {job_id}")
    return page(request, "confirm.html", session, action="cancel", job=job, queue=None)


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request) -> HTMLResponse:
    session = current(request)
    return page(request, "campaigns.html", session, campaigns=search.campaigns(store_of(request)))


@router.get("/campaigns/{name}", response_class=HTMLResponse)
def campaign_page(request: Request, name: str) -> HTMLResponse:
    session = current(request)
    try:
        summary = search.campaign(store_of(request), name)
    except CampaignNotFound:
        return page(request, "missing.html", session, 404, what=f"campaign {name}")
    export_query = urlencode([("label", f"campaign:{name}")])
    return page(request, "campaign.html", session, c=summary, export_query=export_query)


def dead_letters(request: Request) -> DeadLetters:
    return DeadLetters(store_of(request), request.app.state.settings)


@router.get("/dead", response_class=HTMLResponse)
async def dead_page(request: Request) -> HTMLResponse:
    session = current(request)
    letters = await run_in_threadpool(dead_letters(request).list, keys.ALL_QUEUES, 200)
    return page(
        request, "dead.html", session, letters=letters, notice=request.query_params.get("notice")
    )


@router.get("/dead/{queue}/{job_id}", response_class=HTMLResponse)
def dead_letter_page(request: Request, queue: str, job_id: str) -> HTMLResponse:
    session = current(request)
    letter = dead_letters(request).find(job_id, [queue] if queue in keys.ALL_QUEUES else [])
    if letter is None:
        return page(request, "missing.html", session, 404, what=f"dead letter {job_id}")
    return page(request, "dead_letter.html", session, letter=letter)


@router.get("/dead/{queue}/{job_id}/purge", response_class=HTMLResponse)
def purge_confirm(request: Request, queue: str, job_id: str) -> HTMLResponse:
    session = current(request)
    letter = dead_letters(request).find(job_id, [queue] if queue in keys.ALL_QUEUES else [])
    if letter is None:
        return page(request, "missing.html", session, 404, what=f"dead letter {job_id}")
    return page(request, "confirm.html", session, action="purge", job=letter.job, queue=queue,
                job_id=job_id)  # fmt: skip


@router.get("/scheduled", response_class=HTMLResponse)
def scheduled_page(request: Request) -> HTMLResponse:
    session = current(request)
    filters, _ = parse_filters([("state", "scheduled")])
    found = search.search(store_of(request), filters, _caller(request), limit=200)
    return page(
        request,
        "scheduled.html",
        session,
        jobs=found.jobs,
        notice=request.query_params.get("notice"),
    )

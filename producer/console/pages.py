"""The console's pages (GET, read only): overview, calls and a job's story, campaigns, dead
letters, scheduled jobs. Phone numbers are masked everywhere (reveal and the CSV export:
producer.console.actions).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from producer.console import activity, charts, listing, timeline
from producer.console.overview import overview
from producer.console.session import Session
from producer.console.web import current, page, store_of, zone_of
from producer.search.campaigns import CampaignSummary, campaign, campaigns
from voicecall.config.settings import Settings
from voicecall.errors import CampaignNotFound, SearchError
from voicecall.job import keys
from voicecall.job.contract import CANCEL_REASON_MAX_CHARS
from voicecall.job.records import JobRecord
from voicecall.job.states import FINAL_STATES
from voicecall.store.dead_letters import DeadLetters

router = APIRouter(prefix="/console", include_in_schema=False)


def _liveness(request: Request) -> float:
    settings: Settings = request.app.state.settings
    return settings.worker_liveness_s


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=308)


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> HTMLResponse:
    session = current(request)
    data = overview(store_of(request), _liveness(request), zone_of(request))
    return page(request, "overview.html", session, data=data)


@router.get("/charts", response_class=HTMLResponse)
def charts_page(request: Request) -> HTMLResponse:
    """Sends and endings per minute over the last hour and per hour over the last day, and
    the answer rate over each (server-rendered SVG; the page refreshes itself)."""
    session = current(request)
    zone = zone_of(request)
    day = activity.recent(store_of(request), minutes=24 * 60)
    hour = charts.buckets(day.minutes[-60:], 1)
    hours = charts.buckets(day.minutes, 60)
    figures = {
        "minute_bars": charts.bars(hour, zone, title="Sent and endings per minute, last hour",
                                   chart_id="chart-minutes"),
        "minute_rate": charts.rate_line(hour, zone, title="Answer rate per minute, last hour",
                                        chart_id="chart-minute-rate"),
        "hour_bars": charts.bars(hours, zone, title="Sent and endings per hour, last day",
                                 chart_id="chart-hours"),
        "hour_rate": charts.rate_line(hours, zone, title="Answer rate per hour, last day",
                                      chart_id="chart-hour-rate"),
    }  # fmt: skip
    return page(request, "charts.html", session, charts=figures, groups=charts.GROUPS, live=True)


@router.get("/overview.json")
def overview_data(request: Request) -> JSONResponse:
    """The overview's figures, for its live refresh (console.js)."""
    current(request)
    data = overview(store_of(request), _liveness(request), zone_of(request))
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


def search_query(request: Request) -> list[tuple[str, str]]:
    """The search form's fields that were filled in (an empty field is no filter)."""
    return listing.filter_pairs(request)


def list_view(
    request: Request, template: str, pairs: list[tuple[str, str]], **context: Any
) -> HTMLResponse:
    """A list of jobs (Calls, Scheduled): a page of them with the total and paging, or the
    form with the refused filter named (422)."""
    session = current(request)
    options = listing.options(request)
    try:
        found = listing.search(request, pairs)
    except SearchError as exc:
        form: dict[str, list[str]] = {}
        for name, value in pairs:
            form.setdefault(name, []).append(value)
        return page(request, template, session, 422, form=form, list=None, error=exc,
                    options=options, **context)  # fmt: skip
    return page(request, template, session, form=found.form, list=found, options=options,
                live=found.unfinished, **context)  # fmt: skip


@router.get("/calls", response_class=HTMLResponse)
def calls_page(request: Request) -> HTMLResponse:
    return list_view(request, "calls.html", search_query(request))


@router.get("/calls/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str) -> HTMLResponse:
    session = current(request)
    return job_view(request, session, job_id)


def job_view(
    request: Request,
    session: Session,
    job_id: str,
    *,
    revealed: bool = False,
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    job = store_of(request).get(job_id)
    if job is None:
        return page(request, "missing.html", session, 404, what=f"job {job_id}")
    view = timeline.raw_view(job, revealed=revealed)
    settings: Settings = request.app.state.settings
    return page(
        request,
        "job.html",
        session,
        status_code,
        job=job,
        view=view,
        raw=timeline.raw_json(view),
        error_matters=timeline.matters(job),
        events=timeline.events(job),
        source=timeline.result_source(job),
        trace=timeline.trace(view, settings.trace_link_template),
        revealed=revealed,
        notice=notice,
        live=not revealed and (job.state not in FINAL_STATES or _webhook_pending(job)),
    )


def _webhook_pending(job: JobRecord) -> bool:
    """A webhook still to be delivered (or retried): the page follows it too."""
    state = job.webhook.state if job.webhook else None
    return job.webhook_url is not None and state in (None, "retry")


@router.get("/calls/{job_id}/cancel", response_class=HTMLResponse)
def cancel_confirm(request: Request, job_id: str) -> HTMLResponse:
    return cancel_view(request, current(request), job_id)


def cancel_view(
    request: Request, session: Session, job_id: str, *, error: str = "", status_code: int = 200
) -> HTMLResponse:
    """The cancel confirmation page; ``error``: why the reason last posted was refused."""
    job = store_of(request).get(job_id)
    if job is None:
        return page(request, "missing.html", session, 404, what=f"job {job_id}")
    return page(request, "confirm.html", session, status_code, action="cancel", job=job,
                queue=None, error=error, reason_max=CANCEL_REASON_MAX_CHARS)  # fmt: skip


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request) -> HTMLResponse:
    session = current(request)
    return page(request, "campaigns.html", session, campaigns=campaigns(store_of(request)))


@router.get("/campaign", response_class=HTMLResponse)
def campaign_page(request: Request, name: str = "") -> HTMLResponse:
    """A campaign's page. Its name is a query parameter: a name may hold any character, and
    one such as ``..`` cannot be a path segment (browsers resolve it)."""
    session = current(request)
    try:
        summary = campaign(store_of(request), name)
    except CampaignNotFound:
        return page(request, "missing.html", session, 404, what=f"campaign {name}")
    export_query = urlencode([("label", f"campaign:{name}")])
    chart = charts.share_bar(
        charts.campaign_parts(summary.by_state, summary.by_outcome),
        title=f"Jobs of campaign {name} by how they ended (in flight in blue)",
        chart_id="chart-campaign",
    )
    hours = _campaign_hours(request, name, summary)
    over_time = {
        "bars": charts.bars(hours, zone_of(request), chart_id="chart-campaign-hours",
                            title=f"Campaign {name}: sent and endings per hour"),
        "rate": charts.rate_line(hours, zone_of(request), chart_id="chart-campaign-rate",
                                 title=f"Campaign {name}: answer rate per hour"),
    } if hours else None  # fmt: skip
    return page(request, "campaign.html", session, c=summary, export_query=export_query,
                chart=chart, over_time=over_time, live=summary.finished < summary.total)  # fmt: skip


def _campaign_hours(request: Request, name: str, summary: CampaignSummary) -> list[charts.Bucket]:
    """The campaign's sends and endings per hour since its first send (its latest 72 hours)."""
    store = store_of(request)
    found = store.campaign_number(name)
    if found is None:
        return []
    first, last = (
        t.timestamp() if t else None for t in (summary.first_sent_at, summary.last_sent_at)
    )
    rows = activity.campaign_hours(store, found[0], first, last, charts.ENDINGS,
                                   finished=summary.finished >= summary.total)  # fmt: skip
    return charts.buckets(rows, 60)


def dead_letters(request: Request) -> DeadLetters:
    return DeadLetters(store_of(request), request.app.state.settings)


@router.get("/dead", response_class=HTMLResponse)
async def dead_page(request: Request) -> HTMLResponse:
    session = await run_in_threadpool(current, request)
    return await dead_view(request, session)


DEAD_PAGE = 50


async def dead_view(
    request: Request, session: Session, *, notice: str = "", status_code: int = 200
) -> HTMLResponse:
    """One queue's dead letters (``?queue=``; by default the first that has any), a page of
    ``DEAD_PAGE`` from ``?offset=``, with the queue's total."""
    counts = await run_in_threadpool(store_of(request).dead_letter_counts)
    queue = request.query_params.get("queue", "")
    if queue not in keys.ALL_QUEUES:
        queue = next((q for q in keys.ALL_QUEUES if counts.get(q)), keys.ALL_QUEUES[0])
    raw = request.query_params.get("offset", "0")
    offset = min(int(raw), 10**9) if raw.isdigit() else 0
    letters = await run_in_threadpool(dead_letters(request).list, [queue], DEAD_PAGE, offset)
    return page(request, "dead.html", session, status_code, letters=letters, notice=notice,
                queue=queue, counts=counts, offset=offset, size=DEAD_PAGE)  # fmt: skip


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
    """Scheduled jobs, narrowed by the form's other filters (a campaign, a client, ...)."""
    pairs = [(k, v) for k, v in search_query(request) if k not in ("state", "outcome")]
    return list_view(request, "scheduled.html", [("state", "scheduled"), *pairs], cancel=True,
                     bulk_query=urlencode(pairs))  # fmt: skip

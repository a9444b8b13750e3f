"""The console's bulk actions: cancel every scheduled call of a campaign or of the Scheduled
page's filters, requeue every dead letter of a queue. Each is one confirmation page stating
how many jobs it concerns, then one POST (session and CSRF token) that starts the work on the
server (voicecall.store.bulk, as ``/v1/bulk`` does) and writes one audit line; the operation's
page shows its progress and follows it live until it is done."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from producer.bulk_api import CANCEL_PARAMS, cancel_calls, describe, requeue_dead_letters
from producer.bulk_api import scheduled_ids as matching_ids
from producer.console.listing import filter_pairs
from producer.console.web import audit, checked_form, current, page, segment, store_of, zone_of
from producer.search.query import parse_filters
from voicecall.config.clients import CONSOLE_CLIENT
from voicecall.errors import FieldRefused, SearchError
from voicecall.job import keys
from voicecall.job.contract import CANCEL_REASON_MAX_CHARS, check_cancel_reason
from voicecall.store import bulk

router = APIRouter(prefix="/console", include_in_schema=False)
REASON = "cancelled in bulk from the console"


def _cancel_pairs(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in filter_pairs(request) if k in CANCEL_PARAMS]


def _scheduled(request: Request) -> list[str]:
    """The scheduled jobs the request's filters match now (SearchError names a bad one)."""
    pairs = _cancel_pairs(request)
    filters, _ = parse_filters(pairs, allowed=CANCEL_PARAMS, zone=zone_of(request))
    return matching_ids(store_of(request), filters, CONSOLE_CLIENT)


@router.get("/bulk/cancel", response_class=HTMLResponse)
def cancel_confirm(request: Request, error: str = "") -> HTMLResponse:
    session = current(request)
    pairs = _cancel_pairs(request)
    try:
        count = len(_scheduled(request))
    except SearchError as exc:
        return page(request, "bulk_confirm.html", session, 422, action="cancel",
                    error=f"{exc.param}: {exc.rule}", count=0, target="", query="")  # fmt: skip
    return page(request, "bulk_confirm.html", session, action="cancel", count=count,
                target=describe(pairs), query=urlencode(pairs), error="",
                reason_default=REASON, reason_max=CANCEL_REASON_MAX_CHARS)  # fmt: skip


@router.post("/bulk/cancel", response_model=None)
async def cancel(request: Request) -> Response:
    session, form = await checked_form(request)
    query = urlencode(_cancel_pairs(request))
    if form.get("confirm") != "yes":
        return RedirectResponse(f"/console/bulk/cancel?{query}", status_code=303)
    reason = form.get("reason") or REASON
    try:
        check_cancel_reason(reason)  # as posted, as the single cancel checks it
    except FieldRefused as exc:
        return page(request, "bulk_confirm.html", session, 422, action="cancel", count=0,
                    target="", query=query, error=str(exc), reason_default=REASON,
                    reason_max=CANCEL_REASON_MAX_CHARS)  # fmt: skip
    try:
        ids = await run_in_threadpool(_scheduled, request)
    except SearchError:  # the confirmation page names it
        return RedirectResponse(f"/console/bulk/cancel?{query}", status_code=303)
    target = describe(_cancel_pairs(request))
    by = f"console:{session.tid[:8]}"
    op = await run_in_threadpool(
        lambda: cancel_calls(store_of(request), ids, target=target, by=by, reason=reason.strip())
    )
    audit(session, "console_bulk_cancel", op=op.id, target=target, total=op.total)
    return RedirectResponse(f"/console/bulk/{op.id}", status_code=303)


@router.get("/dead/{queue}/requeue-all", response_class=HTMLResponse)
def requeue_confirm(request: Request, queue: str) -> HTMLResponse:
    session = current(request)
    if queue not in keys.ALL_QUEUES:
        return page(request, "missing.html", session, 404, what=f"queue {queue}")
    count = store_of(request).dead_letter_counts().get(queue, 0)
    return page(request, "bulk_confirm.html", session, action="requeue", count=count,
                target=f"dead letters of {queue}", queue=queue, error="")  # fmt: skip


@router.post("/dead/{queue}/requeue-all", response_model=None)
async def requeue_all(request: Request, queue: str) -> Response:
    session, form = await checked_form(request)
    if queue not in keys.ALL_QUEUES or form.get("confirm") != "yes":
        return RedirectResponse(f"/console/dead/{segment(queue)}/requeue-all", status_code=303)
    by = f"console:{session.tid[:8]}"
    op = await run_in_threadpool(requeue_dead_letters, request, queue, by)
    audit(session, "console_bulk_requeue", op=op.id, queue=queue, total=op.total)
    return RedirectResponse(f"/console/bulk/{op.id}", status_code=303)


@router.get("/bulk/{op_id}", response_class=HTMLResponse)
def progress(request: Request, op_id: str) -> HTMLResponse:
    session = current(request)
    op = bulk.read(store_of(request), op_id)
    if op is None:
        return page(request, "missing.html", session, 404, what=f"bulk operation {op_id}")
    return page(request, "bulk.html", session, op=op, live=op.state == "running")

"""The console's state-changing routes (POST, each behind the session and its CSRF token):
log in and out, reveal a phone number, export calls as CSV, cancel a scheduled job, requeue
or purge a dead letter. Cancel and purge are confirmed on a page of their own first. Each
action writes an audit line naming the operator (web.audit)."""

from __future__ import annotations

import hmac
import itertools
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from producer.auth import token_matches
from producer.client import VoiceCallClient
from producer.console import session as sessions
from producer.console.pages import (
    cancel_view,
    dead_letters,
    dead_view,
    job_view,
    search_query,
)
from producer.console.web import (
    audit,
    checked_form,
    cookie_secure,
    page,
    read_form,
    segment,
    signing_key,
    store_of,
)
from producer.errors import ApiError
from producer.search import export, walk
from producer.search.query import FILTER_PARAMS, parse_filters
from voicecall.config.clients import CONSOLE_CLIENT
from voicecall.errors import CancelRefused, FieldRefused, JobNotFound, ReopenRefused
from voicecall.formats.phones import mask_phone
from voicecall.job import keys
from voicecall.job.contract import check_cancel_reason
from voicecall.store.connection import now_s
from voicecall.telemetry.logs import get_logger

log = get_logger("voicecall.console")
router = APIRouter(prefix="/console", include_in_schema=False)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


LOGIN_COOKIE = "vc_console_login"  # the login form's CSRF token (double submit)
LOGIN_MAX_AGE_S = 3600


def _login_form(request: Request, status_code: int = 200, error: str = "") -> HTMLResponse:
    """The login form with a fresh CSRF token, also set as a cookie: a login posted from
    another site (which cannot read the cookie) is refused, so no one can log an operator
    in under their own token."""
    nonce = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, status_code, error=error, login_csrf=nonce)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_MAX_AGE_S,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _login_form(request)


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    presented = form.get("csrf", "")
    if not expected or not hmac.compare_digest(expected.encode(), presented.encode()):
        raise ApiError(
            403,
            "csrf_failed",
            "the login form's csrf field is missing or does not match its cookie; "
            "open /console/login and log in from there",
        )
    token = form.get("token", "").strip()
    if not token or not token_matches(token, request.app.state.api_tokens):
        log.warning("console_login_refused")
        return _login_form(request, 401, "That token is not one of API_TOKENS.")
    now = now_s()
    value, session = sessions.issue(signing_key(request), token.encode(), now=now)
    await run_in_threadpool(
        store_of(request).open_console_session,
        session.tid,
        session.sid,
        ends_at=session.expires_at,
        now=now,
    )
    audit(session, "console_login")
    response = _see_other("/console/")
    secure = cookie_secure(request)
    response.delete_cookie(
        LOGIN_COOKIE, path="/console", httponly=True, samesite="strict", secure=secure
    )
    response.set_cookie(
        sessions.COOKIE,
        value,
        max_age=sessions.MAX_AGE_S,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    """End the session on the server (a copy of the cookie opens nothing after), then in
    the browser."""
    session, _ = await checked_form(request)
    await run_in_threadpool(store_of(request).end_console_session, session.tid, session.sid)
    audit(session, "console_logout")
    response = _see_other("/console/login")
    response.delete_cookie(
        sessions.COOKIE,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )
    return response


@router.post("/calls/{job_id}/reveal", response_class=HTMLResponse)
async def reveal(request: Request, job_id: str) -> HTMLResponse:
    """Show one job's phone number in full; the audit line names the job and the number
    masked."""
    session, _ = await checked_form(request)
    job = await run_in_threadpool(store_of(request).get, job_id)
    if job is not None:
        audit(session, "console_phone_revealed", job_id=job_id, phone=mask_phone(job.phone))
    return await run_in_threadpool(
        partial(job_view, request, session, job_id, revealed=job is not None)
    )


PHONES = ("masked", "full")


@router.post("/calls/export")
async def export_calls(request: Request) -> Response:
    """The CSV export of GET /v1/calls/export for the search in the query string. Phone
    numbers are masked unless the form asks for ``phones=full``; either way one audit line
    (``console_export``) names the operator, the filters, the choice and the rows sent."""
    session, form = await checked_form(request)
    phones = form.get("phones") or "masked"
    if phones not in PHONES:
        raise ApiError(422, "validation_failed", "phones must be masked or full")
    pairs = search_query(request)
    zone = request.app.state.settings.zone
    filters, _ = parse_filters(pairs, allowed=FILTER_PARAMS, zone=zone)  # SearchError: 422
    wanted: dict[str, list[str]] = {}
    for name, value in pairs:
        wanted.setdefault(name, []).append(value)
    docs = walk.scan(store_of(request), filters, client=CONSOLE_CLIENT)
    chunks = export.chunks(_audited(docs, session, wanted, phones))
    first = await run_in_threadpool(next, chunks)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        itertools.chain([first], chunks),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="calls-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _audited(
    docs: Iterable[dict[str, Any]],
    session: sessions.Session,
    filters: dict[str, list[str]],
    phones: str,
) -> Iterator[dict[str, Any]]:
    """``docs``, phones masked unless ``phones`` is full, then the audit line with the rows
    sent (also when the download stops early: ``complete`` says which)."""
    rows, complete = 0, False
    try:
        for doc in docs:
            rows += 1
            yield doc if phones == "full" else {**doc, "phone": mask_phone(doc["phone"])}
        complete = True
    finally:
        # The redactor masks a phone filter's value in the line (voicecall.telemetry.logs).
        audit(
            session, "console_export", filters=filters, phones=phones, rows=rows, complete=complete
        )


@router.post("/calls/{job_id}/cancel", response_model=None)
async def cancel(request: Request, job_id: str) -> Response:
    session, form = await checked_form(request)
    if form.get("confirm") != "yes":
        return _see_other(f"/console/calls/{segment(job_id)}/cancel")
    client: VoiceCallClient = request.app.state.client
    reason = form.get("reason") or ""
    try:
        check_cancel_reason(reason)  # as posted: strip() would take \r, \n, \x1c-\x1f off
        await run_in_threadpool(
            client.cancel, job_id, reason=reason.strip() or "cancelled from the console"
        )
    except FieldRefused as exc:
        view = partial(cancel_view, request, session, job_id, error=str(exc), status_code=422)
        return await run_in_threadpool(view)
    except (CancelRefused, JobNotFound) as exc:
        notice = f"Not cancelled: {exc}"
        view = partial(job_view, request, session, job_id, notice=notice, status_code=409)
        return await run_in_threadpool(view)
    audit(session, "console_cancel", job_id=job_id)
    return _see_other(f"/console/calls/{segment(job_id)}?notice=cancelled")


@router.post("/dead/{queue}/{job_id}/requeue", response_model=None)
async def requeue(request: Request, queue: str, job_id: str) -> Response:
    session, _ = await checked_form(request)
    dead = dead_letters(request)
    letter = await run_in_threadpool(dead.find, job_id, [queue] if queue in keys.ALL_QUEUES else [])
    if letter is None:
        return _see_other("/console/dead?notice=no_dead_letter")
    try:
        await run_in_threadpool(dead.requeue, letter)
    except ReopenRefused as exc:
        notice = f"Not requeued: {exc.job_id} {exc.reason}."
        return await dead_view(request, session, notice=notice, status_code=409)
    audit(session, "console_requeue", job_id=job_id, queue=queue)
    return _see_other("/console/dead?notice=requeued")


@router.post("/dead/{queue}/{job_id}/purge")
async def purge(request: Request, queue: str, job_id: str) -> RedirectResponse:
    session, form = await checked_form(request)
    if form.get("confirm") != "yes":
        return _see_other(f"/console/dead/{segment(queue)}/{segment(job_id)}/purge")
    dead = dead_letters(request)
    letter = await run_in_threadpool(dead.find, job_id, [queue] if queue in keys.ALL_QUEUES else [])
    purged = await run_in_threadpool(dead.purge, [letter] if letter else [])
    audit(session, "console_purge", job_id=job_id, queue=queue)
    return _see_other("/console/dead?notice=" + ("purged" if purged else "no_dead_letter"))

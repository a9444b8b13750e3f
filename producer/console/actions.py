"""The console's state-changing routes (POST, each behind the session and its CSRF token):
log in and out, reveal a phone number (logged, masked), cancel a scheduled job, requeue or
purge a dead letter. Cancel and purge are confirmed on a page of their own first."""

from __future__ import annotations

import hmac
import secrets
from functools import partial
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from producer.auth import token_matches
from producer.client import VoiceCallClient
from producer.console import session as sessions
from producer.console.pages import cancel_view, dead_letters, job_view
from producer.console.web import (
    checked_form,
    cookie_secure,
    page,
    read_form,
    signing_key,
    store_of,
)
from producer.errors import ApiError
from voicecall import keys
from voicecall.errors import CancelRefused, FieldRefused, JobNotFound, ReopenRefused
from voicecall.jobs import check_cancel_reason
from voicecall.logs import get_logger
from voicecall.phones import mask_phone
from voicecall.store import now_s

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
    log.info("console_login", operator=session.tid[:8])
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
    log.info("console_logout", operator=session.tid[:8])
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
    """Show one job's phone number in full; the log names the job and the number masked."""
    session, _ = await checked_form(request)
    job = await run_in_threadpool(request.app.state.store.get, job_id)
    if job is not None:
        log.info(
            "console_phone_revealed",
            operator=session.tid[:8],
            job_id=job_id,
            phone=mask_phone(job.phone),
        )
    return job_view(request, session, job_id, revealed=job is not None)


@router.post("/calls/{job_id}/cancel", response_model=None)
async def cancel(request: Request, job_id: str) -> Response:
    session, form = await checked_form(request)
    if form.get("confirm") != "yes":
        return _see_other(f"/console/calls/{quote(job_id)}/cancel")
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
        return job_view(request, session, job_id, notice=f"Not cancelled: {exc}")
    log.info("console_cancel", operator=session.tid[:8], job_id=job_id)
    return _see_other(f"/console/calls/{quote(job_id)}?notice=Cancelled.")


@router.post("/dead/{queue}/{job_id}/requeue")
async def requeue(request: Request, queue: str, job_id: str) -> RedirectResponse:
    session, _ = await checked_form(request)
    dead = dead_letters(request)
    letter = dead.find(job_id, [queue] if queue in keys.ALL_QUEUES else [])
    if letter is None:
        return _see_other("/console/dead?notice=" + quote(f"No dead letter {job_id}."))
    try:
        done = await run_in_threadpool(dead.requeue, letter)
    except ReopenRefused as exc:
        return _see_other("/console/dead?notice=" + quote(f"Not requeued: {exc.reason}."))
    log.info("console_requeue", operator=session.tid[:8], job_id=job_id, queue=queue)
    return _see_other("/console/dead?notice=" + quote(done[0].upper() + done[1:] + "."))


@router.post("/dead/{queue}/{job_id}/purge")
async def purge(request: Request, queue: str, job_id: str) -> RedirectResponse:
    session, form = await checked_form(request)
    if form.get("confirm") != "yes":
        return _see_other(f"/console/dead/{quote(queue)}/{quote(job_id)}/purge")
    dead = dead_letters(request)
    letter = dead.find(job_id, [queue] if queue in keys.ALL_QUEUES else [])
    purged = await run_in_threadpool(dead.purge, [letter] if letter else [])
    log.info("console_purge", operator=session.tid[:8], job_id=job_id, queue=queue)
    notice = f"Purged {job_id}." if purged else f"No dead letter {job_id}."
    return _see_other("/console/dead?notice=" + quote(notice))

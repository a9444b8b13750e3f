"""What every console route needs: the session from the cookie and Redis (else the login
page), the CSRF check of a posted form, the form itself, the audit log line of an operator's
action, the banner of a known notice code, and rendering a template."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from producer.console import session as sessions
from producer.errors import ApiError
from voicecall.errors import VoicecallError
from voicecall.formats import shown
from voicecall.formats.phones import mask_phone
from voicecall.store.connection import now_s
from voicecall.store.job_store import JobStore
from voicecall.telemetry.logs import get_logger


def segment(value: str) -> str:
    """``value`` as one URL path segment: every reserved character encoded, ``/`` too (Jinja's
    ``urlencode`` keeps ``/``). Job ids and queue names never are ``.`` or ``..``; campaign names
    can be, so a campaign's page takes its name as a query parameter instead."""
    return quote(value, safe="")


HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["masked"] = mask_phone
templates.env.filters["segment"] = segment


def zone_of(request: Request) -> ZoneInfo:
    """The zone the console shows times in (TIMEZONE)."""
    zone: ZoneInfo = request.app.state.settings.zone
    return zone


@pass_context
def when(context: Any, at: float | datetime | str | None) -> Markup:
    """A time as ``<time>``: the short format in TIMEZONE, ISO 8601 on hover and in
    ``datetime`` (console.js may show it in the browser's zone instead)."""
    if at is None or at == "":
        return Markup("—")
    zone = zone_of(context["request"])
    full = shown.iso(at, zone)
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(
        escape(full), escape(shown.short(at, zone))
    )


templates.env.filters["when"] = when
FORM_TYPE = "application/x-www-form-urlencoded"
# The banner texts a redirect may ask for with ?notice=CODE; any other value shows nothing,
# so no link can put its own words in the console's banner.
NOTICES = {
    "cancelled": "Cancelled.",
    "requeued": "Requeued.",
    "purged": "Purged.",
    "no_dead_letter": "No such dead letter: it was requeued or purged already.",
}
audit_log = get_logger("voicecall.console")


def audit(session: sessions.Session, event: str, **fields: Any) -> None:
    """One log line for an operator's action, naming who by their token's id (its first 8
    characters: an HMAC of the token, never the token)."""
    audit_log.info(event, operator=session.tid[:8], **fields)


class LoginRequired(VoicecallError):
    """No valid session: a page answers with the login page (see install())."""


def store_of(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


def signing_key(request: Request) -> bytes:
    key: bytes = request.app.state.console_key
    return key


def current(request: Request) -> sessions.Session:
    """The request's session; raises LoginRequired without a valid one, or when it was
    logged out (one Redis read; blocking: async routes call it in the thread pool)."""
    now = now_s()
    found = sessions.read(
        request.cookies.get(sessions.COOKIE),
        signing_key(request),
        request.app.state.api_tokens,
        now=now,
    )
    if found is None or not store_of(request).console_session_open(found.tid, found.sid, now=now):
        raise LoginRequired
    return found


def cookie_secure(request: Request) -> bool:
    """Whether the console's cookies carry ``Secure`` (CONSOLE_COOKIE_SECURE)."""
    secure: bool = request.app.state.settings.console_cookie_is_secure
    return secure


async def read_form(request: Request) -> dict[str, str]:
    """A posted HTML form (urlencoded; the middleware bounds its size), last value wins."""
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise ApiError(415, "unsupported_media_type", f"post the form as {FORM_TYPE}")
    return dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))


async def checked_form(request: Request) -> tuple[sessions.Session, dict[str, str]]:
    """The session and form of a state-changing request: 403 unless the form's ``csrf`` is
    the session's own token."""
    session = await run_in_threadpool(current, request)
    form = await read_form(request)
    if not sessions.check_csrf(session, form.get("csrf")):
        raise ApiError(
            403,
            "csrf_failed",
            "the form's csrf field is missing or is not this session's token; "
            "reload the page and try again",
        )
    return session, form


def page(
    request: Request,
    template: str,
    session: sessions.Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    # The banner: the route's own text, else the text of a known ?notice= code.
    notice = context.pop("notice", "") or NOTICES.get(request.query_params.get("notice", ""), "")
    context = {
        "session": session,
        "nav": template.split(".")[0],
        "notice": notice,
        "zone_name": request.app.state.settings.timezone,
        **context,
    }
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    # Pages show job data: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    return response

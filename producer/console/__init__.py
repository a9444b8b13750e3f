"""The operator console, served by ``voicecall api`` at ``/console``: server-rendered pages
(jinja2) with a little local JavaScript that refreshes the overview. Nothing is loaded from
outside the project.

- :mod:`~producer.console.session`  the signed session cookie and its CSRF token
- :mod:`~producer.console.web`      session, CSRF check, forms and rendering for the routes
- :mod:`~producer.console.pages`    the read-only pages
- :mod:`~producer.console.actions`  login, logout and the state-changing actions
- :mod:`~producer.console.bulk`     bulk cancel and requeue, with their progress pages
- :mod:`~producer.console.listing`  lists of jobs: filters, totals, paging
- :mod:`~producer.console.charts`   the server-rendered SVG charts
- :mod:`~producer.console.overview` the overview's figures
- :mod:`~producer.console.timeline` a job's story
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from producer.console import actions, bulk, pages
from producer.console.session import signing_key
from producer.console.web import HERE, LoginRequired


async def _to_login(request: Request, _exc: Exception) -> Response:
    if request.method != "GET":  # a form posted without a session: log in, then do it again
        return RedirectResponse("/console/login", status_code=303)
    return RedirectResponse(f"/console/login?next={quote(request.url.path)}", status_code=303)


def install(app: FastAPI) -> None:
    """Serve the console on ``app`` (after ``app.state.api_tokens`` is set)."""
    app.state.console_key = signing_key(app.state.api_tokens)
    app.add_exception_handler(LoginRequired, _to_login)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(actions.router)
    app.include_router(bulk.router)  # before pages: /dead/{queue}/requeue-all
    app.include_router(pages.router)

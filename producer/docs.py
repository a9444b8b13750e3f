"""``/docs`` (Swagger UI) and ``/redoc`` with every file served by the API itself: no CDN.

Swagger UI's JavaScript and CSS come from the ``fastapi-offline`` package (Swagger UI:
Apache-2.0; the package: MIT). ReDoc is vendored from the npm registry in
``producer/docs_assets`` (redoc 2.5.4, MIT; its README says how), because its bundle fetches
Redocly's logo from a CDN whatever its options say: the API serves it with that one address
replaced by an empty inline image, and serves its licences next to it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/docs-static"
REDOC_ASSETS = Path(__file__).parent / "docs_assets"
REDOC_PREFIX = "/redoc-static"
REDOC_BUNDLE = "redoc.standalone.js"
CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
# An empty SVG, inline: the logo's <img> stays, nothing is fetched for it.
NO_LOGO = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


@functools.cache
def redoc_bundle() -> bytes:
    """The vendored ReDoc bundle, its CDN logo replaced (read once)."""
    bundle = (REDOC_ASSETS / REDOC_BUNDLE).read_bytes()
    if bundle.count(CDN_LOGO) != 1:  # a new version moved it: look again before serving
        raise RuntimeError(f"{REDOC_BUNDLE}: expected its CDN logo address once")
    return bundle.replace(CDN_LOGO, NO_LOGO)


def install(app: FastAPI) -> None:
    """Add /docs and /redoc; the app must be built with ``docs_url=None, redoc_url=None``."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-static")
    title = f"{app.title} API"

    @app.get(f"{REDOC_PREFIX}/{REDOC_BUNDLE}", include_in_schema=False)
    def redoc_js() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript; charset=utf-8")

    # The licences (LICENSE, redoc.standalone.js.LICENSE.txt) and the vendoring note.
    app.mount(REDOC_PREFIX, StaticFiles(directory=REDOC_ASSETS), name="redoc-static")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
            # no badge from validator.swagger.io, whatever the layout
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{REDOC_PREFIX}/{REDOC_BUNDLE}",
            redoc_favicon_url=f"{PREFIX}/favicon.png",
            with_google_fonts=False,
        )

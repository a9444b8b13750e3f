"""Errors of the HTTP API as JSON bodies, and the handlers that turn exceptions into them.

Every error answer has the same shape (``request_id`` matches the ``X-Request-ID`` header)::

    {"error": "validation_failed", "message": "...", "request_id": "...",
     "errors": [{"field": "phone", "message": "is not a valid Vietnamese number"}]}

``errors`` appears only on 422. Codes and statuses:

- 401 ``unauthorized``         no or wrong bearer token (with ``WWW-Authenticate: Bearer``)
- 404 ``not_found``            no such job, campaign (or route)
- 405 ``method_not_allowed``
- 409 ``idempotency_conflict`` the key is used by a job with another body (``job_id``)
- 409 ``duplicate_id``         a job with this id exists already (``job_id``)
- 409 ``cancel_refused``       the job was handed to eSMS or is final (``state``)
- 413 ``body_too_large``       more than ``API_MAX_BODY_BYTES``
- 415 ``unsupported_media_type`` a body that is not ``application/json`` (producer.body)
- 422 ``validation_failed``    field-level ``errors`` (field: dotted path, no union tag; on a
                               search, the query parameter)
- 429 ``quota_exceeded``       over the token's ``API_TOKEN_QUOTA`` (with ``Retry-After``;
                               producer.quota)
- 503 ``redis_unavailable``    Redis unreachable (with ``Retry-After``); retry later
- 500 ``internal_error``       anything else; logged with the request id, no traceback sent

:data:`STATUS_BY_ERROR` is the one table from voicecall's exceptions (voicecall.errors) to
these answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from producer.fields import field_errors, one_line
from voicecall.errors import (
    CampaignNotFound,
    CancelRefused,
    DuplicateJobId,
    IdempotencyConflict,
    JobNotFound,
    ReopenRefused,
    SearchError,
    VoicecallError,
)
from voicecall.store.connection import UNAVAILABLE
from voicecall.telemetry.logs import get_logger

log = get_logger("voicecall.api")

RETRY_AFTER_S = 2  # what a client waits before retrying while Redis is unreachable
REDIS_UNAVAILABLE = UNAVAILABLE  # Redis unreachable right now, not "this request is wrong"
_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "quota_exceeded",
}


class ApiError(VoicecallError):
    """An answer other than success, raised anywhere in a request and rendered as JSON."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


class BodyTooLarge(ApiError):
    """The request body is over the configured limit (raised while reading it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"request body is larger than {limit} bytes")


def error_body(error: str, message: str, request_id: str | None, **extra: Any) -> dict[str, Any]:
    return {"error": error, "message": message, "request_id": request_id, **extra}


def request_id_of(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def validation_error(errors: list[dict[str, str]], message: str | None = None) -> ApiError:
    summary = message or one_line(errors[:5])
    return ApiError(422, "validation_failed", summary, errors=errors)


def render(exc: ApiError, request_id: str | None) -> JSONResponse:
    return JSONResponse(
        error_body(exc.error, exc.message, request_id, **exc.extra),
        status_code=exc.status,
        headers=exc.headers or None,
    )


def _validation(exc: Exception) -> ApiError:
    assert isinstance(exc, ValidationError)
    return validation_error(field_errors(exc.errors()))


def _unavailable(_exc: Exception) -> ApiError:
    return ApiError(
        503,
        "redis_unavailable",
        "the job store is unreachable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _simple(
    status: int, error: str, **fields: Callable[[Any], Any]
) -> Callable[[Exception], ApiError]:
    def build(exc: Exception) -> ApiError:
        extra = {name: get(exc) for name, get in fields.items()}
        return ApiError(status, error, str(exc), **extra)

    return build


def _not_found(exc: Exception) -> ApiError:
    assert isinstance(exc, JobNotFound)
    return ApiError(404, "not_found", f"no job {exc.job_id!r}")


def _search(exc: Exception) -> ApiError:
    assert isinstance(exc, SearchError)
    return validation_error([{"field": exc.param, "message": exc.rule}])


# The one table: exception class → the API error it becomes (most specific first).
STATUS_BY_ERROR: tuple[tuple[tuple[type[Exception], ...], Callable[[Exception], ApiError]], ...] = (
    ((ValidationError,), _validation),
    ((IdempotencyConflict,), _simple(409, "idempotency_conflict", job_id=lambda e: e.job_id)),
    ((DuplicateJobId,), _simple(409, "duplicate_id", job_id=lambda e: e.job_id)),
    ((CancelRefused,), _simple(409, "cancel_refused", state=lambda e: str(e.state))),
    ((ReopenRefused,), _simple(409, "requeue_refused", job_id=lambda e: e.job_id)),
    ((JobNotFound,), _not_found),
    ((CampaignNotFound,), _simple(404, "not_found")),
    ((SearchError,), _search),
    (UNAVAILABLE, _unavailable),
)


def from_domain(exc: Exception) -> ApiError:
    """The API error for an exception of voicecall or Redis; re-raises others."""
    if isinstance(exc, ApiError):
        return exc
    for classes, build in STATUS_BY_ERROR:
        if isinstance(exc, classes):
            return build(exc)
    raise exc


async def _domain_handler(request: Request, exc: Exception) -> JSONResponse:
    api_error = from_domain(exc)
    if api_error.status == 503:
        log.warning("redis_unavailable", error=repr(exc))
    return render(api_error, request_id_of(request))


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return render(ApiError(exc.status_code, code, message, headers=headers), request_id_of(request))


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """The methods of the request's path, for a 405's ``Allow`` (Starlette names only the first
    route that matched the path: GET /v1/calls hid POST /v1/calls). A path of the OpenAPI
    document answers what the document says, a concrete path before a templated one (as
    OpenAPI matches them: /v1/calls/batch is not /v1/calls/{id}); another (the console) what
    its routes take (BaseRoute.matches, method by method)."""
    documented = _documented_methods(request.app.openapi(), request.url.path)
    if documented is not None:
        return ", ".join(documented)
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


def _documented_methods(document: dict[str, Any], path: str) -> list[str] | None:
    parts = path.split("/")
    matches = [
        template
        for template in document.get("paths", {})
        if len(template.split("/")) == len(parts)
        and all(
            t == p or (t.startswith("{") and t.endswith("}") and p != "")
            for t, p in zip(template.split("/"), parts, strict=True)
        )
    ]
    if not matches:
        return None
    best = min(matches, key=lambda template: template.count("{"))  # concrete first
    return sorted(m.upper() for m in document["paths"][best] if m.upper() in _METHODS)


async def _request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return render(validation_error(field_errors(exc.errors())), request_id_of(request))


def internal_error(request_id: str | None) -> JSONResponse:
    return JSONResponse(
        error_body("internal_error", "unexpected error; quote the request id", request_id),
        status_code=500,
    )


def install(app: FastAPI) -> None:
    """Register the handlers; unexpected exceptions are caught by the request middleware."""
    app.add_exception_handler(ApiError, _domain_handler)
    for classes, _ in STATUS_BY_ERROR:
        for exc_type in classes:
            app.add_exception_handler(exc_type, _domain_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)

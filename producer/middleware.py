"""The HTTP API's one middleware: request id, nosniff, body size limit, access log, request
metrics, last-resort 500.

A plain ASGI middleware (no response buffering), outermost in the app:

- ``X-Request-ID``: taken from the request when it is sane (1-64 of ``A-Za-z0-9._:-``), else
  generated; set on every response, bound into structlog's contextvars for the request's log
  lines, and kept in ``request.state.request_id`` (the job's trace id).
- ``X-Content-Type-Options: nosniff`` on every response (API, errors, docs, console, metrics,
  callbacks, static files): a browser never reads a JSON or text answer as a script or page.
- Body limit: a ``Content-Length`` over the limit is refused with 413 before any of the body
  is read; a body sent without one (chunked) is counted as it arrives and refused the moment
  it passes the limit, so nothing unbounded is ever buffered.
- Access log: one structured line per request (method, path, status, duration), phone numbers
  masked by the redaction chain of :mod:`voicecall.telemetry.logs`, the signature of an eSMS callback
  URL (its nonce and signature) cut: they would let a reader forge that job's callback; probes log at debug level.
- Metrics: every request is counted and timed by route template, method and status
  (:mod:`producer.http_metrics`).
- Anything no handler caught is logged with its traceback and answered with a JSON 500 that
  carries the request id, never a traceback.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer import http_metrics
from producer.errors import ApiError, BodyTooLarge, internal_error, render
from voicecall.esms.callbacks import CALLBACK_PATH
from voicecall.telemetry.logs import get_logger

REQUEST_ID_HEADER = "x-request-id"
NOSNIFF = (b"x-content-type-options", b"nosniff")
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The job id stays; its nonce and signature (the proof) are cut, in this line and in every
# other log line (voicecall.telemetry.logs cuts them too, e.g. in error lines).
_CALLBACK_PROOF = re.compile(rf"^({re.escape(CALLBACK_PATH)}/[^/]+/).+")

access_log = get_logger("voicecall.access")
log = get_logger("voicecall.api")


def pick_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` if it is sane, else a new one."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1").strip()
            if _SANE_REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.route_label = http_metrics.RouteLabels()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        request_id = pick_request_id(headers)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                    NOSNIFF,
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                length = _content_length(headers)
                if length is not None and length > self.max_body_bytes:
                    await render(BodyTooLarge(self.max_body_bytes), request_id)(
                        scope, receive, send_with_id
                    )
                else:
                    await self.app(scope, self._limited(receive), send_with_id)
            except ApiError as exc:  # raised outside the app's handlers (e.g. body limit)
                if not status["code"]:
                    await render(exc, request_id)(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled_error", method=scope["method"], path=scope["path"])
                if not status["code"]:
                    await internal_error(request_id)(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                http_metrics.record(
                    self.route_label(scope),
                    http_metrics.method_label(scope["method"]),
                    status["code"],
                    elapsed,
                )
                self._log_access(scope, status["code"], elapsed)

    def _limited(self, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        seen = {"bytes": 0}

        async def receive_limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > limit:
                    raise BodyTooLarge(limit)
            return message

        return receive_limited

    @staticmethod
    def _log_access(scope: Scope, status: int, elapsed: float) -> None:
        path: str = _CALLBACK_PROOF.sub(r"\1***", scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        fields: dict[str, Any] = {
            "method": scope["method"],
            "path": f"{path}?{query}" if query else path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "client": (scope.get("client") or ("", 0))[0],
        }
        if path in _QUIET_PATHS and status < 400:
            access_log.debug("request", **fields)
        else:
            access_log.info("request", **fields)

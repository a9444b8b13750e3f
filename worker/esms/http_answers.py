"""eSMS's HTTP answers read: an answer becomes its eSMS code and body, or the matching error
of worker.esms.errors (HTTP 429 and 5xx, a body without a code, a refused code); httpx's
failures become TransportError, most specific first. Each request is counted
(``voicecall_esms_requests``, ``voicecall_esms_latency_seconds``) and logged by endpoint, never
with its URL, query or body; an error quotes at most a short, scrubbed excerpt of a body.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Collection
from typing import Any, NoReturn, TypeVar

import httpx

from voicecall.esms.results import error_message, result_code
from voicecall.formats.retry_after import parse_retry_after
from voicecall.telemetry.logs import Redactor, get_logger
from voicecall.telemetry.metrics import ESMS_LATENCY, ESMS_REQUESTS
from worker.esms.errors import (
    ConfigurationError,
    RateLimited,
    TransportError,
    error_for_code,
)
from worker.esms.params import EsmsRequest

R = TypeVar("R")

Body = dict[str, Any]
EXCERPT_CHARS = 120  # of an unexpected body, quoted in the error message
_log = get_logger("worker.esms")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(head|script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


class HttpAnswers:
    """Reading answers and failures, for both eSMS clients."""

    _scrubber: Redactor

    def _parse(
        self,
        request: EsmsRequest,
        parse: Callable[[int, Body], R],
        response: httpx.Response,
        elapsed: float,
        accept: Collection[int],
    ) -> R:
        endpoint = request.endpoint.name
        code, body = self._read(response, endpoint, accept, elapsed)
        try:
            return parse(code, body)
        except (ValueError, TypeError) as exc:
            raise TransportError(
                f"unreadable {code} body from {endpoint}: {exc}",
                reason="bad_body",
                endpoint=endpoint,
                http_status=response.status_code,
            ) from exc

    def _transport_error(
        self, endpoint: str, exc: httpx.TransportError, started: float
    ) -> TransportError:
        """httpx's failures, most specific first, as this package's TransportError."""
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return self._failed(endpoint, "connect_error", exc, started)
        if isinstance(exc, httpx.TimeoutException):
            return self._failed(endpoint, "timeout", exc, started)
        return self._failed(endpoint, "transport_error", exc, started)

    def _observed(self, endpoint: str, started: float) -> float:
        elapsed = time.perf_counter() - started
        ESMS_LATENCY.labels(endpoint=endpoint).observe(elapsed)
        return elapsed

    def _failed(
        self, endpoint: str, reason: str, exc: httpx.TransportError, started: float
    ) -> TransportError:
        elapsed = time.perf_counter() - started
        ESMS_LATENCY.labels(endpoint=endpoint).observe(elapsed)
        self._record(endpoint, reason, elapsed)
        message = f"{type(exc).__name__} on {endpoint}: {self._excerpt(str(exc))}"
        return TransportError(message, reason=reason, endpoint=endpoint)

    def _read(
        self, response: httpx.Response, endpoint: str, accept: Collection[int], elapsed: float
    ) -> tuple[int, Body]:
        """The eSMS code and body of an HTTP answer, or the matching error."""
        status = response.status_code
        if status == 429:
            self._record(endpoint, "http_429", elapsed)
            raise RateLimited(
                f"HTTP 429 from {endpoint}",
                reason="http_429",
                endpoint=endpoint,
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                code=None,  # HTTP's 429, not an eSMS code
            )
        if status >= 500 or status == 408:
            label = f"http_{status}"
            self._record(endpoint, label, elapsed)
            raise TransportError(
                f"HTTP {status} from {endpoint}: {self._excerpt(response.text)}",
                reason=label,
                endpoint=endpoint,
                http_status=status,
            )
        body = _json_object(response.content)
        code = result_code(body) if body is not None else None
        if body is None or code is None:
            self._unreadable(response, endpoint, elapsed)
        self._record(endpoint, str(code), elapsed)
        if code in accept:
            return code, body
        raise error_for_code(
            code,
            error_message(body),
            endpoint=endpoint,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
        )

    def _unreadable(self, response: httpx.Response, endpoint: str, elapsed: float) -> NoReturn:
        """No eSMS code in the answer: retryable on 2xx (bad_body), a setup error otherwise."""
        status = response.status_code
        excerpt = self._excerpt(response.text)
        if 200 <= status < 300:
            self._record(endpoint, "bad_body", elapsed)
            raise TransportError(
                f"HTTP {status} from {endpoint} without an eSMS code: {excerpt}",
                reason="bad_body",
                endpoint=endpoint,
                http_status=status,
            )
        self._record(endpoint, f"http_{status}", elapsed)
        raise ConfigurationError(
            None, f"HTTP {status} from {endpoint} (check ESMS_*_URL): {excerpt}", endpoint=endpoint
        )

    def _record(self, endpoint: str, code: str, elapsed_s: float) -> None:
        ESMS_REQUESTS.labels(endpoint=endpoint, code=code).inc()
        _log.debug("esms_request", endpoint=endpoint, code=code, elapsed_ms=round(elapsed_s * 1e3))

    def _excerpt(self, text: str) -> str:
        """A short, single-line, scrubbed quote of ``text`` for an error message."""
        flat = self._scrubber.scrub(" ".join(_visible_text(text).split()))  # before cutting
        short = flat[:EXCERPT_CHARS] + ("…" if len(flat) > EXCERPT_CHARS else "")
        return repr(short) if short else "(empty body)"


def _json_object(content: bytes) -> Body | None:
    try:
        data = json.loads(content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _visible_text(body: str) -> str:
    """An HTML error page as its title and visible text (IIS pages start with a DOCTYPE)."""
    if "<" not in body:
        return body
    title = _TITLE.search(body)
    text = _TAG.sub(" ", _HIDDEN.sub(" ", body))
    return html.unescape((f"{title.group(1).strip()} | " if title else "") + text)

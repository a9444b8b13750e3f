"""What the blocking and the asyncio client share below their methods: where the API is and
who asks (:class:`Connection`), when to try again (:class:`RetryPolicy`, :class:`Attempts`),
the headers of every request (``traceparent`` when OpenTelemetry has a span) and the typed error
of an answer (:func:`error_for`).

**Retries.** A try is repeated after no answer (connection refused or reset, a timeout), a 429
or a 503, at most ``max_retries`` times: after ``Retry-After`` when the answer names one (read
as hostile input: voicecall.formats.retry_after), else after an exponential backoff with jitter. A
``Retry-After`` longer than ``max_retry_after_s`` is not waited for: the error goes to the
caller at once, with the time. Only a request that cannot act twice is repeated: a read, or a
write that carries an idempotency key (the client gives every call one); a cancel never is.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import version as _version
from typing import Any, TypeVar

import httpx

from voicecall.client.errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    NotFound,
    RateLimited,
    RequestRefused,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from voicecall.config.env_files import env_file_value
from voicecall.errors import SettingsError
from voicecall.formats.retry_after import parse_retry_after

URL_ENV = "VOICECALL_URL"
TOKEN_ENV = "VOICECALL_TOKEN"
DEFAULT_TIMEOUT_S = 10.0  # connect, read, write and pool, each
USER_AGENT = f"voicecall-python/{_version('voicecall')}"  # the installed distribution's
REQUEST_ID_HEADER = "X-Request-ID"
RETRY_STATUSES = frozenset({429, 503})
# No answer at all: the request may or may not have reached the API. Other httpx errors (an
# unsupported scheme, a header httpx refuses to send) fail the same way on every try.
RETRY_FAILURES = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_TOKEN = re.compile(r"[\x21-\x7e]+")  # what a bearer token may hold in a header
H = TypeVar("H", httpx.Client, httpx.AsyncClient)


@dataclass(frozen=True)
class Connection:
    """Where the API is and the headers every request sends."""

    base_url: str
    headers: dict[str, str]
    timeout: httpx.Timeout

    @classmethod
    def resolve(cls, base_url: str | None, token: str | None, timeout_s: float) -> Connection:
        """From the arguments, else ``VOICECALL_URL`` and ``VOICECALL_TOKEN`` (the environment,
        else ``.env`` or ``.env.demo`` in the current directory); a missing or
        malformed one raises :class:`SettingsError` naming it (never the token's value)."""
        url = _setting(base_url, URL_ENV, "base_url")
        secret = _setting(token, TOKEN_ENV, "token")
        parsed = httpx.URL(url) if "://" in url else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise SettingsError(f"{URL_ENV}: must be an http:// or https:// URL with a host")
        if not _TOKEN.fullmatch(secret):
            raise SettingsError(
                f"{TOKEN_ENV}: must be printable ASCII without spaces (a token of API_TOKENS)"
            )
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise SettingsError("timeout_s: must be a positive number of seconds")
        headers = {
            "Authorization": f"Bearer {secret}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        return cls(url.rstrip("/"), headers, httpx.Timeout(timeout_s))

    def open(self, kind: type[H]) -> H:
        """An httpx client of ``kind`` (blocking or asyncio) for this API."""
        return kind(base_url=self.base_url, headers=self.headers, timeout=self.timeout)


def _setting(value: str | None, env: str, argument: str) -> str:
    # The environment, else .env or .env.demo (written by `make run`) in the current directory.
    found = value if value is not None else os.environ.get(env) or env_file_value(env)
    if not found:
        raise SettingsError(
            f"{env}: not set (pass {argument}= or set the environment variable, or put it in .env)"
        )
    return found


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying again (see the module docstring)."""

    max_retries: int = 2
    backoff_base_s: float = 0.5  # the first backoff; doubles on each retry
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 60.0  # a longer Retry-After goes to the caller instead

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        for name in ("backoff_base_s", "backoff_max_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds, 0 or more")

    def backoff_s(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 first): exponential, jittered to 50-100 %
        so that clients failing together do not come back together."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(retry, 30))
        return ceiling * (0.5 + random.random() / 2)


DEFAULT_RETRIES = RetryPolicy()


class Attempts:
    """The tries of one logical request: after each answer or failure, wait how long, or stop."""

    def __init__(self, policy: RetryPolicy, retryable: bool) -> None:
        self.policy = policy
        self.left = policy.max_retries if retryable else 0
        self.retries = 0

    def after_answer(self, response: httpx.Response) -> float | None:
        """Seconds to wait before trying again, or None: ``response`` is the answer."""
        if response.status_code not in RETRY_STATUSES or self.left == 0:
            return None
        hint = parse_retry_after(response.headers.get("Retry-After"))
        if hint is None:
            return self._next(self.policy.backoff_s(self.retries))
        if hint > self.policy.max_retry_after_s:
            return None
        return self._next(hint + random.uniform(0, min(1.0, hint / 10)))

    def after_failure(self, exc: httpx.HTTPError) -> float:
        """Seconds to wait before trying again; raises :class:`ConnectionFailed` when no
        try is left (or the failure would repeat)."""
        if not isinstance(exc, RETRY_FAILURES) or self.left == 0:
            tries = self.retries + 1
            raise ConnectionFailed(
                f"no answer from the API after {tries} tr{'y' if tries == 1 else 'ies'}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return self._next(self.policy.backoff_s(self.retries))

    def _next(self, delay_s: float) -> float:
        self.left -= 1
        self.retries += 1
        return delay_s


_ERRORS: Mapping[int, type[ApiError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
}


def error_for(response: httpx.Response) -> ApiError:
    """The typed error of a non-2xx answer whose body has been read."""
    status = response.status_code
    body = _json_object(response.content)
    request_id = response.headers.get(REQUEST_ID_HEADER) or _text(body.get("request_id"))
    if status in RETRY_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        kind = RateLimited if status == 429 else Unavailable
        return kind(status, body, request_id, retry_after)
    fallback = ServerError if status >= 500 else RequestRefused
    return _ERRORS.get(status, fallback)(status, body, request_id)


def unreadable(response: httpx.Response, what: str) -> ServerError:
    """A 2xx answer whose body is not what the API documents (a proxy's page, a cut body)."""
    body = {"error": "unreadable_answer", "message": f"the answer is not {what}"}
    return ServerError(response.status_code, body, response.headers.get(REQUEST_ID_HEADER))


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:  # not JSON, or not UTF-8
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@functools.cache
def _propagator() -> Callable[[dict[str, str]], None] | None:
    """OpenTelemetry's ``inject``, acting only while a span is current, when its API is
    installed; None otherwise (looked for once)."""
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        return None

    def inject(carrier: dict[str, str]) -> None:
        if trace.get_current_span().get_span_context().is_valid:
            propagate.inject(carrier)

    return inject


def trace_headers() -> dict[str, str]:
    """``traceparent`` (and whatever else the configured propagators write) for the span
    current in the caller's context; nothing without OpenTelemetry or a span."""
    carrier: dict[str, str] = {}
    inject = _propagator()
    if inject is not None:
        inject(carrier)
    return carrier

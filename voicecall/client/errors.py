"""What :class:`voicecall.Client` and :class:`voicecall.AsyncClient` raise: the ``ClientError``
branch of the project's one error tree (drawn in voicecall.errors), and ``InvalidWebhook``.

"The request failed" (:class:`ConnectionFailed`: the call may or may not have been made; a
retry with the same idempotency key is safe) is kept apart from "the API answered"
(:class:`ApiError`, whose ``body`` is the API's error JSON). A missing ``VOICECALL_URL`` or
``VOICECALL_TOKEN`` raises :class:`~voicecall.errors.SettingsError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voicecall.errors import VoicecallError, WebhookError

__all__ = [
    "ApiError",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "InvalidWebhook",
    "NotFound",
    "RateLimited",
    "RequestRefused",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
]


class ClientError(VoicecallError):
    """A request through :class:`voicecall.Client` or :class:`voicecall.AsyncClient` failed."""


class ConnectionFailed(ClientError):
    """No answer came (connection refused or reset, timeout), after the retries allowed.

    The request may have reached the API: calling again with the same idempotency key is safe.
    The httpx error is the ``__cause__``.
    """


class ApiError(ClientError):
    """The API answered with an error status; ``body`` is its error JSON (``{}`` if none).

    ``code`` is the body's stable ``error`` (``validation_failed``, ``not_found``, ...), and
    ``request_id`` the answer's ``X-Request-ID``: quote it when asking about a failure.
    """

    def __init__(self, status: int, body: Mapping[str, Any], request_id: str | None) -> None:
        self.status = status
        self.body = dict(body)
        self.code = str(body.get("error") or f"http_{status}")
        self.message = str(body.get("message") or "")
        self.request_id = request_id
        super().__init__(f"{status} {self.code}: {self.message} (request id {request_id})")


class ValidationFailed(ApiError):
    """422: the request breaks a rule; ``errors`` lists ``{"field", "message"}`` pairs."""

    @property
    def errors(self) -> list[dict[str, str]]:
        listed = self.body.get("errors") or []
        return [
            {"field": str(item.get("field")), "message": str(item.get("message"))}
            for item in listed
            if isinstance(item, dict)
        ]


class Unauthorized(ApiError):
    """401: no token, or one that is not in the API's ``API_TOKENS``."""


class NotFound(ApiError):
    """404: no such job (or past its retention), or no such campaign."""


class Conflict(ApiError):
    """409: the idempotency key or id names another job, or the job can no longer be cancelled."""

    @property
    def job_id(self) -> str | None:
        value = self.body.get("job_id")
        return value if isinstance(value, str) else None

    @property
    def state(self) -> str | None:
        value = self.body.get("state")
        return value if isinstance(value, str) else None


class _RetryLater(ApiError):
    """An answer that names how long to wait (``Retry-After``)."""

    def __init__(
        self,
        status: int,
        body: Mapping[str, Any],
        request_id: str | None,
        retry_after_s: float | None,
    ) -> None:
        super().__init__(status, body, request_id)
        self.retry_after_s = retry_after_s


class RateLimited(_RetryLater):
    """429: over this client's ``API_TOKEN_QUOTA``; ``retry_after_s`` says when it fits."""


class Unavailable(_RetryLater):
    """503: the API cannot reach Redis; nothing was changed. ``retry_after_s`` as sent."""


class ServerError(ApiError):
    """500 or another 5xx: the API failed; its log has the request id."""


class RequestRefused(ApiError):
    """Another 4xx: 403, 405, 413 (a body over ``API_MAX_BODY_BYTES``), 415."""


class InvalidWebhook(WebhookError, ValueError):
    """A received webhook is refused: its signature, its timestamp (more than five minutes
    away from now) or its body. ``str()`` says which, never the secret."""

"""Bearer-token authentication for the HTTP API (tokens from ``API_TOKENS``).

A request that passes carries its client's name in ``request.state.client_name`` (the
``name=`` of its ``API_TOKENS`` entry, or a bare token's digest name: voicecall.config.clients): it is
recorded in the jobs the request makes and scopes its idempotency keys, cursors and quota.

The presented token is compared with every configured token using
:func:`hmac.compare_digest`, always all of them, so the time taken says nothing about which
token (or how much of one) matched. A missing or wrong token gets 401 with
``WWW-Authenticate: Bearer``. ``/metrics`` has its own optional token (``METRICS_TOKEN``), so
Prometheus never holds a token that can enqueue calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from producer.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="One of the tokens in API_TOKENS.")
_metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="METRICS_TOKEN, when it is set (else /metrics is open).",
)


def token_index(presented: str, tokens: Sequence[bytes]) -> int | None:
    """The position of ``presented`` in ``tokens``, or None; compares against every one."""
    given = presented.encode()
    found = None
    for index, token in enumerate(tokens):
        if hmac.compare_digest(given, token):
            found = index
    return found


def token_matches(presented: str, tokens: Sequence[bytes]) -> bool:
    """True when ``presented`` equals one of ``tokens``; compares against every one."""
    return token_index(presented, tokens) is not None


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """FastAPI dependency: pass with a valid bearer token, else raise 401.

    Async on purpose: a sync dependency costs every request a thread-pool hop (issue 14)."""
    tokens: Sequence[bytes] = request.app.state.api_tokens
    index = None if credentials is None else token_index(credentials.credentials, tokens)
    if index is None:
        raise ApiError(
            401,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.client_name = request.app.state.api_client_names[index]


def client_name(request: Request) -> str:
    """The name of the API client that sent ``request`` (set by :func:`require_token`)."""
    name: str = request.state.client_name
    return name


async def require_metrics_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_metrics_bearer)],
) -> None:
    """``/metrics``: open when ``METRICS_TOKEN`` is unset, else that bearer token or 401."""
    token: bytes | None = request.app.state.metrics_token
    if token is None:
        return
    if credentials is None or not token_matches(credentials.credentials, [token]):
        raise ApiError(
            401,
            "unauthorized",
            "/metrics needs the metrics token (Authorization: Bearer <METRICS_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )

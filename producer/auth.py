"""Bearer-token authentication for the HTTP API (tokens from ``API_TOKENS``).

The presented token is compared with every configured token using
:func:`hmac.compare_digest`, always all of them, so the time taken says nothing about which
token (or how much of one) matched. A missing or wrong token gets 401 with
``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from producer.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="One of the tokens in API_TOKENS.")


def token_matches(presented: str, tokens: Sequence[bytes]) -> bool:
    """True when ``presented`` equals one of ``tokens``; compares against every one."""
    given = presented.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token)
    return matched


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """FastAPI dependency: pass with a valid bearer token, else raise 401.

    Async on purpose: a sync dependency costs every request a thread-pool hop (issue 14)."""
    tokens: Sequence[bytes] = request.app.state.api_tokens
    if credentials is None or not token_matches(credentials.credentials, tokens):
        raise ApiError(
            401,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )

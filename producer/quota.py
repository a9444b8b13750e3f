"""Per-token quotas (``API_TOKEN_QUOTA=CALLS/SECONDS``): each API token may submit at most
CALLS calls in any SECONDS, so one client (or one leaked token) cannot use up a victim's
per-phone allowance or flood eSMS on everyone's behalf.

The count is kept in Redis (one GCRA key per token, hashed; :mod:`voicecall.store`), so every
API process shares it, exactly at any window edge. A call is counted once its request is
valid (a batch counts each of its calls; a replay counts too: the client cannot know it is
one). A request over the quota is refused whole with 429, ``Retry-After`` and the project's
problem body, and takes nothing from the allowance.
"""

from __future__ import annotations

import math

from fastapi import Request

from producer.errors import ApiError
from voicecall.store import AsyncJobStore

QUOTA_EXCEEDED = "quota_exceeded"


async def charge(request: Request, cost: int) -> None:
    """Take ``cost`` calls from the request's token's quota; 429 when over it (no-op when
    API_TOKEN_QUOTA is unset)."""
    quota: tuple[int, int] | None = request.app.state.settings.api_token_quota
    if quota is None:
        return
    key: str = request.app.state.token_quota_keys[request.state.token_index]
    store: AsyncJobStore = request.app.state.async_store
    wait_s = await store.take_quota(key, cost, quota)
    if wait_s > 0:
        calls, window_s = quota
        retry_after = max(1, math.ceil(wait_s))
        raise ApiError(
            429,
            QUOTA_EXCEEDED,
            f"this token may submit at most {calls} calls per {window_s} s "
            f"(API_TOKEN_QUOTA); {cost} more would exceed it: retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            retry_after_s=retry_after,
        )

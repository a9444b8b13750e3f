"""Per-client quotas (``API_TOKEN_QUOTA=CALLS/SECONDS``): each API client (a name of
``API_TOKENS``, voicecall.config.clients) may submit at most CALLS calls in any SECONDS, so one client
(or one leaked token) cannot use up a victim's per-phone allowance or flood eSMS on everyone's
behalf.

The count is exact: a sliding-window log in Redis (the calls accepted in the last window, one
sorted set per client: ``voicecall/store/lua/quota.lua``), shared by every API process, so any N+1
accepted calls of a client span at least SECONDS, wherever the window's edge falls (the GCRA
used before let about 2N-1 through around an edge). A call is counted once its request is
valid (a batch counts each of its calls; a replay counts too: the client cannot know it is
one). A request over the quota is refused whole with 429, ``Retry-After`` (when enough of its
calls leave the window) and the project's problem body, and takes nothing; a batch of more
calls than the whole quota can never fit, so it gets 422 naming ``calls``.
"""

from __future__ import annotations

import math

from fastapi import Request

from producer.auth import client_name
from producer.errors import ApiError, validation_error
from voicecall.job import keys
from voicecall.store.job_store import AsyncJobStore

QUOTA_EXCEEDED = "quota_exceeded"


async def charge(request: Request, cost: int) -> None:
    """Take ``cost`` calls from the quota of the request's client; 429 when over it, 422 when
    ``cost`` alone is over it (no-op when API_TOKEN_QUOTA is unset)."""
    quota: tuple[int, int] | None = request.app.state.settings.api_token_quota
    if quota is None:
        return
    calls, window_s = quota
    if cost > calls:
        raise validation_error(
            [
                {
                    "field": "calls",
                    "message": f"holds {cost} calls, more than API_TOKEN_QUOTA lets a client "
                    f"submit in {window_s} s ({calls}): split the batch",
                }
            ]
        )
    store: AsyncJobStore = request.app.state.async_store
    wait_s = await store.take_quota(keys.client_quota(client_name(request)), cost, quota)
    if wait_s > 0:
        retry_after = max(1, math.ceil(wait_s))
        raise ApiError(
            429,
            QUOTA_EXCEEDED,
            f"this client may submit at most {calls} calls in any {window_s} s "
            f"(API_TOKEN_QUOTA); {cost} more would exceed it: retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            retry_after_s=retry_after,
        )

"""API clients' quotas: an exact sliding-window log per client (``lua/quota.lua``)."""

from __future__ import annotations

import math
from typing import Any

import redis
import redis.asyncio

from voicecall.store.connection import now_s
from voicecall.store.scripts import plain_source, registered

QUOTA = plain_source("quota")  # an API client's quota (sliding log)
NEVER = math.inf  # a quota's wait for a cost above its whole allowance


def _quota_args(cost: int, quota: tuple[int, int], now: float | None = None) -> list[int]:
    calls, window_s = quota
    return [round((now_s() if now is None else now) * 1000), cost, calls, window_s * 1000]


def quota_keys(key: str) -> dict[str, str]:
    """quota.lua's key slots, by name."""
    return {"log": key}


def _quota_wait(reply: Any) -> float:
    taken, wait_ms = reply
    if int(taken):
        return 0.0
    return NEVER if int(wait_ms) < 0 else max(int(wait_ms), 1) / 1000


class Quotas:
    """Taking from a quota, for the blocking store."""

    _redis: redis.Redis

    def take_quota(
        self, key: str, cost: int, quota: tuple[int, int], *, now: float | None = None
    ) -> float:
        """Take ``cost`` calls from ``quota`` (calls, seconds) at ``key`` (a sliding-window
        log: no window of that many seconds ever holds more calls); 0.0 when taken, else the
        seconds until they fit (nothing taken), :data:`NEVER` for more than the whole quota."""
        script = registered(self, self._redis, QUOTA)
        return _quota_wait(
            script(keys=list(quota_keys(key).values()), args=_quota_args(cost, quota, now))
        )


class AsyncQuotas:
    """Taking from a quota, for the asyncio store (intake)."""

    _redis: redis.asyncio.Redis

    async def take_quota(self, key: str, cost: int, quota: tuple[int, int]) -> float:
        """See :meth:`JobStore.take_quota`."""
        script = registered(self, self._redis, QUOTA)
        return _quota_wait(
            await script(keys=list(quota_keys(key).values()), args=_quota_args(cost, quota))
        )

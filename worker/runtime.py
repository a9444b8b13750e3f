"""Process-wide objects of a worker process: settings, job store, eSMS client, limiters.

Built once per process on first use (after Dramatiq forks), shared by all worker threads:
the store and the eSMS client hold connection pools and are thread-safe.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import dramatiq
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from voicecall.settings import Settings, get_settings
from voicecall.store import JobStore
from worker.esms import EsmsClient


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: JobStore
    esms: EsmsClient
    limiter_backend: RedisBackend

    @property
    def broker(self) -> dramatiq.Broker:
        return dramatiq.get_broker()

    def global_send_limiter(self) -> BucketRateLimiter:
        """eSMS's TPS limit, shared by every worker through Redis (decision 6)."""
        return BucketRateLimiter(
            self.limiter_backend,
            "voicecall:esms-send",
            limit=self.settings.global_send_rate_per_s,
            bucket=1000,
        )

    def phone_limiter(self, phone: str) -> BucketRateLimiter:
        """At most PHONE_LIMIT_CALLS per PHONE_LIMIT_WINDOW_S to one number (fixed window)."""
        return BucketRateLimiter(
            self.limiter_backend,
            f"voicecall:phone:{phone}",
            limit=self.settings.phone_limit_calls,
            bucket=self.settings.phone_limit_window_s * 1000,
        )


@functools.cache
def runtime() -> Runtime:
    settings = get_settings()
    store = JobStore.from_url(settings.redis_url, retention_days=settings.finished_retention_days)
    return Runtime(
        settings=settings,
        store=store,
        esms=EsmsClient(settings),
        limiter_backend=RedisBackend(url=settings.redis_url),
    )

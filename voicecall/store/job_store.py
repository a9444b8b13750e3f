"""The job store: the one door to Redis for voicecall's own keys.

:class:`JobStore` (blocking) and :class:`AsyncJobStore` (asyncio) run the operations of
:mod:`voicecall.job.lifecycle` (each one Lua script: atomic, recorded) and read jobs back as
typed :class:`~voicecall.job.records.JobRecord`. Each is made of the store's parts, one job
each: running steps (:mod:`~voicecall.store.steps`), reading jobs and indexes
(:mod:`~voicecall.store.reads`), queues and timers (:mod:`~voicecall.store.queues`), campaigns,
workers' liveness and the balance cache, quotas, console sessions. No request path scans
keys: every read is by a known key or a range of a sorted set. Code outside voicecall/store/
never holds a Redis client for voicecall's keys; a ruff banned-api rule (pyproject.toml) and
tests/test_store_boundary.py keep it so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
import redis.asyncio

from voicecall.config.settings import Settings
from voicecall.store import scripts
from voicecall.store.bulk_ops import BulkOps
from voicecall.store.campaigns import AsyncCampaigns, Campaigns
from voicecall.store.connection import async_redis_client, client_options, redis_client
from voicecall.store.queues import QueueReads
from voicecall.store.quotas import AsyncQuotas, Quotas
from voicecall.store.reads import AsyncJobReads, JobReads
from voicecall.store.sessions import ConsoleSessions
from voicecall.store.steps import AsyncSteps, Steps, StoreConfig
from voicecall.store.workers import Workers


class JobStore(Steps, JobReads, QueueReads, Campaigns, Workers, Quotas, ConsoleSessions, BulkOps):
    """Reads and moves jobs. Thread-safe: it holds only a redis client (a connection pool)."""

    def __init__(self, client: redis.Redis, config: StoreConfig | None = None) -> None:
        self._redis = client
        self.config = config or StoreConfig()
        self._scripts = {
            name: client.register_script(scripts.script_source(name)) for name in scripts.SCRIPTS
        }

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> JobStore:
        """A store on the Redis of ``settings`` (``options``: voicecall.store.connection's
        redis_client's, e.g. ``ride_out_s``)."""
        return cls(redis_client(settings, **options), StoreConfig.from_settings(settings))

    @classmethod
    def from_url(cls, url: str, config: StoreConfig | None = None, **options: Any) -> JobStore:
        client = redis.Redis.from_url(url, decode_responses=True, **client_options(options))
        return cls(client, config)

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def server_version(self) -> str | None:
        """The Redis server's version (``7.2.4``), or None when it cannot be reached now."""
        try:
            return str(self._redis.info("server")["redis_version"])
        except redis.RedisError:
            return None

    def close(self) -> None:
        self._redis.close()


class AsyncJobStore(AsyncSteps, AsyncJobReads, AsyncCampaigns, AsyncQuotas):
    """The asyncio twin of :class:`JobStore` for the worker's send engine and the API's
    intake: the same operations, one awaited round trip each."""

    def __init__(self, client: redis.asyncio.Redis, config: StoreConfig | None = None) -> None:
        self._redis = client
        self.config = config or StoreConfig()
        self._scripts = {
            name: client.register_script(scripts.script_source(name)) for name in scripts.SCRIPTS
        }
        self._batch_scripts = {
            name: client.register_script(scripts.batch_source(name)) for name in scripts.BATCHABLE
        }
        self._waiting = {}
        self._flushes = {}

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> AsyncJobStore:
        return cls(async_redis_client(settings, **options), StoreConfig.from_settings(settings))

    @classmethod
    def from_url(cls, url: str, config: StoreConfig | None = None, **options: Any) -> AsyncJobStore:
        client = redis.asyncio.Redis.from_url(url, decode_responses=True, **client_options(options))
        return cls(client, config)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


def job_ids(rows: Iterable[tuple[str, float]]) -> list[str]:
    return [job_id for job_id, _ in rows]

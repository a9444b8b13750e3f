"""Reading jobs back: by id, idempotency key or SMSID, the state index's counts, and ranges of
the search indexes (producer.search walks them, worker.retention scans the final bands). Every
read is by a known key or a range of a sorted set: never a scan of keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import redis
import redis.asyncio

from voicecall.job import keys, layout
from voicecall.job.records import JobRecord


def _counts(replies: Sequence[Any]) -> dict[str, int]:
    """Jobs per state, only the states that have any."""
    counts: dict[str, int] = {}
    for status, count in zip(layout.STATUSES, replies, strict=True):
        if int(count):
            state = status.split("/")[0]
            counts[state] = counts.get(state, 0) + int(count)
    return counts


class JobReads:
    """Jobs and the indexes that find them, for the blocking store."""

    _redis: redis.Redis

    def get(self, job_id: str) -> JobRecord | None:
        raw = cast(str | None, self._redis.get(keys.job(job_id)))
        return JobRecord.parse(raw) if raw else None

    def get_many(self, job_ids: Sequence[str]) -> list[JobRecord | None]:
        if not job_ids:
            return []
        raws = cast(list[str | None], self._redis.mget([keys.job(i) for i in job_ids]))
        return [JobRecord.parse(raw) if raw else None for raw in raws]

    def get_docs(self, job_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """The jobs' documents as plain dicts: for reading many (search, export) without
        building a model for each."""
        if not job_ids:
            return []
        raws = cast(list[str | None], self._redis.mget([keys.job(i) for i in job_ids]))
        return [json.loads(raw) if raw else None for raw in raws]

    def id_for_idempotency_key(self, client: str, key: str) -> str | None:
        """The job ``client`` made with idempotency ``key`` (keys are scoped per client)."""
        return cast(str | None, self._redis.get(keys.idempotency(client, key)))

    def id_for_smsid(self, smsid: str) -> str | None:
        return cast(str | None, self._redis.hget(keys.smsid_bucket(smsid), keys.smsid_field(smsid)))

    def state_counts(self) -> dict[str, int]:
        """Jobs in each state: one ZCOUNT per band of the state index."""
        pipe = self._redis.pipeline(transaction=False)
        for status in layout.STATUSES:
            low, high = layout.band_range(status)
            pipe.zcount(keys.STATE_INDEX, low, high)
        return _counts(pipe.execute())

    def ids_in_state(self, status: str, limit: int = 10_000) -> list[str]:
        """Ids of the jobs in ``status`` (a state, or completed/outcome), oldest first."""
        low, high = layout.band_range(status)
        return [
            str(member)
            for member in self._redis.zrangebyscore(keys.STATE_INDEX, low, high, start=0, num=limit)
        ]

    def index_range(
        self, key: str, low: int, high: int, count: int, *, offset: int = 0
    ) -> list[tuple[str, int]]:
        """(member, score) of ``key`` with scores in [low, high], highest first."""
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrevrangebyscore(key, high, low, start=offset, num=count, withscores=True),
        )
        return [(str(member), int(score)) for member, score in rows]

    def index_range_ascending(
        self, key: str, low: int, high: int, count: int, *, offset: int = 0
    ) -> list[tuple[str, int]]:
        """(member, score) of ``key`` with scores in [low, high], lowest first."""
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrangebyscore(key, low, high, start=offset, num=count, withscores=True),
        )
        return [(str(member), int(score)) for member, score in rows]

    def index_counts(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """Members of ``key`` with scores in each [low, high] of ``ranges``."""
        pipe = self._redis.pipeline(transaction=False)
        for low, high in ranges:
            pipe.zcount(key, low, high)
        return [int(count) for count in pipe.execute()]

    def lex_range(self, key: str, start: str, end: str, count: int) -> list[str]:
        """Members of ``key`` (all scored 0) between ``start`` and ``end`` (ZRANGEBYLEX
        bounds), in lexical order."""
        return [str(m) for m in self._redis.zrangebylex(key, start, end, start=0, num=count)]


class AsyncJobReads:
    """Jobs, for the asyncio store."""

    _redis: redis.asyncio.Redis

    async def get(self, job_id: str) -> JobRecord | None:
        raw = cast(str | None, await self._redis.get(keys.job(job_id)))
        return JobRecord.parse(raw) if raw else None

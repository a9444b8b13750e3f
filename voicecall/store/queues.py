"""The schedule, the due sets, the dead letters and the Dramatiq queues as the scheduler, the
dead-letter tools and the API's gauges read them, and the console's activity counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis

from voicecall.job import keys
from voicecall.store.connection import now_s


class QueueReads:
    """What waits, and how much: for the blocking store."""

    _redis: redis.Redis

    def due(self, zset: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Entries of a due set (``keys.DUE`` or ``keys.WEBHOOKS_DUE``) due by ``until``."""
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrangebyscore(zset, "-inf", until, start=0, num=limit, withscores=True),
        )
        return [(str(member), float(score)) for member, score in rows]

    def schedule_stats(self) -> tuple[int, float]:
        """(jobs in the schedule, how long the most overdue one has been due, else 0)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(keys.SCHEDULE)
        pipe.zrange(keys.SCHEDULE, 0, 0, withscores=True)
        size, first = pipe.execute()
        oldest = max(0.0, now_s() - float(first[0][1])) if first else 0.0
        return int(size), oldest

    def dead_letters(
        self, queue: str, limit: int = 100, offset: int = 0
    ) -> list[tuple[str, float]]:
        """(job id, when it became a dead letter) of ``queue``, oldest first, from ``offset``."""
        key = keys.dead_letters(queue)
        rows = cast(
            list[tuple[str, float]],
            self._redis.zrange(key, offset, offset + limit - 1, withscores=True),
        )
        return [(str(member), float(score)) for member, score in rows]

    def dead_letter_counts(self) -> dict[str, int]:
        pipe = self._redis.pipeline(transaction=False)
        for queue in keys.ALL_QUEUES:
            pipe.zcard(keys.dead_letters(queue))
        return dict(zip(keys.ALL_QUEUES, (int(n) for n in pipe.execute()), strict=True))

    def queue_depths(self) -> dict[str, int]:
        """Messages outstanding on each Dramatiq queue: queued or taken by a worker."""
        pipe = self._redis.pipeline(transaction=False)
        for queue in keys.ALL_QUEUES:
            pipe.hlen(keys.dramatiq_messages(queue))
        return dict(zip(keys.ALL_QUEUES, (int(n) for n in pipe.execute()), strict=True))

    def activity(self, minutes: Sequence[int]) -> list[dict[str, int]]:
        """The activity counters of each minute (epoch seconds // 60), in the order given."""
        pipe = self._redis.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(keys.activity(minute * 60))
        return [{str(k): int(v) for k, v in row.items()} for row in pipe.execute()]

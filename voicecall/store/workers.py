"""What worker processes keep in Redis beside the jobs: their heartbeats (a dead worker's
messages go back on their queues) and the eSMS balance one of them last read."""

from __future__ import annotations

from typing import cast

import redis

from voicecall.job import keys
from voicecall.store.connection import now_s
from voicecall.store.scripts import plain_source, registered

RECOVER_WORKER = plain_source("recover_worker")  # a dead worker's messages back on their queues


def recover_keys(worker_id: str) -> list[tuple[str, str]]:
    """recover_worker.lua's key slots, (name, key) in order: two, then three per queue."""
    out = [("workers", keys.WORKERS), ("heartbeats", keys.HEARTBEATS)]
    for queue in keys.ALL_QUEUES:
        out += [
            ("acks", keys.dramatiq_acks(worker_id, queue)),
            ("list", keys.dramatiq_queue(queue)),
            ("bodies", keys.dramatiq_messages(queue)),
        ]
    return out


class Workers:
    """Worker liveness and the balance cache, for the blocking store."""

    _redis: redis.Redis

    def beat(self, worker_id: str, *, now: float | None = None) -> None:
        """A worker process is alive (``vc:workers``, scored in ms)."""
        self._redis.zadd(keys.WORKERS, {worker_id: int((now or now_s()) * 1000)})

    def workers(self, *, since: float) -> list[str]:
        """Worker ids with a heartbeat since ``since`` (epoch seconds)."""
        return [str(w) for w in self._redis.zrangebyscore(keys.WORKERS, int(since * 1000), "+inf")]

    def dead_workers(self, *, before: float, limit: int = 100) -> list[str]:
        return [
            str(w)
            for w in self._redis.zrangebyscore(
                keys.WORKERS, "-inf", int(before * 1000), start=0, num=limit
            )
        ]

    def recover_worker(self, worker_id: str) -> int:
        """Put a dead worker's unacknowledged Dramatiq messages back on their queues."""
        return int(
            registered(self, self._redis, RECOVER_WORKER)(
                keys=[key for _, key in recover_keys(worker_id)],
                args=[worker_id],
                client=self._redis,
            )
        )

    def save_balance(self, vnd: float) -> None:
        self._redis.hset(keys.ESMS_BALANCE, mapping={"vnd": vnd, "at": now_s()})

    def balance(self) -> dict[str, str]:
        return cast(dict[str, str], self._redis.hgetall(keys.ESMS_BALANCE))

    def take_balance_turn(self, interval_s: int) -> bool:
        """True for one caller per ``interval_s`` across all processes."""
        return bool(self._redis.set(keys.BALANCE_LOCK, "1", nx=True, ex=interval_s))

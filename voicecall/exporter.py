"""Gauges read from Redis at scrape time: jobs by state, the schedule, queues, dead letters.

Served by the API's ``/metrics`` next to the process's own metrics. One scrape costs two round
trips of O(1) or O(log N) commands (HGETALL of a hash with one field per state, HLEN, ZCARD,
a one-element ZRANGE, a bounded ZRANGE BYSCORE); never KEYS or SCAN.

- ``voicecall_jobs_by_state{state}``             ``vc:stats:states`` (kept by the store's scripts)
- ``voicecall_schedule_size``                    jobs waiting in ``vc:schedule``
- ``voicecall_schedule_oldest_overdue_seconds``  age of the most overdue scheduled job, else 0
- ``voicecall_queue_depth{queue}``               ``HLEN dramatiq:<queue>.msgs``: every message
  outstanding on the queue, queued or prefetched by a worker (what KEDA scales on)
- ``voicecall_delayed_queue_depth{queue}``       ``HLEN dramatiq:<queue>.DQ.msgs``
- ``voicecall_dead_letters{queue}``              ``HLEN dramatiq:<queue>.XQ.msgs`` (Dramatiq's
  dispatch script keeps dead-lettered bodies there, ids in the ``.XQ`` zset)
- ``voicecall_workers_alive``                    Dramatiq brokers with a heartbeat in
  ``dramatiq:__heartbeats__`` newer than 60 s, not counting producers (their broker ids start
  with :data:`PRODUCER_BROKER_PREFIX`; every broker that enqueues leaves a heartbeat)
- ``voicecall_esms_balance_vnd`` and ``voicecall_esms_balance_age_seconds``: the balance a
  worker last read with GetBalance (``vc:esms:balance``), absent until the first read
- ``voicecall_exporter_redis_up``                1 when this scrape reached Redis, else 0 (and
  the gauges above are then absent rather than wrong)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import dramatiq
import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voicecall import keys
from voicecall.jobs import State
from voicecall.store import JobStore, now_s

HEARTBEAT_WINDOW_S = 60  # Dramatiq's own heartbeat timeout: older means the worker is gone
HEARTBEATS_KEY = f"{keys.DRAMATIQ_NAMESPACE}:__heartbeats__"
PRODUCER_BROKER_PREFIX = "producer-"
_MAX_HEARTBEATS = 10_000  # bound on the heartbeat read; far above any real fleet


def mark_producer_broker(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Give ``broker`` an id the worker count leaves out.

    For every broker that only enqueues: the API, the producer library, ``voicecall
    scheduler`` and ``voicecall dlq``. Dramatiq writes a heartbeat on each of their commands.
    """
    if hasattr(broker, "broker_id"):  # the Redis broker's heartbeat id
        broker.broker_id = f"{PRODUCER_BROKER_PREFIX}{broker.broker_id}"
    return broker


def _msgs(queue: str) -> str:
    return keys.dramatiq_messages(queue)


def dead_letter_messages(queue: str) -> str:
    """``dramatiq:<queue>.XQ.msgs``: bodies of the dead-lettered messages of ``queue``."""
    return keys.dramatiq_messages(keys.dead_letter_queue(queue))


class RedisExporter(Collector):
    """A prometheus-client collector; register it in a registry that serves ``/metrics``."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        return []  # nothing at registration time: collect() needs Redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "voicecall_exporter_redis_up", "1 when the last scrape could read Redis."
        )
        try:
            metrics = self._read()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _read(self) -> list[Metric]:
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.hgetall(keys.STATE_COUNTS)
        pipe.hgetall(keys.ESMS_BALANCE)
        for queue in keys.ALL_QUEUES:
            pipe.hlen(_msgs(queue))
            pipe.hlen(_msgs(keys.delay_queue(queue)))
            pipe.hlen(dead_letter_messages(queue))
        now_ms = int(now_s() * 1000)
        pipe.zrange(
            HEARTBEATS_KEY,
            now_ms - HEARTBEAT_WINDOW_S * 1000,
            "+inf",
            byscore=True,
            offset=0,
            num=_MAX_HEARTBEATS,
        )
        replies = pipe.execute()
        size, oldest = self.store.schedule_stats()

        state_counts = cast(dict[str, str], replies[0])
        by_state = GaugeMetricFamily(
            "voicecall_jobs_by_state",
            "Jobs in each state (from vc:stats:states).",
            labels=["state"],
        )
        for state in State:
            by_state.add_metric([state.value], max(0, int(state_counts.get(state.value, 0))))

        depth = GaugeMetricFamily(
            "voicecall_queue_depth", "Messages outstanding on a Dramatiq queue.", labels=["queue"]
        )
        delayed = GaugeMetricFamily(
            "voicecall_delayed_queue_depth",
            "Delayed messages waiting on a Dramatiq queue.",
            labels=["queue"],
        )
        dead = GaugeMetricFamily(
            "voicecall_dead_letters", "Dead-lettered messages of a queue.", labels=["queue"]
        )
        for index, queue in enumerate(keys.ALL_QUEUES):
            depth.add_metric([queue], int(replies[2 + 3 * index]))
            delayed.add_metric([queue], int(replies[3 + 3 * index]))
            dead.add_metric([queue], int(replies[4 + 3 * index]))

        balance = cast(dict[str, str], replies[1])
        members = cast(list[bytes | str], replies[-1])
        workers = sum(
            1
            for member in members
            if not (member.decode() if isinstance(member, bytes) else member).startswith(
                PRODUCER_BROKER_PREFIX
            )
        )
        found = [*_balance_metrics(balance)]
        return [
            *found,
            by_state,
            GaugeMetricFamily(
                "voicecall_schedule_size", "Jobs waiting in the schedule.", value=size
            ),
            GaugeMetricFamily(
                "voicecall_schedule_oldest_overdue_seconds",
                "How long the most overdue scheduled job has been due (0: none overdue).",
                value=oldest,
            ),
            depth,
            delayed,
            dead,
            GaugeMetricFamily(
                "voicecall_workers_alive",
                f"Dramatiq worker processes with a heartbeat in the last {HEARTBEAT_WINDOW_S} s.",
                value=workers,
            ),
        ]


def _balance_metrics(balance: dict[str, str]) -> Iterator[Metric]:
    """The last GetBalance read by a worker, and its age (absent until one was read)."""
    if not balance.get("vnd"):
        return
    yield GaugeMetricFamily(
        "voicecall_esms_balance_vnd",
        "eSMS account balance in VND (GetBalance, polled).",
        value=float(balance["vnd"]),
    )
    yield GaugeMetricFamily(
        "voicecall_esms_balance_age_seconds",
        "Seconds since the balance was read.",
        value=max(0.0, now_s() - float(balance.get("at") or 0)),
    )

"""Gauges read from Redis at scrape time: jobs by state, the schedule, queues, dead letters.

Served by the API's ``/metrics`` next to the process's own metrics. One scrape costs a few
round trips of O(log N) commands (ZCOUNT per state band, HLEN, ZCARD, a bounded ZRANGE);
never KEYS or SCAN.

- ``voicecall_jobs_by_state{state}``             ZCOUNT of each band of ``vc:idx:state``
- ``voicecall_schedule_size``                    jobs waiting in ``vc:schedule``
- ``voicecall_schedule_oldest_overdue_seconds``  age of the most overdue scheduled job, else 0
- ``voicecall_queue_depth{queue}``               ``HLEN dramatiq:<queue>.msgs``: every message
  outstanding on the queue, queued or taken by a worker (what KEDA scales on)
- ``voicecall_dead_letters{queue}``              ``ZCARD vc:dead:<queue>``
- ``voicecall_workers_alive``                    worker processes that beat into
  ``vc:workers`` within ``WORKER_LIVENESS_S`` (producers and the scheduler never beat)
- ``voicecall_esms_balance_vnd`` and ``voicecall_esms_balance_age_seconds``: the balance a
  worker last read with GetBalance (``vc:esms:balance``), absent until the first read
- ``voicecall_exporter_redis_up``                1 when this scrape reached Redis, else 0 (and
  the gauges above are then absent rather than wrong)
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voicecall.job.states import State
from voicecall.store.connection import RedisError, now_s
from voicecall.store.job_store import JobStore


class RedisExporter(Collector):
    """A prometheus-client collector; register it in a registry that serves ``/metrics``."""

    def __init__(self, store: JobStore, liveness_s: float = 3.0) -> None:
        self.store = store
        self.liveness_s = liveness_s

    def describe(self) -> list[Metric]:
        return []  # nothing at registration time: collect() needs Redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "voicecall_exporter_redis_up", "1 when the last scrape could read Redis."
        )
        try:
            metrics = self._read()
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _read(self) -> list[Metric]:
        store = self.store
        counts = store.state_counts()
        size, oldest = store.schedule_stats()
        depths = store.queue_depths()
        dead_counts = store.dead_letter_counts()
        workers = len(store.workers(since=now_s() - self.liveness_s))
        balance = store.balance()

        by_state = GaugeMetricFamily(
            "voicecall_jobs_by_state", "Jobs in each state.", labels=["state"]
        )
        for state in State:
            by_state.add_metric([state.value], counts.get(state.value, 0))
        depth = GaugeMetricFamily(
            "voicecall_queue_depth", "Messages outstanding on a Dramatiq queue.", labels=["queue"]
        )
        dead = GaugeMetricFamily(
            "voicecall_dead_letters", "Dead letters of a queue.", labels=["queue"]
        )
        for queue, count in depths.items():
            depth.add_metric([queue], count)
            dead.add_metric([queue], dead_counts.get(queue, 0))
        return [
            *_balance_metrics(balance),
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
            dead,
            GaugeMetricFamily(
                "voicecall_workers_alive",
                "Worker processes with a heartbeat within WORKER_LIVENESS_S.",
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

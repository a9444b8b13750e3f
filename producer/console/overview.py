"""What the console's overview shows, read from Redis as the metrics exporter reads it
(producer.exporter): jobs by state, queue depths, dead letters, the schedule, workers alive,
the eSMS balance a worker last read (never a call to eSMS per page view), and the last
hour's sends and endings (producer.console.activity)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from producer.console import activity
from voicecall.formats import shown
from voicecall.job import keys
from voicecall.job.states import State
from voicecall.store.connection import now_s
from voicecall.store.job_store import JobStore


def overview(store: JobStore, liveness_s: float, zone: tzinfo) -> dict[str, Any]:
    """Every figure of the overview, as JSON-ready data (the page and its live refresh)."""
    counts = store.state_counts()
    size, oldest = store.schedule_stats()
    depths = store.queue_depths()
    dead = store.dead_letter_counts()
    workers = len(store.workers(since=now_s() - liveness_s))
    balance = store.balance()
    recent = activity.recent(store, minutes=60)
    return {
        "jobs_by_state": {state.value: counts.get(state.value, 0) for state in State},
        "queues": [
            {"queue": queue, "depth": depths.get(queue, 0), "dead_letters": dead.get(queue, 0)}
            for queue in keys.ALL_QUEUES
        ],
        "schedule": {"size": size, "oldest_overdue_s": round(oldest, 1)},
        "workers_alive": workers,
        "balance": _balance(balance, zone),
        "last_hour": {
            "sent": recent.sent,
            "sent_per_minute": round(recent.sent / len(recent.minutes), 2),
            "endings": recent.endings(),
            "per_minute": [minute.sent for minute in recent.minutes],
        },
        "at": shown.iso(now_s(), zone),
        "at_text": shown.short(now_s(), zone),
    }


def _balance(balance: dict[str, str], zone: tzinfo) -> dict[str, Any] | None:
    if not balance.get("vnd"):
        return None
    at = float(balance.get("at") or 0)
    return {
        "vnd": float(balance["vnd"]),
        "read_at": shown.iso(at, zone),
        "age_s": round(max(0.0, now_s() - at)),
    }

"""What every figure shares: the load sizes, the run context, a result row, small statistics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.harness import BenchStack


@dataclass(frozen=True)
class Sizes:
    """Every load of the run; :data:`FULL` for ``make bench``, :data:`QUICK` for the smoke run."""

    processes: int = 2  # worker processes of every measurement but figure 8's single one
    threads: int = 8  # threads per worker process (voicecall worker's default)
    send_jobs: int = 3000  # figures 1 and 8, per side
    latency_ms: float = 200.0  # figure 2
    latency_jobs: int = 1200  # figure 2: ~15 s at 16 threads / 0.2 s
    far_jobs: int = 50_000  # figure 3
    near_jobs: int = 1000
    near_window_s: tuple[float, float] = (10.0, 30.0)
    near_grace_s: float = 10.0  # how long after the last due time a late job is waited for
    status_jobs: int = 1000  # figure 4, per case
    bulk_jobs: int = 50_000  # figure 5
    otp_jobs: int = 200
    otp_rate_per_s: float = 10.0
    intake_rate_per_s: float = 500.0  # figure 6
    intake_duration_s: float = 20.0
    intake_threads: int = 32
    enqueue_jobs: int = 3000
    search_jobs: int = 200_000  # figure 10 (and 7d)
    search_campaigns: int = 20
    search_big_campaign: int = 50_000
    search_queries: int = 200  # per kind of query
    mixed_otp: int = 600  # figures 9a, 9b: OTP calls at a steady rate
    mixed_otp_rate_per_s: float = 20.0
    mixed_scheduled: int = 300  # beside them, record calls due evenly over the window
    mixed_window_s: tuple[float, float] = (3.0, 33.0)
    webhook_jobs: int = 300  # figure 9b: jobs whose slow webhooks run before the load
    hanging_webhooks: int = 80  # figure 9e: webhooks to one hanging host (issue 18, finding 14)
    other_webhooks: int = 20  # and to another host meanwhile
    crash_claimed: int = 200  # figure 9c: calls claimed by the worker that is killed
    crash_due: int = 200  # and calls it holds until they fall due
    per_process_jobs: int = 3000  # figure 9d, at each latency
    per_process_max_s: float = 60.0  # figure 9d: at most this long at the slot ceiling


FULL = Sizes()
QUICK = Sizes(
    send_jobs=150,
    latency_jobs=120,
    far_jobs=1000,
    near_jobs=100,
    near_window_s=(1.5, 2.5),
    near_grace_s=1.0,
    status_jobs=100,
    bulk_jobs=1000,
    otp_jobs=20,
    otp_rate_per_s=10.0,
    intake_rate_per_s=500.0,  # the target's rate (issue 14 §3), for fewer seconds
    intake_duration_s=4.0,
    intake_threads=16,
    enqueue_jobs=200,
    search_jobs=4000,
    search_big_campaign=1000,
    search_queries=20,
    mixed_otp=60,
    mixed_scheduled=30,
    mixed_window_s=(2.0, 5.0),
    webhook_jobs=60,
    other_webhooks=8,
    crash_claimed=30,
    crash_due=30,
    per_process_jobs=1000,
    per_process_max_s=6.0,
)


@dataclass
class Row:
    """One line of the results table."""

    figure: str  # "1", "6a", ...
    name: str
    value: str
    reference: str
    ratio: float | None
    target: str
    met: bool | None  # None: no target in the issue, or not measured
    notes: str
    why_missed: str = ""  # for the summary, when ``met`` is False
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers (JSON, chart)


@dataclass
class Context:
    """The stack, the sizes, and facts one figure leaves for another (footprint, scaling)."""

    stack: BenchStack
    sizes: Sizes
    quick: bool
    facts: dict[str, Any] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def steady_rate(done_at: Sequence[float]) -> float:
    """Completions per second between the 10th and 90th percentile completion.

    Start-up (first message, empty pipelines) and the tail (last stragglers) are left out,
    the same way for voicecall and its references.
    """
    ordered = sorted(done_at)
    n = len(ordered)
    if n < 10:
        return n / max(ordered[-1] - ordered[0], 1e-6) if n > 1 else float("nan")
    lo, hi = int(0.1 * n), int(0.9 * n) - 1
    return (hi - lo) / max(ordered[hi] - ordered[lo], 1e-6)


def epoch(iso_text: str) -> float:
    """An ISO-8601 time (as the simulator's ledger gives it) as epoch seconds."""
    return datetime.fromisoformat(iso_text).timestamp()


def phone(i: int, answered: bool = True) -> str:
    """A distinct mobile number per ``i`` (below nine million).

    ``answered``: last digit 4-9, which the simulator's default rules answer on the first
    dial; otherwise every last digit (1 unanswered, 2 failed, 3 answered on a redial, ...).
    Offset by a million so none is the simulator's blocked 0900000099.
    """
    last = 4 + i % 6 if answered else i % 10
    return f"09{(i + 10**6) % 10**7:07d}{last}"


def paced(n: int, rate_per_s: float, action: Callable[[int], object]) -> list[float]:
    """Call ``action(i)`` at ``rate_per_s`` (open loop); returns each call's start time (epoch)."""
    started = time.monotonic()
    times = []
    for i in range(n):
        delay = started + i / rate_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        times.append(time.time())
        action(i)
    return times


def fmt_s(seconds: float) -> str:
    """Seconds for the table: ms below one second."""
    if seconds != seconds:  # NaN
        return "n/a"
    return f"{seconds * 1000:.0f} ms" if abs(seconds) < 1 else f"{seconds:.2f} s"


def fmt_bytes(n: float) -> str:
    """Bytes for the table."""
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,.0f} B"

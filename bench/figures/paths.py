"""Throughput runs shared by figures 1, 2 and 8: the full send path and the bare actor.

Both sides are measured the same way: this process enqueues ``n`` jobs as fast as it can
while the workers already run (so validation and enqueueing are part of the path), and the
rate is :func:`bench.core.steady_rate` of the completion times: for voicecall the job's
``submitted_at`` (eSMS answered and the result recorded), for the bare actor the simulator's
``accepted_at``.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from bench.core import Context, epoch, phone, steady_rate
from bench.harness import FINAL, BenchStack, wait_until

RECORD_ID = "rec-bench"


@dataclass
class Run:
    """One throughput run."""

    rate: float  # jobs/s, steady state
    n: int
    seconds: float  # first enqueue to last completion
    enqueue_rate: float  # jobs/s the producer managed
    rss: list[int] = field(default_factory=list)  # peak RSS per worker process
    cpu_ms_per_job: dict[str, float] = field(default_factory=dict)  # per party
    redis_commands_per_job: float = 0.0

    def cpu_text(self) -> str:
        """``workers 2.1, redis 0.6, ...`` (ms of CPU per job)."""
        return ", ".join(f"{k} {v:.2f}" for k, v in self.cpu_ms_per_job.items() if v >= 0.005)


class Meter:
    """CPU per party and Redis commands between :meth:`start` and :meth:`stop`, per job."""

    def __init__(self, stack: BenchStack, service: Any) -> None:
        self.stack, self.service = stack, service
        self.cpu0: dict[str, float] = {}
        self.commands0 = 0

    def start(self) -> None:
        self.cpu0 = self.stack.cpu(self.service)
        self.commands0 = self.stack.commands_processed()

    def stop(self, n: int) -> tuple[dict[str, float], float]:
        cpu = self.stack.cpu(self.service)
        per_job = {k: (cpu[k] - self.cpu0[k]) * 1000 / n for k in cpu}
        return per_job, (self.stack.commands_processed() - self.commands0) / n


def bare_actor(stack: BenchStack) -> Any:
    """The reference actor, declared in this process on the stack's Redis (to send)."""
    os.environ["BENCH_REDIS_URL"] = stack.redis.url
    return importlib.import_module("bench.bare_dramatiq").bare_actor


class RssSampler:
    """Peak RSS per worker process, sampled while waiting."""

    def __init__(self, stack: BenchStack, service: Any, threads: int) -> None:
        self.stack, self.service, self.threads = stack, service, threads
        self.peak: dict[int, int] = {}

    def sample(self) -> None:
        for pid, rss in self.stack.worker_rss(self.service, min_threads=self.threads):
            self.peak[pid] = max(self.peak.get(pid, 0), rss)

    @property
    def values(self) -> list[int]:
        return sorted(self.peak.values())


def full_path(
    ctx: Context,
    processes: int,
    threads: int,
    n: int,
    worker_env: dict[str, object] | None = None,
    **sim_knobs: object,
) -> Run:
    """``n`` record calls through the Python API, a ``voicecall worker`` (``worker_env``:
    extra settings by field name) and the simulator."""
    stack = ctx.stack
    stack.reset(**sim_knobs)
    worker = stack.start_worker(processes, threads, **(worker_env or {}))
    rss = RssSampler(stack, worker, threads)
    meter = Meter(stack, worker)
    try:
        client = stack.client()
        meter.start()
        started = time.time()
        ids = [client.enqueue_record(phone(i), RECORD_ID, max_retry=1).id for i in range(n)]
        enqueued = time.time()

        def all_submitted() -> bool:
            rss.sample()
            return stack.count_in(("submitted", *FINAL)) >= n

        wait_until(all_submitted, timeout=30 + n / 20, interval=0.1, what="jobs submitted")
        cpu, commands = meter.stop(n)
        done = [float(v) for v in stack.field_of(ids, "submitted_at") if v]
    finally:
        stack.stop(worker)
    return Run(
        rate=steady_rate(done),
        n=n,
        seconds=max(done) - started,
        enqueue_rate=n / max(enqueued - started, 1e-6),
        rss=rss.values,
        cpu_ms_per_job=cpu,
        redis_commands_per_job=commands,
    )


def bare_path(ctx: Context, processes: int, threads: int, n: int) -> Run:
    """``n`` messages to the bare Dramatiq actor (``actor.send``), same processes and threads."""
    stack = ctx.stack
    stack.reset()
    worker = stack.start_bare_worker(processes, threads)
    rss = RssSampler(stack, worker, threads)
    meter = Meter(stack, worker)
    try:
        actor = bare_actor(stack)
        meter.start()
        started = time.time()
        for i in range(n):
            actor.send(f"bare-{i}")
        enqueued = time.time()

        def all_sent() -> bool:
            rss.sample()
            return stack.sim_calls() >= n

        wait_until(all_sent, timeout=30 + n / 20, interval=0.1, what="bare calls accepted")
        cpu, commands = meter.stop(n)
        done = [epoch(str(call["accepted_at"])) for call in stack.sim.calls()]
    finally:
        stack.stop(worker)
    return Run(
        rate=steady_rate(done),
        n=n,
        seconds=max(done) - started,
        enqueue_rate=n / max(enqueued - started, 1e-6),
        rss=rss.values,
        cpu_ms_per_job=cpu,
        redis_commands_per_job=commands,
    )

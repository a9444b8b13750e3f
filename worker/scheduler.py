"""The scheduler and the sweeper (decisions 1 and 2), one loop.

Every ``SCHEDULER_INTERVAL_S``:

- **release**: scheduled jobs due within ``SCHEDULE_HORIZON_S`` move to ``queued`` with their
  send message (the worker holds each until it is due). Far-future jobs wait in
  ``vc:schedule``, never in Dramatiq, so they cannot block near ones (decision 2).
- **dead workers**: a worker process silent for ``WORKER_LIVENESS_S`` is dead; the messages it
  had fetched but not acknowledged go back on their queues at once.
- **due**: each job whose time in ``vc:due`` has passed gets what it needs: a claimed job
  whose worker is dead (or whose lease ended) and a job whose message was lost get their send
  message again, a submitted job its poll; a final job whose retention is over is purged with
  its index entries (one that ended within the hour after its creation has no time there:
  worker.retention finds it by its place in the state index). A duplicate message is harmless: the claim is atomic and eSMS refuses a
  repeated RequestId (124).
- **webhooks**: deliveries (and retries) whose time has come get their message.
- **balance**: at most once per ``BALANCE_POLL_INTERVAL_S`` across all processes, GetBalance is
  read into ``vc:esms:balance``; the API's exporter serves it.

Every step is an operation of voicecall.job.lifecycle, so any number of schedulers may run.
It runs in a thread of every worker process (SchedulerMiddleware) and as
``voicecall scheduler`` for deployments that want it apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from voicecall.config.settings import Settings
from voicecall.job import keys, lifecycle, upkeep
from voicecall.job.states import State
from voicecall.job.steps import Op, Verdict
from voicecall.store.connection import now_s
from voicecall.store.job_store import JobStore
from voicecall.telemetry.logs import get_logger
from worker.esms import EsmsClient
from worker.retention import RetentionScan

log = get_logger(__name__)

BATCH = 500


class Scheduler:
    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.stopping = threading.Event()
        self.retention = RetentionScan(store)

    def release_due(self) -> int:
        horizon_end = now_s() + self.settings.schedule_horizon_s
        due = self.store.due(keys.SCHEDULE, horizon_end, BATCH)
        grace = self.settings.sweep_stale_queued_s
        steps = self.store.apply_many([lifecycle.release(i, grace_s=grace) for i, _ in due])
        return sum(step.verdict is Verdict.RELEASED for step in steps)

    def recover_dead_workers(self) -> int:
        """A dead worker's fetched messages go back on their queues, and the jobs it had
        claimed are sent again at once (eSMS answers 124 to any it had already placed)."""
        dead = set(self.store.dead_workers(before=now_s() - self.settings.worker_liveness_s))
        if not dead:
            return 0
        for worker_id in dead:
            count = self.store.recover_worker(worker_id)
            log.warning("worker_dead", worker=worker_id, messages_requeued=count)
        sending = self.store.ids_in_state(State.SENDING.value)
        orphans = [
            job.id
            for job in self.store.get_many(sending)
            if job is not None and job.lease is not None and job.lease.owner in dead
        ]
        steps = self.store.apply_many([self._redrive(job_id, force=True) for job_id in orphans])
        for job_id, step in zip(orphans, steps, strict=True):
            log.warning("sweeper_redrive", job_id=job_id, state=step.state, why="worker_dead")
        return len(orphans)

    def _redrive(self, job_id: str, *, force: bool = False) -> Op:
        settings = self.settings
        return upkeep.redrive(
            job_id,
            liveness_ms=int(settings.worker_liveness_s * 1000),
            lease_check_s=settings.lease_check_s,
            redrive_s=settings.redrive_after_s,
            force=force,
        )

    def sweep(self) -> int:
        """Act on every job whose time in the due set has passed."""
        now = now_s()
        due = self.store.due(keys.DUE, now, BATCH)
        if not due:
            return 0
        # A final job's time is the end of its retention: it is purged with its index entries
        # (their keys come from the job); any other job gets what it needs to move on.
        jobs = self.store.get_many([job_id for job_id, _ in due])
        ops = [
            upkeep.purge(job, job_id) if job is None or job.final else self._redrive(job_id)
            for (job_id, _), job in zip(due, jobs, strict=True)
        ]
        steps = self.store.apply_many(ops)
        for (job_id, _), step in zip(due, steps, strict=True):
            if step.verdict is Verdict.REDRIVEN:
                log.warning("sweeper_redrive", job_id=job_id, state=step.state)
        return sum(
            step.verdict in (Verdict.REDRIVEN, Verdict.POLLED, Verdict.PURGED) for step in steps
        )

    def release_webhooks(self) -> int:
        due = self.store.due(keys.WEBHOOKS_DUE, now_s(), BATCH)
        steps = self.store.apply_many([upkeep.webhook_due(job_id) for job_id, _ in due])
        return sum(step.verdict is Verdict.SENT for step in steps)

    def update_balance(self, client_factory: Callable[[], EsmsClient] | None) -> None:
        if client_factory is None:
            return
        if not self.store.take_balance_turn(self.settings.balance_poll_interval_s):
            return
        try:
            self.store.save_balance(client_factory().balance().balance_vnd)
        except Exception as exc:  # the balance is informative; never stop the loop for it
            log.warning("balance_failed", error=type(exc).__name__)

    def tick(self, client_factory: Callable[[], EsmsClient] | None = None) -> None:
        self.release_due()
        self.recover_dead_workers()
        self.sweep()
        self.retention.run(now_s())
        self.release_webhooks()
        self.update_balance(client_factory)

    def run(self, client_factory: Callable[[], EsmsClient] | None = None) -> None:
        """Loop until :meth:`stop`; a Redis outage is logged and retried, never fatal."""
        while not self.stopping.is_set():
            try:
                self.tick(client_factory)
            except Exception as exc:
                log.warning("scheduler_tick_failed", error=repr(exc))
                self.stopping.wait(min(5.0, self.settings.scheduler_interval_s * 4))
                continue
            self.stopping.wait(self.settings.scheduler_interval_s)

    def stop(self) -> None:
        self.stopping.set()

"""The scheduler and the sweeper (decisions 1 and 2), one loop.

Every ``SCHEDULER_INTERVAL_S``:

- **release**: jobs due within ``SCHEDULE_HORIZON_S`` move from the ``vc:schedule`` sorted set
  to ``queued`` (one Lua script: any number of schedulers may run, a job is released once) and
  get a Dramatiq message delayed to their due time. Far-future jobs never sit in Dramatiq's
  delay queue, so they cannot block near ones (head-of-line blocking, decision 2).
- **sweep**: jobs in flight (``queued``, ``retrying``, or ``sending`` with an expired lease)
  whose deadline in ``vc:inflight`` has passed get a new send message. A duplicate message is
  harmless: the send step claims the job atomically and eSMS refuses a repeated RequestId (124).
- **polls**: submitted jobs whose next poll (``vc:polls``) falls within the horizon get it as
  a delayed message; a poll whose message was lost is sent again (see worker.poll.poll_entry).
- **balance**: at most once per ``BALANCE_POLL_INTERVAL_S`` across all processes, GetBalance
  is read into ``vc:esms:balance``; the API's exporter serves it as
  ``voicecall_esms_balance_vnd``, so every scrape sees the one latest value.

It runs in a thread of every worker process (started by :class:`SchedulerMiddleware`) and as
``voicecall scheduler`` for deployments that want it apart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import dramatiq

from voicecall import keys
from voicecall.jobs import Kind, State
from voicecall.logs import get_logger
from voicecall.messages import poll_message, send_message
from voicecall.settings import Settings
from voicecall.store import JobStore, now_s
from worker.esms import EsmsClient
from worker.poll import REDRIVE_AFTER_S

log = get_logger(__name__)

RELEASE_BATCH = 1000
SWEEP_BATCH = 200


class Scheduler:
    def __init__(self, settings: Settings, store: JobStore, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.stopping = threading.Event()

    def release_due(self) -> int:
        released = self.store.release_due(
            horizon_s=self.settings.schedule_horizon_s,
            limit=RELEASE_BATCH,
            stale_after_s=self.settings.sweep_stale_queued_s,
        )
        now = now_s()
        for job_id, due_at, kind in released:
            send_message(self.broker, job_id, kind, delay_s=due_at - now)
        return len(released)

    def sweep(self) -> int:
        stale = self.settings.sweep_stale_queued_s
        overdue = self.store.claim_due(
            keys.INFLIGHT, horizon_s=0, limit=SWEEP_BATCH, push_back_s=stale
        )
        ids = [job_id for job_id, _ in overdue]
        redriven = 0
        for job_id in ids:
            job = self.store.get(job_id)
            if job is None or job.state not in (State.QUEUED, State.RETRYING, State.SENDING):
                self.store.redis.zrem(keys.INFLIGHT, job_id)
                continue
            if job.state is State.SENDING and job.lease_until > now_s():
                continue
            log.warning("sweeper_redrive", job_id=job_id, state=job.state.value)
            send_message(self.broker, job_id, Kind(job.kind))
            redriven += 1
        return redriven

    def release_polls(self) -> int:
        """Send the polls due within the horizon (and re-send any whose message was lost)."""
        due = self.store.claim_due(
            keys.POLLS,
            horizon_s=self.settings.schedule_horizon_s,
            limit=RELEASE_BATCH,
            push_back_s=self.settings.schedule_horizon_s + REDRIVE_AFTER_S,
        )
        now = now_s()
        for job_id, at in due:
            poll_message(self.broker, job_id, delay_s=at - now)
        return len(due)

    def update_balance(self, client_factory: Callable[[], EsmsClient] | None) -> None:
        if client_factory is None:
            return
        if not self.store.redis.set(
            keys.BALANCE_LOCK, "1", nx=True, ex=self.settings.balance_poll_interval_s
        ):
            return
        try:
            balance = client_factory().balance()
            self.store.redis.hset(
                keys.ESMS_BALANCE, mapping={"vnd": balance.balance_vnd, "at": now_s()}
            )
        except Exception as exc:  # the balance is informative; never stop the loop for it
            log.warning("balance_failed", error=type(exc).__name__)

    def tick(self, client_factory: Callable[[], EsmsClient] | None = None) -> None:
        self.release_due()
        self.release_polls()
        self.sweep()
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

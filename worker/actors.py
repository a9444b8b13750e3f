"""The actors. Each takes a job id, hands the work to the send engine and returns.

Queues (decision 5): Voice OTP on its own queue with the highest priority, bulk record and
template calls on another, status polls and webhooks on their own, so a worker can be pointed
at any subset (``voicecall worker --queues voicecall-otp``). Each queue also has its own slots
in the engine (worker.engine), so a full bulk queue never holds OTP back.
"""

from __future__ import annotations

import functools

import dramatiq

from voicecall import keys, lifecycle
from voicecall.logs import get_logger
from voicecall.metrics import RATE_LIMITED
from voicecall.store import now_s
from worker import engine
from worker.poll import poll_step
from worker.send import send_step
from worker.webhook import deliver_step

log = get_logger(__name__)
POSTPONE_S = 1.0  # a send that found no free slot is tried again this much later


def _send(queue: str, job_id: str, limit_key: str | None) -> None:
    running = engine.current()
    step = functools.partial(send_step, job_id=job_id, queue=queue, limit_key=limit_key)
    try:
        handed = running.handoff(queue, step, wait_for_start=True)
    except BaseException:
        # Whatever went wrong, the job must not wait for a message that is gone: the due set
        # brings it back (if Redis itself is down, Dramatiq retries this message instead).
        _postpone(running, job_id, "handoff_failed")
        raise
    if not handed:
        # Every slot of this queue is busy: the due set brings the job back shortly, and this
        # thread is free for other queues' messages.
        _postpone(running, job_id, "no_free_slot")
        RATE_LIMITED.labels(kind=queue, limit="capacity").inc()


def _postpone(running: engine.Engine, job_id: str, why: str) -> None:
    try:
        running.sync_store.apply(lifecycle.postpone(job_id, at=now_s() + POSTPONE_S))
    except Exception as exc:
        log.warning("send_postpone_failed", job_id=job_id, error=type(exc).__name__)
        return
    log.info("send_postponed", job_id=job_id, why=why)


@dramatiq.actor(actor_name=keys.ACTOR_SEND_OTP, queue_name=keys.QUEUE_OTP, priority=0)
def send_otp_call(job_id: str, limit_key: str | None = None) -> None:
    _send(keys.QUEUE_OTP, job_id, limit_key)


@dramatiq.actor(actor_name=keys.ACTOR_SEND_BULK, queue_name=keys.QUEUE_BULK, priority=10)
def send_bulk_call(job_id: str, limit_key: str | None = None) -> None:
    _send(keys.QUEUE_BULK, job_id, limit_key)


@dramatiq.actor(actor_name=keys.ACTOR_POLL, queue_name=keys.QUEUE_STATUS, priority=20)
def poll_call_status(job_id: str) -> None:
    step = functools.partial(poll_step, job_id=job_id)
    engine.current().handoff(keys.QUEUE_STATUS, step, wait_for_start=False)


@dramatiq.actor(actor_name=keys.ACTOR_WEBHOOK, queue_name=keys.QUEUE_WEBHOOKS, priority=30)
def deliver_webhook(job_id: str) -> None:
    step = functools.partial(deliver_step, job_id=job_id)
    engine.current().handoff(keys.QUEUE_WEBHOOKS, step, wait_for_start=False)

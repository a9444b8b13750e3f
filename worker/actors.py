"""The actors. Each takes a job id and hands its work to the send engine (worker.engine).

Queues (decision 5): Voice OTP on its own queue with the highest priority, bulk record and
template calls on another, status polls and webhooks on their own, so a worker can be pointed
at any subset (``voicecall worker --queues voicecall-otp``). Each queue also has its own slots
in the engine, so a full bulk queue never holds OTP back.

A send actor claims its job itself (one Lua step) before it returns, and that step also
acknowledges the message (worker.broker): the message goes only once the job is claimed
(it then carries this worker's lease) or needs no call; the engine makes the call. Polls and
webhooks need no claim: the due sets bring them back if their message is lost.
"""

from __future__ import annotations

import functools

import dramatiq

from voicecall.job import keys, upkeep
from voicecall.job.steps import Verdict
from voicecall.store.connection import now_s
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import RATE_LIMITED
from worker import engine
from worker.broker import current_message_id, mark_acked
from worker.poll import poll_step
from worker.send import claim_op, send_claimed, send_when_due, unclaimed_or_job
from worker.webhook import deliver_step

log = get_logger(__name__)
POSTPONE_S = 1.0  # a send that found no free slot is tried again this much later


def _send(queue: str, job_id: str, limit_key: str | None) -> None:
    running = engine.current()
    slot = running.slot(queue)
    if slot is None:
        # Every slot of this queue is busy: the due set brings the job back shortly, and this
        # thread is free for other queues' messages.
        _postpone(running, job_id, "no_free_slot")
        RATE_LIMITED.labels(kind=queue, limit="capacity").inc()
        return
    message_id = current_message_id()
    try:
        step = running.sync_store.apply(claim_op(running, job_id, queue, limit_key, message_id))
    except BaseException:
        slot.release()
        raise  # nothing was claimed: Dramatiq delivers the message again (Redis was down)
    if message_id is not None:
        mark_acked(message_id)  # the claim acknowledged it
    if step.verdict is Verdict.WAIT:
        wait_s = float(step.detail)
        running.run(slot, lambda ctx: send_when_due(ctx, job_id, queue, limit_key, wait_s))
        return
    job = unclaimed_or_job(step, job_id)
    if job is None:
        slot.release()
        return
    running.run(slot, lambda ctx: send_claimed(ctx, job, queue))


def _postpone(running: engine.Engine, job_id: str, why: str) -> None:
    try:
        running.sync_store.apply(upkeep.postpone(job_id, at=now_s() + POSTPONE_S))
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
    running = engine.current()
    slot = running.slot(keys.QUEUE_STATUS)
    if slot is not None:  # else the due set sends the poll again later
        running.run(slot, functools.partial(poll_step, job_id=job_id))


@dramatiq.actor(actor_name=keys.ACTOR_WEBHOOK, queue_name=keys.QUEUE_WEBHOOKS, priority=30)
def deliver_webhook(job_id: str) -> None:
    running = engine.current()
    slot = running.slot(keys.QUEUE_WEBHOOKS, wait=False)
    if slot is not None:  # else vc:due:webhooks sends it again later
        running.run(slot, functools.partial(deliver_step, job_id=job_id, slot=slot))

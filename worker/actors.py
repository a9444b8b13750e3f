"""The actors. Each takes a job id; the job store holds everything else.

Queues (decision 5): Voice OTP on its own queue with the highest priority, bulk record and
template calls on another, status polls and webhooks on their own, so a worker can be pointed
at any subset (``voicecall worker --queues voicecall-otp``).
"""

from __future__ import annotations

import dramatiq

from voicecall import keys
from worker.poll import poll_job
from worker.send import send_job
from worker.webhook import deliver


@dramatiq.actor(actor_name=keys.ACTOR_SEND_OTP, queue_name=keys.QUEUE_OTP, priority=0)
def send_otp_call(job_id: str) -> None:
    send_job(job_id)


@dramatiq.actor(actor_name=keys.ACTOR_SEND_BULK, queue_name=keys.QUEUE_BULK, priority=10)
def send_bulk_call(job_id: str) -> None:
    send_job(job_id)


@dramatiq.actor(actor_name=keys.ACTOR_POLL, queue_name=keys.QUEUE_STATUS, priority=20)
def poll_call_status(job_id: str) -> None:
    poll_job(job_id)


@dramatiq.actor(actor_name=keys.ACTOR_WEBHOOK, queue_name=keys.QUEUE_WEBHOOKS, priority=30)
def deliver_webhook(job_id: str) -> None:
    deliver(job_id)

"""Dramatiq messages addressed by queue and actor name.

Producers and the API wake workers without importing worker code: a message carries only
the job id (actors read the job from the store; messages carry ids, not objects).
"""

from __future__ import annotations

import dramatiq

from voicecall import keys
from voicecall.jobs import Kind


def queue_for(kind: Kind) -> tuple[str, str]:
    """(queue, actor) that send a job of ``kind``: OTP has its own high-priority queue."""
    if kind is Kind.VOICE_OTP:
        return keys.QUEUE_OTP, keys.ACTOR_SEND_OTP
    return keys.QUEUE_BULK, keys.ACTOR_SEND_BULK


def _enqueue(broker: dramatiq.Broker, queue: str, actor: str, job_id: str, delay_s: float) -> None:
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=(job_id,), kwargs={}, options={}
    )
    delay_ms = int(delay_s * 1000)
    broker.enqueue(message, delay=delay_ms if delay_ms > 0 else None)


def send_message(broker: dramatiq.Broker, job_id: str, kind: Kind, *, delay_s: float = 0) -> None:
    """Wake a send actor for ``job_id`` (after ``delay_s``)."""
    queue, actor = queue_for(kind)
    _enqueue(broker, queue, actor, job_id, delay_s)


def poll_message(broker: dramatiq.Broker, job_id: str, *, delay_s: float) -> None:
    """Plan a status poll for ``job_id`` in ``delay_s`` (a delayed message, never a sleep)."""
    _enqueue(broker, keys.QUEUE_STATUS, keys.ACTOR_POLL, job_id, max(delay_s, 0.001))


def webhook_message(broker: dramatiq.Broker, job_id: str) -> None:
    """Deliver the final job to its ``webhook_url``."""
    _enqueue(broker, keys.QUEUE_WEBHOOKS, keys.ACTOR_WEBHOOK, job_id, 0)

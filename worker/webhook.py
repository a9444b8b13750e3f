"""The webhook actor's body: POST the final job to its ``webhook_url`` (sync bridge).

Until the async send engine calls :func:`worker.webhooks.deliver` itself, this actor runs it
with ``asyncio.run``: Standard Webhooks headers signed with ``WEBHOOK_SECRET``, the URL policy
(``WEBHOOK_ALLOW_PRIVATE``, ``WEBHOOK_ALLOWED_HOSTS``, ``WEBHOOK_REQUIRE_HTTPS``) checked at
delivery on the one address connected to, and ``WEBHOOK_TIMEOUT_S`` as one overall deadline.

A retryable failure raises :class:`WebhookFailed` (a ``dramatiq.Retry``) with the delay of
``webhook_retry_delay_s``, at most ``WEBHOOK_MAX_RETRIES`` times (the Retries middleware's
``SEND_MAX_RETRIES`` bounds every actor too). A refused URL or a 410 Gone is logged and
dropped. Failures never change the job's own state.
"""

from __future__ import annotations

import asyncio
import json

import dramatiq
from dramatiq.middleware import CurrentMessage

from voicecall.logs import get_logger
from voicecall.metrics import WEBHOOKS
from voicecall.settings import webhook_retry_delay_s
from voicecall.store import Job, public_view
from voicecall.webhook_signing import WebhookSecret, webhook_id_for
from voicecall.webhook_urls import WebhookPolicy
from worker import webhooks
from worker.runtime import runtime

log = get_logger(__name__)


class WebhookFailed(dramatiq.Retry):
    """The delivery failed and may succeed later; Dramatiq retries after ``delay`` ms."""


def job_webhook_id(job: Job) -> str:
    """One id per job event: the same on every retry, another for a re-created job."""
    return webhook_id_for(job.id, repr(job.created_at), job.state.value)


def deliver(job_id: str) -> None:
    """The body of the webhook actor."""
    rt = runtime()
    settings = rt.settings
    job = rt.store.get(job_id)
    if job is None or not job.webhook_url or not job.final:
        return
    body = json.dumps(public_view(job, rt.store.history(job_id)), separators=(",", ":")).encode()
    result = asyncio.run(
        webhooks.deliver(
            job.webhook_url,
            body,
            webhook_id=job_webhook_id(job),
            secret=WebhookSecret.parse(settings.webhook_secret),
            policy=WebhookPolicy.from_settings(settings),
            deadline_s=settings.webhook_timeout_s,
        )
    )
    if result.ok:
        WEBHOOKS.labels(result="delivered").inc()
        return
    WEBHOOKS.labels(result="error").inc()
    message = CurrentMessage.get_current_message()
    retries = int(message.options.get("retries", 0)) if message is not None else 0
    if not result.retryable or retries >= settings.webhook_max_retries:
        log.warning("webhook_given_up", job_id=job_id, error=result.error, retries=retries)
        return
    delay_s = webhook_retry_delay_s(retries + 1, settings, retry_after_s=result.retry_after_s)
    raise WebhookFailed(f"webhook for job {job_id}: {result.error}", delay=int(delay_s * 1000))

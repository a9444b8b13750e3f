"""The webhook step: POST the final job to its ``webhook_url`` and record the attempt.

Delivery is :func:`worker.webhooks.deliver`: Standard Webhooks headers signed with
``WEBHOOK_SECRET`` (its own secret, never the callback secret), the URL policy
(``WEBHOOK_ALLOW_PRIVATE``, ``WEBHOOK_ALLOWED_HOSTS``, ``WEBHOOK_REQUIRE_HTTPS``) checked at
delivery on the one address connected to, and ``WEBHOOK_TIMEOUT_S`` as one overall deadline.
A slow or trickling receiver holds one coroutine of the engine, never a worker thread.

Every attempt (time, HTTP status or the reason it failed) is kept in the job's
``webhook.deliveries``; an exception anywhere in an attempt is recorded as ``internal_error``
and counts like any failure, so no receiver can make its delivery repeat unrecorded. A
retryable failure is tried again after ``webhook_retry_delay_s`` (the webhooks' own budget,
``WEBHOOK_MAX_RETRIES``, and their own queue); then, or at once for a refused URL or a 410
Gone, the job becomes a dead letter of the webhooks queue. A delivery never changes the job's
own state. Deliveries to one receiver host hold at most ``WEBHOOK_HOST_CONCURRENCY`` webhook
slots of a process (worker.host_shares).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import structlog

from voicecall.job import upkeep
from voicecall.job.records import JobRecord, JobView
from voicecall.job.steps import Verdict
from voicecall.store.connection import now_s
from voicecall.telemetry.logs import get_logger
from voicecall.telemetry.metrics import WEBHOOKS
from voicecall.webhooks.policy import normalize_host
from voicecall.webhooks.signing import WebhookSecret, webhook_id_for
from worker import webhooks
from worker.engine import Context, Slot
from worker.timing import webhook_retry_delay_s

log = get_logger(__name__)


def job_webhook_id(job: JobRecord) -> str:
    """One id per job event: the same on every retry, another for a re-created job."""
    return webhook_id_for(job.id, repr(job.created_at), job.state.value)


async def deliver_step(ctx: Context, *, job_id: str, slot: Slot) -> None:
    """The body behind the webhook actor; ``slot`` is the webhook slot it was handed.

    Within its receiver host's share the delivery goes at once on ``slot``; over it, it waits
    in the host's line without a slot (worker.host_shares) and goes on the slot a delivery
    to the same host passes on. Deferred (the due set brings it back) when the line is full.
    The message's consumer span covers it (worker.tracing).
    """
    structlog.contextvars.bind_contextvars(job_id=job_id)
    job = await ctx.store.get(job_id)
    url = _pending_url(job)
    if url is None:
        return
    host = receiver_host(url)
    held = await ctx.webhook_hosts.enter(host, job_id, slot)
    if held is None:
        log.info("webhook_deferred", job_id=job_id, waiting=ctx.webhook_hosts.waiting)
        return
    try:
        if held is not slot:  # it waited in line: the job may have moved on meanwhile
            job = await ctx.store.get(job_id)
            url = _pending_url(job)
        if job is not None and url is not None:
            await _deliver(ctx, job, url)
    finally:
        ctx.webhook_hosts.leave(host, job_id, held)


def receiver_host(url: str) -> str:
    """Whose share a delivery takes: the URL's host, as the URL policy normalises it."""
    host = urlsplit(url).hostname or ""
    try:
        return normalize_host(host)
    except ValueError:  # an IPv6 literal, or a host the policy will refuse anyway
        return host


def _pending_url(job: JobRecord | None) -> str | None:
    """The webhook URL of a final job whose delivery is still to be made, else None."""
    if job is None or not job.webhook_url or not job.final:
        return None
    if job.webhook is not None and job.webhook.state in ("delivered", "gave_up"):
        return None
    return job.webhook_url


async def _deliver(ctx: Context, job: JobRecord, url: str) -> None:
    """One delivery attempt, recorded whatever happens, and what follows it."""
    job_id = job.id
    settings = ctx.settings
    try:
        result = await _attempt(ctx, job, url)
    except Exception:  # never an attempt that goes unrecorded and comes back for ever
        log.exception("webhook_attempt_error", job_id=job_id)
        result = webhooks.DeliveryResult(
            at=now_s(), status=None, error="internal_error", duration_ms=0.0
        )
    delivery = result.as_dict()
    if result.ok:
        WEBHOOKS.labels(result="delivered").inc()
        await ctx.store.apply(
            upkeep.record_delivery(job_id, delivery=delivery, result=Verdict.DELIVERED)
        )
        log.info("webhook_delivered", job_id=job_id, status=result.status)
        return
    WEBHOOKS.labels(result="error").inc()
    retries = len(job.webhook.deliveries) if job.webhook else 0
    if not result.retryable or retries >= settings.webhook_max_retries:
        op = upkeep.record_delivery(job_id, delivery=delivery, result=Verdict.GAVE_UP)
        await ctx.store.apply(op)
        log.warning("webhook_given_up", job_id=job_id, error=result.error, retries=retries)
        return
    delay_s = webhook_retry_delay_s(retries + 1, settings, retry_after_s=result.retry_after_s)
    op = upkeep.record_delivery(
        job_id, delivery=delivery, result=Verdict.RETRY, next_at=now_s() + delay_s
    )
    await ctx.store.apply(op)
    log.info("webhook_retry", job_id=job_id, error=result.error, delay_s=round(delay_s, 2))


async def _attempt(ctx: Context, job: JobRecord, url: str) -> webhooks.DeliveryResult:
    settings = ctx.settings
    body = json.dumps(JobView.of(job).json_body(), separators=(",", ":")).encode()
    return await webhooks.deliver(
        url,
        body,
        webhook_id=job_webhook_id(job),
        secret=WebhookSecret.parse(settings.webhook_secret),
        policy=settings.webhook_policy,
        deadline_s=settings.webhook_timeout_s,
        client=ctx.webhooks,
    )

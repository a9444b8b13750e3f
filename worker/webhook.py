"""Outbound webhook: POST the final job to its ``webhook_url``, signed, and record the try.

Every attempt (time, HTTP status or error) is kept in the job's ``webhook.deliveries``. A
failure is retried with backoff (``WEBHOOK_MAX_RETRIES``, the webhooks' own budget and queue);
then the job becomes a dead letter of the webhooks queue. A delivery never changes the job's
own state, and a slow receiver holds one coroutine of the engine, never a worker thread.
Headers: ``X-Voicecall-Timestamp`` and ``X-Voicecall-Signature`` (``sha256=`` + hex
HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``WEBHOOK_SECRET``, or ``CALLBACK_SECRET``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time

import httpx
import structlog

from voicecall import lifecycle
from voicecall.logs import get_logger
from voicecall.metrics import WEBHOOKS
from voicecall.records import JobView
from voicecall.settings import Settings
from voicecall.store import now_s
from worker.engine import Context, Started

log = get_logger(__name__)
WEBHOOK_MIN_BACKOFF_S = 5.0
WEBHOOK_MAX_BACKOFF_S = 600.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_retry_delay_s(attempt: int, settings: Settings) -> float:
    """Backoff before delivery attempt ``attempt + 1``: exponential with jitter, capped."""
    ceiling = min(WEBHOOK_MAX_BACKOFF_S, WEBHOOK_MIN_BACKOFF_S * 2**attempt)
    return max(WEBHOOK_MIN_BACKOFF_S / 2, random.uniform(0, ceiling))


async def deliver_step(ctx: Context, started: Started, *, job_id: str) -> None:
    """The body behind the webhook actor."""
    started.set_result(None)  # vc:due:webhooks is the backstop
    structlog.contextvars.bind_contextvars(job_id=job_id)
    job = await ctx.store.get(job_id)
    if job is None or not job.webhook_url or not job.final:
        return
    if job.webhook is not None and job.webhook.state in ("delivered", "gave_up"):
        return
    settings = ctx.settings
    body = json.dumps(JobView.of(job).json_body(), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    secret = settings.webhook_secret or settings.callback_secret
    headers = {
        "Content-Type": "application/json",
        "X-Voicecall-Timestamp": timestamp,
        "X-Voicecall-Signature": signature(secret, timestamp, body),
        "X-Voicecall-Job-Id": job_id,
    }
    at = now_s()
    status: int | None = None
    error: str | None = None
    started_at = time.perf_counter()
    try:
        async with (
            asyncio.timeout(settings.webhook_timeout_s),
            httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False) as http,
        ):
            response = await http.post(job.webhook_url, content=body, headers=headers)
            status = response.status_code
    except TimeoutError:
        error = "timeout"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    duration_ms = round((time.perf_counter() - started_at) * 1000, 1)
    attempts = len(job.webhook.deliveries) if job.webhook else 0
    delivery = {"at": at, "status": status, "error": error, "duration_ms": duration_ms}
    if status is not None and 200 <= status < 300:
        WEBHOOKS.labels(result="delivered").inc()
        await ctx.store.apply(
            lifecycle.record_delivery(job_id, delivery=delivery, result="delivered")
        )
        log.info("webhook_delivered", job_id=job_id, status=status)
        return
    WEBHOOKS.labels(result="error").inc()
    if error is None:
        delivery["error"] = f"http_{status}"
    if attempts >= settings.webhook_max_retries:
        await ctx.store.apply(
            lifecycle.record_delivery(job_id, delivery=delivery, result="gave_up")
        )
        log.warning("webhook_gave_up", job_id=job_id, attempts=attempts + 1)
        return
    next_at = now_s() + webhook_retry_delay_s(attempts, settings)
    op = lifecycle.record_delivery(job_id, delivery=delivery, result="retry", next_at=next_at)
    await ctx.store.apply(op)
    log.info("webhook_retry", job_id=job_id, status=status, error=error)

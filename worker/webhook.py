"""Outbound webhook: POST the final job to its ``webhook_url``, signed.

Headers: ``X-Voicecall-Timestamp`` (unix seconds) and ``X-Voicecall-Signature``
(``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under ``WEBHOOK_SECRET``, or
``CALLBACK_SECRET`` when unset). A receiver recomputes it and rejects stale timestamps.
Failures are retried by Dramatiq with backoff; they never change the job's own state.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from voicecall.logs import get_logger
from voicecall.metrics import WEBHOOKS
from voicecall.store import public_view
from worker.runtime import runtime

log = get_logger(__name__)


class WebhookFailed(Exception):
    """The receiver did not answer 2xx; Dramatiq retries the delivery."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def deliver(job_id: str) -> None:
    """The body of the webhook actor."""
    rt = runtime()
    job = rt.store.get(job_id)
    if job is None or not job.webhook_url or not job.final:
        return
    body = json.dumps(public_view(job, rt.store.history(job_id)), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    secret = rt.settings.webhook_secret or rt.settings.callback_secret
    headers = {
        "Content-Type": "application/json",
        "X-Voicecall-Timestamp": timestamp,
        "X-Voicecall-Signature": signature(secret, timestamp, body),
        "X-Voicecall-Job-Id": job_id,
    }
    try:
        response = httpx.post(
            job.webhook_url, content=body, headers=headers, timeout=rt.settings.webhook_timeout_s
        )
    except httpx.HTTPError as exc:
        WEBHOOKS.labels(result="error").inc()
        raise WebhookFailed(f"webhook for job {job_id}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        WEBHOOKS.labels(result="error").inc()
        raise WebhookFailed(f"webhook for job {job_id}: HTTP {response.status_code}")
    WEBHOOKS.labels(result="delivered").inc()
    log.info("webhook_delivered", job_id=job_id, status=response.status_code)

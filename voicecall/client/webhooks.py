"""Receiving voicecall's webhooks: :func:`verify_webhook` checks a delivery the Standard Webhooks
way, with the stock ``standardwebhooks`` library, and gives the job it carries.

A worker POSTs a job's final JSON (the :class:`~voicecall.job.records.JobView` with its history)
to the job's ``webhook_url``, signed with ``WEBHOOK_SECRET`` (voicecall.webhook_signing).
A receiver refuses what :func:`verify_webhook` refuses (answer 400, say), and drops an event
whose ``id`` it has seen: every retry of one event has the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import standardwebhooks
from pydantic import BaseModel, ConfigDict, ValidationError

from voicecall.client.errors import InvalidWebhook
from voicecall.job.records import JobView
from voicecall.webhooks.signing import WebhookSecret

__all__ = ["TOLERANCE_S", "WebhookEvent", "verify_webhook"]

TOLERANCE_S = 300  # a delivery stamped further from now is refused (the library's window)
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class WebhookEvent(BaseModel):
    """A verified delivery."""

    model_config = ConfigDict(frozen=True)

    id: str  # webhook-id: the same on every retry of this event, another for any other event
    timestamp: datetime  # webhook-timestamp: when this attempt was signed
    job: JobView  # the job as it ended, with its history


def verify_webhook(
    headers: Mapping[str, str], body: bytes | str, secret: str | WebhookSecret
) -> WebhookEvent:
    """The event of a delivery whose Standard Webhooks signature is ``secret``'s and whose
    timestamp lies within :data:`TOLERANCE_S` of now; else :class:`InvalidWebhook`.

    ``headers`` as received (names in any case), ``body`` exactly as received (the bytes the
    signature covers; parse nothing before). ``secret`` is the ``WEBHOOK_SECRET`` the workers
    sign with (``whsec_...``); a malformed one raises ``ValueError`` stating the rule.
    """
    key = secret if isinstance(secret, WebhookSecret) else WebhookSecret.parse(secret)
    received = {name.lower(): value for name, value in headers.items()}
    signed = {name: received.get(name, "") for name in HEADERS}
    missing = [name for name, value in signed.items() if not value]
    if missing:
        raise InvalidWebhook(f"no {', '.join(missing)} header")
    payload = body.encode() if isinstance(body, str) else body
    try:
        standardwebhooks.Webhook(key.key).verify(payload, signed, json_parse=False)
    except standardwebhooks.WebhookVerificationError as exc:
        raise InvalidWebhook(f"refused: {exc}") from None
    except ValueError:  # a signature without "v1,", not base64, a body that is not UTF-8
        raise InvalidWebhook("refused: a malformed webhook-signature or body") from None
    try:
        job = JobView.model_validate_json(payload)
    except ValidationError:
        raise InvalidWebhook("the signed body is not a voicecall job") from None
    moment = datetime.fromtimestamp(float(signed["webhook-timestamp"]), UTC)
    return WebhookEvent(id=signed["webhook-id"], timestamp=moment, job=job)

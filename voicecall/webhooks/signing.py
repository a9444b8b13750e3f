"""Signing outbound webhooks the Standard Webhooks way (https://www.standardwebhooks.com).

Each delivery carries three headers that any stock ``standardwebhooks`` library verifies:

- ``webhook-id``: one stable id per job event, the same on every retry, so a receiver can
  drop repeats;
- ``webhook-timestamp``: the attempt's time in unix seconds, so a receiver can refuse replays;
- ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``.

The secret is ``WEBHOOK_SECRET``, written as ``whsec_`` + standard base64 of 24 to 64 random
bytes (the specification's bounds). It is never ``CALLBACK_SECRET``: a receiver holds this key,
and must not be able to sign callback URLs. Pure: no I/O, importable by every role.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

__all__ = [
    "SECRET_RULE",
    "WebhookSecret",
    "check_webhook_id",
    "signature_headers",
    "webhook_id_for",
]

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # Standard Webhooks: at least 192 bits
MAX_SECRET_BYTES = 64  # ... and at most 512
SECRET_RULE = (
    f"must be {SECRET_PREFIX} followed by standard base64 (A-Z a-z 0-9 + /) of "
    f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
)
# The specification forbids "." in ids (it delimits the signed content); headers forbid
# control characters. Job ids may hold ".", so callers hash them with webhook_id_for().
_WEBHOOK_ID = re.compile(r"[A-Za-z0-9_:-]{1,256}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


@dataclass(frozen=True)
class WebhookSecret:
    """The signing key. Its ``repr`` never shows the key."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not MIN_SECRET_BYTES <= len(self.key) <= MAX_SECRET_BYTES:
            raise ValueError(
                f"a webhook secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(self.key)}"
            )

    @classmethod
    def parse(cls, value: str) -> WebhookSecret:
        """Read ``whsec_<base64>``; a ``ValueError`` states the rule (never the value)."""
        encoded = value.removeprefix(SECRET_PREFIX)
        if encoded == value or not _BASE64.fullmatch(encoded):
            raise ValueError(SECRET_RULE)
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            raise ValueError(SECRET_RULE) from None
        if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
            raise ValueError(f"{SECRET_RULE}; this one decodes to {len(key)} bytes")
        return cls(key)

    @classmethod
    def generate(cls, size: int = 32) -> WebhookSecret:
        return cls(os.urandom(size))

    def serialize(self) -> str:
        """The ``whsec_...`` form, as operators set it and receivers are given it."""
        return SECRET_PREFIX + base64.b64encode(self.key).decode("ascii")

    def sign(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
        check_webhook_id(webhook_id)
        content = f"{webhook_id}.{timestamp}.".encode() + body
        digest = hmac.new(self.key, content, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode("ascii")


def check_webhook_id(webhook_id: str) -> str:
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise ValueError(
            "a webhook id is 1 to 256 characters of A-Z a-z 0-9 _ : - (no '.', which delimits "
            "the signed content)"
        )
    return webhook_id


def webhook_id_for(*parts: str) -> str:
    """A stable ``msg_...`` id for one event, e.g. ``webhook_id_for(job_id, created_at, state)``.

    The same parts give the same id on every retry; any other event gets another id.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:20]
    return "msg_" + base64.b32encode(digest).decode("ascii").lower()


def signature_headers(
    secret: WebhookSecret, webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": secret.sign(webhook_id, timestamp, body),
    }

"""Standard Webhooks signatures, checked against the stock ``standardwebhooks`` library."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks

from voicecall.webhooks.signing import (
    SECRET_RULE,
    WebhookSecret,
    check_webhook_id,
    signature_headers,
    webhook_id_for,
)

BODY = b'{"id":"job-1","state":"completed"}'


def _whsec(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(size))).decode()


def test_the_stock_library_verifies_our_headers() -> None:
    """signature_headers() gives webhook-id/-timestamp/-signature that Webhook.verify accepts."""
    secret = WebhookSecret.generate()
    headers = signature_headers(secret, "msg_1", int(time.time()), BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    verified = standardwebhooks.Webhook(secret.serialize()).verify(BODY, headers)
    assert verified == {"id": "job-1", "state": "completed"}


def test_our_signature_equals_the_stock_librarys() -> None:
    """Same secret, id, timestamp and body: byte-identical signature."""
    secret = WebhookSecret.parse(_whsec(32))
    stock = standardwebhooks.Webhook(secret.serialize()).sign(
        "msg_2", datetime.fromtimestamp(1_700_000_000, tz=UTC), BODY.decode()
    )
    assert secret.sign("msg_2", 1_700_000_000, BODY) == stock


def test_a_tampered_body_id_or_other_secret_fails_verification() -> None:
    """The signature covers the id, the timestamp and the body, under this secret only."""
    secret = WebhookSecret.generate()
    headers = signature_headers(secret, "msg_3", int(time.time()), BODY)
    stock = standardwebhooks.Webhook(secret.serialize())
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        stock.verify(BODY.replace(b"completed", b"failed"), headers)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        stock.verify(BODY, {**headers, "webhook-id": "msg_4"})
    other = standardwebhooks.Webhook(WebhookSecret.generate().serialize())
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        other.verify(BODY, headers)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",  # no whsec_ prefix
        "whsec_",
        "whsec_not base64!",
        "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(),  # URL-safe alphabet
        _whsec(23),  # too short: at least 24 bytes
        _whsec(65),  # too long: at most 64 bytes
        "test-callback-secret-0123456789",  # a CALLBACK_SECRET-style value
    ],
)
def test_a_malformed_secret_is_refused_with_the_rule_and_not_the_value(value: str) -> None:
    """whsec_ + standard base64 of 24 to 64 bytes; the message states that, never the value."""
    with pytest.raises(ValueError) as caught:
        WebhookSecret.parse(value)
    assert SECRET_RULE in str(caught.value)
    if value.removeprefix("whsec_"):
        assert value.removeprefix("whsec_") not in str(caught.value)


@pytest.mark.parametrize("size", [24, 32, 64])
def test_secrets_of_24_to_64_bytes_parse_padded_or_not(size: int) -> None:
    """The bounds are inclusive; missing base64 padding is accepted (the stock library too)."""
    padded = _whsec(size)
    assert WebhookSecret.parse(padded).key == bytes(range(size))
    assert WebhookSecret.parse(padded.rstrip("=")).key == bytes(range(size))
    assert WebhookSecret.parse(padded).serialize() == padded


def test_the_secret_never_shows_in_its_repr() -> None:
    """repr() of a secret (in a traceback, a log) holds no key material."""
    secret = WebhookSecret.parse(_whsec(32))
    assert secret.serialize().removeprefix("whsec_") not in repr(secret)
    assert "key" not in repr(secret)


@pytest.mark.parametrize("webhook_id", ["", "job.1", "a\r\nX-Injected: 1", "x" * 257, "é"])
def test_a_webhook_id_breaking_the_rules_is_refused(webhook_id: str) -> None:
    """No '.', no control characters, 1 to 256 characters of A-Z a-z 0-9 _ : -."""
    with pytest.raises(ValueError, match="webhook id"):
        check_webhook_id(webhook_id)


def test_webhook_id_for_is_stable_per_event_and_distinct_across_events() -> None:
    """The same parts give the same id (retries dedupe); other parts give another id."""
    first = webhook_id_for("job.1", "1700000000.5", "completed")
    assert first == webhook_id_for("job.1", "1700000000.5", "completed")
    assert first != webhook_id_for("job.1", "1700000001.5", "completed")
    assert first != webhook_id_for("job.1", "1700000000.5", "failed")
    assert check_webhook_id(first) == first and first.startswith("msg_")

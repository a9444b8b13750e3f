"""The webhook modules' public API, which the send engine calls: a change is a deliberate diff."""

from __future__ import annotations

import inspect
import subprocess
import sys

import voicecall.webhooks.policy
import voicecall.webhooks.signing
import voicecall.webhooks.urls
import worker.webhooks


def test_exported_members() -> None:
    """__all__ of each module is exactly this, and every name exists."""
    expected = {
        worker.webhooks: {"MAX_RESPONSE_BYTES", "DeliveryResult", "deliver", "webhook_client"},
        voicecall.webhooks.urls: {
            "ADDRESS_RULES",
            "MAX_URL_LENGTH",
            "ResolvedTarget",
            "Resolver",
            "WebhookDnsError",
            "WebhookTargetError",
            "WebhookUrlRefused",
            "check_at_intake",
            "resolve_and_check",
            "system_resolver",
        },
        voicecall.webhooks.policy: {"WebhookPolicy", "normalize_host", "parse_allowed_hosts"},
        voicecall.webhooks.signing: {
            "SECRET_RULE",
            "WebhookSecret",
            "check_webhook_id",
            "signature_headers",
            "webhook_id_for",
        },
    }
    for module, names in expected.items():
        assert set(module.__all__) == names, module.__name__
        assert all(hasattr(module, name) for name in names), module.__name__


def test_deliver_signature() -> None:
    """deliver(url, body, *, webhook_id, secret, policy, deadline_s, client=None, resolver=...)."""
    parameters = inspect.signature(worker.webhooks.deliver).parameters
    assert list(parameters) == [
        "url",
        "body",
        "webhook_id",
        "secret",
        "policy",
        "deadline_s",
        "client",
        "resolver",
    ]
    keyword_only = [p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == list(parameters)[2:]
    assert inspect.iscoroutinefunction(worker.webhooks.deliver)
    assert inspect.iscoroutinefunction(voicecall.webhooks.urls.resolve_and_check)


def test_the_url_policy_never_imports_httpx() -> None:
    """voicecall.webhooks stays importable by the producer without the HTTP client."""
    code = (
        "import sys, voicecall.webhooks.urls, voicecall.webhooks.policy, "
        "voicecall.webhooks.signing; print('httpx' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"

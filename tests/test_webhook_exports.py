"""The webhook modules' public API, which the send engine calls: a change is a deliberate diff."""

from __future__ import annotations

import inspect
import subprocess
import sys

import voicecall.webhook_signing
import voicecall.webhook_urls
import worker.webhooks


def test_exported_members() -> None:
    """__all__ of each module is exactly this, and every name exists."""
    expected = {
        worker.webhooks: {"MAX_RESPONSE_BYTES", "DeliveryResult", "deliver", "webhook_client"},
        voicecall.webhook_urls: {
            "ADDRESS_RULES",
            "MAX_URL_LENGTH",
            "ResolvedTarget",
            "Resolver",
            "WebhookDnsError",
            "WebhookPolicy",
            "WebhookTargetError",
            "WebhookUrlRefused",
            "check_at_intake",
            "normalize_host",
            "parse_allowed_hosts",
            "resolve_and_check",
            "system_resolver",
        },
        voicecall.webhook_signing: {
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
    assert inspect.iscoroutinefunction(voicecall.webhook_urls.resolve_and_check)


def test_the_url_policy_never_imports_httpx() -> None:
    """voicecall.webhook_urls stays importable by the producer without the HTTP client."""
    code = "import sys, voicecall.webhook_urls, voicecall.webhook_signing; print('httpx' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"

"""The client's retries (voicecall.client._transport), against a real HTTP server on loopback
that answers from a script and notes the time, headers and body of every request it sees.

One idempotency key per call, the same on every try; connection failures, 429 and 503 are
retried with backoff, after `Retry-After` when one is sent (bounded); a request that carries no
key is never retried. Each behaviour runs with both clients.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import context, trace

from tests.fixtures.clients import FLAVOURS, ScriptedServer, drop, job_json, open_client
from tests.fixtures.redis import free_port
from tests.fixtures.webhook_receiver import answer
from voicecall.client import (
    ConnectionFailed,
    RateLimited,
    RequestRefused,
    RetryPolicy,
    ServerError,
    Unavailable,
)
from voicecall.client._transport import Attempts

TOKEN = "scripted-token-0123456789"
FAST = RetryPolicy(backoff_base_s=0.05, backoff_max_s=0.2)  # the backoff's shape, not its length
JSON = [("Content-Type", "application/json")]
Scripted = Callable[..., ScriptedServer]


def error(status: int, code: str, headers: list[tuple[str, str]] | None = None) -> Any:
    body = json.dumps({"error": code, "message": code.replace("_", " "), "request_id": "r-1"})
    return answer(status, [*JSON, ("X-Request-ID", "r-1"), *(headers or [])], body.encode())


ACCEPTED = answer(202, JSON, job_json())
UNAVAILABLE = error(503, "redis_unavailable")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_503_503_then_202_is_one_call_tried_three_times_with_one_key(
    flavour: str, scripted: Scripted
) -> None:
    """A create answered 503, 503, 202 was sent three times, each with the same generated Idempotency-Key and body, and gives the job."""
    server = scripted(UNAVAILABLE, UNAVAILABLE, ACCEPTED)
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        job = client.create_otp_call("0901234567", "Ma 1", labels={"app": "login"})
    seen = server.seen
    assert [(s.method, s.path) for s in seen] == [("POST", "/v1/calls")] * 3
    (key,) = {s.headers["idempotency-key"] for s in seen}
    assert key.startswith("vc-")
    (body,) = {s.body for s in seen}
    assert json.loads(body) == {
        "kind": "voice_otp",
        "phone": "0901234567",
        "content": "Ma 1",
        "labels": {"app": "login"},
    }
    assert job.id == "job-1"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_callers_key_is_sent_on_every_try_and_each_call_has_its_own(
    flavour: str, scripted: Scripted
) -> None:
    """A given idempotency_key is the header of every try; two calls without one get two keys."""
    server = scripted(UNAVAILABLE, ACCEPTED)
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        client.create_record_call("0901234567", "rec-1", idempotency_key="order-42")
        client.create_record_call("0901234567", "rec-1")
        client.create_record_call("0901234567", "rec-1")
    keys = [s.headers["idempotency-key"] for s in server.seen]
    assert keys[:2] == ["order-42", "order-42"]
    assert len(set(keys[2:])) == 2 and "order-42" not in keys[2:]
    assert all("idempotency_key" not in json.loads(s.body) for s in server.seen)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_429_with_retry_after_1_waits_a_second(flavour: str, scripted: Scripted) -> None:
    """After 429 with Retry-After: 1 the next try comes at least 1 s later (plus at most 10 % jitter), with the same key."""
    server = scripted(error(429, "quota_exceeded", [("Retry-After", "1")]), ACCEPTED)
    with open_client(flavour, server.url, TOKEN) as client:
        client.create_template_call("0901234567", "tpl-1", ["Trung"])
    first, second = server.seen
    waited = second.at - first.at
    assert waited >= 1.0
    assert waited < 1.1 + 2.0  # the jitter, and slack for a loaded machine
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_retry_after_beyond_the_bound_goes_to_the_caller_at_once(
    flavour: str, scripted: Scripted
) -> None:
    """Retry-After: 3600 is more than max_retry_after_s (60): no second try, RateLimited carries 3600 s and the request id."""
    server = scripted(error(429, "quota_exceeded", [("Retry-After", "3600")]), ACCEPTED)
    started = time.monotonic()
    with open_client(flavour, server.url, TOKEN) as client, pytest.raises(RateLimited) as caught:
        client.create_otp_call("0901234567", "Ma 1")
    assert time.monotonic() - started < 5
    assert len(server.seen) == 1
    assert (caught.value.retry_after_s, caught.value.request_id) == (3600.0, "r-1")
    assert caught.value.code == "quota_exceeded"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_retries_stop_after_max_retries(flavour: str, scripted: Scripted) -> None:
    """Always 503: two retries by default (three tries), none with max_retries=0; then Unavailable with the API's body."""
    server = scripted(UNAVAILABLE)
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        with pytest.raises(Unavailable) as caught:
            client.create_otp_call("0901234567", "Ma 1")
        assert len(server.seen) == 3
        assert caught.value.body["error"] == "redis_unavailable"
    none = RetryPolicy(max_retries=0)
    with (
        open_client(flavour, server.url, TOKEN, retries=none) as client,
        pytest.raises(Unavailable),
    ):
        client.get_call("job-1")
    assert len(server.seen) == 4


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_dropped_connection_is_retried_with_the_same_key(
    flavour: str, scripted: Scripted
) -> None:
    """The server closes the connection without an answer, then answers 202: two tries, one key."""
    server = scripted(drop, ACCEPTED)
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        assert client.create_otp_call("0901234567", "Ma 1").id == "job-1"
    first, second = server.seen
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_no_answer_at_all_is_connection_failed_after_the_retries(
    flavour: str, scripted: Scripted
) -> None:
    """Every try dropped, or nothing listening: ConnectionFailed (its cause the httpx error), after three tries."""
    server = scripted(drop)
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        with pytest.raises(ConnectionFailed) as caught:
            client.create_otp_call("0901234567", "Ma 1")
        assert isinstance(caught.value.__cause__, httpx.HTTPError)
    assert len(server.seen) == 3
    nowhere = f"http://127.0.0.1:{free_port()}"
    with open_client(flavour, nowhere, TOKEN, retries=FAST) as client:
        with pytest.raises(ConnectionFailed, match="after 3 tries"):
            client.get_call("job-1")
        assert client.ready() is False
        assert client.alive() is False


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_cancel_carries_no_key_and_is_never_retried(flavour: str, scripted: Scripted) -> None:
    """DELETE answered 503, or dropped: one try only, then the error."""
    server = scripted(UNAVAILABLE, drop)
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        with pytest.raises(Unavailable):
            client.cancel_call("job-1", reason="customer asked")
        with pytest.raises(ConnectionFailed, match="after 1 try"):
            client.cancel_call("job-1")
    assert [(s.method, s.path) for s in server.seen] == [
        ("DELETE", "/v1/calls/job-1?reason=customer+asked"),
        ("DELETE", "/v1/calls/job-1"),
    ]
    assert all("idempotency-key" not in s.headers for s in server.seen)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_batch_gives_each_call_a_key_and_repeats_the_same_body(
    flavour: str, scripted: Scripted
) -> None:
    """A batch answered 503 then 200 was sent twice, byte for byte, every call with a key (its own kept), no header key."""
    result = {"accepted": 2, "replays": 0, "failed": 0, "results": []}
    server = scripted(UNAVAILABLE, answer(200, JSON, json.dumps(result).encode()))
    calls = [
        {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 1"},
        {"kind": "record_call", "phone": "0901234568", "record_id": "r", "idempotency_key": "k2"},
    ]
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        assert client.create_batch(calls, campaign="tet").accepted == 2
    first, second = server.seen
    assert first.body == second.body
    sent = json.loads(first.body)
    assert sent["campaign"] == "tet"
    keys = [call["idempotency_key"] for call in sent["calls"]]
    assert keys[0].startswith("vc-") and keys[1] == "k2"
    assert "idempotency-key" not in first.headers


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reads_are_retried_and_the_readiness_probe_is_not(flavour: str, scripted: Scripted) -> None:
    """GET /v1/calls/{id} answered 503 then 200 gives the job; /readyz answered 503 is False after one try."""
    server = scripted(UNAVAILABLE, answer(200, JSON, job_json()), UNAVAILABLE)
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        assert client.get_call("job-1").id == "job-1"
        assert client.ready() is False
    assert [s.path for s in server.seen] == ["/v1/calls/job-1"] * 2 + ["/readyz"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_other_answers_become_their_typed_errors(flavour: str, scripted: Scripted) -> None:
    """500 is ServerError, 413 RequestRefused, each with the body and X-Request-ID; a 200 that is no job is ServerError, not a pydantic traceback."""
    server = scripted(
        error(500, "internal_error"),
        error(413, "body_too_large"),
        answer(200, [("Content-Type", "text/html")], b"<html>proxy</html>"),
    )
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        with pytest.raises(ServerError) as server_error:
            client.get_call("a")
        with pytest.raises(RequestRefused) as refused:
            client.create_batch([{"kind": "voice_otp"}])
        with pytest.raises(ServerError, match="unreadable_answer"):
            client.get_call("a")
    assert (server_error.value.status, server_error.value.request_id) == (500, "r-1")
    assert (refused.value.status, refused.value.code) == (413, "body_too_large")
    assert len(server.seen) == 3  # 500 and 413 are not retried


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_current_span_is_sent_as_traceparent(flavour: str, scripted: Scripted) -> None:
    """With an OpenTelemetry span current the request carries its traceparent (every try); without one, none."""
    server = scripted(UNAVAILABLE, ACCEPTED, ACCEPTED)
    span = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0xB7AD6B7169203331,
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    with open_client(flavour, server.url, TOKEN, retries=FAST) as client:
        token = context.attach(trace.set_span_in_context(span))
        try:
            client.create_otp_call("0901234567", "Ma 1")
        finally:
            context.detach(token)
        client.create_otp_call("0901234567", "Ma 2")
    parents = [s.headers.get("traceparent") for s in server.seen]
    expected = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert parents == [expected, expected, None]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40))
def test_any_retry_after_gives_a_bounded_wait_or_none(value: str) -> None:
    """Whatever bytes a 429's Retry-After holds, the wait is None (the caller decides) or within [0, max_retry_after_s + 1]; it never raises."""
    policy = RetryPolicy()
    response = httpx.Response(429, headers=[(b"Retry-After", value.encode("latin-1"))])
    delay = Attempts(policy, retryable=True).after_answer(response)
    assert delay is None or 0 <= delay <= policy.max_retry_after_s + 1

"""Webhook delivery against real HTTP(S) receivers on loopback addresses.

The receivers are local, so each test's policy allows exactly the host it uses (or, where the
test is about refusal, nothing). Nothing here connects anywhere but loopback: where a resolver
answers a documentation address, the transport records the attempt and refuses to leave the
machine.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
import standardwebhooks
import structlog
import trustme

import worker.webhooks
from tests.fixtures.redis import free_port
from tests.fixtures.webhook_receiver import (
    Receiver,
    after,
    answer,
    endless_body,
    trickle,
)
from voicecall.webhooks.policy import WebhookPolicy
from voicecall.webhooks.signing import WebhookSecret
from voicecall.webhooks.urls import WebhookDnsError
from worker.webhooks import MAX_RESPONSE_BYTES, DeliveryResult, deliver, webhook_client

SECRET = WebhookSecret.generate()
BODY = json.dumps({"id": "job-1", "state": "completed", "outcome": "answered"}).encode()
WEBHOOK_ID = "msg_job-1_completed"
LOCAL = WebhookPolicy(allowed_hosts=frozenset({"127.0.0.1", "receiver.test"}))
STRICT = WebhookPolicy()
MARGIN_S = 1.5  # generous: the deadline is the behaviour, the margin absorbs a loaded machine


@pytest.fixture()
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(behaviour: Any, **kwargs: Any) -> Receiver:
        server = Receiver(behaviour, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


class FakeDns:
    """A resolver that answers from a script and counts its lookups."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append((host, port))
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


def run(url: str, policy: WebhookPolicy = LOCAL, deadline_s: float = 5, **kwargs: Any) -> Any:
    return asyncio.run(
        deliver(
            url,
            BODY,
            webhook_id=WEBHOOK_ID,
            secret=SECRET,
            policy=policy,
            deadline_s=deadline_s,
            **kwargs,
        )
    )


def timed(url: str, **kwargs: Any) -> tuple[DeliveryResult, float]:
    started = time.monotonic()
    result = run(url, **kwargs)
    return result, time.monotonic() - started


def test_a_2xx_delivers_the_body_signed_to_the_host_the_url_names(
    receiver: Callable[..., Receiver],
) -> None:
    """A 2xx is success; the receiver gets the exact body, Host of the URL, Standard Webhooks
    headers that the stock library verifies, and no Authorization or cookie."""
    server = receiver(answer(204))
    dns = FakeDns(["127.0.0.1"])
    url = server.url(host="receiver.test", path="/hooks/vc?token=s3cret")

    result = run(url, resolver=dns)

    assert (result.ok, result.status, result.error, result.retryable) == (True, 204, None, False)
    assert abs(result.at - time.time()) < 60 and result.duration_ms > 0
    (got,) = server.received
    assert (got.method, got.path, got.body) == ("POST", "/hooks/vc?token=s3cret", BODY)
    assert got.headers["host"] == f"receiver.test:{server.port}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == WEBHOOK_ID
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    verified = standardwebhooks.Webhook(SECRET.serialize()).verify(got.body, got.headers)
    assert verified == json.loads(BODY)
    assert "authorization" not in got.headers and "cookie" not in got.headers
    assert dns.lookups == [("receiver.test", server.port)]


def test_logs_name_the_origin_and_never_the_path_query_or_body(
    receiver: Callable[..., Receiver],
) -> None:
    """One log line per delivery: webhook id, scheme://host:port, address, status; no path,
    query string (it may carry a token) or body (it carries phone results)."""
    server = receiver(answer(200))
    with structlog.testing.capture_logs() as logs:
        run(server.url(path="/hooks/s3cret-path?token=s3cret-token"))
    (line,) = [entry for entry in logs if entry["event"] == "webhook_delivered"]
    assert line["target"] == f"http://127.0.0.1:{server.port}"
    assert (line["webhook_id"], line["address"], line["status"]) == (WEBHOOK_ID, "127.0.0.1", 200)
    text = repr(logs)
    for secret in ("s3cret-path", "s3cret-token", "answered", SECRET.serialize()):
        assert secret not in text


def test_a_500_is_a_retryable_failure(receiver: Callable[..., Receiver]) -> None:
    """A 500 is a failure worth retrying, reported as http_500 with its status."""
    server = receiver(answer(500, body=b"boom"))
    result = run(server.url())
    assert (result.ok, result.status, result.error, result.retryable) == (
        False,
        500,
        "http_500",
        True,
    )


def test_410_gone_is_not_retried_and_429_brings_its_retry_after(
    receiver: Callable[..., Receiver],
) -> None:
    """410 asks the sender to stop (not retryable); a 429's Retry-After reaches the caller."""
    gone = run(receiver(answer(410)).url())
    assert (gone.error, gone.retryable) == ("http_410", False)
    limited = run(receiver(answer(429, headers=[("Retry-After", "120")])).url())
    assert (limited.error, limited.retryable, limited.retry_after_s) == ("http_429", True, 120.0)


def utf8_on_the_wire(text: str) -> str:
    """``text`` as http.server must be given it to send its UTF-8 bytes (it writes latin-1)."""
    return text.encode().decode("latin-1")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("²", None),  # passes str.isdigit(), broke float(): the attempt went unrecorded
        (utf8_on_the_wire("٣"), None),  # Arabic-Indic three: float() read it as 3
        (utf8_on_the_wire("１２"), None),  # full-width digits
        ("1.5", None),
        ("-5", None),
        ("NaN", None),
        ("9" * 5000, 86400.0),  # int() refuses over 4,300 digits
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
        ("Mon, 01 Jan 99999999999999999999 00:00:00 GMT", None),  # OverflowError in parsedate
        ("Mon, 01 Jan 2001 00:00:00 GMT", 0.0),
    ],
)
def test_a_hostile_retry_after_is_read_safely(
    receiver: Callable[..., Receiver], value: str, seconds: float | None
) -> None:
    """A 503's Retry-After of Unicode digits, fractions, NaN, huge numbers or odd dates never
    breaks the attempt: http_503 is reported, the hint unreadable (None) or clamped."""
    result = run(receiver(answer(503, headers=[("Retry-After", value)])).url())
    assert (result.status, result.error, result.retryable) == (503, "http_503", True)
    assert result.retry_after_s == seconds


def test_an_unforeseen_exception_is_a_recorded_retryable_failure(
    receiver: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception met in an attempt (here: reading the answer's headers) is reported as
    internal_error, retryable, with the status that arrived; deliver() never raises it."""

    def broken(value: str | None) -> float | None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(worker.webhooks, "parse_retry_after", broken)
    server = receiver(answer(200))
    with structlog.testing.capture_logs() as logs:
        result = run(server.url())
    assert (result.ok, result.status, result.error, result.retryable) == (
        False,
        200,
        "internal_error",
        True,
    )
    assert any(entry["event"] == "webhook_attempt_error" for entry in logs)


def test_a_redirect_is_a_failure_and_is_never_followed(receiver: Callable[..., Receiver]) -> None:
    """A 302 to an internal address: reported as http_302; the internal address gets nothing."""
    internal = receiver(answer(200))
    server = receiver(answer(302, headers=[("Location", internal.url(path="/admin"))]))
    result = run(server.url(), policy=WebhookPolicy(allow_private=True))
    assert (result.status, result.error, result.retryable) == (302, "http_302", True)
    assert len(server.received) == 1
    assert internal.received == []


def test_a_receiver_that_answers_after_10_s_is_cut_at_the_deadline(
    receiver: Callable[..., Receiver],
) -> None:
    """No answer within the deadline: timeout, no status, ended at the deadline."""
    server = receiver(after(10, answer(200)))
    result, elapsed = timed(server.url(), deadline_s=1.0)
    assert (result.ok, result.status, result.error, result.retryable) == (
        False,
        None,
        "timeout",
        True,
    )
    assert elapsed < 1.0 + MARGIN_S
    assert len(server.received) == 1


def test_a_receiver_trickling_its_answer_is_cut_at_the_overall_deadline(
    receiver: Callable[..., Receiver],
) -> None:
    """One byte every 0.5 s never trips a per-read timeout; the overall deadline still ends
    the delivery at 2 s (the whole answer would take about 20 s)."""
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    server = receiver(trickle(response, 0.5))
    result, elapsed = timed(server.url(), deadline_s=2.0)
    assert (result.error, result.status, result.retryable) == ("timeout", None, True)
    assert elapsed < 2.0 + MARGIN_S


def test_a_receiver_trickling_its_body_is_cut_at_the_deadline_and_retried(
    receiver: Callable[..., Receiver],
) -> None:
    """Headers arrive at once, the body one byte every 0.5 s: the deadline covers the body
    too; the status is kept, and the delivery counts as failed (retried; the receiver drops
    the repeat by webhook-id)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    server = receiver(trickle(b"x" * 100, 0.5, head=head))
    result, elapsed = timed(server.url(), deadline_s=2.0)
    assert (result.ok, result.status, result.error, result.retryable) == (
        False,
        200,
        "timeout",
        True,
    )
    assert elapsed < 2.0 + MARGIN_S


def test_only_the_first_64_kib_of_an_answer_is_read(receiver: Callable[..., Receiver]) -> None:
    """A 200 whose body never ends: the delivery reads up to the cap, hangs up and succeeds
    well inside the deadline."""
    server = receiver(endless_body())
    result, elapsed = timed(server.url(), deadline_s=10.0)
    assert (result.ok, result.status) == (True, 200)
    assert elapsed < 10.0
    assert MAX_RESPONSE_BYTES == 64 * 1024


def test_an_internal_address_is_refused_without_connecting(
    receiver: Callable[..., Receiver],
) -> None:
    """Private targets not allowed: loopback as a literal, in an odd spelling, IPv4-mapped,
    or behind a name, is refused before any connection (refused_address, not retried)."""
    server = receiver(answer(200))
    port = server.port
    urls = [
        server.url(),
        f"http://2130706433:{port}/hook",
        f"http://0x7f.1:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        f"http://localhost:{port}/hook",
    ]
    for url in urls:
        result = run(url, policy=STRICT)
        assert (result.error, result.status, result.retryable) == ("refused_address", None, False)
    dns = FakeDns(["127.0.0.1"])
    named = run(server.url(host="innocent.example"), policy=STRICT, resolver=dns)
    assert (named.error, named.retryable) == ("refused_address", False)
    assert server.received == []


def test_userinfo_and_other_schemes_are_refused_and_nothing_is_sent(
    receiver: Callable[..., Receiver],
) -> None:
    """user:pw@ is never turned into an Authorization header: the URL is refused outright."""
    server = receiver(answer(200))
    for url in (f"http://user:pw@127.0.0.1:{server.port}/hook", "ftp://127.0.0.1/hook"):
        result = run(url)
        assert (result.error, result.retryable) == ("refused_url", False)
    assert server.received == []


def test_https_is_required_when_the_policy_says_so(receiver: Callable[..., Receiver]) -> None:
    """require_https: an http:// URL is refused at delivery too."""
    server = receiver(answer(200))
    policy = WebhookPolicy(allowed_hosts=frozenset({"127.0.0.1"}), require_https=True)
    assert run(server.url(), policy=policy).error == "refused_url"
    assert server.received == []


def test_dns_rebinding_cannot_move_the_connection_to_another_address(
    receiver: Callable[..., Receiver],
) -> None:
    """The name resolves to 127.0.0.2 when checked and to 127.0.0.1 afterwards: the POST
    reaches 127.0.0.2 only, and the name is resolved once."""
    checked = receiver(answer(200), host="127.0.0.2")
    for _ in range(20):  # the same port on 127.0.0.1, for the address a second lookup gives
        try:
            rebound = receiver(answer(200), host="127.0.0.1", port=checked.port)
            break
        except OSError:
            checked = receiver(answer(200), host="127.0.0.2")
    dns = FakeDns(["127.0.0.2"], ["127.0.0.1"])
    policy = WebhookPolicy(allow_private=True)

    result = run(checked.url(host="rebind.test"), policy=policy, resolver=dns)

    assert result.ok
    assert len(checked.received) == 1 and rebound.received == []
    assert checked.received[0].headers["host"] == f"rebind.test:{checked.port}"
    assert dns.lookups == [("rebind.test", checked.port)]


class _LoopbackOnly(httpx.AsyncBaseTransport):
    """Records the address of every connection; opens real ones to loopback only."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.connected: list[tuple[str, str]] = []  # (address, Host header)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.connected.append((request.url.host, request.headers["host"]))
        if not request.url.host.startswith("127."):
            raise httpx.ConnectError("the test machine sends nothing off-host", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_dns_rebinding_from_a_public_address_to_loopback_is_defeated(
    receiver: Callable[..., Receiver],
) -> None:
    """Strict policy: the name resolves to a public (TEST-NET) address when checked and to
    127.0.0.1 afterwards. The only connection goes to the checked address; the name is not
    resolved again; the loopback receiver gets nothing."""
    server = receiver(answer(200))
    dns = FakeDns(["192.0.2.10"], ["127.0.0.1"])
    transport = _LoopbackOnly()

    async def go() -> DeliveryResult:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            return await deliver(
                server.url(host="rebind.example"),
                BODY,
                webhook_id=WEBHOOK_ID,
                secret=SECRET,
                policy=STRICT,
                deadline_s=5,
                client=client,
                resolver=dns,
            )

    result = asyncio.run(go())

    assert transport.connected == [("192.0.2.10", f"rebind.example:{server.port}")]
    assert dns.lookups == [("rebind.example", server.port)]
    assert result.error == "connect_error"
    assert server.received == []


def test_every_resolved_address_is_checked(receiver: Callable[..., Receiver]) -> None:
    """A name answering a public and a loopback address is refused as a whole."""
    server = receiver(answer(200))
    dns = FakeDns(["192.0.2.10", "127.0.0.1"])
    result = run(server.url(host="two-faced.example"), policy=STRICT, resolver=dns)
    assert result.error == "refused_address"
    assert server.received == []


def test_dns_failures_and_slow_dns_are_retryable_and_bounded() -> None:
    """A failed lookup is dns_error; a lookup that hangs is cut by the same deadline."""

    async def failing(host: str, port: int) -> Sequence[str]:
        raise WebhookDnsError(f"{host} did not resolve")

    async def hanging(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(30)
        return ["192.0.2.10"]

    failed = run("https://nowhere.example/hook", policy=STRICT, resolver=failing)
    assert (failed.error, failed.retryable) == ("dns_error", True)
    slow, elapsed = timed(
        "https://slow-dns.example/hook", policy=STRICT, resolver=hanging, deadline_s=1.0
    )
    assert (slow.error, slow.retryable) == ("timeout", True)
    assert elapsed < 1.0 + MARGIN_S


def test_a_closed_port_is_a_retryable_connect_error() -> None:
    """Nothing listens: connect_error, retryable."""
    result = run(f"http://127.0.0.1:{free_port()}/hook")
    assert (result.error, result.status, result.retryable) == ("connect_error", None, True)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server(ca: trustme.CA, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_https_connects_to_the_checked_address_with_sni_and_certificate_for_the_name(
    receiver: Callable[..., Receiver], ca: trustme.CA
) -> None:
    """https to a name resolved to 127.0.0.1: the TLS handshake sends the name as SNI, the
    certificate is verified against the name, the Host header carries it."""
    server = receiver(answer(200), tls=_tls_server(ca, "hooks.receiver.test"))
    dns = FakeDns(["127.0.0.1"])
    policy = WebhookPolicy(allowed_hosts=frozenset({"hooks.receiver.test"}))

    async def go() -> DeliveryResult:
        async with webhook_client(verify=_trusting(ca)) as client:
            return await deliver(
                server.url(host="hooks.receiver.test", scheme="https"),
                BODY,
                webhook_id=WEBHOOK_ID,
                secret=SECRET,
                policy=policy,
                deadline_s=5,
                client=client,
                resolver=dns,
            )

    result = asyncio.run(go())

    assert (result.ok, result.status) == (True, 200)
    assert server.sni == ["hooks.receiver.test"]
    assert server.received[0].headers["host"] == f"hooks.receiver.test:{server.port}"
    assert standardwebhooks.Webhook(SECRET.serialize()).verify(BODY, server.received[0].headers)


def test_https_certificate_for_another_name_is_refused(
    receiver: Callable[..., Receiver], ca: trustme.CA
) -> None:
    """The checked address serves a certificate for another name: connect_error, no POST."""
    server = receiver(answer(200), tls=_tls_server(ca, "someone-else.test"))
    dns = FakeDns(["127.0.0.1"])
    policy = WebhookPolicy(allowed_hosts=frozenset({"hooks.receiver.test"}))

    async def go() -> DeliveryResult:
        async with webhook_client(verify=_trusting(ca)) as client:
            return await deliver(
                server.url(host="hooks.receiver.test", scheme="https"),
                BODY,
                webhook_id=WEBHOOK_ID,
                secret=SECRET,
                policy=policy,
                deadline_s=5,
                client=client,
                resolver=dns,
            )

    result = asyncio.run(go())
    assert (result.error, result.retryable) == ("connect_error", True)
    assert server.received == []


def test_a_shared_client_must_not_read_proxies_from_the_environment() -> None:
    """A client with trust_env (proxies, .netrc) is refused: only webhook_client() fits."""
    with pytest.raises(ValueError, match="webhook_client"):
        run("https://example.com/hook", client=httpx.AsyncClient())


@pytest.mark.parametrize(
    ("webhook_id", "deadline_s", "words"),
    [
        ("job.1", 1.0, "webhook id"),
        (WEBHOOK_ID, 0.0, "deadline_s"),
        (WEBHOOK_ID, -1.0, "deadline_s"),
    ],
)
def test_programming_errors_raise_instead_of_failing_a_delivery(
    webhook_id: str, deadline_s: float, words: str
) -> None:
    """An id holding '.' (it delimits the signed content) or a deadline of 0 is a caller's bug."""
    with pytest.raises(ValueError, match=words):
        asyncio.run(
            deliver(
                "https://example.com/hook",
                BODY,
                webhook_id=webhook_id,
                secret=SECRET,
                policy=STRICT,
                deadline_s=deadline_s,
            )
        )


def test_a_delivery_result_records_what_the_job_history_needs() -> None:
    """as_dict() holds when, the status, the reason and how long, for the job's JSON."""
    result = DeliveryResult(at=1.5, status=500, error="http_500", duration_ms=12.5)
    assert result.as_dict() == {
        "at": 1.5,
        "status": 500,
        "error": "http_500",
        "duration_ms": 12.5,
        "retry_after_s": None,
    }

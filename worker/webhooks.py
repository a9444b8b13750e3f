"""Async webhook delivery: one signed POST to the one address that was checked.

:func:`deliver` never raises for a failed delivery: it returns a :class:`DeliveryResult`
(when, the HTTP status, a short reason code, how long it took) and the caller decides whether
and when to retry (``result.retryable``, ``worker.timing.webhook_retry_delay_s``).

How one delivery goes:

1. :func:`voicecall.webhooks.urls.resolve_and_check` applies the URL policy, resolves the host
   once and checks every address returned.
2. The request goes to that address (``https://203.0.113.7:443/path``) with the original
   ``Host`` header; for https the TLS handshake sends the host name as SNI and verifies the
   certificate against it (httpcore's ``sni_hostname`` request extension). httpx never
   resolves the name itself, so DNS rebinding cannot redirect the connection.
3. One overall deadline covers everything (DNS, connect, sending, response headers and up to
   :data:`MAX_RESPONSE_BYTES` of the body): httpx's own timeouts apply per read, so a receiver
   trickling a byte a second would otherwise hold the delivery for ever.
4. Redirects are never followed (a 3xx is a failure, as Standard Webhooks says), no
   Authorization or cookie is ever sent, proxies and ``.netrc`` from the environment are
   ignored, and every request closes its connection: the pool is keyed by address, so a TLS
   connection verified for one host name must never carry another host's webhook.

Reason codes (``DeliveryResult.error``): ``refused_url`` and ``refused_address`` (the policy;
not retried), ``dns_error``, ``timeout``, ``connect_error`` (TCP or TLS, certificate errors
included), ``protocol_error`` (a malformed response), ``network_error`` (the connection broke),
``http_<status>`` for any non-2xx answer (``http_410``, the receiver asking to stop, is not
retried), ``internal_error`` for any other exception (logged with its traceback, retried: a
receiver's answer must never make an attempt go unrecorded). A receiver's ``Retry-After`` is
read by :func:`voicecall.retry_after.parse_retry_after`: unreadable is no hint, never an error.

Logs show the webhook id, ``scheme://host:port``, the address, the status and the reason:
never the path, the query string or the body.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import asdict, dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from voicecall import __version__
from voicecall.formats.retry_after import parse_retry_after
from voicecall.telemetry import tracing
from voicecall.telemetry.logs import get_logger
from voicecall.webhooks.policy import WebhookPolicy
from voicecall.webhooks.signing import WebhookSecret, check_webhook_id, signature_headers
from voicecall.webhooks.urls import (
    ADDRESS_RULES,
    ResolvedTarget,
    Resolver,
    WebhookDnsError,
    WebhookUrlRefused,
    resolve_and_check,
    system_resolver,
)

__all__ = ["MAX_RESPONSE_BYTES", "DeliveryResult", "deliver", "webhook_client"]

MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of a receiver's answer
USER_AGENT = f"voicecall-webhooks/{__version__}"
_NOT_RETRIED = frozenset({"refused_url", "refused_address", "http_410"})

log = get_logger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery attempt came to."""

    at: float  # epoch seconds when the attempt started
    status: int | None  # the receiver's HTTP status, if one arrived
    error: str | None  # None on success, else a short reason code (see the module docstring)
    duration_ms: float
    retry_after_s: float | None = None  # the receiver's Retry-After, when it sent one

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def retryable(self) -> bool:
        """A failure that another attempt may fix (not a refused URL, not a 410 Gone)."""
        return self.error is not None and self.error not in _NOT_RETRIED

    def as_dict(self) -> dict[str, float | int | str | None]:
        """For the job's record of delivery attempts."""
        return asdict(self)


def webhook_client(*, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """An ``AsyncClient`` fit for :func:`deliver`; share one to share the TLS context.

    No proxies or ``.netrc`` from the environment (``trust_env=False``; the CA bundle still
    honours ``SSL_CERT_FILE``), no redirects, and a cookie jar that keeps nothing. A fresh
    connection per delivery and no cap on the pool (the engine's WEBHOOK_CONCURRENCY slots
    bound them): a delivery cut by its deadline can leave httpcore's pool holding a
    connection it never frees (encode/httpcore#550), and a capped pool then refuses every
    later delivery with PoolTimeout. The simulator's callbacks met exactly that under load.
    """
    return httpx.AsyncClient(
        verify=verify if verify is not None else httpx.create_ssl_context(),
        trust_env=False,
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
    )


async def deliver(
    url: str,
    body: bytes,
    *,
    webhook_id: str,
    secret: WebhookSecret,
    policy: WebhookPolicy,
    deadline_s: float,
    client: httpx.AsyncClient | None = None,
    resolver: Resolver = system_resolver,
) -> DeliveryResult:
    """POST ``body`` (JSON) to ``url``, signed, within ``deadline_s`` seconds overall.

    ``webhook_id`` is stable per job event (the same on every retry). ``client``, if given,
    must come from :func:`webhook_client` (a client that reads proxies from the environment
    is refused with ``ValueError``); without one, a client is made for this delivery.
    """
    check_webhook_id(webhook_id)
    if not 0 < deadline_s <= 3600:
        raise ValueError("deadline_s must be above 0 and at most 3600 seconds")
    if client is not None and client.trust_env:
        raise ValueError("deliver() needs a client from webhook_client() (trust_env=False)")
    at, started = time.time(), time.monotonic()
    attempt = _Attempt()
    owned = client is None
    http = webhook_client() if client is None else client
    # A client span (tracing on) whose context the request carries as ``traceparent``: the
    # receiver's trace continues the job's. No URL in it: a receiver's may hold a secret.
    span = tracing.span(
        "webhook POST",
        kind="client",
        attributes={"http.request.method": "POST", "voicecall.webhook.id": webhook_id},
    )
    try:
        with span:
            async with asyncio.timeout(deadline_s):
                await attempt.run(url, body, webhook_id, secret, policy, deadline_s, http, resolver)
    except WebhookUrlRefused as exc:
        attempt.error = "refused_address" if exc.rule in ADDRESS_RULES else "refused_url"
        attempt.detail = exc.rule
    except WebhookDnsError:
        attempt.error = "dns_error"
    except (TimeoutError, httpx.TimeoutException):
        attempt.error = "timeout"
    except httpx.ConnectError:
        attempt.error = "connect_error"
    except httpx.RemoteProtocolError:
        attempt.error = "protocol_error"
    except httpx.TransportError:
        attempt.error = "network_error"
    except httpx.InvalidURL:
        attempt.error = "refused_url"
    except Exception:  # a bug met on the way: recorded and retried like any failure
        log.exception("webhook_attempt_error", webhook_id=webhook_id)
        attempt.error = "internal_error"
    finally:
        if owned:
            await http.aclose()
    result = DeliveryResult(
        at=at,
        status=attempt.status,
        error=attempt.error,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        retry_after_s=attempt.retry_after_s,
    )
    _log(result, webhook_id, attempt)
    return result


class _Attempt:
    """The state of one delivery, kept as it goes so a deadline cut still reports it."""

    def __init__(self) -> None:
        self.target: ResolvedTarget | None = None
        self.status: int | None = None
        self.error: str | None = None
        self.detail: str | None = None
        self.retry_after_s: float | None = None

    async def run(
        self,
        url: str,
        body: bytes,
        webhook_id: str,
        secret: WebhookSecret,
        policy: WebhookPolicy,
        deadline_s: float,
        http: httpx.AsyncClient,
        resolver: Resolver,
    ) -> None:
        self.target = target = await resolve_and_check(url, policy, resolver)
        tracing.set_attributes({"server.address": target.host, "url.scheme": target.scheme})
        request = _request(target, body, webhook_id, secret, deadline_s)
        response = await http.send(request, stream=True, auth=None, follow_redirects=False)
        try:
            self.status = response.status_code
            tracing.set_attributes({"http.response.status_code": response.status_code})
            self.retry_after_s = parse_retry_after(response.headers.get("retry-after"))
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= MAX_RESPONSE_BYTES:
                    break
        finally:
            await response.aclose()
        if not 200 <= response.status_code < 300:
            self.error = f"http_{response.status_code}"


def _request(
    target: ResolvedTarget, body: bytes, webhook_id: str, secret: WebhookSecret, timeout_s: float
) -> httpx.Request:
    headers = {
        "host": target.host_header,
        "user-agent": USER_AGENT,
        "content-type": "application/json",
        "connection": "close",
        **signature_headers(secret, webhook_id, int(time.time()), body),
    }
    tracing.inject(headers)  # traceparent: the receiver's trace continues the job's
    extensions: dict[str, object] = {"timeout": httpx.Timeout(timeout_s).as_dict()}
    if target.scheme == "https" and not target.host_is_ip:
        extensions["sni_hostname"] = target.host
    return httpx.Request(
        "POST", target.connect_url, headers=headers, content=body, extensions=extensions
    )


def _log(result: DeliveryResult, webhook_id: str, attempt: _Attempt) -> None:
    target = attempt.target
    fields = {
        "webhook_id": webhook_id,
        "target": target.origin if target is not None else None,
        "address": target.address if target is not None else None,
        "status": result.status,
        "error": result.error,
        "rule": attempt.detail,
        "duration_ms": result.duration_ms,
    }
    if result.ok:
        log.info("webhook_delivered", **fields)
    else:
        log.warning("webhook_failed", **fields)

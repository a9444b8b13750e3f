"""The eSMS HTTP client: one pooled ``httpx.Client`` per process, safe to share between threads.

Each public method validates (params), sends with retries inside the attempt (retry), and
reads the answer tolerantly (responses). httpx's exceptions and HTTP statuses are translated
here, most specific first, into :mod:`worker.esms.errors`, so callers never import httpx.

Nothing here logs a URL, a query string or a body (they carry ApiKey/SecretKey and the
phone): logs and metrics name the endpoint (``voice_otp``, ``record_call``, ...). Error
messages quote at most a short excerpt of an unexpected body, scrubbed of both credentials
and phone numbers.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, NoReturn, Self, TypeVar

import httpx

from voicecall import __version__
from voicecall.jobs import OtpParams, RecordParams, TemplateParams
from voicecall.logs import Redactor, get_logger
from voicecall.metrics import ESMS_LATENCY, ESMS_REQUESTS
from voicecall.retry_after import parse_retry_after
from voicecall.settings import Settings
from worker.esms import params
from worker.esms.errors import (
    CODE_ACCEPTED,
    CODE_DUPLICATE,
    ConfigurationError,
    InvalidParameter,
    RateLimited,
    TransportError,
    error_for_code,
)
from worker.esms.params import Credentials, EsmsRequest, Voice
from worker.esms.responses import (
    Balance,
    CallStatusReport,
    OtpStatusReport,
    Submission,
    error_message,
    parse_balance,
    parse_call_status,
    parse_otp_status,
    parse_submission,
    result_code,
)
from worker.esms.retry import RetryPolicy, call_with_retries, call_with_retries_async
from worker.esms.transport import AiohttpSender, Sender

R = TypeVar("R")
Body = dict[str, Any]
EXCERPT_CHARS = 120  # of an unexpected body, quoted in the error message
KEEPALIVE_CONNECTIONS = 32  # idle connections kept per (blocking) client
_SEND_CODES = frozenset({CODE_ACCEPTED, CODE_DUPLICATE})
_OK_CODES = frozenset({CODE_ACCEPTED})
_log = get_logger("worker.esms")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(head|script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


class _EsmsCore:
    """What both clients share: request building, reading answers, errors, metrics."""

    def __init__(self, settings: Settings) -> None:
        if not settings.esms_api_key or not settings.esms_secret_key:
            raise ConfigurationError(None, "ESMS_API_KEY and ESMS_SECRET_KEY must be set")
        self._settings = settings
        self._creds = Credentials(settings.esms_api_key, settings.esms_secret_key)
        self._zone = settings.zone
        self._policy = RetryPolicy.from_settings(settings)
        bases = {"rest": settings.esms_rest_url, "voice": settings.esms_voice_url}
        self._urls = {e: f"{bases[e.api]}/{e.path}" for e in params.ENDPOINTS}
        self._scrubber = Redactor([settings.esms_api_key, settings.esms_secret_key])
        self._timeout = httpx.Timeout(
            settings.esms_read_timeout_s, connect=settings.esms_connect_timeout_s
        )

    # --- requests -----------------------------------------------------------------

    def voice_otp_request(
        self,
        *,
        phone: str,
        content: str,
        request_id: str,
        callback_url: str | None = None,
        send_date: datetime | None = None,
        is_unicode: bool = False,
        brandname: str | None = None,
        sandbox: bool | None = None,
        campaign_id: str | None = None,
        method: Literal["post", "get"] | None = None,
    ) -> EsmsRequest:
        """Voice OTP (SmsType 8). Method, sandbox and brandname default to the settings.

        ``Sandbox`` and ``campaignid`` exist only on the POST form: a call asking for either
        goes by POST unless ``method="get"`` is passed explicitly (then InvalidParameter).
        """
        use_sandbox = self._settings.esms_sandbox if sandbox is None else sandbox
        if method is None:
            post_only = use_sandbox or campaign_id is not None
            method = "post" if post_only else self._settings.esms_otp_method
        return params.voice_otp(
            self._creds,
            phone=phone,
            content=content,
            request_id=request_id,
            zone=self._zone,
            callback_url=callback_url,
            send_date=send_date,
            is_unicode=is_unicode,
            brandname=self._settings.esms_brandname if brandname is None else brandname,
            sandbox=use_sandbox,
            campaign_id=campaign_id,
            method=method,
        )

    def call_record_request(
        self,
        *,
        phone: str,
        record_id: str,
        request_id: str,
        callback_url: str | None = None,
        send_date: datetime | None = None,
        number_forward: str | None = None,
        max_repeat: int | None = None,
        max_retry: int | None = None,
        ivr: int | None = None,
        time_wait_to_ivr: int | None = None,
        wait_retry: int | None = None,
    ) -> EsmsRequest:
        """MakeCallRecord_V2: call ``phone`` and play the recording ``record_id``."""
        return params.make_call_record(
            self._creds,
            phone=phone,
            record_id=record_id,
            request_id=request_id,
            zone=self._zone,
            callback_url=callback_url,
            send_date=send_date,
            number_forward=number_forward,
            max_repeat=max_repeat,
            max_retry=max_retry,
            ivr=ivr,
            time_wait_to_ivr=time_wait_to_ivr,
            wait_retry=wait_retry,
        )

    def call_template_request(
        self,
        *,
        phone: str,
        template_id: str,
        variables: Sequence[str],
        request_id: str,
        callback_url: str | None = None,
        send_date: datetime | None = None,
        voice: Voice | str | None = None,
        speed: int | None = None,
    ) -> EsmsRequest:
        """MakeCallTemplate_V2: call ``phone`` and read the template with ``variables``."""
        return params.make_call_template(
            self._creds,
            phone=phone,
            template_id=template_id,
            variables=variables,
            request_id=request_id,
            zone=self._zone,
            callback_url=callback_url,
            send_date=send_date,
            voice=voice,
            speed=speed,
        )

    def send_request(
        self,
        call: OtpParams | RecordParams | TemplateParams,
        *,
        phone: str,
        request_id: str,
        callback_url: str | None,
        send_date: datetime | None,
    ) -> EsmsRequest:
        """The send request for a job's typed parameters: one match on their type. The
        parameters' names are the builders' own (voicecall.jobs names each one once)."""
        common: dict[str, Any] = {
            "phone": phone,
            "request_id": request_id,
            "callback_url": callback_url,
            "send_date": send_date,
        }
        options = call.model_dump(exclude={"kind"}, exclude_none=True)
        match call:
            case OtpParams(content=str()):
                return self.voice_otp_request(**common, **options)
            case OtpParams():
                raise InvalidParameter("Content", "is gone: the job no longer holds its OTP code")
            case RecordParams():
                return self.call_record_request(**common, **options)
            case TemplateParams():
                return self.call_template_request(**common, **options)

    # --- reading answers ----------------------------------------------------------

    def _parse(
        self,
        request: EsmsRequest,
        parse: Callable[[int, Body], R],
        response: httpx.Response,
        elapsed: float,
        accept: Collection[int],
    ) -> R:
        endpoint = request.endpoint.name
        code, body = self._read(response, endpoint, accept, elapsed)
        try:
            return parse(code, body)
        except (ValueError, TypeError) as exc:
            raise TransportError(
                f"unreadable {code} body from {endpoint}: {exc}",
                reason="bad_body",
                endpoint=endpoint,
                http_status=response.status_code,
            ) from exc

    def _timeout_for(self, left_s: float) -> httpx.Timeout:
        if left_s < (self._timeout.read or 0.0):  # never outlive the attempt's budget
            return httpx.Timeout(left_s, connect=min(left_s, self._timeout.connect or left_s))
        return self._timeout

    def _transport_error(
        self, endpoint: str, exc: httpx.TransportError, started: float
    ) -> TransportError:
        """httpx's failures, most specific first, as this package's TransportError."""
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return self._failed(endpoint, "connect_error", exc, started)
        if isinstance(exc, httpx.TimeoutException):
            return self._failed(endpoint, "timeout", exc, started)
        return self._failed(endpoint, "transport_error", exc, started)

    def _url(self, request: EsmsRequest) -> httpx.URL:
        base = self._urls[request.endpoint]
        # one parse; our own encoding (%20 for a space) is kept as it is
        return httpx.URL(f"{base}?{request.query_string()}" if request.query else base)

    def _observed(self, endpoint: str, started: float) -> float:
        elapsed = time.perf_counter() - started
        ESMS_LATENCY.labels(endpoint=endpoint).observe(elapsed)
        return elapsed

    def _limits(self) -> httpx.Limits:
        # httpcore checks every idle connection on each request: keep few of them idle.
        connections = self._settings.esms_max_connections
        keepalive = min(connections, KEEPALIVE_CONNECTIONS)
        return httpx.Limits(max_connections=connections, max_keepalive_connections=keepalive)

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": f"voicecall/{__version__}"}

    def _failed(
        self, endpoint: str, reason: str, exc: httpx.TransportError, started: float
    ) -> TransportError:
        elapsed = time.perf_counter() - started
        ESMS_LATENCY.labels(endpoint=endpoint).observe(elapsed)
        self._record(endpoint, reason, elapsed)
        message = f"{type(exc).__name__} on {endpoint}: {self._excerpt(str(exc))}"
        return TransportError(message, reason=reason, endpoint=endpoint)

    def _read(
        self, response: httpx.Response, endpoint: str, accept: Collection[int], elapsed: float
    ) -> tuple[int, Body]:
        """The eSMS code and body of an HTTP answer, or the matching error."""
        status = response.status_code
        if status == 429:
            self._record(endpoint, "http_429", elapsed)
            raise RateLimited(
                f"HTTP 429 from {endpoint}",
                reason="http_429",
                endpoint=endpoint,
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500 or status == 408:
            label = f"http_{status}"
            self._record(endpoint, label, elapsed)
            raise TransportError(
                f"HTTP {status} from {endpoint}: {self._excerpt(response.text)}",
                reason=label,
                endpoint=endpoint,
                http_status=status,
            )
        body = _json_object(response.content)
        code = result_code(body) if body is not None else None
        if body is None or code is None:
            self._unreadable(response, endpoint, elapsed)
        self._record(endpoint, str(code), elapsed)
        if code in accept:
            return code, body
        raise error_for_code(
            code,
            error_message(body),
            endpoint=endpoint,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
        )

    def _unreadable(self, response: httpx.Response, endpoint: str, elapsed: float) -> NoReturn:
        """No eSMS code in the answer: retryable on 2xx (bad_body), a setup error otherwise."""
        status = response.status_code
        excerpt = self._excerpt(response.text)
        if 200 <= status < 300:
            self._record(endpoint, "bad_body", elapsed)
            raise TransportError(
                f"HTTP {status} from {endpoint} without an eSMS code: {excerpt}",
                reason="bad_body",
                endpoint=endpoint,
                http_status=status,
            )
        self._record(endpoint, f"http_{status}", elapsed)
        raise ConfigurationError(
            None, f"HTTP {status} from {endpoint} (check ESMS_*_URL): {excerpt}", endpoint=endpoint
        )

    def _record(self, endpoint: str, code: str, elapsed_s: float) -> None:
        ESMS_REQUESTS.labels(endpoint=endpoint, code=code).inc()
        _log.debug("esms_request", endpoint=endpoint, code=code, elapsed_ms=round(elapsed_s * 1e3))

    def _excerpt(self, text: str) -> str:
        """A short, single-line, scrubbed quote of ``text`` for an error message."""
        flat = self._scrubber.scrub(" ".join(_visible_text(text).split()))  # before cutting
        short = flat[:EXCERPT_CHARS] + ("…" if len(flat) > EXCERPT_CHARS else "")
        return repr(short) if short else "(empty body)"


class EsmsClient(_EsmsCore):
    """Places calls and reads their state through eSMS (or the simulator), blocking.

    One pooled ``httpx.Client``, safe to share between threads. The worker's send engine
    uses :class:`AsyncEsmsClient`; this one serves the CLI, the scheduler and tests.
    """

    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(settings)
        self._http = httpx.Client(
            timeout=self._timeout,
            limits=self._limits(),
            transport=transport,
            follow_redirects=False,
            headers=self._headers(),
        )
        self.sleep: Callable[[float], None] = time.sleep  # tests may replace it

    def send_voice_otp(self, **options: Any) -> Submission:
        """Voice OTP (SmsType 8); options as :meth:`voice_otp_request`."""
        return self._exchange(self.voice_otp_request(**options), _SEND_CODES, parse_submission)

    def make_call_record(self, **options: Any) -> Submission:
        """MakeCallRecord_V2; options as :meth:`call_record_request`."""
        return self._exchange(self.call_record_request(**options), _SEND_CODES, parse_submission)

    def make_call_template(self, **options: Any) -> Submission:
        """MakeCallTemplate_V2; options as :meth:`call_template_request`."""
        return self._exchange(self.call_template_request(**options), _SEND_CODES, parse_submission)

    def call_status(self, smsid: str) -> CallStatusReport:
        """voiceapi GetSendStatus by SMSID; :class:`NotReady` (105) while not known yet."""
        request = params.call_status(self._creds, smsid)
        return self._exchange(request, _OK_CODES, lambda _c, body: parse_call_status(body))

    def otp_status(self, smsid: str) -> OtpStatusReport:
        """rest GetSendStatus by SMSID; :class:`NotReady` (105) while not known yet."""
        request = params.otp_status(self._creds, smsid)
        return self._exchange(request, _OK_CODES, lambda _c, body: parse_otp_status(body))

    def balance(self) -> Balance:
        """GetBalance_json: the account's main balance."""
        request = params.balance(self._creds)
        return self._exchange(request, _OK_CODES, lambda _c, body: parse_balance(body))

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _exchange(
        self, request: EsmsRequest, accept: Collection[int], parse: Callable[[int, Body], R]
    ) -> R:
        endpoint = request.endpoint.name
        url = self._url(request)

        def once(left_s: float) -> R:
            started = time.perf_counter()
            try:
                response = self._http.request(
                    request.endpoint.method,
                    url,
                    json=request.body,
                    timeout=self._timeout_for(left_s),
                )
            except httpx.TransportError as exc:
                raise self._transport_error(endpoint, exc, started) from exc
            return self._parse(request, parse, response, self._observed(endpoint, started), accept)

        return call_with_retries(once, endpoint=endpoint, policy=self._policy, sleep=self.sleep)


class AsyncEsmsClient(_EsmsCore):
    """The send engine's client: the same requests and rules, sent through aiohttp
    (worker.esms.transport), read as httpx responses.

    Every exchange (all its tries and waits) runs under one overall deadline,
    ``ESMS_ATTEMPT_BUDGET_S``: httpx's timeouts apply to each read, so a server that trickles
    its answer could otherwise hold a request far longer. A hung request holds a coroutine,
    never a worker thread.
    """

    def __init__(self, settings: Settings, *, sender: Sender | None = None) -> None:
        super().__init__(settings)
        self._sender = sender or AiohttpSender(
            max_connections=settings.esms_max_connections, headers=self._headers()
        )

    async def send(
        self,
        call: OtpParams | RecordParams | TemplateParams,
        *,
        phone: str,
        request_id: str,
        callback_url: str | None,
        send_date: datetime | None,
    ) -> Submission:
        request = self.send_request(
            call,
            phone=phone,
            request_id=request_id,
            callback_url=callback_url,
            send_date=send_date,
        )
        return await self._exchange(request, _SEND_CODES, parse_submission)

    async def call_status(self, smsid: str) -> CallStatusReport:
        request = params.call_status(self._creds, smsid)
        return await self._exchange(request, _OK_CODES, lambda _c, body: parse_call_status(body))

    async def otp_status(self, smsid: str) -> OtpStatusReport:
        request = params.otp_status(self._creds, smsid)
        return await self._exchange(request, _OK_CODES, lambda _c, body: parse_otp_status(body))

    async def balance(self) -> Balance:
        request = params.balance(self._creds)
        return await self._exchange(request, _OK_CODES, lambda _c, body: parse_balance(body))

    async def close(self) -> None:
        await self._sender.aclose()

    async def _exchange(
        self, request: EsmsRequest, accept: Collection[int], parse: Callable[[int, Body], R]
    ) -> R:
        endpoint = request.endpoint.name
        base = self._urls[request.endpoint]
        url = f"{base}?{request.query_string()}" if request.query else base

        async def once(left_s: float) -> R:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(left_s + self._policy.base_s):
                    response = await self._sender.request(
                        request.endpoint.method, url, request.body, self._timeout_for(left_s)
                    )
            except TimeoutError as exc:
                timed_out = httpx.ReadTimeout("no complete answer within the attempt's budget")
                raise self._transport_error(endpoint, timed_out, started) from exc
            except httpx.TransportError as exc:
                raise self._transport_error(endpoint, exc, started) from exc
            return self._parse(request, parse, response, self._observed(endpoint, started), accept)

        return await call_with_retries_async(once, endpoint=endpoint, policy=self._policy)


def _json_object(content: bytes) -> Body | None:
    try:
        data = json.loads(content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _visible_text(body: str) -> str:
    """An HTML error page as its title and visible text (IIS pages start with a DOCTYPE)."""
    if "<" not in body:
        return body
    title = _TITLE.search(body)
    text = _TAG.sub(" ", _HIDDEN.sub(" ", body))
    return html.unescape((f"{title.group(1).strip()} | " if title else "") + text)

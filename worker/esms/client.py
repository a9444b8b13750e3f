"""The eSMS HTTP client: one pooled ``httpx.Client`` per process, safe to share between threads.

Each public method builds its request (params, from the job's typed parameters), sends it with
retries inside the attempt (retry), and reads the answer (http_answers, then
voicecall.esms.results, the one reader of eSMS's answers). httpx's
exceptions and HTTP statuses become :mod:`worker.esms.errors` (http_answers), so callers never
import httpx.

Nothing here logs a URL, a query string or a body (they carry ApiKey/SecretKey and the
phone): logs and metrics name the endpoint (``voice_otp``, ``record_call``, ...). Error
messages quote at most a short excerpt of an unexpected body, scrubbed of both credentials
and phone numbers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from datetime import datetime
from types import TracebackType
from typing import Self

import httpx

from voicecall import __version__
from voicecall.config.settings import Settings
from voicecall.esms.results import (
    Balance,
    Report,
    Submission,
    read_balance,
    read_sms,
    read_submission,
    read_voice,
)
from voicecall.job.params import OtpParams, RecordParams, TemplateParams
from voicecall.telemetry.logs import Redactor
from worker.esms import params
from worker.esms.errors import (
    CODE_ACCEPTED,
    CODE_DUPLICATE,
    ConfigurationError,
)
from worker.esms.http_answers import Body, HttpAnswers, R
from worker.esms.params import Credentials, EsmsRequest, OtpDefaults, Target
from worker.esms.retry import RetryPolicy, call_with_retries, call_with_retries_async
from worker.esms.transport import AiohttpSender, Sender

KEEPALIVE_CONNECTIONS = 32  # idle connections kept per (blocking) client
_SEND_CODES = frozenset({CODE_ACCEPTED, CODE_DUPLICATE})
_OK_CODES = frozenset({CODE_ACCEPTED})
Call = OtpParams | RecordParams | TemplateParams


def _submission(code: int, body: Body) -> Submission:
    return read_submission(code, body, duplicate=code == CODE_DUPLICATE)


def _voice(_code: int, body: Body) -> Report:
    return read_voice(body)


def _sms(_code: int, body: Body) -> Report:
    return read_sms(body)


def _balance(_code: int, body: Body) -> Balance:
    return read_balance(body)


class _EsmsCore(HttpAnswers):
    """What both clients share: the account, the URLs, timeouts and the retry policy; request
    building (worker.esms.params) and reading answers (worker.esms.http_answers)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.esms_api_key or not settings.esms_secret_key:
            raise ConfigurationError(None, "ESMS_API_KEY and ESMS_SECRET_KEY must be set")
        self._settings = settings
        self._creds = Credentials(settings.esms_api_key, settings.esms_secret_key)
        self._zone = settings.zone
        self._otp_defaults = OtpDefaults(
            settings.esms_otp_method, settings.esms_sandbox, settings.esms_brandname
        )
        self._policy = RetryPolicy.from_settings(settings)
        bases = {"rest": settings.esms_rest_url, "voice": settings.esms_voice_url}
        self._urls = {e: f"{bases[e.api]}/{e.path}" for e in params.ENDPOINTS}
        self._scrubber = Redactor([settings.esms_api_key, settings.esms_secret_key])
        self._timeout = httpx.Timeout(
            settings.esms_read_timeout_s, connect=settings.esms_connect_timeout_s
        )

    def _send_request(self, call: Call, target: Target) -> EsmsRequest:
        return params.send_request(self._creds, call, target, self._zone, self._otp_defaults)

    def _timeout_for(self, left_s: float) -> httpx.Timeout:
        if left_s < (self._timeout.read or 0.0):  # never outlive the attempt's budget
            return httpx.Timeout(left_s, connect=min(left_s, self._timeout.connect or left_s))
        return self._timeout

    def _url(self, request: EsmsRequest) -> httpx.URL:
        base = self._urls[request.endpoint]
        # one parse; our own encoding (%20 for a space) is kept as it is
        return httpx.URL(f"{base}?{request.query_string()}" if request.query else base)

    def _limits(self) -> httpx.Limits:
        # httpcore checks every idle connection on each request: keep few of them idle.
        connections = self._settings.esms_max_connections
        keepalive = min(connections, KEEPALIVE_CONNECTIONS)
        return httpx.Limits(max_connections=connections, max_keepalive_connections=keepalive)

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": f"voicecall/{__version__}"}


class EsmsClient(_EsmsCore):
    """Reads calls' state and the balance through eSMS (or the simulator), blocking.

    One pooled ``httpx.Client``, safe to share between threads. Calls are placed only by the
    worker's send engine, through :class:`AsyncEsmsClient`; this one serves the CLI and the
    worker's scheduler (status lookups, the balance).
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

    def call_status(self, smsid: str) -> Report:
        """voiceapi GetSendStatus by SMSID; :class:`NotReady` (105) while not known yet."""
        return self._exchange(params.call_status(self._creds, smsid), _OK_CODES, _voice)

    def otp_status(self, smsid: str) -> Report:
        """rest GetSendStatus by SMSID; :class:`NotReady` (105) while not known yet."""
        return self._exchange(params.otp_status(self._creds, smsid), _OK_CODES, _sms)

    def balance(self) -> Balance:
        """GetBalance_json: the account's main balance."""
        return self._exchange(params.balance(self._creds), _OK_CODES, _balance)

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
        call: Call,
        *,
        phone: str,
        request_id: str,
        callback_url: str | None = None,
        send_date: datetime | None = None,
    ) -> Submission:
        target = Target(phone, request_id, callback_url, send_date)  # RequestId: the job id
        request = self._send_request(call, target)
        return await self._exchange(request, _SEND_CODES, _submission)

    async def call_status(self, smsid: str) -> Report:
        return await self._exchange(params.call_status(self._creds, smsid), _OK_CODES, _voice)

    async def otp_status(self, smsid: str) -> Report:
        return await self._exchange(params.otp_status(self._creds, smsid), _OK_CODES, _sms)

    async def balance(self) -> Balance:
        return await self._exchange(params.balance(self._creds), _OK_CODES, _balance)

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

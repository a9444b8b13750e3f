"""The GET eSMS makes to a call's ``CallbackUrl`` when the call ends, with its resends.

Voice calls (record/template) carry ``ReferenceId, CallDuration, CallStatus, Ivr, Price,
SentResult, CID, SendStatus``; Voice OTP carries the SMS-style fields ``SMSID, SendFailed,
SendStatus, SendSuccess, TotalPrice, TotalReceiver, TotalSent, RequestId, TypeId, telcoid,
phonenumber``. Anything but HTTP 200 (or no answer in time) is sent again, up to
``callback_retries`` times, ``callback_retry_delay_s`` (scaled) apart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from simulator.config import SimConfig
from simulator.phones import telco_id
from simulator.state import CallbackAttempt, CallRecord, Stats

log = logging.getLogger("simulator.callbacks")

OTP_TYPE_ID = "8"  # SmsType of Voice OTP, reported as TypeId


def money(amount: int) -> str:
    """A price as eSMS writes it in callbacks: ``850.0000``."""
    return f"{amount:.4f}"


def callback_fields(record: CallRecord, config: SimConfig) -> dict[str, str]:
    """The eSMS fields of the callback for a finished ``record``."""
    ok = record.sent_ok
    price = record.price if ok else 0
    if record.kind == "otp":
        return {
            "SMSID": record.smsid,
            "SendFailed": "0" if ok else "1",
            "SendStatus": "5",
            "SendSuccess": "1" if ok else "0",
            "TotalPrice": money(price),
            "TotalReceiver": "1",
            "TotalSent": "1",
            "RequestId": record.request_id,
            "TypeId": OTP_TYPE_ID,
            "telcoid": telco_id(record.national),
            "phonenumber": record.national,
        }
    return {
        "ReferenceId": record.smsid,
        "CallDuration": str(record.plan.call_duration_s),
        "CallStatus": record.call_status(config.callback_noanswer_status),
        "Ivr": "",
        "Price": money(price),
        "SentResult": str(record.sent_result),
        "CID": config.cid,
        "SendStatus": "5",
    }


def callback_url(url: str, fields: dict[str, str], mode: str) -> str:
    """``url`` with ``fields`` in its query: replacing same-named keys ("merge") or after them."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if mode == "merge":
        names = {name.lower() for name in fields}
        pairs = [(key, value) for key, value in pairs if key.lower() not in names]
    pairs.extend(fields.items())
    return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote)))


class CallbackSender:
    """Sends callbacks with the fault knobs of the current config (drop, duplicate)."""

    def __init__(
        self,
        config: Callable[[], SimConfig],
        rng: random.Random,
        stats: Callable[[], Stats],
    ) -> None:
        self._config = config
        self._rng = rng
        self._stats = stats
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        """Close the HTTP client, if one was opened."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # A fresh connection per callback and no cap: under load, a connect or read
            # timeout can leave httpcore's pool holding connections it never frees
            # (encode/httpcore#550), and every later callback then fails with PoolTimeout.
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            )
        return self._client

    async def send(self, record: CallRecord) -> None:
        """Deliver the callback of ``record`` (maybe dropped, maybe twice) with resends."""
        config, stats = self._config(), self._stats()
        stats.callbacks["due"] += 1
        if config.callback_drop_rate and self._rng.random() < config.callback_drop_rate:
            record.callback_fate = "dropped"
            stats.callbacks["dropped"] += 1
            log.info("callback dropped smsid=%s", record.smsid)
            return
        deliveries = 1
        if config.callback_duplicate_rate and self._rng.random() < config.callback_duplicate_rate:
            deliveries = 2
            record.callback_fate = "duplicated"
            stats.callbacks["duplicated"] += 1
        url = callback_url(
            record.callback_url, callback_fields(record, config), config.callback_query_mode
        )
        for delivery in range(1, deliveries + 1):
            await self._deliver(record, url, delivery)

    async def _deliver(self, record: CallRecord, url: str, delivery: int) -> None:
        stats = self._stats()
        stats.callbacks["sent"] += 1
        for attempt in range(1 + self._config().callback_retries):
            if attempt:
                await asyncio.sleep(self._config().scaled(self._config().callback_retry_delay_s))
            status_code, error = await self._get(url)
            record.callbacks.append(CallbackAttempt(time.time(), delivery, status_code, error))
            stats.callbacks["attempted"] += 1
            log.info(
                "callback smsid=%s attempt=%d status=%s",
                record.smsid,
                attempt + 1,
                status_code or error,
            )
            if status_code == 200:
                stats.callbacks["delivered"] += 1
                return
            stats.callbacks["failed_attempts"] += 1
        stats.callbacks["gave_up"] += 1

    async def _get(self, url: str) -> tuple[int | None, str | None]:
        try:
            response = await self._http().get(url, timeout=self._config().callback_timeout_s)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            return None, type(exc).__name__
        return response.status_code, None

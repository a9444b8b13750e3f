"""``voicecall.AsyncClient``: the asyncio client of the HTTP API (httpx), method for method
:class:`voicecall.Client`'s, each awaited (the iterators are ``async for``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import IO, Any, Unpack

import httpx

from voicecall.client import _operations as op
from voicecall.client._export import CsvRows, output
from voicecall.client._transport import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    Attempts,
    Connection,
    RetryPolicy,
)
from voicecall.client.errors import ConnectionFailed
from voicecall.client.models import BatchResult, BulkOperation, CallPage, CampaignSummary
from voicecall.job.contract import AnyCall
from voicecall.job.records import JobView
from voicecall.job.states import Kind


class AsyncClient:
    """The voicecall HTTP API, for asyncio: as :class:`voicecall.Client`, awaited.

    ``async with AsyncClient() as client: job = await client.create_otp_call(...)``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: RetryPolicy = DEFAULT_RETRIES,
    ) -> None:
        connection = Connection.resolve(base_url, token, timeout_s)
        self.base_url, self.retries = connection.base_url, retries
        self._http = connection.open(httpx.AsyncClient)

    def __repr__(self) -> str:
        return f"AsyncClient({self.base_url!r})"  # never the token

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- creating calls ------------------------------------------------------------------

    async def create_otp_call(
        self, phone: str, content: str, **options: Unpack[op.OtpOptions]
    ) -> JobView:
        call = op.create_kind(Kind.VOICE_OTP, {"phone": phone, "content": content}, options)
        return op.job(await self._send(call))

    async def create_record_call(
        self, phone: str, record_id: str, **options: Unpack[op.RecordOptions]
    ) -> JobView:
        call = op.create_kind(Kind.RECORD_CALL, {"phone": phone, "record_id": record_id}, options)
        return op.job(await self._send(call))

    async def create_template_call(
        self,
        phone: str,
        template_id: str,
        variables: Sequence[str] = (),
        **options: Unpack[op.TemplateOptions],
    ) -> JobView:
        fields = {"phone": phone, "template_id": template_id, "variables": list(variables)}
        return op.job(await self._send(op.create_kind(Kind.TEMPLATE_CALL, fields, options)))

    async def create_call(self, call: AnyCall | Mapping[str, Any]) -> JobView:
        return op.job(await self._send(op.create(call)))

    async def create_batch(
        self, calls: Sequence[AnyCall | Mapping[str, Any]], *, campaign: str | None = None
    ) -> BatchResult:
        return op.batch(await self._send(op.create_batch(calls, campaign)))

    # --- one job -------------------------------------------------------------------------

    async def get_call(self, job_id: str) -> JobView:
        return op.job(await self._send(op.get_call(job_id)))

    async def find_by_smsid(self, smsid: str) -> JobView:
        return op.job(await self._send(op.find_by_smsid(smsid)))

    async def cancel_call(self, job_id: str, *, reason: str | None = None) -> JobView:
        return op.job(await self._send(op.cancel_call(job_id, reason)))

    # --- finding jobs --------------------------------------------------------------------

    async def list_calls(
        self, *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[op.Filters]
    ) -> CallPage:
        return op.page(await self._send(op.list_calls(filters, limit, cursor)))

    async def iter_calls(
        self, *, page_size: int = op.PAGE_SIZE, **filters: Unpack[op.Filters]
    ) -> AsyncIterator[JobView]:
        cursor: str | None = None
        while True:
            page = await self.list_calls(limit=page_size, cursor=cursor, **filters)
            for job in page.data:
                yield job
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def export_calls(
        self, out: str | os.PathLike[str] | IO[bytes], **filters: Unpack[op.Filters]
    ) -> int:
        """As :meth:`voicecall.Client.export_calls`; the file is written as chunks arrive."""
        rows = CsvRows()
        async with self._stream(op.export_calls(filters)) as response:
            with output(out) as sink:
                async for chunk in response.aiter_bytes():
                    sink.write(chunk)
                    rows.feed(chunk)
        rows.end()
        return rows.count

    async def iter_export_rows(
        self, **filters: Unpack[op.Filters]
    ) -> AsyncIterator[dict[str, str]]:
        rows = CsvRows()
        async with self._stream(op.export_calls(filters)) as response:
            async for chunk in response.aiter_bytes():
                for row in rows.feed(chunk):
                    yield row
        for row in rows.end():
            yield row

    # --- campaigns and probes ------------------------------------------------------------

    async def list_campaigns(self) -> list[CampaignSummary]:
        return op.campaigns(await self._send(op.list_campaigns()))

    async def get_campaign(self, name: str) -> CampaignSummary:
        return op.campaign(await self._send(op.show_campaign(name)))

    async def cancel_scheduled_calls(
        self, *, reason: str | None = None, **filters: Unpack[op.Filters]
    ) -> BulkOperation:
        return op.bulk_op(await self._send(op.bulk_cancel(filters, reason)))

    async def requeue_dead_letters(self, queue: str) -> BulkOperation:
        return op.bulk_op(await self._send(op.bulk_requeue(queue)))

    async def get_bulk_operation(self, op_id: str) -> BulkOperation:
        return op.bulk_op(await self._send(op.bulk_operation(op_id)))

    async def alive(self) -> bool:
        try:
            return op.checked(await self._send(op.healthz())).is_success
        except ConnectionFailed:
            return False

    async def ready(self) -> bool:
        try:
            return op.is_ready(await self._send(op.readyz()))
        except ConnectionFailed:
            return False

    # --- sending -------------------------------------------------------------------------

    async def _send(self, call: op.Call, *, stream: bool = False) -> httpx.Response:
        request = call.request(self._http)
        attempts = Attempts(self.retries, call.retryable)
        while True:
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                await asyncio.sleep(attempts.after_failure(exc))
                continue
            delay_s = attempts.after_answer(response)
            if delay_s is None:
                if stream and not response.is_success:
                    await response.aread()
                return response
            await response.aclose()
            await asyncio.sleep(delay_s)

    @contextlib.asynccontextmanager
    async def _stream(self, call: op.Call) -> AsyncIterator[httpx.Response]:
        response = op.checked(await self._send(call, stream=True))
        try:
            yield response
        except httpx.HTTPError as exc:
            raise op.stream_broken(exc) from exc
        finally:
            await response.aclose()

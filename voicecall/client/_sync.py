"""``voicecall.Client``: the blocking client of the HTTP API (httpx)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
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


class Client:
    """The voicecall HTTP API, blocking.

    ``Client()`` reads ``VOICECALL_URL`` and ``VOICECALL_TOKEN``; ``Client(url, token)`` takes
    them. ``timeout_s`` bounds connecting and each read and write; ``retries`` says how often a
    request is tried again (voicecall.client._transport). Errors: voicecall.client.errors.
    Use it as a context manager, or :meth:`close` it.
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
        self._http = connection.open(httpx.Client)

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"  # never the token

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- creating calls ------------------------------------------------------------------

    def create_otp_call(
        self, phone: str, content: str, **options: Unpack[op.OtpOptions]
    ) -> JobView:
        """A Voice OTP call: eSMS reads ``content`` out. The job never shows the code again."""
        call = op.create_kind(Kind.VOICE_OTP, {"phone": phone, "content": content}, options)
        return op.job(self._send(call))

    def create_record_call(
        self, phone: str, record_id: str, **options: Unpack[op.RecordOptions]
    ) -> JobView:
        """A call that plays recording ``record_id`` of the eSMS account."""
        call = op.create_kind(Kind.RECORD_CALL, {"phone": phone, "record_id": record_id}, options)
        return op.job(self._send(call))

    def create_template_call(
        self,
        phone: str,
        template_id: str,
        variables: Sequence[str] = (),
        **options: Unpack[op.TemplateOptions],
    ) -> JobView:
        """A text-to-speech call from script ``template_id``, its ``variables`` in order."""
        fields = {"phone": phone, "template_id": template_id, "variables": list(variables)}
        return op.job(self._send(op.create_kind(Kind.TEMPLATE_CALL, fields, options)))

    def create_call(self, call: AnyCall | Mapping[str, Any]) -> JobView:
        """Any kind: a model of voicecall.job.contract, or a mapping as ``POST /v1/calls`` takes it.

        Its ``idempotency_key`` (a new one if it has none) goes with every try, so a retry
        gives back the same job (``replay`` is then True) and never a second call.
        """
        return op.job(self._send(op.create(call)))

    def create_batch(
        self, calls: Sequence[AnyCall | Mapping[str, Any]], *, campaign: str | None = None
    ) -> BatchResult:
        """Up to 1,000 calls, each stored or refused on its own (``results``), all in
        ``campaign`` if given; each call gets a key if it has none, so a retry is safe."""
        return op.batch(self._send(op.create_batch(calls, campaign)))

    # --- one job -------------------------------------------------------------------------

    def get_call(self, job_id: str) -> JobView:
        """The job with its history; :class:`NotFound` past its retention."""
        return op.job(self._send(op.get_call(job_id)))

    def find_by_smsid(self, smsid: str) -> JobView:
        """The job eSMS knows by ``smsid``."""
        return op.job(self._send(op.find_by_smsid(smsid)))

    def cancel_call(self, job_id: str, *, reason: str | None = None) -> JobView:
        """Cancel a job not yet handed to eSMS (:class:`Conflict` once it was). Never
        retried: a cancel carries no idempotency key."""
        return op.job(self._send(op.cancel_call(job_id, reason)))

    # --- finding jobs --------------------------------------------------------------------

    def list_calls(
        self, *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[op.Filters]
    ) -> CallPage:
        """One page of the jobs ``filters`` match, newest first; pass its ``next_cursor``
        as ``cursor`` (with the same filters) for the next one."""
        return op.page(self._send(op.list_calls(filters, limit, cursor)))

    def iter_calls(
        self, *, page_size: int = op.PAGE_SIZE, **filters: Unpack[op.Filters]
    ) -> Iterator[JobView]:
        """Every job ``filters`` match, newest first, following the cursors (each job once)."""
        cursor: str | None = None
        while True:
            page = self.list_calls(limit=page_size, cursor=cursor, **filters)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def export_calls(
        self, out: str | os.PathLike[str] | IO[bytes], **filters: Unpack[op.Filters]
    ) -> int:
        """Stream the CSV export of the jobs ``filters`` match into ``out`` (a path, opened
        only once the API has answered 200, or a binary file); returns its rows."""
        rows = CsvRows()
        with self._stream(op.export_calls(filters)) as response, output(out) as sink:
            for chunk in response.iter_bytes():
                sink.write(chunk)
                rows.feed(chunk)
        rows.end()
        return rows.count

    def iter_export_rows(self, **filters: Unpack[op.Filters]) -> Iterator[dict[str, str]]:
        """The CSV export's rows as they stream, each a dict keyed by the header's columns."""
        rows = CsvRows()
        with self._stream(op.export_calls(filters)) as response:
            for chunk in response.iter_bytes():
                yield from rows.feed(chunk)
        yield from rows.end()

    # --- campaigns and probes ------------------------------------------------------------

    def list_campaigns(self) -> list[CampaignSummary]:
        """Every campaign with its figures, newest first."""
        return op.campaigns(self._send(op.list_campaigns()))

    def get_campaign(self, name: str) -> CampaignSummary:
        """A campaign's figures; :class:`NotFound` when no job ever had this label."""
        return op.campaign(self._send(op.show_campaign(name)))

    def cancel_scheduled_calls(
        self, *, reason: str | None = None, **filters: Unpack[op.Filters]
    ) -> BulkOperation:
        """Cancel every scheduled call ``filters`` match (those of :meth:`list_calls` but
        ``state`` and ``outcome``; a campaign: ``labels={"campaign": NAME}``). The work goes on
        in the API; read its progress with :meth:`get_bulk_operation`."""
        return op.bulk_op(self._send(op.bulk_cancel(filters, reason)))

    def requeue_dead_letters(self, queue: str) -> BulkOperation:
        """Requeue every dead letter of ``queue`` (voicecall-otp, -bulk, -status, -webhooks)."""
        return op.bulk_op(self._send(op.bulk_requeue(queue)))

    def get_bulk_operation(self, op_id: str) -> BulkOperation:
        """A bulk action and how far it got; :class:`NotFound` past its week."""
        return op.bulk_op(self._send(op.bulk_operation(op_id)))

    def alive(self) -> bool:
        """``GET /healthz`` once: the API process answers."""
        try:
            return op.checked(self._send(op.healthz())).is_success
        except ConnectionFailed:
            return False

    def ready(self) -> bool:
        """``GET /readyz`` once: the API answers and reaches Redis."""
        try:
            return op.is_ready(self._send(op.readyz()))
        except ConnectionFailed:
            return False

    # --- sending -------------------------------------------------------------------------

    def _send(self, call: op.Call, *, stream: bool = False) -> httpx.Response:
        """The final answer to ``call`` after the retries its policy allows (body read
        unless ``stream``; an error's body is always read)."""
        request = call.request(self._http)
        attempts = Attempts(self.retries, call.retryable)
        while True:
            try:
                response = self._http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                time.sleep(attempts.after_failure(exc))
                continue
            delay_s = attempts.after_answer(response)
            if delay_s is None:
                if stream and not response.is_success:
                    response.read()
                return response
            response.close()
            time.sleep(delay_s)

    @contextlib.contextmanager
    def _stream(self, call: op.Call) -> Iterator[httpx.Response]:
        response = op.checked(self._send(call, stream=True))
        try:
            yield response
        except httpx.HTTPError as exc:
            raise op.stream_broken(exc) from exc
        finally:
            response.close()

"""The in-cluster, Redis-direct producer: enqueue calls, look them up and cancel them, with
only ``REDIS_URL``, for voicecall's own processes and tools (the API, the CLI, the console).

Other systems use the HTTP API's client, :class:`voicecall.Client`, instead: it goes through
the API's tokens, quotas and client names, and needs no Redis address or credentials.

>>> from producer import VoiceCallClient
>>> client = VoiceCallClient.from_env()                       # doctest: +SKIP
>>> job = client.enqueue_otp("0901234567", "Ma cua ban la 123456")  # doctest: +SKIP
>>> client.get(job.id).state                                # doctest: +SKIP
<State.QUEUED: 'queued'>

Every job comes as a :class:`~voicecall.job.records.JobView`, the same shape the HTTP API
answers with (``job.model_dump(mode="json")`` gives that JSON). Jobs made here record the
client ``python`` (``client_name=`` names another: its idempotency keys and cursors are then
that client's, as if it came through the HTTP API; voicecall.config.clients). Finding jobs takes the filters
of ``GET /v1/calls`` as keywords:

>>> page = client.list_calls(state=["scheduled", "retrying"], labels={"campaign": "tet"})  # doctest: +SKIP
>>> client.campaign("tet").answer_rate                               # doctest: +SKIP
0.81
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from pydantic import BaseModel, Field

from producer.fields import validate_call
from producer.intake import Intake
from producer.search import cursors, export, walk
from producer.search.campaigns import CampaignSummary, campaign, campaigns
from producer.search.filters import Filters
from producer.search.query import FILTER_PARAMS, parse_filters
from voicecall.config.clients import PYTHON_CLIENT, check_client_name
from voicecall.config.settings import Settings, load_settings
from voicecall.errors import (
    CampaignNotFound,
    CancelRefused,
    FieldRefused,
    JobNotFound,
    SearchError,
)
from voicecall.formats.query_pairs import filter_pairs
from voicecall.job import lifecycle
from voicecall.job.contract import check_cancel_reason, validation_context
from voicecall.job.records import JobView
from voicecall.job.states import State
from voicecall.job.steps import Verdict
from voicecall.store.job_store import JobStore
from voicecall.telemetry.carriers import checked_carrier

__all__ = [
    "CallPage",
    "CampaignNotFound",
    "CampaignSummary",
    "CancelRefused",
    "FieldRefused",
    "JobNotFound",
    "JobView",
    "SearchError",
    "VoiceCallClient",
]


class CallPage(BaseModel):
    """One page of a search."""

    data: list[JobView] = Field(description="Newest first, without their history.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null last.")


class VoiceCallClient:
    """Enqueue and manage call jobs from Python.

    Invalid input raises :class:`~voicecall.errors.IntakeError` whose ``errors`` name each
    field and rule in plain words (as the API's 422 does); nothing is stored then.
    """

    def __init__(
        self, settings: Settings, store: JobStore, *, client_name: str = PYTHON_CLIENT
    ) -> None:
        self.settings = settings
        self.store = store
        self.intake = Intake(settings, store)
        self.client_name = check_client_name(client_name)

    @classmethod
    def from_env(cls, *, client_name: str = PYTHON_CLIENT, **overrides: Any) -> VoiceCallClient:
        """Build from the environment (only ``REDIS_URL`` is needed)."""
        settings = load_settings(**overrides).require("producer")
        return cls(settings, JobStore.from_settings(settings), client_name=client_name)

    @property
    def caller(self) -> cursors.Caller:
        """This client as a search sees it: its cursors are its own, signed with the key
        CALLBACK_SECRET gives (producer.search.cursors.cursor_key; a public one without it)."""
        return cursors.Caller(self.client_name, cursors.cursor_key(self.settings.callback_secret))

    def for_client(self, client_name: str) -> VoiceCallClient:
        """This client acting as ``client_name`` (the same store and settings)."""
        other = copy.copy(self)
        other.client_name = check_client_name(client_name)
        return other

    def enqueue(
        self,
        request: Mapping[str, Any],
        *,
        trace_id: str | None = None,
        trace_context: Mapping[str, str] | None = None,
    ) -> JobView:
        """Enqueue any kind from a dict as the HTTP API takes it; ``replay`` says if it existed.
        ``trace_context``: the W3C carrier (``traceparent``, ``tracestate``) of the trace the
        job continues; by default the current OpenTelemetry span's, when tracing is on.

        >>> client.enqueue({"kind": "voice_otp", "phone": "0901234567", "content": "123456"})  # doctest: +SKIP
        """
        call = validate_call(request, validation_context(self.settings))
        carrier = None
        if trace_context is not None:
            carrier = checked_carrier(dict(trace_context))
            if carrier is None:
                raise FieldRefused("trace_context", "must hold a valid W3C traceparent")
        submitted = self.intake.submit(
            call, client=self.client_name, trace_id=trace_id, trace_ctx=carrier
        )
        return JobView.of(submitted.job, history=False, replay=submitted.replay)

    def enqueue_otp(self, phone: str, content: str, **options: Any) -> JobView:
        """A Voice OTP call reading ``content`` out. Options: ttl_s, send_at, idempotency_key, ..."""
        return self.enqueue({"kind": "voice_otp", "phone": phone, "content": content, **options})

    def enqueue_record(self, phone: str, record_id: str, **options: Any) -> JobView:
        """A call playing recording ``record_id``. Options: max_retry, wait_retry, ivr, ..."""
        return self.enqueue(
            {"kind": "record_call", "phone": phone, "record_id": record_id, **options}
        )

    def enqueue_template(
        self, phone: str, template_id: str, variables: Sequence[str] = (), **options: Any
    ) -> JobView:
        """A text-to-speech call from script ``template_id`` with its ``variables`` in order."""
        return self.enqueue(
            {
                "kind": "template_call",
                "phone": phone,
                "template_id": template_id,
                "variables": list(variables),
                **options,
            }
        )

    def get(self, job_id: str) -> JobView:
        """The job with its history; raises :class:`JobNotFound`."""
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return JobView.of(job)

    def find(
        self,
        *,
        idempotency_key: str | None = None,
        smsid: str | None = None,
        client: str | None = None,
    ) -> JobView:
        """Look a job up by its eSMS SMSID, or by the idempotency key ``client`` (default: this
        client) made it with."""
        job_id = (
            self.store.id_for_idempotency_key(client or self.client_name, idempotency_key)
            if idempotency_key
            else self.store.id_for_smsid(smsid)
            if smsid
            else None
        )
        if job_id is None:
            raise JobNotFound(idempotency_key or smsid or "")
        return self.get(job_id)

    def cancel(self, job_id: str, *, reason: str = "cancelled by request") -> JobView:
        """Cancel a job not yet handed to eSMS; raises :class:`CancelRefused` otherwise, and
        :class:`FieldRefused` for a reason with control characters or over 200 characters."""
        step = self.store.apply(lifecycle.cancel(job_id, note=check_cancel_reason(reason)))
        if step.verdict is Verdict.ABSENT:
            raise JobNotFound(job_id)
        if step.verdict is not Verdict.ENDED:
            raise CancelRefused(job_id, State(step.state))
        return self.get(job_id)

    # --- finding jobs -------------------------------------------------------------------

    def list_calls(self, *, limit: int = 50, cursor: str | None = None, **filters: Any) -> CallPage:
        """One page of jobs matching ``filters`` (those of ``GET /v1/calls``: state, kind,
        outcome, labels, phone, idempotency_key, created_from, ... ``finished_to``), newest
        first. Raises :class:`SearchError` naming a bad filter."""
        page = walk.search(
            self.store, self._filters(filters), self.caller, limit=limit, cursor=cursor
        )
        jobs = [JobView.of(job, history=False) for job in page.jobs]
        return CallPage(data=jobs, next_cursor=page.cursor)

    def iter_calls(self, **filters: Any) -> Iterator[JobView]:
        """Every job matching ``filters``, newest first, a page at a time."""
        cursor = None
        while True:
            page = self.list_calls(limit=walk.MAX_LIMIT, cursor=cursor, **filters)
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def export(
        self,
        out: TextIO,
        *,
        on_progress: Callable[[int], None] = lambda _rows: None,
        **filters: Any,
    ) -> int:
        """Write the jobs matching ``filters`` to ``out`` as CSV (the columns of
        ``GET /v1/calls/export``); returns the number of rows."""
        rows = 0

        def counted() -> Iterator[dict[str, Any]]:
            nonlocal rows
            for doc in walk.scan(self.store, self._filters(filters), client=self.client_name):
                rows += 1
                yield doc

        for chunk in export.chunks(counted()):
            out.write(chunk)
            on_progress(rows)
        return rows

    def campaign(self, name: str) -> CampaignSummary:
        """The campaign's figures; raises :class:`CampaignNotFound`."""
        return campaign(self.store, name)

    def campaigns(self) -> list[CampaignSummary]:
        """Every campaign, newest first."""
        return campaigns(self.store)

    def _filters(self, filters: Mapping[str, Any]) -> Filters:
        unknown = sorted(set(filters) - set(FILTER_PARAMS) - {"labels"})
        if unknown:
            raise SearchError(unknown[0], "is not a filter (see producer.search.query)")
        return parse_filters(filter_pairs(filters), zone=self.settings.zone)[0]

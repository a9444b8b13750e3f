"""A job as stored (:class:`JobRecord`) and as shown to clients (:class:`JobView`).

A job is one JSON document in Redis (``vc:job:{id}``). Python writes it once, at intake; from
then on only the store's Lua steps change it (voicecall.job.lifecycle). Times are epoch seconds
with millisecond precision, which Redis's cjson writes back unchanged (it keeps 14 digits).
The call's eSMS parameters are the typed ``request`` (one of the models of voicecall.job.params),
so the worker dispatches on its type and never reads a loose dict.

:class:`JobView` is the one public shape: the HTTP API's body, its OpenAPI schema and the
Python client's return value. It never shows a Voice OTP's spoken code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from voicecall.job.params import CallParams, OtpParams, RecordParams, TemplateParams
from voicecall.job.states import FINAL_STATES, Kind, Outcome, ScheduleMode, State


class _Stored(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Lease(_Stored):
    owner: str
    until: float


class ErrorInfo(_Stored):
    code: str | None = None
    message: str | None = None


class CallReport(_Stored):
    status: str | None = None
    duration_s: int | None = None
    price_vnd: float | None = None


class Reported(_Stored):
    """A callback's result waiting for eSMS's status answer (CALLBACK_CONFIRM=status)."""

    outcome: Outcome
    smsid: str | None = None
    at: float


class HeldReport(_Stored):
    """A callback's final report kept until eSMS's send answer names the job's SMSID (lib.lua
    ``hold``); ``confirm``: the receiver had CALLBACK_CONFIRM=status."""

    outcome: Outcome
    smsid: str
    at: float
    call: CallReport | None = None
    confirm: bool = False


class Delivery(_Stored):
    """One webhook delivery attempt."""

    at: float
    status: int | None = None
    error: str | None = None
    duration_ms: float | None = None


class WebhookStatus(_Stored):
    state: str | None = None  # delivered | retry | gave_up
    deliveries: list[Delivery] = Field(default_factory=list)


class HistoryEntry(_Stored):
    model_config = ConfigDict(frozen=True, extra="allow")

    state: State
    at: float
    note: str | None = None


class JobRecord(_Stored):
    """The stored job (see the module docstring)."""

    id: str
    kind: Kind
    phone: str
    state: State
    outcome: Outcome | None = None
    schedule: ScheduleMode = ScheduleMode.WORKER
    request: CallParams
    labels: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str | None = None  # in the scope of its client
    client: str | None = None  # the API client that made it (voicecall.config.clients)
    body_hash: str = ""
    webhook_url: str | None = None
    trace_id: str | None = None
    # The W3C trace context of the request that made it (tracing on): every Dramatiq message
    # of the job carries it (options.trace_ctx), so each step continues that trace.
    trace_ctx: dict[str, str] | None = None
    limit_key: str | None = None
    msg: str | None = None  # the id of its current send message (Dramatiq's redis_message_id)
    cid: int | None = None  # its campaign's number (from its `campaign` label)
    seq: int | None = None  # its place in that campaign
    callback_nonce: str = ""
    created_at: float
    updated_at: float
    due_at: float
    expires_at: float | None = None
    smsid: str | None = None
    attempts: int = 0
    window_attempts: int = 0
    lease: Lease | None = None
    first_attempt_at: float | None = None
    window_started_at: float | None = None
    submitted_at: float | None = None
    finished_at: float | None = None
    error: ErrorInfo | None = None
    reason: str | None = None
    call: CallReport | None = None
    reported: Reported | None = None  # a callback's result still to be confirmed
    # Callback reports waiting for the SMSID (None when there are none: the intake document
    # stays free of empty lists, and the Lua steps remove the field when they empty it).
    held_reports: list[HeldReport] | None = None
    polls: int = 0
    history: list[HistoryEntry] = Field(default_factory=list)
    webhook: WebhookStatus | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def parse(cls, raw: str | bytes) -> JobRecord:
        return cls.model_validate_json(raw)

    def document(self) -> str:
        """The JSON the store writes at intake: no nulls and no empty lists (Lua's cjson
        would write an empty list back as an object)."""
        fast = self.model_dump_json(exclude_none=True)  # pydantic's own serializer, in Rust
        if "[]" not in fast:  # else an empty list (or "[]" in a text) to leave out, below
            return fast
        return json.dumps(_compact(self.model_dump(mode="json")), separators=(",", ":"))


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


Time = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json")]


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else _at(epoch)


class HistoryView(BaseModel):
    """One step of the job's life; extra keys say more (outcome, smsid, code, source)."""

    model_config = ConfigDict(extra="allow")

    state: State
    at: Time
    note: str | None = None


class DeliveryView(BaseModel):
    at: Time
    status: int | None = Field(description="The receiver's HTTP status; null when none came.")
    error: str | None = Field(description="Why it failed: timeout, refused_address, http_500, ...")
    duration_ms: float | None = None


class WebhookView(BaseModel):
    state: str | None = Field(description="delivered, retry or gave_up; null before the first try.")
    deliveries: list[DeliveryView]


class ErrorView(BaseModel):
    code: str | None
    message: str | None


class CallView(BaseModel):
    status: str | None = Field(description="eSMS CallStatus, e.g. ANSWERED.")
    duration_s: int | None
    price_vnd: float | None


def _request_json(request: OtpParams | RecordParams | TemplateParams) -> dict[str, Any]:
    return request.model_dump(mode="json", exclude={"content"}, exclude_none=True)


RequestView = Annotated[
    OtpParams | RecordParams | TemplateParams,
    PlainSerializer(_request_json, return_type=dict[str, Any], when_used="json"),
    Field(discriminator="kind", description="The call's eSMS options (never an OTP's code)."),
]


class JobView(BaseModel):
    """A job as clients see it (times in UTC ISO-8601)."""

    id: str = Field(description="Also the eSMS RequestId.")
    kind: Kind
    phone: str = Field(description="84 followed by the national number.")
    state: State
    outcome: Outcome | None
    schedule: ScheduleMode
    due_at: Time
    created_at: Time
    updated_at: Time
    finished_at: Time | None
    expires_at: Time | None = Field(description="Voice OTP: not placed after this time.")
    client: str | None = Field(
        description="The API client that made it: its name in API_TOKENS (a bare token's is "
        "`token-` and 8 hex digits), or `python` / `cli` for the Redis-direct producers."
    )
    idempotency_key: str | None = Field(description="Unique per client, not across clients.")
    webhook_url: str | None
    labels: dict[str, str]
    trace_id: str | None = Field(description="The X-Request-ID of the request that made it.")
    otel_trace_id: str | None = Field(
        default=None,
        description="The OpenTelemetry trace id of the request that made it (tracing on): "
        "every step of the job is in that trace.",
    )
    smsid: str | None
    attempts: int
    error: ErrorView | None
    reason: str | None = Field(description="Why it waits or ended: quiet_hours, ttl, ...")
    call: CallView | None = Field(description="What eSMS reported about the call.")
    result_source: str | None = Field(description="callback or poll: how the result came.")
    request: RequestView
    webhook: WebhookView | None = Field(description="Webhook deliveries, when it has a URL.")
    history: list[HistoryView] | None = Field(default=None, description="On GET by id.")
    replay: bool | None = Field(
        default=None, description="On POST: true when an earlier request made this job."
    )

    @classmethod
    def of(cls, job: JobRecord, *, history: bool = True, replay: bool | None = None) -> JobView:
        source = next(
            (
                str(h.model_extra.get("source"))
                for h in job.history
                if h.model_extra and h.model_extra.get("source")
            ),
            None,
        )
        request = job.request
        if isinstance(request, OtpParams) and request.content is not None:
            request = request.model_copy(update={"content": None})
        return cls(
            id=job.id,
            kind=job.kind,
            phone=job.phone,
            state=job.state,
            outcome=job.outcome,
            schedule=job.schedule,
            due_at=_at(job.due_at),
            created_at=_at(job.created_at),
            updated_at=_at(job.updated_at),
            finished_at=_time(job.finished_at),
            expires_at=_time(job.expires_at),
            client=job.client,
            idempotency_key=job.idempotency_key,
            webhook_url=job.webhook_url,
            labels=job.labels,
            trace_id=job.trace_id,
            otel_trace_id=job.trace_ctx["traceparent"][3:35] if job.trace_ctx else None,
            smsid=job.smsid,
            attempts=job.attempts,
            error=ErrorView(code=job.error.code, message=job.error.message) if job.error else None,
            reason=job.reason,
            call=CallView(**job.call.model_dump()) if job.call else None,
            result_source=source,
            request=request,
            webhook=(
                WebhookView(
                    state=job.webhook.state if job.webhook else None,
                    deliveries=[
                        DeliveryView(
                            at=_at(d.at),
                            status=d.status,
                            error=d.error,
                            duration_ms=d.duration_ms,
                        )
                        for d in (job.webhook.deliveries if job.webhook else [])
                    ],
                )
                if job.webhook_url
                else None
            ),
            history=(
                [
                    HistoryView(
                        state=h.state,
                        at=_at(h.at),
                        note=h.note,
                        **(h.model_extra or {}),
                    )
                    for h in job.history
                ]
                if history
                else None
            ),
            replay=replay,
        )

    def json_body(self) -> dict[str, Any]:
        """The JSON the API answers with (``replay`` and ``history`` only when set)."""
        return self.model_dump(mode="json", exclude_none=False, exclude=self._unset())

    def json_bytes(self) -> bytes:
        """:meth:`json_body` serialized (by pydantic, in Rust: a third of the CPU of
        ``json.dumps`` of the dict)."""
        return self.model_dump_json(exclude_none=False, exclude=self._unset()).encode()

    def _unset(self) -> set[str]:
        return {name for name in ("history", "replay") if getattr(self, name) is None}

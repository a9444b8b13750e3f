"""Each operation of the API as the clients send it (:class:`Call`) and read its answer.

Both clients build their requests here and differ only in how they wait: a method of
:class:`voicecall.Client` is ``read(self._send(build(...)))``, and of
:class:`voicecall.AsyncClient` the same with ``await``. :data:`OPERATIONS` names, for every
operationId of the OpenAPI document, its route and the client methods that use it (a test
walks the document against it).

Bodies are the API's JSON: the typed keyword arguments name the fields of the server's own
models (:mod:`voicecall.job.contract`), and the server validates them (its answer names each field it
refuses), since rules such as ``send_at``'s horizon and the webhook policy are its settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from voicecall.client._transport import error_for, trace_headers, unreadable
from voicecall.client.errors import ConnectionFailed
from voicecall.client.models import (
    BatchResult,
    BulkOperation,
    CallPage,
    CampaignList,
    CampaignSummary,
)
from voicecall.formats.query_pairs import filter_pairs
from voicecall.job.contract import AnyCall
from voicecall.job.esms_limits import Voice
from voicecall.job.records import JobView
from voicecall.job.states import Kind, Outcome, ScheduleMode, State


class Route(NamedTuple):
    method: str
    path: str  # as the OpenAPI document writes it


CREATE_CALL = Route("POST", "/v1/calls")
CREATE_BATCH = Route("POST", "/v1/calls/batch")
GET_CALL = Route("GET", "/v1/calls/{id}")
FIND_BY_SMSID = Route("GET", "/v1/calls/by-smsid/{smsid}")
CANCEL_CALL = Route("DELETE", "/v1/calls/{id}")
LIST_CALLS = Route("GET", "/v1/calls")
EXPORT_CALLS = Route("GET", "/v1/calls/export")
LIST_CAMPAIGNS = Route("GET", "/v1/campaigns")
SHOW_CAMPAIGN = Route("GET", "/v1/campaigns/{name}")
BULK_CANCEL = Route("POST", "/v1/bulk/cancel-calls")
BULK_REQUEUE = Route("POST", "/v1/bulk/requeue-dead-letters")
BULK_OPERATION = Route("GET", "/v1/bulk/{id}")
HEALTHZ = Route("GET", "/healthz")
READYZ = Route("GET", "/readyz")

# operationId → its route and the methods (of both clients) that call it.
OPERATIONS: dict[str, tuple[Route, tuple[str, ...]]] = {
    "create_call": (
        CREATE_CALL,
        ("create_call", "create_otp_call", "create_record_call", "create_template_call"),
    ),
    "create_batch": (CREATE_BATCH, ("create_batch",)),
    "get_call": (GET_CALL, ("get_call",)),
    "find_by_smsid": (FIND_BY_SMSID, ("find_by_smsid",)),
    "cancel_call": (CANCEL_CALL, ("cancel_call",)),
    "list_calls": (LIST_CALLS, ("list_calls", "iter_calls")),
    "export_calls": (EXPORT_CALLS, ("export_calls", "iter_export_rows")),
    "list_campaigns": (LIST_CAMPAIGNS, ("list_campaigns",)),
    "show_campaign": (SHOW_CAMPAIGN, ("get_campaign",)),
    "bulk_cancel_calls": (BULK_CANCEL, ("cancel_scheduled_calls",)),
    "bulk_requeue_dead_letters": (BULK_REQUEUE, ("requeue_dead_letters",)),
    "get_bulk_operation": (BULK_OPERATION, ("get_bulk_operation",)),
    "healthz": (HEALTHZ, ("alive",)),
    "readyz": (READYZ, ("ready",)),
}
# Operations that are not a producer's: eSMS calls the callback route on signed URLs, and
# Prometheus scrapes /metrics (with METRICS_TOKEN, not an API token).
NOT_FOR_CLIENTS = frozenset({"esms_callback", "metrics"})
PAGE_SIZE = 500  # the API's largest page: what iter_calls asks for


@dataclass(frozen=True)
class Call:
    """One request of an operation, as every try of it sends it."""

    route: Route
    segments: Mapping[str, str] = field(default_factory=dict)  # the path's {parameters}
    params: Sequence[tuple[str, str]] = ()
    json: Any = None
    idempotency_key: str | None = None  # sent as the Idempotency-Key header
    keyed: bool = False  # every job it may make carries an idempotency key
    retry: bool = True  # False: one try whatever happens (a probe)

    @property
    def path(self) -> str:
        return self.route.path.format(**{k: _segment(v) for k, v in self.segments.items()})

    @property
    def retryable(self) -> bool:
        """A read, or a write that carries its key: never a retry of a request without one."""
        return self.retry and (self.route.method == "GET" or self.keyed)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The request every try sends: the same key, and the caller's trace context."""
        key = {} if self.idempotency_key is None else {"Idempotency-Key": self.idempotency_key}
        return http.build_request(
            self.route.method,
            self.path,
            params=list(self.params),
            json=self.json,
            headers={**key, **trace_headers()},
        )


def _segment(value: str) -> str:
    """``value`` as one path segment: "/" encoded, and "." and ".." too (which URLs would
    otherwise resolve away); an empty one would address another route."""
    if not value:
        raise ValueError("a path parameter must not be empty")
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if value in (".", "..") else encoded


def new_key() -> str:
    """An idempotency key for one logical call, sent on each of its tries."""
    return f"vc-{uuid.uuid4()}"


# --- creating calls: the optional fields of voicecall.job.contract' models, as keywords ------------

Moment = datetime | str | float  # an aware datetime, ISO-8601 with an offset, or epoch seconds


class CallOptions(TypedDict, total=False):
    """What every kind takes (voicecall.job.contract._CallBase)."""

    id: str
    send_at: datetime | str
    schedule: ScheduleMode
    idempotency_key: str
    webhook_url: str
    labels: Mapping[str, str]


class OtpOptions(CallOptions, total=False):
    """voicecall.job.contract.VoiceOtpCall's own options."""

    ttl_s: int
    is_unicode: bool
    brandname: str
    sandbox: bool
    campaign_id: str


class RecordOptions(CallOptions, total=False):
    """voicecall.job.contract.RecordCall's options."""

    number_forward: str
    max_repeat: int
    max_retry: int
    ivr: int
    time_wait_to_ivr: int
    wait_retry: int


class TemplateOptions(CallOptions, total=False):
    """voicecall.job.contract.TemplateCall's options (besides its variables)."""

    voice: Voice
    speed: int


class Filters(TypedDict, total=False):
    """The filters of ``GET /v1/calls`` and its export, ANDed; a sequence means any of them."""

    state: State | str | Sequence[State | str]
    kind: Kind | str | Sequence[Kind | str]
    outcome: Outcome | str | Sequence[Outcome | str]
    labels: Mapping[str, str]  # every one must match
    phone: str
    idempotency_key: str  # this client's, or `client`'s
    client: str
    created_from: Moment
    created_to: Moment
    due_from: Moment
    due_to: Moment
    finished_from: Moment
    finished_to: Moment


def _body(value: AnyCall | Mapping[str, Any]) -> dict[str, Any]:
    """A call as the API's JSON: a model of voicecall.job.contract, or a mapping as the API takes it
    (a None value means "not given")."""
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json", exclude_none=True)
    else:
        data = to_jsonable_python({k: v for k, v in value.items() if v is not None})
    if not isinstance(data, dict):
        raise TypeError("a call is a model of voicecall.job.contract or a mapping of its fields")
    return data


def create(call: AnyCall | Mapping[str, Any]) -> Call:
    """``POST /v1/calls`` with the call's key in the header (a new one if it has none)."""
    body = _body(call)
    key = body.pop("idempotency_key", None) or new_key()
    return Call(CREATE_CALL, json=body, idempotency_key=str(key), keyed=True)


def create_kind(kind: Kind, fields: Mapping[str, Any], options: Mapping[str, Any]) -> Call:
    return create({"kind": kind.value, **fields, **options})


def create_batch(calls: Sequence[AnyCall | Mapping[str, Any]], campaign: str | None) -> Call:
    """``POST /v1/calls/batch``, every call with its own key (the batch route takes no
    header), so that a retry replays the calls already stored instead of adding others."""
    items = [_body(call) for call in calls]
    for item in items:
        item.setdefault("idempotency_key", new_key())
    body: dict[str, Any] = {"calls": items}
    if campaign is not None:
        body["campaign"] = campaign
    return Call(CREATE_BATCH, json=body, keyed=True)


# --- reading, cancelling, finding -----------------------------------------------------------


def get_call(job_id: str) -> Call:
    return Call(GET_CALL, {"id": job_id})


def find_by_smsid(smsid: str) -> Call:
    return Call(FIND_BY_SMSID, {"smsid": smsid})


def cancel_call(job_id: str, reason: str | None) -> Call:
    params = () if reason is None else (("reason", reason),)
    return Call(CANCEL_CALL, {"id": job_id}, params)


def list_calls(filters: Mapping[str, Any], limit: int | None, cursor: str | None) -> Call:
    page = [("limit", str(limit))] if limit is not None else []
    page += [("cursor", cursor)] if cursor is not None else []
    return Call(LIST_CALLS, params=filter_pairs(filters) + page)


def export_calls(filters: Mapping[str, Any]) -> Call:
    return Call(EXPORT_CALLS, params=filter_pairs(filters))


def list_campaigns() -> Call:
    return Call(LIST_CAMPAIGNS)


def show_campaign(name: str) -> Call:
    return Call(SHOW_CAMPAIGN, {"name": name})


def bulk_cancel(filters: Mapping[str, Any], reason: str | None) -> Call:
    """Never retried: a bulk cancel carries no key (asking again is harmless: it skips what
    is cancelled, but it is a second operation)."""
    extra = [] if reason is None else [("reason", reason)]
    return Call(BULK_CANCEL, params=filter_pairs(filters) + extra)


def bulk_requeue(queue: str) -> Call:
    return Call(BULK_REQUEUE, params=[("queue", queue)])


def bulk_operation(op_id: str) -> Call:
    return Call(BULK_OPERATION, {"id": op_id})


def healthz() -> Call:
    return Call(HEALTHZ, retry=False)


def readyz() -> Call:
    return Call(READYZ, retry=False)


# --- answers ---------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def checked(response: httpx.Response) -> httpx.Response:
    """``response`` if it is a 2xx (its body read); else its typed error is raised."""
    if not response.is_success:
        raise error_for(response)
    return response


def model(kind: type[M], response: httpx.Response) -> M:
    try:
        return kind.model_validate_json(checked(response).content)
    except ValidationError:
        raise unreadable(response, kind.__name__) from None


def job(response: httpx.Response) -> JobView:
    return model(JobView, response)


def page(response: httpx.Response) -> CallPage:
    return model(CallPage, response)


def batch(response: httpx.Response) -> BatchResult:
    return model(BatchResult, response)


def campaign(response: httpx.Response) -> CampaignSummary:
    return model(CampaignSummary, response)


def bulk_op(response: httpx.Response) -> BulkOperation:
    return model(BulkOperation, response)


def campaigns(response: httpx.Response) -> list[CampaignSummary]:
    return model(CampaignList, response).data


def stream_broken(exc: httpx.HTTPError) -> ConnectionFailed:
    """The export's stream ended early (a dropped connection, a read timeout)."""
    return ConnectionFailed(f"the export's stream broke off: {type(exc).__name__}: {exc}")


def is_ready(response: httpx.Response) -> bool:
    """``/readyz``: True when the API reaches Redis, False on its 503."""
    return response.status_code != 503 and checked(response).is_success

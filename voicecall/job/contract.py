"""The job contract: what a producer may ask for, validated before anything is stored.

Three kinds share a base (phone, time, idempotency, webhook, labels) and add the eSMS options
their endpoint documents (their parameters: voicecall.job.params). Every rule names its field in the error, so a bad request, CSV row
or CLI call gets an answer such as ``phone: is not a valid Vietnamese number``.

``send_at`` is checked against settings (zone, past tolerance, horizon) passed through the
pydantic validation context: ``CallRequestAdapter.validate_python(data, context=ctx(...))``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationInfo, field_validator

from voicecall.config.settings import Settings, get_settings
from voicecall.errors import FieldRefused
from voicecall.formats.phones import PhoneError, normalize_phone
from voicecall.formats.text import has_control
from voicecall.formats.timefmt import parse_send_at, utcnow
from voicecall.job.esms_limits import OTP_CONTENT_MAX_LEN, REQUEST_ID_MAX_LEN
from voicecall.job.params import (
    CONTROL,
    CallParamsAdapter,
    OtpParams,
    RecordParams,
    StrictModel,
    TemplateParams,
    no_control,
)
from voicecall.job.states import ScheduleMode
from voicecall.webhooks.urls import MAX_URL_LENGTH, check_at_intake

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
# /v1/calls/batch and /v1/calls/export are routes, so no job could be read or cancelled at them.
RESERVED_JOB_IDS = frozenset({"batch", "export"})
_JOB_ID = re.compile(JOB_ID_PATTERN)
OTP_TTL_RANGE_S = (10, 3600)
LABELS_MAX = 20
CAMPAIGN_LABEL = "campaign"  # a job belongs to the campaign its `campaign` label names

JobId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=REQUEST_ID_MAX_LEN,
        pattern=JOB_ID_PATTERN,
        description="Also the eSMS RequestId: 1-50 of A-Z a-z 0-9 . _ : -",
    ),
]


# A cancel reason is kept in the job's history and shown by `voicecall status` and the
# console: one rule for the API (DELETE /v1/calls/{id}), the console and the CLI.
CANCEL_REASON_MAX_CHARS = 200
CANCEL_REASON_CONTROL_RULE = "must not contain control characters (C0, DEL, C1, bidi overrides)"


def check_cancel_reason(reason: str) -> str:
    """``reason`` when it may be kept; :class:`FieldRefused` naming ``reason`` otherwise."""
    if len(reason) > CANCEL_REASON_MAX_CHARS:
        raise FieldRefused("reason", f"must be at most {CANCEL_REASON_MAX_CHARS} characters")
    if has_control(reason):
        raise FieldRefused("reason", CANCEL_REASON_CONTROL_RULE)
    return reason


def validation_context(
    settings: Settings | None = None, now: datetime | None = None
) -> dict[str, Any]:
    return {"settings": settings or get_settings(), "now": now or utcnow()}


# --- what a producer may ask for: the job's own fields plus its kind's parameters ---------


class _CallBase(StrictModel):
    id: JobId | None = Field(default=None, description="Your id for the job; generated if absent.")
    phone: str = Field(description="Vietnamese mobile or landline: 09..., 849..., +84 9...")
    send_at: datetime | None = Field(
        default=None,
        description="When to call: ISO-8601; a naive time is read in TIMEZONE. Absent: now.",
    )
    schedule: ScheduleMode = Field(
        default=ScheduleMode.WORKER,
        description="worker: voicecall waits until send_at; provider: eSMS does (SendDate).",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same key again replays the job instead of making another.",
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="POSTed the final job (Standard Webhooks). http(s) only; no userinfo, "
        "no internal or metadata addresses unless WEBHOOK_ALLOW_PRIVATE or "
        "WEBHOOK_ALLOWED_HOSTS allow them.",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form, e.g. campaign.")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        try:
            return normalize_phone(value)
        except PhoneError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        settings: Settings = (info.context or {}).get("settings") or get_settings()
        return check_at_intake(value, settings.webhook_policy)

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else no_control(value)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value in RESERVED_JOB_IDS:
            raise ValueError(f"{value!r} names a route (/v1/calls/{value}), not a job")
        return value

    @field_validator("send_at")
    @classmethod
    def _send_at(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        context = info.context or {}
        settings: Settings = context.get("settings") or get_settings()
        now: datetime = context.get("now") or utcnow()
        moment = parse_send_at(value, settings.zone)
        # A naive time is read in TIMEZONE: say so, or "in the past" puzzles a UTC client.
        read_in = (
            f" (it has no UTC offset, so it was read in {settings.timezone})"
            if value.tzinfo is None
            else ""
        )
        if moment < now - timedelta(seconds=settings.send_at_past_tolerance_s):
            raise ValueError(
                f"is in the past (more than {settings.send_at_past_tolerance_s} s before now)"
                + read_in
            )
        if moment > now + timedelta(days=settings.send_at_horizon_days):
            raise ValueError(f"is more than {settings.send_at_horizon_days} days ahead{read_in}")
        return moment

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > LABELS_MAX:
            raise ValueError(f"at most {LABELS_MAX} labels")
        for key, item in value.items():
            if not 1 <= len(key) <= 64 or len(item) > 256:
                raise ValueError("label keys are 1-64 characters, values at most 256")
            no_control(key, "label keys ")
            no_control(item, "label values ")
        return value


def with_campaign(request: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``request`` (as the API takes it) with its ``campaign`` label set to ``name``, for a
    batch or an import that names one campaign for every call. Raises ValueError when the
    request names another campaign, or ``name`` breaks the rule of label values."""
    if not 1 <= len(name) <= 256 or CONTROL.search(name):
        raise ValueError("must be 1-256 characters without control characters")
    labels = request.get("labels", {})
    if not isinstance(labels, dict):
        return dict(request)  # validation names the wrong type
    current = labels.get(CAMPAIGN_LABEL)
    if current is not None and current != name:
        raise ValueError(f"is {current!r}, but every call here joins campaign {name!r}")
    return {**request, "labels": {**labels, CAMPAIGN_LABEL: name}}


class VoiceOtpCall(_CallBase, OtpParams):
    """A Voice OTP call: eSMS reads ``content`` out (SendMultipleMessage_V4, SmsType 8)."""

    kind: Literal["voice_otp"]
    content: str = Field(  # required here; the stored job's is erased once of no use
        min_length=1,
        max_length=OTP_CONTENT_MAX_LEN,
        description=OtpParams.model_fields["content"].description,
    )
    ttl_s: int | None = Field(
        default=None,
        ge=OTP_TTL_RANGE_S[0],
        le=OTP_TTL_RANGE_S[1],
        description="Seconds after send_at (or intake) past which the OTP is not placed.",
    )


class RecordCall(_CallBase, RecordParams):
    """A call that plays a recording uploaded on the eSMS account (MakeCallRecord_V2)."""

    kind: Literal["record_call"]


class TemplateCall(_CallBase, TemplateParams):
    """A text-to-speech call from a script registered on the account (MakeCallTemplate_V2)."""

    kind: Literal["template_call"]


_PARAMS_FIELDS = {
    "voice_otp": tuple(OtpParams.model_fields),
    "record_call": tuple(RecordParams.model_fields),
    "template_call": tuple(TemplateParams.model_fields),
}

CallRequest = Annotated[VoiceOtpCall | RecordCall | TemplateCall, Field(discriminator="kind")]
CallRequestAdapter: TypeAdapter[VoiceOtpCall | RecordCall | TemplateCall] = TypeAdapter(CallRequest)
AnyCall = VoiceOtpCall | RecordCall | TemplateCall


def params_of(request: AnyCall) -> OtpParams | RecordParams | TemplateParams:
    """The eSMS parameters of a request, as the store keeps them (the job's ``request``)."""
    fields = set(_PARAMS_FIELDS[request.kind])
    return CallParamsAdapter.validate_python(request.model_dump(include=fields))


EXAMPLES: dict[str, dict[str, Any]] = {
    "voice_otp": {
        "kind": "voice_otp",
        "phone": "0901234567",
        "content": "Ma xac thuc cua ban la 123456",
        "ttl_s": 300,
        "idempotency_key": "login-7f3a-otp-1",
        "labels": {"app": "login"},
    },
    "record_call": {
        "kind": "record_call",
        "phone": "+84 90 123 4568",
        "record_id": "rec-welcome",
        "max_retry": 2,
        "wait_retry": 60,
        "max_repeat": 2,
        "ivr": 1,
        "number_forward": "02438251234",
        "time_wait_to_ivr": 10,
        "labels": {"campaign": "tet-2030"},
    },
    "template_call": {
        "kind": "template_call",
        "phone": "84901234569",
        "template_id": "tpl-payment-due",
        "variables": ["Trung", "20000"],
        "voice": "female",
        "speed": 0,
        "schedule": "provider",
        "webhook_url": "https://example.com/hooks/voicecall",
    },
}

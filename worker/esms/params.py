"""Request building for each eSMS endpoint, exactly as the documents spell them.

A send request is built from the job's typed parameters (voicecall.job.params), which the job
contract validated once, at intake: the builders translate each field to its eSMS name and
format and check nothing again. What the parameters do not hold is checked here, before
anything is sent, raising :class:`~worker.esms.errors.InvalidParameter` (naming the eSMS
parameter and the rule, never the value): the phone, the RequestId, the CallbackUrl, the
SendDate and, for a status request, the SMSID. Parameter names, their order and value formats
follow the documents' own example requests (``../shared/esms-docs``), quirks included:

- MakeCallRecord_V2 spells the partner id ``RequestID``; every other endpoint ``RequestId``.
- ``SendDate`` is ``yyyy-mm-dd HH:MM:SS`` for Voice OTP and ``yyyy/MM/dd HH:mm:ss`` for
  voice calls, written in the configured zone (eSMS reads it as Vietnam local time).
- Voice OTP is ``SmsType=8``; ``Sandbox`` and ``campaignid`` exist only on its POST form.
- Phones are sent in national form (``0901234567``), as in the documents' examples.
- GET query strings are percent-encoded with ``%20`` for a space (never ``+``, which not
  every server decodes as a space), and ``CallbackUrl`` is fully URL-encoded as required.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from voicecall.esms.results import ReportRefused, read_smsid
from voicecall.formats.phones import PhoneError, national, normalize_phone
from voicecall.formats.timefmt import format_send_date
from voicecall.job.esms_limits import REQUEST_ID_MAX_LEN, VARIABLE_SEPARATOR, Voice
from voicecall.job.params import OtpParams, RecordParams, TemplateParams
from worker.esms.errors import InvalidParameter

__all__ = [  # Voice is the job contract's own (voicecall.job.esms_limits)
    "BALANCE", "CALL_STATUS", "ENDPOINTS", "MAKE_CALL_RECORD", "MAKE_CALL_TEMPLATE",
    "OTP_SMS_TYPE", "OTP_STATUS", "VOICE_OTP_GET", "VOICE_OTP_POST", "Credentials", "Endpoint",
    "EsmsRequest", "OtpDefaults", "Speed", "Target", "Voice", "balance", "call_status",
    "make_call_record", "make_call_template", "otp_status", "send_request", "validate_callback_url",
    "validate_phone", "validate_request_id", "validate_send_date", "validate_smsid", "voice_otp",
]  # fmt: skip

OTP_SMS_TYPE = "8"  # "fixed-number cheap" type: Voice OTP

_PRINTABLE_NO_SPACE = re.compile(r"[!-~]+")


class Speed(IntEnum):
    """Template reading speed (MakeCallTemplate_V2 ``Speed``)."""

    VERY_SLOW = -3
    QUITE_SLOW = -2
    SLOW = -1
    NORMAL = 0
    FAST = 1
    QUITE_FAST = 2
    VERY_FAST = 3


Api = Literal["rest", "voice"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One eSMS endpoint. ``name`` is the label in logs and metrics (never the URL)."""

    name: str
    api: Api
    path: str
    method: Literal["GET", "POST"]
    send: bool = False


VOICE_OTP_POST = Endpoint("voice_otp", "rest", "SendMultipleMessage_V4_post_json/", "POST", True)
VOICE_OTP_GET = Endpoint("voice_otp", "rest", "SendMultipleMessage_V4_get", "GET", True)
MAKE_CALL_RECORD = Endpoint("record_call", "voice", "MakeCallRecord_V2", "GET", True)
MAKE_CALL_TEMPLATE = Endpoint("template_call", "voice", "MakeCallTemplate_V2", "GET", True)
CALL_STATUS = Endpoint("call_status", "voice", "GetSendStatus", "GET")
OTP_STATUS = Endpoint("otp_status", "rest", "GetSendStatus", "GET")
BALANCE = Endpoint("balance", "rest", "GetBalance_json", "POST")
ENDPOINTS = (
    VOICE_OTP_POST, VOICE_OTP_GET, MAKE_CALL_RECORD, MAKE_CALL_TEMPLATE, CALL_STATUS, OTP_STATUS,
    BALANCE,
)  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """ApiKey and SecretKey; ``repr`` never shows them."""

    api_key: str
    secret_key: str

    def __repr__(self) -> str:
        return "Credentials(***)"


@dataclass(frozen=True, slots=True, repr=False)
class EsmsRequest:
    """A built request: GET ``query`` pairs in the documents' order, or a POST JSON ``body``."""

    endpoint: Endpoint
    query: tuple[tuple[str, str], ...] = ()
    body: dict[str, object] | None = None

    def query_string(self) -> str:
        """Percent-encoded query (``%20`` for a space, every reserved character escaped)."""
        return urlencode(self.query, quote_via=quote, safe="")

    def __repr__(self) -> str:  # the query and body carry the credentials: never show them
        return f"EsmsRequest({self.endpoint.name})"


@dataclass(frozen=True, slots=True)
class Target:
    """Whom a send calls and how its answer is matched: the job's own fields, which are not
    call parameters (those are the typed models of voicecall.job.params)."""

    phone: str
    request_id: str
    callback_url: str | None = None
    send_date: datetime | None = None


# --- the checks of what the parameters do not hold -----------------------------------


def validate_phone(raw: str, param: str = "Phone") -> str:
    """A Vietnamese number in any usual spelling → national form ``0901234567``."""
    if not isinstance(raw, str):
        raise InvalidParameter(param, "must be a string")
    try:
        return national(normalize_phone(raw))
    except PhoneError as exc:
        raise InvalidParameter(param, str(exc)) from None


def validate_request_id(value: str, param: str = "RequestId") -> str:
    """1-50 printable ASCII characters without spaces (documented maximum: 50)."""
    if not isinstance(value, str) or not value:
        raise InvalidParameter(param, "is required")
    if len(value) > REQUEST_ID_MAX_LEN:
        raise InvalidParameter(param, f"must be at most {REQUEST_ID_MAX_LEN} characters")
    if not _PRINTABLE_NO_SPACE.fullmatch(value):
        raise InvalidParameter(param, "must be printable ASCII without spaces")
    return value


def validate_smsid(value: str, param: str) -> str:
    """An SMSID by the rule every eSMS answer is read with (voicecall.esms.results)."""
    try:
        smsid = read_smsid(value, param)
    except ReportRefused as exc:
        raise InvalidParameter(param, exc.rule) from None
    if smsid is None:
        raise InvalidParameter(param, "is required")
    return smsid


def validate_callback_url(value: str) -> str:
    """An absolute http(s) URL without spaces; it is URL-encoded when the query is built."""
    if not isinstance(value, str) or any(c.isspace() for c in value):
        raise InvalidParameter("CallbackUrl", "must be a URL without spaces")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidParameter("CallbackUrl", "must be an absolute http:// or https:// URL")
    return value


def validate_send_date(moment: datetime, zone: ZoneInfo, *, otp: bool) -> str:
    """An aware time → ``SendDate`` in ``zone``, in the endpoint's own format."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidParameter("SendDate", "needs an aware datetime (with a time zone)")
    return format_send_date(moment, zone, otp=otp)


@dataclass(frozen=True, slots=True)
class _Checked:
    phone: str
    request_id: str
    callback_url: str | None
    send_date: str | None


def _check(target: Target, zone: ZoneInfo, *, otp: bool, request_id_param: str) -> _Checked:
    """The target's fields as eSMS takes them, each checked (InvalidParameter naming it)."""
    return _Checked(
        phone=validate_phone(target.phone),
        request_id=validate_request_id(target.request_id, request_id_param),
        callback_url=(
            None if target.callback_url is None else validate_callback_url(target.callback_url)
        ),
        send_date=(
            None
            if target.send_date is None
            else validate_send_date(target.send_date, zone, otp=otp)
        ),
    )


# --- builders: each parameter model's fields under their eSMS names -----------------------


def _pairs(items: list[tuple[str, object]]) -> tuple[tuple[str, str], ...]:
    """Drop the optional parameters that were not given (eSMS defaults then apply)."""
    return tuple((k, str(v)) for k, v in items if v is not None)


@dataclass(frozen=True, slots=True)
class OtpDefaults:
    """What a Voice OTP leaves unset: ESMS_OTP_METHOD, ESMS_SANDBOX and ESMS_BRANDNAME."""

    method: Literal["post", "get"] = "post"
    sandbox: bool = False
    brandname: str = ""


def send_request(
    creds: Credentials,
    call: OtpParams | RecordParams | TemplateParams,
    target: Target,
    zone: ZoneInfo,
    otp_defaults: OtpDefaults,
) -> EsmsRequest:
    """The send request for a job's typed parameters: one match on their type."""
    match call:
        case OtpParams():
            return voice_otp(creds, call, target, zone, otp_defaults)
        case RecordParams():
            return make_call_record(creds, call, target, zone)
        case TemplateParams():
            return make_call_template(creds, call, target, zone)


def voice_otp(
    creds: Credentials, call: OtpParams, target: Target, zone: ZoneInfo, defaults: OtpDefaults
) -> EsmsRequest:
    """Voice OTP: ``SendMultipleMessage_V4_post_json/`` (JSON) or ``..._V4_get`` (query).

    ``Sandbox`` and ``campaignid`` exist only on the POST form: a call asking for either goes
    by POST whatever ESMS_OTP_METHOD says.
    """
    if call.content is None:
        raise InvalidParameter("Content", "is gone: the job no longer holds its OTP code")
    to = _check(target, zone, otp=True, request_id_param="RequestId")
    sandbox = defaults.sandbox if call.sandbox is None else call.sandbox
    brandname = (defaults.brandname if call.brandname is None else call.brandname) or None
    campaign = call.campaign_id or None  # blank: not given, as for the brandname
    unicode_flag = 1 if call.is_unicode else 0
    if defaults.method == "get" and not sandbox and campaign is None:
        query = _pairs(
            [
                ("Phone", to.phone),
                ("Content", call.content),
                ("ApiKey", creds.api_key),
                ("SecretKey", creds.secret_key),
                ("IsUnicode", unicode_flag),
                ("Brandname", brandname),
                ("SmsType", OTP_SMS_TYPE),
                ("CallbackUrl", to.callback_url),
                ("RequestId", to.request_id),
                ("SendDate", to.send_date),
            ]
        )
        return EsmsRequest(VOICE_OTP_GET, query=query)
    # Types as in the document's curl: SmsType a string, IsUnicode and Sandbox numbers.
    body: dict[str, object] = {
        "ApiKey": creds.api_key,
        "Content": call.content,
        "Phone": to.phone,
        "SecretKey": creds.secret_key,
        "SmsType": OTP_SMS_TYPE,
        "IsUnicode": unicode_flag,
        "Sandbox": 1 if sandbox else 0,
        "RequestId": to.request_id,
    }
    optional = {
        "Brandname": brandname,
        "campaignid": campaign,
        "CallbackUrl": to.callback_url,
        "SendDate": to.send_date,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return EsmsRequest(VOICE_OTP_POST, body=body)


def make_call_record(
    creds: Credentials, call: RecordParams, target: Target, zone: ZoneInfo
) -> EsmsRequest:
    """MakeCallRecord_V2: play a recording uploaded on the account (``TemplateId``=RecordId)."""
    to = _check(target, zone, otp=False, request_id_param="RequestID")
    forward = None if call.number_forward is None else national(call.number_forward)
    query = _pairs(
        [
            ("ApiKey", creds.api_key),
            ("SecretKey", creds.secret_key),
            ("TemplateId", call.record_id),
            ("Phone", to.phone),
            ("SendDate", to.send_date),
            ("NumberForward", forward),
            ("MaxRepeat", call.max_repeat),
            ("MaxRetry", call.max_retry),
            ("Ivr", call.ivr),
            ("TimeWaitToIvr", call.time_wait_to_ivr),
            ("WaitRetry", call.wait_retry),
            ("CallbackUrl", to.callback_url),
            ("RequestID", to.request_id),  # sic: this endpoint's URL spells it RequestID
        ]
    )
    return EsmsRequest(MAKE_CALL_RECORD, query=query)


def make_call_template(
    creds: Credentials, call: TemplateParams, target: Target, zone: ZoneInfo
) -> EsmsRequest:
    """MakeCallTemplate_V2: a text-to-speech call script registered on the account."""
    to = _check(target, zone, otp=False, request_id_param="RequestId")
    query = _pairs(
        [
            ("ApiKey", creds.api_key),
            ("SecretKey", creds.secret_key),
            ("TemplateId", call.template_id),
            ("Phone", to.phone),
            ("VariableListStr", VARIABLE_SEPARATOR.join(call.variables) or None),
            ("SendDate", to.send_date),
            ("Voice", None if call.voice is None else call.voice.value),
            ("Speed", call.speed),
            ("CallbackUrl", to.callback_url),
            ("RequestId", to.request_id),
        ]
    )
    return EsmsRequest(MAKE_CALL_TEMPLATE, query=query)


def call_status(creds: Credentials, smsid: str) -> EsmsRequest:
    """voiceapi GetSendStatus: a record/template call's status by its SMSID."""
    ref = validate_smsid(smsid, "ReferenceId")
    query = (("ApiKey", creds.api_key), ("SecretKey", creds.secret_key), ("ReferenceId", ref))
    return EsmsRequest(CALL_STATUS, query=query)


def otp_status(creds: Credentials, smsid: str) -> EsmsRequest:
    """rest GetSendStatus: a Voice OTP's status by its SMSID (last 7 days only)."""
    ref = validate_smsid(smsid, "RefId")
    query = (("RefId", ref), ("ApiKey", creds.api_key), ("SecretKey", creds.secret_key))
    return EsmsRequest(OTP_STATUS, query=query)


def balance(creds: Credentials) -> EsmsRequest:
    """GetBalance_json: the account balance (POST, credentials in the JSON body)."""
    body: dict[str, object] = {"ApiKey": creds.api_key, "SecretKey": creds.secret_key}
    return EsmsRequest(BALANCE, body=body)

"""Validation and request building for each eSMS endpoint, exactly as the documents spell them.

Every builder checks its arguments first and raises
:class:`~worker.esms.errors.InvalidParameter` (naming the eSMS parameter and the rule, never
the value) before anything is sent. Parameter names, their order and value formats follow
the documents' own example requests (``../shared/esms-docs``), quirks included:

- MakeCallRecord_V2 spells the partner id ``RequestID``; every other endpoint ``RequestId``.
- ``SendDate`` is ``yyyy-mm-dd HH:MM:SS`` for Voice OTP and ``yyyy/MM/dd HH:mm:ss`` for
  voice calls, written in the configured zone (eSMS reads it as Vietnam local time).
- Voice OTP is ``SmsType=8``; ``Sandbox`` and ``campaignid`` exist only on its POST form.
- Phones are sent in national form (``0901234567``), as in the documents' examples.
- GET query strings are percent-encoded with ``%20`` for a space (never ``+``, which not
  every server decodes as a space), and ``CallbackUrl`` is fully URL-encoded as required.

The bounds below are ours, not eSMS's (the documents give none): they keep a call sequence
short enough to poll for (decision 4). They live in voicecall/job/esms_limits.py, which the job
contract reads too, so intake and the eSMS client apply the same ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from voicecall.formats.phones import PhoneError, national, normalize_phone
from voicecall.formats.timefmt import format_send_date
from voicecall.job.esms_limits import (
    IVR_RANGE,
    MAX_REPEAT_RANGE,
    MAX_RETRY_RANGE,
    OTP_CONTENT_MAX_LEN,
    REQUEST_ID_MAX_LEN,
    SOURCE_ID_MAX_LEN,
    SPEED_RANGE,
    TEMPLATE_VARIABLE_MAX_LEN,
    TEMPLATE_VARIABLES_MAX,
    TIME_WAIT_TO_IVR_RANGE_S,
    VARIABLE_SEPARATOR,
    WAIT_RETRY_RANGE_S,
    Voice,
)
from worker.esms.errors import InvalidParameter

__all__ = [  # Voice and the limits are the job contract's own (voicecall.job.esms_limits)
    "BALANCE", "CALL_STATUS", "ENDPOINTS", "IVR_MAX", "IVR_MIN", "MAKE_CALL_RECORD",
    "MAKE_CALL_TEMPLATE", "MAX_REPEAT_MAX", "MAX_REPEAT_MIN", "MAX_RETRY_MAX", "MAX_RETRY_MIN",
    "OTP_SMS_TYPE", "OTP_STATUS", "REQUEST_ID_MAX_LEN", "SMSID_MAX_LEN", "SPEED_MAX", "SPEED_MIN",
    "TIME_WAIT_TO_IVR_MAX_S", "TIME_WAIT_TO_IVR_MIN_S", "VARIABLE_SEPARATOR", "VOICE_OTP_GET",
    "VOICE_OTP_POST", "WAIT_RETRY_MAX_S", "WAIT_RETRY_MIN_S", "Credentials", "Endpoint",
    "EsmsRequest", "Speed", "Voice", "balance", "call_status", "make_call_record",
    "make_call_template", "otp_status", "validate_callback_url", "validate_content",
    "validate_int", "validate_number_forward", "validate_phone", "validate_request_id",
    "validate_send_date", "validate_smsid", "validate_text", "validate_variables",
    "validate_voice", "voice_otp",
]  # fmt: skip

# The bounds are voicecall's, shared with the job contract (voicecall.job.esms_limits), so intake
# and this client refuse exactly the same values; named here one by one for readers.
MAX_REPEAT_MIN, MAX_REPEAT_MAX = MAX_REPEAT_RANGE  # plays of the recording in one call
MAX_RETRY_MIN, MAX_RETRY_MAX = MAX_RETRY_RANGE  # redials by eSMS when nobody answers
WAIT_RETRY_MIN_S, WAIT_RETRY_MAX_S = WAIT_RETRY_RANGE_S  # seconds between those redials
TIME_WAIT_TO_IVR_MIN_S, TIME_WAIT_TO_IVR_MAX_S = TIME_WAIT_TO_IVR_RANGE_S  # wait for a key
IVR_MIN, IVR_MAX = IVR_RANGE  # documented: the key 0-9 that triggers forwarding
SPEED_MIN, SPEED_MAX = SPEED_RANGE  # documented: -3 very slow ... 0 normal ... 3 very fast
OTP_SMS_TYPE = "8"  # "fixed-number cheap" type: Voice OTP
SMSID_MAX_LEN = 100  # ours: eSMS ids are about 40 characters

_PRINTABLE_NO_SPACE = re.compile(r"[!-~]+")
_FORWARD_NUMBER = re.compile(r"\+?\d{3,15}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


# --- validators ----------------------------------------------------------------------


def validate_phone(raw: str, param: str = "Phone") -> str:
    """A Vietnamese number in any usual spelling → national form ``0901234567``."""
    if not isinstance(raw, str):
        raise InvalidParameter(param, "must be a string")
    try:
        return national(normalize_phone(raw))
    except PhoneError as exc:
        raise InvalidParameter(param, str(exc)) from None


def validate_number_forward(raw: str) -> str:
    """A Vietnamese phone (sent in national form), or a hotline written as 3-15 digits."""
    try:
        return validate_phone(raw, "NumberForward")
    except InvalidParameter:
        digits = re.sub(r"[\s\-.()]", "", raw) if isinstance(raw, str) else ""
        if _FORWARD_NUMBER.fullmatch(digits):
            return digits
        raise InvalidParameter(
            "NumberForward", "must be a Vietnamese phone number or 3-15 digits"
        ) from None


def validate_request_id(value: str, param: str = "RequestId") -> str:
    """1-50 printable ASCII characters without spaces (documented maximum: 50)."""
    if not isinstance(value, str) or not value:
        raise InvalidParameter(param, "is required")
    if len(value) > REQUEST_ID_MAX_LEN:
        raise InvalidParameter(param, f"must be at most {REQUEST_ID_MAX_LEN} characters")
    if not _PRINTABLE_NO_SPACE.fullmatch(value):
        raise InvalidParameter(param, "must be printable ASCII without spaces")
    return value


def validate_text(value: str, param: str, max_len: int | None = None) -> str:
    """A required, non-blank string (stripped), at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter(param, "is required and must not be blank")
    text = value.strip()
    if max_len is not None and len(text) > max_len:
        raise InvalidParameter(param, f"must be at most {max_len} characters")
    return text


def validate_content(content: str, *, is_unicode: bool) -> str:
    """Voice OTP text, read out; with ``IsUnicode=0`` ("without diacritics") plain ASCII."""
    text = validate_text(content, "Content", OTP_CONTENT_MAX_LEN)
    if _CONTROL.search(text):
        raise InvalidParameter("Content", "must not contain control characters")
    if not is_unicode and not text.isascii():
        raise InvalidParameter("Content", "has diacritics or other non-ASCII text: set is_unicode")
    return text


def validate_smsid(value: str, param: str) -> str:
    """An SMSID as eSMS returned it (surrounding spaces stripped)."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidParameter(param, "is required")
    if len(text) > SMSID_MAX_LEN or not _PRINTABLE_NO_SPACE.fullmatch(text):
        raise InvalidParameter(param, f"must be 1-{SMSID_MAX_LEN} printable ASCII characters")
    return text


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


def validate_int(value: int, param: str, low: int, high: int) -> int:
    """An integer (not a bool) within ``low..high`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(param, "must be an integer")
    if not low <= value <= high:
        raise InvalidParameter(param, f"must be between {low} and {high}")
    return int(value)


def validate_voice(value: Voice | str) -> Voice:
    """One of the documented voices."""
    try:
        return Voice(value)
    except ValueError:
        allowed = ", ".join(v.value for v in Voice)
        raise InvalidParameter("Voice", f"must be one of {allowed}") from None


def validate_variables(variables: Sequence[str]) -> str:
    """Template variables in order, joined by ``||``; none may contain ``||`` itself."""
    if isinstance(variables, str) or not isinstance(variables, Sequence):
        raise InvalidParameter("VariableListStr", "must be a list of strings, not one string")
    if len(variables) > TEMPLATE_VARIABLES_MAX:
        raise InvalidParameter(
            "VariableListStr", f"takes at most {TEMPLATE_VARIABLES_MAX} variables"
        )
    for value in variables:
        if not isinstance(value, str):
            raise InvalidParameter("VariableListStr", "must hold only strings")
        if VARIABLE_SEPARATOR in value:
            raise InvalidParameter("VariableListStr", "a variable must not contain '||'")
        if len(value) > TEMPLATE_VARIABLE_MAX_LEN:
            raise InvalidParameter(
                "VariableListStr",
                f"a variable must be at most {TEMPLATE_VARIABLE_MAX_LEN} characters",
            )
    return VARIABLE_SEPARATOR.join(variables)


# --- builders ------------------------------------------------------------------------


def _pairs(items: Sequence[tuple[str, str | None]]) -> tuple[tuple[str, str], ...]:
    """Drop the optional parameters that were not given (eSMS defaults then apply)."""
    return tuple((k, v) for k, v in items if v is not None)


def voice_otp(
    creds: Credentials,
    *,
    phone: str,
    content: str,
    request_id: str,
    zone: ZoneInfo,
    callback_url: str | None = None,
    send_date: datetime | None = None,
    is_unicode: bool = False,
    brandname: str | None = None,
    sandbox: bool = False,
    campaign_id: str | None = None,
    method: Literal["post", "get"] = "post",
) -> EsmsRequest:
    """Voice OTP: ``SendMultipleMessage_V4_post_json/`` (JSON) or ``..._V4_get`` (query)."""
    number = validate_phone(phone)
    text = validate_content(content, is_unicode=is_unicode)
    rid = validate_request_id(request_id)
    callback = validate_callback_url(callback_url) if callback_url is not None else None
    date = validate_send_date(send_date, zone, otp=True) if send_date is not None else None
    brand = validate_text(brandname, "Brandname") if brandname else None
    campaign = validate_text(campaign_id, "campaignid") if campaign_id is not None else None
    unicode_flag = 1 if is_unicode else 0
    if method == "get":
        if sandbox:
            raise InvalidParameter("Sandbox", "exists only on the POST form (ESMS_OTP_METHOD=post)")
        if campaign is not None:
            raise InvalidParameter("campaignid", "exists only on the POST form")
        query = _pairs(
            [
                ("Phone", number),
                ("Content", text),
                ("ApiKey", creds.api_key),
                ("SecretKey", creds.secret_key),
                ("IsUnicode", str(unicode_flag)),
                ("Brandname", brand),
                ("SmsType", OTP_SMS_TYPE),
                ("CallbackUrl", callback),
                ("RequestId", rid),
                ("SendDate", date),
            ]
        )
        return EsmsRequest(VOICE_OTP_GET, query=query)
    if method != "post":
        raise InvalidParameter("method", "must be 'post' or 'get'")
    # Types as in the document's curl: SmsType a string, IsUnicode and Sandbox numbers.
    body: dict[str, object] = {
        "ApiKey": creds.api_key,
        "Content": text,
        "Phone": number,
        "SecretKey": creds.secret_key,
        "SmsType": OTP_SMS_TYPE,
        "IsUnicode": unicode_flag,
        "Sandbox": 1 if sandbox else 0,
        "RequestId": rid,
    }
    optional = {"Brandname": brand, "campaignid": campaign, "CallbackUrl": callback}
    body.update({k: v for k, v in optional.items() if v is not None})
    if date is not None:
        body["SendDate"] = date
    return EsmsRequest(VOICE_OTP_POST, body=body)


def make_call_record(
    creds: Credentials,
    *,
    phone: str,
    record_id: str,
    request_id: str,
    zone: ZoneInfo,
    callback_url: str | None = None,
    send_date: datetime | None = None,
    number_forward: str | None = None,
    max_repeat: int | None = None,
    max_retry: int | None = None,
    ivr: int | None = None,
    time_wait_to_ivr: int | None = None,
    wait_retry: int | None = None,
) -> EsmsRequest:
    """MakeCallRecord_V2: play a recording uploaded on the account (``TemplateId``=RecordId)."""
    number = validate_phone(phone)
    record = validate_text(record_id, "TemplateId", SOURCE_ID_MAX_LEN)
    rid = validate_request_id(request_id, "RequestID")
    if ivr is not None and number_forward is None:  # the key press forwards to NumberForward
        raise InvalidParameter("Ivr", "needs NumberForward")

    def num(value: int | None, param: str, low: int, high: int) -> str | None:
        return None if value is None else str(validate_int(value, param, low, high))

    query = _pairs(
        [
            ("ApiKey", creds.api_key),
            ("SecretKey", creds.secret_key),
            ("TemplateId", record),
            ("Phone", number),
            ("SendDate", _voice_date(send_date, zone)),
            ("NumberForward", _maybe(number_forward, validate_number_forward)),
            ("MaxRepeat", num(max_repeat, "MaxRepeat", MAX_REPEAT_MIN, MAX_REPEAT_MAX)),
            ("MaxRetry", num(max_retry, "MaxRetry", MAX_RETRY_MIN, MAX_RETRY_MAX)),
            ("Ivr", num(ivr, "Ivr", IVR_MIN, IVR_MAX)),
            (
                "TimeWaitToIvr",
                num(
                    time_wait_to_ivr,
                    "TimeWaitToIvr",
                    TIME_WAIT_TO_IVR_MIN_S,
                    TIME_WAIT_TO_IVR_MAX_S,
                ),
            ),
            ("WaitRetry", num(wait_retry, "WaitRetry", WAIT_RETRY_MIN_S, WAIT_RETRY_MAX_S)),
            ("CallbackUrl", _maybe(callback_url, validate_callback_url)),
            ("RequestID", rid),  # sic: this endpoint's URL spells it RequestID
        ]
    )
    return EsmsRequest(MAKE_CALL_RECORD, query=query)


def make_call_template(
    creds: Credentials,
    *,
    phone: str,
    template_id: str,
    variables: Sequence[str],
    request_id: str,
    zone: ZoneInfo,
    callback_url: str | None = None,
    send_date: datetime | None = None,
    voice: Voice | str | None = None,
    speed: int | None = None,
) -> EsmsRequest:
    """MakeCallTemplate_V2: a text-to-speech call script registered on the account."""
    number = validate_phone(phone)
    template = validate_text(template_id, "TemplateId", SOURCE_ID_MAX_LEN)
    joined = validate_variables(variables)
    rid = validate_request_id(request_id)
    speed_text = None if speed is None else str(validate_int(speed, "Speed", SPEED_MIN, SPEED_MAX))
    query = _pairs(
        [
            ("ApiKey", creds.api_key),
            ("SecretKey", creds.secret_key),
            ("TemplateId", template),
            ("Phone", number),
            ("VariableListStr", joined or None),
            ("SendDate", _voice_date(send_date, zone)),
            ("Voice", None if voice is None else validate_voice(voice).value),
            ("Speed", speed_text),
            ("CallbackUrl", _maybe(callback_url, validate_callback_url)),
            ("RequestId", rid),
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


def _voice_date(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return None if moment is None else validate_send_date(moment, zone, otp=False)


def _maybe(value: str | None, check: Callable[[str], str]) -> str | None:
    return None if value is None else check(value)

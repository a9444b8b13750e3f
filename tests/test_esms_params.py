"""The eSMS client's requests, compared with the documents' own example requests (no network).

The example URLs and bodies below are copied from ``esms-docs`` (and the seed pages); each
test builds the real request from the job's typed parameters (voicecall.job.params) through
:class:`~tests.fixtures.esms_sends.BlockingSends` (the worker's send) on an ``httpx.MockTransport`` and compares parameter names, their order,
spelling and value formats with the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import ValidationError

from tests.fixtures.esms_sends import BlockingSends
from voicecall.config.settings import Settings
from voicecall.job import esms_limits
from voicecall.job.params import CallParamsAdapter, OtpParams, RecordParams, TemplateParams
from worker.esms import InvalidParameter, Speed, Voice
from worker.esms import params as p

VN = ZoneInfo("Asia/Ho_Chi_Minh")
API_KEY = "TESTAPIKEY0123456789"
SECRET_KEY = "TESTSECRETKEY9876543210"

# --- the documents' example requests, verbatim ------------------------------------------
DOC_OTP_GET = (  # seeds/000 curl
    "http://rest.esms.vn/MainService.svc/json/SendMultipleMessage_V4_get?Phone={Phone}"
    "&Content={Content}&ApiKey={ApiKey}&SecretKey={SecretKey}&IsUnicode={IsUnicode}"
    "&Brandname={Brandname}&SmsType={SmsType}&CallbackUrl={CallbackUrl}&RequestId={RequestId}"
    "&SendDate=2022-08-03 10:00:00"
)
DOC_OTP_POST_BODY = """{
   "ApiKey": "{{ApiKey}}",
   "Content": "{{Content}}",
   "Phone": "{{Phone}}",
   "SecretKey": "{{SecretKey}}",
   "SmsType": "8",
   "IsUnicode": {{IsUnicode}},
   "Sandbox": {{Sandbox}},
   "campaignid": "{{campaignid}}",
   "RequestId": "{{RequestId}}",
   "CallbackUrl": "{{CallbackUrl}}",
   "SendDate":{{SendDate}}
}"""
DOC_RECORD = (
    "https://voiceapi.esms.vn/MainService.svc/json/MakeCallRecord_V2?ApiKey={{ApiKey}}"
    "&SecretKey={{SecretKey}}&TemplateId={{RecordId}}&Phone={{Phone}}&SendDate={{SendDate}}"
    "&NumberForward={{NumberForward}}&MaxRepeat={{MaxRepeat}}&MaxRetry={{MaxRetry}}&Ivr={{Ivr}}"
    "&TimeWaitToIvr={{TimeWaitToIvr}}&WaitRetry={{WaitRetry}}&CallbackUrl={{CallbackUrl}}"
    "&RequestID={{RequestId}}"
)
DOC_TEMPLATE = (
    "https://voiceapi.esms.vn/MainService.svc/json/MakeCallTemplate_V2?ApiKey={{ApiKey}}"
    "&SecretKey={{SecretKey}}&TemplateId={{TemplateId}}&Phone={{Phone}}"
    "&VariableListStr={{VariableListStr}}&SendDate={{SendDate}}&Voice={{Voice}}&Speed={{Speed}}"
    "&CallbackUrl={{CallbackUrl}}&RequestId={{RequestId}}"
)
DOC_CALL_STATUS = (
    "https://voiceapi.esms.vn/MainService.svc/json/GetSendStatus?ApiKey={{ApiKey}}"
    "&SecretKey={{SecretKey}}&ReferenceId={{SMSID}}"
)
DOC_OTP_STATUS = (
    "https://rest.esms.vn/MainService.svc/json/GetSendStatus?RefId=6007b4bc6db546b194062c19620cc820200"
    "&ApiKey={{ApiKey}}&SecretKey={{SecretKey}}"
)
DOC_BALANCE = "https://rest.esms.vn/MainService.svc/json/GetBalance_json"
DOC_BALANCE_BODY = '{"ApiKey": "{{ApiKey}}", "SecretKey": "{{SecretKey}}"}'

OK_SEND = {"CodeResult": "100", "SMSID": "8eb2af6d-fb4c4814-b9cc-4c0e3ed32edf "}


def doc_names(url: str) -> list[str]:
    """Parameter names of a documented URL, in order."""
    return re.findall(r"[?&]([A-Za-z]+)=", url)


def doc_body_keys(body: str) -> list[str]:
    """Keys of a documented JSON body template, in order."""
    return re.findall(r'"([A-Za-z]+)"\s*:', body)


def doc_path(url: str) -> str:
    return urlsplit(url).path


class Recorder:
    """An httpx.MockTransport that records requests and answers a canned eSMS body."""

    def __init__(self, answer: dict[str, object] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or OK_SEND
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.answer)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.last.url.query.decode("ascii"), keep_blank_values=True)

    def body(self) -> dict[str, object]:
        return dict(json.loads(self.last.content))


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "esms_api_key": API_KEY,
        "esms_secret_key": SECRET_KEY,
        "esms_rest_url": "https://rest.esms.vn/MainService.svc/json",
        "esms_voice_url": "https://voiceapi.esms.vn/MainService.svc/json",
        "esms_brandname": "",
        "esms_sandbox": False,
        "esms_otp_method": "post",
        "timezone": "Asia/Ho_Chi_Minh",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def client(rec: Recorder) -> Iterator[BlockingSends]:
    with BlockingSends(make_settings(), transport=rec.transport) as c:
        yield c


CALLBACK = "https://api.example.vn/v1/esms/callback/job-1/abc123?kind=record"
WHEN = datetime(2017, 12, 12, 14, 0, tzinfo=VN)


# --- names, order, spelling ----------------------------------------------------------


def test_otp_get_matches_seed_url(rec: Recorder) -> None:
    """Voice OTP GET sends exactly the seed curl's parameters, in its order, at its path."""
    with BlockingSends(make_settings(esms_otp_method="get"), transport=rec.transport) as get:
        get.send(
            OtpParams(content="Ma OTP 123456", brandname="VOICECALL"),
            phone="0901234567",
            request_id="job-1",
            callback_url=CALLBACK,
            send_date=datetime(2022, 8, 3, 10, tzinfo=VN),
        )
    assert rec.last.method == "GET"
    assert rec.last.url.path == doc_path(DOC_OTP_GET)
    assert [k for k, _ in rec.query()] == doc_names(DOC_OTP_GET)
    q = dict(rec.query())
    assert q["SmsType"] == "8"
    assert q["IsUnicode"] == "0"
    assert q["SendDate"] == "2022-08-03 10:00:00"
    assert q["Phone"] == "0901234567"


def test_otp_post_matches_documented_body(client: BlockingSends, rec: Recorder) -> None:
    """Voice OTP POST sends the documented JSON keys (plus the seed's Brandname) with their types."""
    call = OtpParams(
        content="Mã OTP của bạn là 123456",
        is_unicode=True,
        brandname="VOICECALL",
        sandbox=True,
        campaign_id="otp-login",
    )
    client.send(
        call,
        phone="+84 90 123 4567",
        request_id="job-2",
        callback_url=CALLBACK,
        send_date=datetime(2022, 8, 3, 10, tzinfo=VN),
    )
    assert rec.last.method == "POST"
    assert rec.last.url.path == "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
    assert rec.last.headers["content-type"] == "application/json"
    body = rec.body()
    assert set(body) == set(doc_body_keys(DOC_OTP_POST_BODY)) | {"Brandname"}
    assert body["SmsType"] == "8"  # a string, as in the curl
    assert body["IsUnicode"] == 1 and body["Sandbox"] == 1  # numbers, as in the curl
    assert body["SendDate"] == "2022-08-03 10:00:00"
    assert body["Content"] == "Mã OTP của bạn là 123456"
    assert body["Phone"] == "0901234567"
    assert body["campaignid"] == "otp-login"


def test_otp_method_and_sandbox_default_to_settings(rec: Recorder) -> None:
    """Without per-call arguments, ESMS_OTP_METHOD, ESMS_SANDBOX and ESMS_BRANDNAME apply."""
    settings = make_settings(esms_otp_method="get", esms_brandname="BRAND")
    with BlockingSends(settings, transport=rec.transport) as c:
        c.send(OtpParams(content="Ma 1"), phone="0901234567", request_id="r1")
    assert rec.last.method == "GET"
    assert dict(rec.query())["Brandname"] == "BRAND"
    with BlockingSends(make_settings(esms_sandbox=True), transport=rec.transport) as c:
        c.send(OtpParams(content="Ma 1"), phone="0901234567", request_id="r2")
    assert rec.body()["Sandbox"] == 1
    assert "Brandname" not in rec.body()


def test_record_call_matches_doc_url_with_RequestID(client: BlockingSends, rec: Recorder) -> None:
    """MakeCallRecord_V2 sends the documented names in order, spelling the id RequestID."""
    call = RecordParams(
        record_id="12345",
        number_forward="0912 345 678",
        max_repeat=2,
        max_retry=1,
        ivr=1,
        time_wait_to_ivr=10,
        wait_retry=60,
    )
    client.send(
        call, phone="84901234567", request_id="job-3", callback_url=CALLBACK, send_date=WHEN
    )
    assert rec.last.method == "GET"
    assert rec.last.url.path == doc_path(DOC_RECORD)
    names = [k for k, _ in rec.query()]
    assert names == doc_names(DOC_RECORD)
    assert "RequestID" in names and "RequestId" not in names
    q = dict(rec.query())
    assert q == {
        "ApiKey": API_KEY,
        "SecretKey": SECRET_KEY,
        "TemplateId": "12345",
        "Phone": "0901234567",
        "SendDate": "2017/12/12 14:00:00",
        "NumberForward": "0912345678",
        "MaxRepeat": "2",
        "MaxRetry": "1",
        "Ivr": "1",
        "TimeWaitToIvr": "10",
        "WaitRetry": "60",
        "CallbackUrl": CALLBACK,
        "RequestID": "job-3",
    }


def test_template_call_matches_doc_url(client: BlockingSends, rec: Recorder) -> None:
    """MakeCallTemplate_V2 sends the documented names in order, VariableListStr joined by ||."""
    call = TemplateParams(
        template_id="T1", variables=["Trung", "20000"], voice=Voice.HATIEUMAI, speed=Speed.SLOW
    )
    client.send(call, phone="0901234567", request_id="job-4", callback_url=CALLBACK, send_date=WHEN)
    assert rec.last.url.path == doc_path(DOC_TEMPLATE)
    assert [k for k, _ in rec.query()] == doc_names(DOC_TEMPLATE)
    q = dict(rec.query())
    assert q["VariableListStr"] == "Trung||20000"
    assert q["Voice"] == "hatieumai"
    assert q["Speed"] == "-1"
    assert q["SendDate"] == "2017/12/12 14:00:00"
    assert q["RequestId"] == "job-4"


def test_optional_parameters_are_left_out(client: BlockingSends, rec: Recorder) -> None:
    """Parameters not given are not sent at all (eSMS: "do not pass SendDate to send now")."""
    client.send(TemplateParams(template_id="T1"), phone="0901234567", request_id="r")
    assert [k for k, _ in rec.query()] == [
        "ApiKey",
        "SecretKey",
        "TemplateId",
        "Phone",
        "RequestId",
    ]
    client.send(OtpParams(content="Ma 1"), phone="0901234567", request_id="r")
    assert "SendDate" not in rec.body() and "CallbackUrl" not in rec.body()


def test_status_endpoints_match_doc_urls(client: BlockingSends, rec: Recorder) -> None:
    """Call status uses voiceapi ReferenceId=; OTP status uses rest RefId=, each in doc order."""
    rec.answer = {"CodeResponse": "100", "SendStatus": 5}
    client.call_status(" 505139D7-54F8-48A9-88FA-9460A78731DD ")
    assert rec.last.url.host == "voiceapi.esms.vn"
    assert rec.last.url.path == doc_path(DOC_CALL_STATUS)
    assert rec.query() == [
        ("ApiKey", API_KEY),
        ("SecretKey", SECRET_KEY),
        ("ReferenceId", "505139D7-54F8-48A9-88FA-9460A78731DD"),
    ]
    client.otp_status("6007b4bc6db546b194062c19620cc820200")
    assert rec.last.url.host == "rest.esms.vn"
    assert rec.last.url.path == doc_path(DOC_OTP_STATUS)
    assert [k for k, _ in rec.query()] == doc_names(DOC_OTP_STATUS)


def test_balance_is_a_json_post(client: BlockingSends, rec: Recorder) -> None:
    """GetBalance_json is a POST with exactly {ApiKey, SecretKey} as its JSON body."""
    rec.answer = {"Balance": 36693, "CodeResponse": "100", "UserID": 9999}
    client.balance()
    assert rec.last.method == "POST"
    assert str(rec.last.url) == DOC_BALANCE
    assert list(rec.body()) == doc_body_keys(DOC_BALANCE_BODY)
    assert rec.body() == {"ApiKey": API_KEY, "SecretKey": SECRET_KEY}


# --- encoding -------------------------------------------------------------------------


def test_query_is_percent_encoded_with_no_plus_for_space(rec: Recorder) -> None:
    """Spaces travel as %20, '+' as %2B, and CallbackUrl is fully URL-encoded (documented)."""
    cb = "https://api.example.vn/cb/job-5/sig?a=1&b=2"
    with BlockingSends(make_settings(esms_otp_method="get"), transport=rec.transport) as get:
        get.send(
            OtpParams(content="Ma + OTP 1"),
            phone="0901234567",
            request_id="job-5",
            callback_url=cb,
            send_date=datetime(2022, 8, 3, 10, tzinfo=VN),
        )
    raw = rec.last.url.query.decode("ascii")
    assert "+" not in raw
    assert "SendDate=2022-08-03%2010%3A00%3A00" in raw
    assert "Content=Ma%20%2B%20OTP%201" in raw
    assert "CallbackUrl=https%3A%2F%2Fapi.example.vn%2Fcb%2Fjob-5%2Fsig%3Fa%3D1%26b%3D2" in raw
    assert dict(rec.query())["CallbackUrl"] == cb


def test_unicode_content_round_trips_in_query(rec: Recorder) -> None:
    """Vietnamese text with diacritics is UTF-8 percent-encoded and decodes to itself."""
    text = "Mã xác thực của bạn là 482915"
    with BlockingSends(make_settings(esms_otp_method="get"), transport=rec.transport) as get:
        get.send(OtpParams(content=text, is_unicode=True), phone="0901234567", request_id="u")
    assert dict(rec.query())["Content"] == text
    assert dict(rec.query())["IsUnicode"] == "1"


# --- SendDate per endpoint and zone -----------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "otp", "expected"),
    [
        (datetime(2017, 12, 12, 14, 0, tzinfo=VN), False, "2017/12/12 14:00:00"),
        (datetime(2017, 12, 12, 7, 0, tzinfo=UTC), False, "2017/12/12 14:00:00"),
        (datetime(2022, 8, 3, 3, 0, tzinfo=UTC), True, "2022-08-03 10:00:00"),
        (
            datetime(2022, 8, 3, 12, 0, tzinfo=timezone(timedelta(hours=9))),
            True,
            "2022-08-03 10:00:00",
        ),
        (datetime(2022, 12, 31, 17, 30, 5, tzinfo=UTC), False, "2023/01/01 00:30:05"),
    ],
)
def test_send_date_format_and_zone(moment: datetime, otp: bool, expected: str) -> None:
    """SendDate is written in Vietnam time, in the endpoint's own format (docs' examples)."""
    assert p.validate_send_date(moment, VN, otp=otp) == expected


def test_send_date_follows_configured_zone(rec: Recorder) -> None:
    """TIMEZONE decides the zone SendDate is written in."""
    with BlockingSends(make_settings(timezone="UTC"), transport=rec.transport) as c:
        c.send(RecordParams(record_id="1"), phone="0901234567", request_id="z", send_date=WHEN)
    assert dict(rec.query())["SendDate"] == "2017/12/12 07:00:00"


# --- validation: the contract's models once, the job's own fields before any request -----

BASE_TARGET: dict[str, object] = {"phone": "0901234567", "request_id": "r"}

INVALID_TARGET = [
    ({"phone": "12345"}, "Phone"),
    ({"phone": "+1 212 555 0100"}, "Phone"),
    ({"phone": ""}, "Phone"),
    ({"request_id": "x" * 51}, "RequestId"),
    ({"request_id": ""}, "RequestId"),
    ({"request_id": "has space"}, "RequestId"),
    ({"callback_url": "ftp://x/y"}, "CallbackUrl"),
    ({"callback_url": "/relative/path"}, "CallbackUrl"),
    ({"send_date": datetime(2022, 8, 3, 10)}, "SendDate"),  # naive
]


@pytest.mark.parametrize(("change", "param"), INVALID_TARGET)
def test_invalid_job_fields_are_refused_before_any_request(
    client: BlockingSends, rec: Recorder, change: dict[str, object], param: str
) -> None:
    """A phone, RequestId, CallbackUrl or SendDate breaking its rule raises InvalidParameter
    naming the eSMS parameter, and nothing is sent."""
    target: dict[str, Any] = {**BASE_TARGET, **change}
    with pytest.raises(InvalidParameter) as info:
        client.send(OtpParams(content="Ma 1"), **target)
    assert info.value.param == param
    assert str(info.value).startswith(param)
    assert isinstance(info.value, ValueError)
    assert rec.requests == []


def test_record_call_names_its_RequestID(client: BlockingSends, rec: Recorder) -> None:
    """MakeCallRecord_V2's refusal names the id as that endpoint spells it."""
    with pytest.raises(InvalidParameter) as info:
        client.send(RecordParams(record_id="1"), phone="0901234567", request_id="x" * 51)
    assert info.value.param == "RequestID"
    assert rec.requests == []


def test_an_erased_otp_code_is_never_sent(client: BlockingSends, rec: Recorder) -> None:
    """An OTP whose spoken code was erased is refused naming Content; nothing is sent."""
    with pytest.raises(InvalidParameter) as info:
        client.send(OtpParams(content=None), phone="0901234567", request_id="r")
    assert info.value.param == "Content"
    assert rec.requests == []


BASE_PARAMS: dict[str, dict[str, object]] = {
    "voice_otp": {"kind": "voice_otp", "content": "Ma 1"},
    "record_call": {"kind": "record_call", "record_id": "1"},
    "template_call": {"kind": "template_call", "template_id": "T", "variables": ["a"]},
}
INVALID_PARAMS = [
    ("voice_otp", {"content": "  "}, "content"),
    ("voice_otp", {"content": "Mã 1"}, "is_unicode"),  # diacritics need is_unicode
    ("voice_otp", {"content": "x" * 161}, "content"),
    ("voice_otp", {"content": "Ma\x001"}, "content"),
    ("record_call", {"record_id": ""}, "record_id"),
    ("record_call", {"record_id": "r" * 51}, "record_id"),
    ("record_call", {"max_retry": 6}, "max_retry"),
    ("record_call", {"max_retry": -1}, "max_retry"),
    ("record_call", {"max_repeat": 0}, "max_repeat"),
    ("record_call", {"wait_retry": 29}, "wait_retry"),
    ("record_call", {"wait_retry": 3601}, "wait_retry"),
    ("record_call", {"number_forward": "0912345678", "ivr": 10}, "ivr"),
    ("record_call", {"ivr": 1}, "number_forward"),
    ("record_call", {"time_wait_to_ivr": 61}, "time_wait_to_ivr"),
    ("record_call", {"number_forward": "abc", "ivr": 1}, "number_forward"),
    ("template_call", {"variables": ["a||b"]}, "variables"),
    ("template_call", {"variables": "Trung"}, "variables"),
    ("template_call", {"variables": ["v"] * 21}, "variables"),
    ("template_call", {"variables": ["v" * 201]}, "variables"),
    ("template_call", {"voice": "robot"}, "voice"),
    ("template_call", {"speed": 4}, "speed"),
    ("template_call", {"speed": -4}, "speed"),
    ("template_call", {"template_id": " "}, "template_id"),
]


@pytest.mark.parametrize(("kind", "change", "field"), INVALID_PARAMS)
def test_invalid_call_parameters_are_refused_by_their_model(
    kind: str, change: dict[str, object], field: str
) -> None:
    """A call parameter breaking its rule is refused by the one validation, the job
    contract's model (so no such value reaches the eSMS builders), naming the field."""
    with pytest.raises(ValidationError) as info:
        CallParamsAdapter.validate_python({**BASE_PARAMS[kind], **change})
    assert field in str(info.value)


def test_invalid_parameter_message_never_holds_the_value(client: BlockingSends) -> None:
    """The refusal names the parameter and the rule but never echoes the (personal) value."""
    with pytest.raises(InvalidParameter) as info:
        client.send(OtpParams(content="x"), phone="0901234", request_id="r")
    assert "0901234" not in str(info.value)


@pytest.mark.parametrize("smsid", ["", "   ", "a b", "x" * 101])
def test_status_refuses_a_bad_smsid(client: BlockingSends, rec: Recorder, smsid: str) -> None:
    """A blank or malformed SMSID is refused before the status request."""
    with pytest.raises(InvalidParameter):
        client.call_status(smsid)
    with pytest.raises(InvalidParameter):
        client.otp_status(smsid)
    assert rec.requests == []


def test_speeds_and_voices_are_the_contracts() -> None:
    """Speed's members are exactly the contract's speed range; the voices are the four
    documented ones, the contract's own enum."""
    low, high = esms_limits.SPEED_RANGE
    assert [s.value for s in Speed] == list(range(low, high + 1))
    assert Voice is esms_limits.Voice
    assert {v.value for v in Voice} == {"male", "female", "hatieumai", "ngoclam"}


def test_options_the_contract_allows_alone_are_sent(client: BlockingSends, rec: Recorder) -> None:
    """NumberForward without Ivr and TimeWaitToIvr alone pass, as the job contract allows."""
    call = RecordParams(record_id="1", number_forward="84912345678", time_wait_to_ivr=5)
    client.send(call, phone="0901234567", request_id="r")
    q = dict(rec.query())
    assert (q["NumberForward"], q["TimeWaitToIvr"]) == ("0912345678", "5")
    assert "Ivr" not in q


def test_sandbox_or_campaign_goes_by_post_whatever_the_method_setting(rec: Recorder) -> None:
    """Sandbox and campaignid exist only on the POST form: asking for them selects POST."""
    with BlockingSends(make_settings(esms_otp_method="get"), transport=rec.transport) as c:
        c.send(OtpParams(content="Ma 1", sandbox=True), phone="0901234567", request_id="s1")
        assert rec.last.method == "POST" and rec.body()["Sandbox"] == 1
        c.send(OtpParams(content="Ma 1", campaign_id="c"), phone="0901234567", request_id="s2")
        assert rec.last.method == "POST" and rec.body()["campaignid"] == "c"
        c.send(OtpParams(content="Ma 1"), phone="0901234567", request_id="s3")
        assert rec.last.method == "GET"


def test_request_id_of_exactly_50_characters_is_accepted(
    client: BlockingSends, rec: Recorder
) -> None:
    """RequestId may be 50 characters long (the documented maximum)."""
    client.send(RecordParams(record_id="1"), phone="0901234567", request_id="x" * 50)
    assert dict(rec.query())["RequestID"] == "x" * 50


def test_built_requests_never_show_credentials_in_repr() -> None:
    """repr() of credentials and built requests hides ApiKey/SecretKey (safe if logged)."""
    creds = p.Credentials(API_KEY, SECRET_KEY)
    request = p.balance(creds)
    assert API_KEY not in repr(creds) + repr(request)
    assert SECRET_KEY not in repr(creds) + repr(request)

"""The eSMS simulator, over real HTTP against the real process (``esms_sim`` fixture).

Time runs 100x faster in these tests (``time_scale=0.01``): a 30 s ring takes 0.3 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from simulator.cli import build_parser
from simulator.config import SimConfig
from tests.fixtures.sim import EsmsSim, wait_for

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ANSWER = "0901234560"  # no rule: answered on the first dial
NOANSWER = "0901234561"  # default rule 1=noanswer
FAIL = "0901234562"  # default rule 2=fail
SECOND_DIAL = "0901234563"  # default rule 3=answer-on-2


# Helpers: one function per eSMS endpoint, sending the right credentials unless told.


def record(sim: EsmsSim, phone: str = ANSWER, **params: Any) -> dict[str, Any]:
    query = {**sim.auth, "TemplateId": "rec-1", "Phone": phone, **params}
    response = httpx.get(f"{sim.voice_url}/MakeCallRecord_V2", params=query)
    assert response.status_code == 200
    return dict(response.json())


def template(sim: EsmsSim, phone: str = ANSWER, **params: Any) -> dict[str, Any]:
    query = {**sim.auth, "TemplateId": "tpl-1", "Phone": phone, **params}
    response = httpx.get(f"{sim.voice_url}/MakeCallTemplate_V2", params=query)
    assert response.status_code == 200
    return dict(response.json())


def otp_get(sim: EsmsSim, phone: str = ANSWER, **params: Any) -> dict[str, Any]:
    query = {**sim.auth, "Phone": phone, "Content": "Ma OTP 123456", "SmsType": "8", **params}
    response = httpx.get(f"{sim.rest_url}/SendMultipleMessage_V4_get", params=query)
    assert response.status_code == 200
    return dict(response.json())


def otp_post(sim: EsmsSim, phone: str = ANSWER, slash: str = "/", **body: Any) -> dict[str, Any]:
    payload = {**sim.auth, "Phone": phone, "Content": "Ma OTP 123456", "SmsType": 8, **body}
    response = httpx.post(f"{sim.rest_url}/SendMultipleMessage_V4_post_json{slash}", json=payload)
    assert response.status_code == 200
    return dict(response.json())


def voice_status(sim: EsmsSim, smsid: str, **params: Any) -> dict[str, Any]:
    query = {**sim.auth, "ReferenceId": smsid, **params}
    return dict(httpx.get(f"{sim.voice_url}/GetSendStatus", params=query).json())


def otp_status(sim: EsmsSim, smsid: str, **params: Any) -> dict[str, Any]:
    query = {"RefId": smsid, **sim.auth, **params}
    return dict(httpx.get(f"{sim.rest_url}/GetSendStatus", params=query).json())


def get_balance(sim: EsmsSim, **body: Any) -> dict[str, Any]:
    return dict(httpx.post(f"{sim.rest_url}/GetBalance_json", json={**sim.auth, **body}).json())


def vn_time(offset_s: float, fmt: str) -> str:
    return (datetime.now(VN) + timedelta(seconds=offset_s)).strftime(fmt)


# A tiny callback receiver.


class Receiver:
    """An HTTP server recording every GET; answers the scripted statuses, then 200."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.script: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                receiver.requests.append(self.path)
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def queries(self) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(path).query, keep_blank_values=True) for path in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# Send endpoints: accepted answers and their quirks


def test_record_call_accepted_with_trailing_space_smsid(esms_sim: EsmsSim) -> None:
    """MakeCallRecord_V2 answers CodeResult "100" (a string), CountRegenerate, SMSID + space."""
    body = record(esms_sim, RequestID="job-1")
    assert body["CodeResult"] == "100"
    assert body["CountRegenerate"] == 0
    assert body["SMSID"].endswith(" ") and body["SMSID"].strip() == body["SMSID"][:-1]
    assert [c["smsid"] for c in esms_sim.calls()] == [body["SMSID"].strip()]


def test_template_call_accepted_with_trailing_space_smsid(esms_sim: EsmsSim) -> None:
    """MakeCallTemplate_V2 answers 100 with the trailing-space SMSID; RequestId is recorded."""
    body = template(
        esms_sim, VariableListStr="Trung||20000", Voice="female", Speed="1", RequestId="job-2"
    )
    assert body["CodeResult"] == "100" and body["SMSID"].endswith(" ")
    call = esms_sim.call(body["SMSID"])
    assert (call["kind"], call["request_id"]) == ("template", "job-2")


def test_trailing_space_can_be_turned_off(esms_sim: EsmsSim) -> None:
    """smsid_trailing_space=false gives clean voice SMSIDs."""
    esms_sim.configure(smsid_trailing_space=False)
    assert not record(esms_sim)["SMSID"].endswith(" ")


def test_voice_otp_get_and_post_accepted(esms_sim: EsmsSim) -> None:
    """Voice OTP by GET, by POST with and without trailing slash: 100, SMSID without space."""
    bodies = [otp_get(esms_sim), otp_post(esms_sim, slash="/"), otp_post(esms_sim, slash="")]
    for body in bodies:
        assert body["CodeResult"] == "100" and body["CountRegenerate"] == 0
        assert body["SMSID"] == body["SMSID"].strip()
    assert [c["kind"] for c in esms_sim.calls()] == ["otp"] * 3


def test_voice_otp_sandbox_is_not_delivered(esms_sim: EsmsSim) -> None:
    """Sandbox=1: accepted, not charged, no status (105); in the ledger as a sandbox call."""
    body = otp_post(esms_sim, Sandbox=1)
    assert body["CodeResult"] == "100"
    time.sleep(0.25)
    assert otp_status(esms_sim, body["SMSID"])["CodeResponse"] == "105"
    assert esms_sim.call(body["SMSID"])["state"] == "sandbox"
    assert esms_sim.stats()["balance"] == 10_000_000


# Refusals: every documented code


def test_wrong_credentials_give_101_everywhere(esms_sim: EsmsSim) -> None:
    """Wrong SecretKey: 101 "Authorize Failed" in each endpoint's own body shape, HTTP 200."""
    bad = {"SecretKey": "wrong"}
    expected = {"CodeResult": "101", "CountRegenerate": 0, "ErrorMessage": "Authorize Failed"}
    assert record(esms_sim, **bad) == expected
    assert template(esms_sim, **bad) == expected
    assert otp_get(esms_sim, **bad) == expected
    assert otp_post(esms_sim, **bad) == expected
    assert voice_status(esms_sim, "x", **bad) == expected
    assert otp_status(esms_sim, "abc", **bad) == {"CodeResponse": "101", "SMSID": "abc"}
    assert get_balance(esms_sim, **bad) == {
        "Balance": 0,
        "CodeResponse": "101",
        "ErrorMessage": "Authorize Failed",
    }
    assert esms_sim.calls() == []


@pytest.mark.parametrize("phone", ["0900000099", "84900000099"])
def test_blocked_phone_gives_99(esms_sim: EsmsSim, phone: str) -> None:
    """The default blocked number, in either form, gives 99 and no call."""
    assert record(esms_sim, phone)["CodeResult"] == "99"
    assert otp_get(esms_sim, phone)["CodeResult"] == "99"
    assert esms_sim.calls() == []


@pytest.mark.parametrize(
    "phone", ["", "090123", "+84901234567", "0090123456", "840901234567", "09012345678901", "09o1"]
)
def test_invalid_phone_gives_108(esms_sim: EsmsSim, phone: str) -> None:
    """Anything but 0 or 84 followed by 9-10 digits gives 108."""
    assert record(esms_sim, phone)["CodeResult"] == "108"
    assert otp_post(esms_sim, phone)["CodeResult"] == "108"


@pytest.mark.parametrize("phone", ["84901234567", "0901234567", "02871002454"])
def test_valid_phone_forms_accepted(esms_sim: EsmsSim, phone: str) -> None:
    """84 and 0 forms, mobile (9 digits) and landline (10 digits), are accepted."""
    assert record(esms_sim, phone)["CodeResult"] == "100"


def test_several_phones_give_163(esms_sim: EsmsSim) -> None:
    """Comma-separated phones give 163 (one phone per request)."""
    assert otp_get(esms_sim, "0901234567,0901234568")["CodeResult"] == "163"
    assert record(esms_sim, "0901234567,0901234568")["CodeResult"] == "163"


@pytest.mark.parametrize("sms_type", ["2", ""])
def test_sms_type_not_8_gives_118(esms_sim: EsmsSim, sms_type: str) -> None:
    """Voice OTP with SmsType other than 8 (or none) gives 118."""
    assert otp_get(esms_sim, SmsType=sms_type)["CodeResult"] == "118"


def test_unknown_template_recording_brandname(esms_sim: EsmsSim) -> None:
    """Catalogues: unknown template 104, unknown recording 106, unknown Brandname 104."""
    esms_sim.configure(templates=["tpl-1"], recordings=["rec-1"], brandnames=["VIHAT"])
    assert template(esms_sim, TemplateId="tpl-9")["CodeResult"] == "104"
    assert template(esms_sim)["CodeResult"] == "100"
    assert record(esms_sim, TemplateId="rec-9")["CodeResult"] == "106"
    assert record(esms_sim)["CodeResult"] == "100"
    assert otp_get(esms_sim, Brandname="OTHER")["CodeResult"] == "104"
    assert otp_get(esms_sim, Brandname="VIHAT")["CodeResult"] == "100"
    assert otp_get(esms_sim)["CodeResult"] == "100"


def test_insufficient_balance_gives_103(esms_sim: EsmsSim) -> None:
    """Each call spends the price; below it, 103. GetBalance reports what is left."""
    esms_sim.configure(balance=1000, price=850)
    assert record(esms_sim)["CodeResult"] == "100"
    assert record(esms_sim)["CodeResult"] == "103"
    assert get_balance(esms_sim) == {"Balance": 150, "CodeResponse": "100", "UserID": 9999}


def test_failed_call_is_refunded(esms_sim: EsmsSim) -> None:
    """A call that does not go through is not charged once it ends."""
    smsid = record(esms_sim, FAIL)["SMSID"]
    assert get_balance(esms_sim)["Balance"] == 10_000_000 - 850
    esms_sim.wait_finished(smsid)
    wait_for(lambda: get_balance(esms_sim)["Balance"] == 10_000_000)


def test_request_id_reuse_gives_124_and_no_second_call(esms_sim: EsmsSim) -> None:
    """A RequestId used within 24 h gives 124 (any endpoint, either spelling); no new call."""
    assert record(esms_sim, RequestID="job-7")["CodeResult"] == "100"
    assert record(esms_sim, RequestId="job-7")["CodeResult"] == "124"
    assert template(esms_sim, RequestId="job-7")["CodeResult"] == "124"
    assert otp_post(esms_sim, RequestId="job-7")["CodeResult"] == "124"
    assert len(esms_sim.calls()) == 1
    assert get_balance(esms_sim)["Balance"] == 10_000_000 - 850


def test_refused_send_does_not_take_the_request_id(esms_sim: EsmsSim) -> None:
    """A refused send (108) leaves its RequestId free."""
    assert record(esms_sim, "123", RequestID="job-8")["CodeResult"] == "108"
    assert record(esms_sim, RequestID="job-8")["CodeResult"] == "100"


def test_request_id_window_is_simulated_time(esms_sim: EsmsSim) -> None:
    """The 124 window is simulated time: with a 20 s window at scale 0.01, 0.2 s real."""
    esms_sim.configure(request_id_window_s=20)
    assert otp_get(esms_sim, RequestId="job-9")["CodeResult"] == "100"
    assert otp_get(esms_sim, RequestId="job-9")["CodeResult"] == "124"
    time.sleep(0.25)
    assert otp_get(esms_sim, RequestId="job-9")["CodeResult"] == "100"


def test_tps_limit_gives_160(esms_sim: EsmsSim) -> None:
    """Beyond tps_limit sends in one second: 160, counted in the stats."""
    esms_sim.configure(tps_limit=2)
    codes = [record(esms_sim)["CodeResult"] for _ in range(3)]
    assert codes == ["100", "100", "160"]
    assert esms_sim.stats()["faults"]["tps_rejected"] == 1


def test_missing_and_malformed_fields(esms_sim: EsmsSim) -> None:
    """Missing Content 110, missing TemplateId 106/104, bad MaxRetry/Ivr/RequestId 110."""
    assert otp_get(esms_sim, Content="")["CodeResult"] == "110"
    assert record(esms_sim, TemplateId="")["CodeResult"] == "106"
    assert template(esms_sim, TemplateId="")["CodeResult"] == "104"
    assert record(esms_sim, MaxRetry="two")["CodeResult"] == "110"
    assert record(esms_sim, Ivr="12")["CodeResult"] == "110"
    assert template(esms_sim, Voice="robot")["CodeResult"] == "110"
    assert record(esms_sim, RequestID="x" * 51)["CodeResult"] == "110"
    assert voice_status(esms_sim, "")["CodeResult"] == "105"
    bad_json = httpx.post(f"{esms_sim.rest_url}/SendMultipleMessage_V4_post_json/", content=b"{")
    assert bad_json.status_code == 400
    assert esms_sim.calls() == []


def test_empty_optional_fields_are_ignored(esms_sim: EsmsSim) -> None:
    """A URL template with empty optional fields (SendDate=&Ivr=...) is accepted."""
    body = record(esms_sim, SendDate="", Ivr="", MaxRetry="", WaitRetry="", CallbackUrl="")
    assert body["CodeResult"] == "100"


# SendDate


def test_send_date_formats_recorded_with_offset(esms_sim: EsmsSim) -> None:
    """OTP reads yyyy-mm-dd HH:MM:SS, voice yyyy/MM/dd HH:mm:ss, both in Vietnam time."""
    otp = otp_get(esms_sim, SendDate="2020-01-02 03:04:05")
    voice = record(esms_sim, SendDate="2020/01/02 03:04:05")
    assert esms_sim.call(otp["SMSID"])["send_date"] == "2020-01-02T03:04:05+07:00"
    assert esms_sim.call(voice["SMSID"])["send_date"] == "2020-01-02T03:04:05+07:00"


def test_send_date_zone_is_a_knob(esms_sim: EsmsSim) -> None:
    """timezone=UTC reads SendDate as UTC."""
    esms_sim.configure(timezone="UTC")
    body = template(esms_sim, SendDate="2020/01/02 03:04:05")
    assert esms_sim.call(body["SMSID"])["send_date"] == "2020-01-02T03:04:05+00:00"


@pytest.mark.parametrize(
    ("send", "value"),
    [
        (otp_get, "2020/01/02 03:04:05"),
        (otp_post, "2020-01-02T03:04:05"),
        (record, "2020-01-02 03:04:05"),
        (template, "02/01/2020 03:04"),
    ],
)
def test_malformed_send_date_gives_110(esms_sim: EsmsSim, send: Any, value: str) -> None:
    """A SendDate not in the endpoint's format gives 110 naming the expected format."""
    body = send(esms_sim, SendDate=value)
    assert body["CodeResult"] == "110" and "SendDate" in body["ErrorMessage"]
    assert esms_sim.calls() == []


def test_future_send_date_waits(esms_sim: EsmsSim) -> None:
    """A call whose SendDate is 60 s ahead waits (SendStatus 2) 0.6 s at scale 0.01, then runs."""
    smsid = record(esms_sim, SendDate=vn_time(61, "%Y/%m/%d %H:%M:%S"))["SMSID"]
    time.sleep(0.25)
    assert esms_sim.call(smsid)["state"] == "waiting"
    assert voice_status(esms_sim, smsid)["SendStatus"] == 2
    call = esms_sim.wait_finished(smsid, timeout=5)
    assert call["sent_result"] == 1


# Status lookups


def test_voice_status_105_then_100(esms_sim: EsmsSim) -> None:
    """Right after sending: 105 (CodeResult body); later: CodeResponse 100; unknown: 105."""
    smsid = record(esms_sim)["SMSID"]
    early = voice_status(esms_sim, smsid)
    assert early["CodeResult"] == "105" and "ErrorMessage" in early and "CodeResponse" not in early
    time.sleep(0.25)
    later = voice_status(esms_sim, smsid)
    assert later["CodeResponse"] == "100" and "CodeResult" not in later
    assert later["ReferenceId"] == smsid.strip()
    assert voice_status(esms_sim, "no-such-id")["CodeResult"] == "105"
    assert esms_sim.stats()["status_requests"][smsid.strip()] == 2


def test_otp_status_105_then_100(esms_sim: EsmsSim) -> None:
    """The rest GetSendStatus: CodeResponse 105 right after, then 100; voice ids are unknown."""
    smsid = otp_get(esms_sim)["SMSID"]
    assert otp_status(esms_sim, smsid) == {"CodeResponse": "105", "SMSID": smsid}
    time.sleep(0.25)
    assert otp_status(esms_sim, smsid)["CodeResponse"] == "100"
    voice_id = record(esms_sim)["SMSID"]
    time.sleep(0.25)
    assert otp_status(esms_sim, voice_id)["CodeResponse"] == "105"
    assert voice_status(esms_sim, smsid)["CodeResult"] == "105"


def test_call_life_through_max_retry(esms_sim: EsmsSim) -> None:
    """Ending in 3 answers on dial 2; ending in 1 never answers after 1 + MaxRetry dials."""
    second = record(esms_sim, SECOND_DIAL, MaxRetry="2", WaitRetry="10", MaxRepeat="2")["SMSID"]
    none = record(esms_sim, NOANSWER, MaxRetry="2", WaitRetry="10")["SMSID"]
    no_retry = record(esms_sim, SECOND_DIAL, MaxRetry="0")["SMSID"]
    time.sleep(0.35)
    assert voice_status(esms_sim, second)["SendStatus"] == 7  # between or on the dials
    answered = esms_sim.wait_finished(second)
    assert (answered["dials_made"], answered["call_status"]) == (2, "ANSWERED")
    assert voice_status(esms_sim, second) == {
        "CallDuration": 40,
        "CallStatus": "ANSWERED",
        "CodeResponse": "100",
        "Ivr": "",
        "ReferenceId": second.strip(),
        "SendStatus": 5,
        "SentResult": 1,
    }
    unanswered = esms_sim.wait_finished(none)
    assert (unanswered["dials_made"], unanswered["sent_result"]) == (3, 1)
    body = voice_status(esms_sim, none)
    assert (body["CallStatus"], body["SentResult"], body["CallDuration"]) == ("NOANSWERED", 1, 0)
    assert esms_sim.wait_finished(no_retry)["call_status"] == "NOANSWERED"


def test_failing_call(esms_sim: EsmsSim) -> None:
    """Ending in 2: fails on the first dial, no redial; OTP reports SendFailed 1."""
    voice = record(esms_sim, FAIL, MaxRetry="3")["SMSID"]
    otp = otp_get(esms_sim, FAIL)["SMSID"]
    assert esms_sim.wait_finished(voice)["dials_made"] == 1
    assert (
        voice_status(esms_sim, voice)["SentResult"],
        voice_status(esms_sim, voice)["CallStatus"],
    ) == (0, "")
    esms_sim.wait_finished(otp)
    assert otp_status(esms_sim, otp) == {
        "CodeResponse": "100",
        "SMSID": otp,
        "SendFailed": 1,
        "SendStatus": 5,
        "SendSuccess": 0,
        "TotalPrice": 0.0,
        "TotalReceiver": 1,
        "TotalSent": 1,
    }


def test_otp_status_success_body(esms_sim: EsmsSim) -> None:
    """A delivered Voice OTP: SendStatus 5, SendSuccess 1, TotalPrice 850.0."""
    smsid = otp_post(esms_sim)["SMSID"]
    esms_sim.wait_finished(smsid)
    assert otp_status(esms_sim, smsid) == {
        "CodeResponse": "100",
        "SMSID": smsid,
        "SendFailed": 0,
        "SendStatus": 5,
        "SendSuccess": 1,
        "TotalPrice": 850.0,
        "TotalReceiver": 1,
        "TotalSent": 1,
    }


def test_rules_and_probabilities_are_knobs(esms_sim: EsmsSim) -> None:
    """Custom rules (longest suffix wins) and p_fail for numbers no rule matches."""
    esms_sim.configure(rules={"1": "noanswer", "11": "answer", "0": "answer-on-2"}, p_fail=1.0)
    outcomes = {
        phone: esms_sim.call(record(esms_sim, phone)["SMSID"])["outcome"]
        for phone in ("0901234511", "0901234521", "0901234520", "0901234567")
    }
    assert outcomes == {
        "0901234511": "answer",
        "0901234521": "noanswer",
        "0901234520": "answer-on-2",
        "0901234567": "fail",
    }


def test_seed_makes_random_outcomes_reproducible(esms_sim: EsmsSim) -> None:
    """With a seed, the same requests after a reset get the same random outcomes."""
    esms_sim.configure(p_noanswer=0.5, seed=7)
    phones = [f"09012345{n:02d}" for n in range(40, 100, 10)]

    def outcomes() -> list[str]:
        return [esms_sim.call(record(esms_sim, p)["SMSID"])["outcome"] for p in phones]

    first = outcomes()
    esms_sim.reset(keep_config=True)
    assert outcomes() == first
    assert set(first) == {"answer", "noanswer"}


# Callbacks


def test_voice_callback_fields_fill_the_url_template(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """The voice callback GETs CallbackUrl with eSMS's fields, filling its empty template."""
    url = receiver.url("/esms/callback/job-42?ReferenceId=&CallDuration=&CallStatus=&token=t1")
    smsid = record(esms_sim, CallbackUrl=url)["SMSID"].strip()
    wait_for(lambda: receiver.requests)
    assert urlsplit(receiver.requests[0]).path == "/esms/callback/job-42"
    assert dict(parse_qsl(urlsplit(receiver.requests[0]).query, keep_blank_values=True)) == {
        "token": "t1",
        "ReferenceId": smsid,
        "CallDuration": "20",
        "CallStatus": "ANSWERED",
        "Ivr": "",
        "Price": "850.0000",
        "SentResult": "1",
        "CID": "02871002454",
        "SendStatus": "5",
    }
    assert all(len(values) == 1 for values in receiver.queries()[0].values())


def test_voice_callback_no_answer_spelling(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """An unanswered call's callback says "NO ANSWER" (configurable), SentResult 1 (the carrier
    delivered it: it rang), Price 0."""
    record(esms_sim, NOANSWER, CallbackUrl=receiver.url("/a"))
    wait_for(lambda: receiver.requests)  # the status is read when the callback is sent
    esms_sim.configure(callback_noanswer_status="NOANSWERED")
    record(esms_sim, "0901234571", CallbackUrl=receiver.url("/b"))
    wait_for(lambda: len(receiver.requests) == 2)
    by_path = {
        urlsplit(p).path: q for p, q in zip(receiver.requests, receiver.queries(), strict=True)
    }
    assert by_path["/a"]["CallStatus"] == ["NO ANSWER"]
    assert by_path["/b"]["CallStatus"] == ["NOANSWERED"]
    assert (by_path["/a"]["SentResult"], by_path["/a"]["Price"]) == (["1"], ["0.0000"])


def test_voice_callback_of_a_failed_call(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """A call the carrier did not deliver: SentResult 0 and an empty CallStatus, as in eSMS's
    own callback example."""
    record(esms_sim, FAIL, CallbackUrl=receiver.url("/f"))
    wait_for(lambda: receiver.requests)
    query = receiver.queries()[0]
    assert (query["SentResult"], query.get("CallStatus", [""])) == (["0"], [""])


def test_otp_callback_fields(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """The Voice OTP callback carries the SMS-style fields."""
    smsid = otp_post(esms_sim, "84961234560", RequestId="otp-1", CallbackUrl=receiver.url("/o"))[
        "SMSID"
    ]
    wait_for(lambda: receiver.requests)
    assert dict(parse_qsl(urlsplit(receiver.requests[0]).query, keep_blank_values=True)) == {
        "SMSID": smsid,
        "SendFailed": "0",
        "SendStatus": "5",
        "SendSuccess": "1",
        "TotalPrice": "850.0000",
        "TotalReceiver": "1",
        "TotalSent": "1",
        "RequestId": "otp-1",
        "TypeId": "8",
        "telcoid": "1",
        "phonenumber": "0961234560",
    }


def test_callback_resent_until_200(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """A callback answered 500, 503 is sent again until 200: three attempts."""
    receiver.script = [500, 503]
    smsid = record(esms_sim, CallbackUrl=receiver.url("/r"))["SMSID"]
    wait_for(lambda: len(receiver.requests) == 3)
    time.sleep(0.2)
    assert len(receiver.requests) == 3
    assert [a["status_code"] for a in esms_sim.call(smsid)["callbacks"]] == [500, 503, 200]
    callbacks = esms_sim.stats()["callbacks"]
    assert (callbacks["attempted"], callbacks["delivered"], callbacks["failed_attempts"]) == (
        3,
        1,
        2,
    )


def test_callback_gives_up_after_5_resends(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """A callback never answered 200 is sent 1 + 5 times, then given up."""
    receiver.script = [500] * 10
    record(esms_sim, CallbackUrl=receiver.url("/x"))
    wait_for(lambda: esms_sim.stats()["callbacks"]["gave_up"] == 1)
    assert len(receiver.requests) == 6


def test_callback_drop_fault(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """callback_drop_rate=1: the callback is never sent."""
    esms_sim.configure(callback_drop_rate=1.0)
    smsid = record(esms_sim, CallbackUrl=receiver.url("/d"))["SMSID"]
    call = esms_sim.wait_finished(smsid)
    wait_for(lambda: esms_sim.stats()["callbacks"]["dropped"] == 1)
    time.sleep(0.1)
    assert receiver.requests == []
    assert esms_sim.call(smsid)["callback_fate"] == "dropped" and call["callbacks"] == []


def test_callback_duplicate_fault(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """callback_duplicate_rate=1: the callback is delivered twice."""
    esms_sim.configure(callback_duplicate_rate=1.0)
    record(esms_sim, CallbackUrl=receiver.url("/dup"))
    wait_for(lambda: len(receiver.requests) == 2)
    assert receiver.requests[0] == receiver.requests[1]
    assert esms_sim.stats()["callbacks"]["duplicated"] == 1


def test_callback_append_mode_keeps_template_keys(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """callback_query_mode=append adds the fields after the URL's own (empty) ones."""
    esms_sim.configure(callback_query_mode="append")
    smsid = record(esms_sim, CallbackUrl=receiver.url("/t?ReferenceId=&SendStatus="))["SMSID"]
    wait_for(lambda: receiver.requests)
    query = receiver.queries()[0]
    assert query["ReferenceId"] == ["", smsid.strip()]
    assert query["SendStatus"] == ["", "5"]


# Faults


def test_latency_fault(esms_sim: EsmsSim) -> None:
    """latency_ms + uniform jitter delays eSMS endpoints, not the control endpoints."""
    esms_sim.configure(latency_ms=300, jitter_ms=100)
    started = time.monotonic()
    assert get_balance(esms_sim)["CodeResponse"] == "100"
    assert 0.3 <= time.monotonic() - started < 1.5
    started = time.monotonic()
    esms_sim.stats()
    assert time.monotonic() - started < 0.2


def test_normal_latency_fault(esms_sim: EsmsSim) -> None:
    """latency_dist=normal draws N(latency, jitter), never below zero."""
    esms_sim.configure(latency_ms=200, jitter_ms=20, latency_dist="normal")
    started = time.monotonic()
    get_balance(esms_sim)
    assert 0.1 <= time.monotonic() - started < 1.5


def test_http_500_fault(esms_sim: EsmsSim) -> None:
    """error_rate=1: an IIS HTML 500 page, and no call."""
    esms_sim.configure(error_rate=1.0)
    response = httpx.get(
        f"{esms_sim.voice_url}/MakeCallRecord_V2",
        params={**esms_sim.auth, "TemplateId": "1", "Phone": ANSWER},
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "500 - Internal server error." in response.text
    assert esms_sim.calls() == []
    assert esms_sim.stats()["faults"]["http_500"] == 1


def test_fault_scope_send_spares_status(esms_sim: EsmsSim) -> None:
    """fault_scope=send: faults hit the send endpoints only."""
    esms_sim.configure(error_rate=1.0, fault_scope="send")
    assert get_balance(esms_sim)["CodeResponse"] == "100"
    assert httpx.get(f"{esms_sim.rest_url}/SendMultipleMessage_V4_get").status_code == 500


def test_timeout_fault(esms_sim: EsmsSim) -> None:
    """timeout_rate=1: the server hangs past the client's timeout; no call is made."""
    esms_sim.configure(timeout_rate=1.0, hang_s=1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            f"{esms_sim.voice_url}/MakeCallRecord_V2",
            params={**esms_sim.auth, "TemplateId": "1", "Phone": ANSWER},
            timeout=0.3,
        )
    esms_sim.configure(timeout_rate=0.0)
    assert record(esms_sim)["CodeResult"] == "100"
    assert len(esms_sim.calls()) == 1
    assert esms_sim.stats()["faults"]["timeout"] == 1


def test_accept_then_drop_fault(esms_sim: EsmsSim) -> None:
    """accept_then_drop_rate=1: the connection drops, yet the call is in the ledger and runs."""
    esms_sim.configure(accept_then_drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(
            f"{esms_sim.voice_url}/MakeCallRecord_V2",
            params={**esms_sim.auth, "TemplateId": "1", "Phone": ANSWER, "RequestID": "d1"},
        )
    [call] = esms_sim.calls()
    assert esms_sim.wait_finished(call["smsid"])["sent_result"] == 1
    esms_sim.configure(accept_then_drop_rate=0.0)
    assert record(esms_sim, RequestID="d1")["CodeResult"] == "124"


def test_accept_then_hang_fault(esms_sim: EsmsSim) -> None:
    """accept_then_hang_rate=1: the call is in the ledger at once; its answer waits hang_s."""
    esms_sim.configure(accept_then_hang_rate=1.0, hang_s=30.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            f"{esms_sim.voice_url}/MakeCallRecord_V2",
            params={**esms_sim.auth, "TemplateId": "1", "Phone": ANSWER, "RequestID": "h1"},
            timeout=0.5,
        )
    assert [call["request_id"] for call in esms_sim.calls()] == ["h1"]
    assert esms_sim.stats()["faults"]["accept_then_hang"] == 1
    esms_sim.configure(accept_then_hang_rate=0.0)
    assert record(esms_sim, RequestID="h1")["CodeResult"] == "124"


def test_callback_before_answer_fault(esms_sim: EsmsSim, receiver: Receiver) -> None:
    """callback_before_answer_rate=1: the send's answer comes only once the call has ended and
    its callback was answered, so the receiver has the SMSID before the client does."""
    esms_sim.configure(callback_before_answer_rate=1.0, hang_s=30.0)
    smsid = record(esms_sim, FAIL, CallbackUrl=receiver.url("/early"))["SMSID"].strip()
    assert [query["ReferenceId"] for query in receiver.queries()] == [[smsid]]
    assert esms_sim.call(smsid)["callbacks"][0]["status_code"] == 200
    assert esms_sim.stats()["faults"]["callback_before_answer"] == 1


def test_accept_then_drop_502_mode(esms_sim: EsmsSim) -> None:
    """drop_mode=502: the accepted send answers 502 with no body; the call exists."""
    esms_sim.configure(accept_then_drop_rate=1.0, drop_mode="502")
    response = httpx.post(
        f"{esms_sim.rest_url}/SendMultipleMessage_V4_post_json/",
        json={**esms_sim.auth, "Phone": ANSWER, "Content": "1", "SmsType": 8},
    )
    assert (response.status_code, response.content) == (502, b"")
    assert len(esms_sim.calls()) == 1


# Control endpoints


def test_ledger_records_parameters_without_credentials(esms_sim: EsmsSim) -> None:
    """The ledger holds every parameter but ApiKey/SecretKey, kind, ids, times, state."""
    smsid = record(esms_sim, MaxRetry="1", RequestID="job-5")["SMSID"].strip()
    [call] = esms_sim.calls(request_id="job-5")
    assert call["params"] == {
        "TemplateId": "rec-1",
        "Phone": ANSWER,
        "MaxRetry": "1",
        "RequestID": "job-5",
    }
    assert (call["smsid"], call["kind"], call["request_id"]) == (smsid, "record", "job-5")
    assert call["accepted_at"] and call["state"] in ("ringing", "playing", "finished")
    assert esms_sim.calls(phone="0909999999") == []
    assert httpx.get(f"{esms_sim.base_url}/_sim/calls/nope").status_code == 404


def test_config_patch_validates(esms_sim: EsmsSim) -> None:
    """PATCH /_sim/config refuses unknown knobs and invalid values with 422; masks keys."""
    response = httpx.patch(f"{esms_sim.base_url}/_sim/config", json={"error_rate": 2, "x": 1})
    assert response.status_code == 422
    assert {e["knob"] for e in response.json()["detail"]} == {"error_rate", "x"}
    assert esms_sim.config()["api_key"] == "***"


def test_reset_clears_everything(esms_sim: EsmsSim) -> None:
    """Reset forgets calls, RequestIds and counters, restores balance and start-up config."""
    esms_sim.configure(price=1000, error_rate=0.0, tps_limit=5)
    record(esms_sim, RequestID="job-r")
    esms_sim.reset()
    assert esms_sim.calls() == []
    stats = esms_sim.stats()
    assert (stats["requests"], stats["balance"]) == ({}, 10_000_000)
    assert (esms_sim.config()["price"], esms_sim.config()["tps_limit"]) == (850, 0)
    assert record(esms_sim, RequestID="job-r")["CodeResult"] == "100"


def test_stats_count_requests_per_endpoint_and_code(esms_sim: EsmsSim) -> None:
    """Stats count requests per endpoint and results per code."""
    record(esms_sim)
    record(esms_sim, "1")
    get_balance(esms_sim)
    stats = esms_sim.stats()
    assert stats["requests"] == {"voice.MakeCallRecord_V2": 2, "rest.GetBalance_json": 1}
    assert stats["results"]["voice.MakeCallRecord_V2"] == {"100": 1, "108": 1}


# Start-up flags, CLI, logs


def test_start_up_flags_and_logs_without_credentials(esms_sim_factory: Any) -> None:
    """Flags set knobs at start; no log line holds ApiKey or SecretKey, right or wrong."""
    sim = esms_sim_factory(
        api_key="key-AAAA-1111",
        secret_key="secret-BBBB-2222",
        rule=["0=noanswer"],
        blocked_phones=["0901111111"],
        smsid_trailing_space=False,
    )
    assert record(sim, "0901111111")["CodeResult"] == "99"
    body = record(sim, ANSWER)
    assert not body["SMSID"].endswith(" ")
    assert sim.call(body["SMSID"])["outcome"] == "noanswer"
    assert record(sim, SecretKey="wrong-CCCC-3333")["CodeResult"] == "101"
    voice_status(sim, body["SMSID"])
    time.sleep(0.2)
    log = sim.log_text()
    assert "MakeCallRecord_V2" in log
    for secret in ("key-AAAA-1111", "secret-BBBB-2222", "wrong-CCCC-3333"):
        assert secret not in log


def test_help_documents_every_knob() -> None:
    """``--help`` has one flag per SimConfig knob, and --host/--port/--rule."""
    help_text = build_parser().format_help()
    for name in SimConfig.model_fields:
        flag = "--rule" if name == "rules" else "--" + name.replace("_", "-")
        assert flag in help_text
    assert "--host" in help_text and "--port" in help_text

"""voicecall.esms.results read against eSMS's own examples (issue 10 §6), copied verbatim from
eSMS's documents (``esms-docs``: the two voice call pages, "Hàm lấy trạng thái cuộc gọi" and
"Callback Url"), and the readings those pages state in words: ``SentResult`` "Kết quả gửi tin
qua nhà mạng (0: thất bại, 1: thành công)" (the carrier's delivery of the call), and
``CallStatus`` "kết quả cuộc gọi (ANSWERED, NO ANSWER)" in the callback pages but "ANSWERED:
cuộc gọi được trả lời, NOANSWERED: cuộc gọi thất bại hoặc không ai bắt máy" in the status page.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from voicecall.esms.results import ReportRefused, read_callback, read_voice, voice_outcome
from voicecall.job.states import Outcome

# The voice callback example of MakeCallRecord_V2 and MakeCallTemplate_V2 ("Ví dụ"):
VOICE_EXAMPLE = (
    "https://{{Your_API_Domain}}/Esms/ReceiveVocieCallback?ReferenceId=066107ee-6ec4-4283-b595-"
    "aa74977c65c5&CallDuration=0&CallStatus=&Ivr=&Price=0.0000&SentResult=0&CID=02871002454"
    "&SendStatus=5"
)
# The GetSendStatus (voiceapi) answer under its "100" tab:
STATUS_EXAMPLE = """{
    "CallDuration": 13,
    "CallStatus": "ANSWERED",
    "CodeResponse": "100",
    "Ivr": "",
    "ReferenceId": "505139D7-54F8-48A9-88FA-9460A78731DD",
    "SendStatus": 5,
    "SentResult": 1
}"""
# "Callback mẫu cho loại tin CSKH" and "... Viber" (the SMS-style shape of a Voice OTP's):
SMS_EXAMPLES = {
    "https://{{yourportalreceivecallback}}?SMSID=dc712784-9c5f-4c69-b9a8-ea69d56adc9a87&SendFailed=2"
    "&SendStatus=5&SendSuccess=0&TotalPrice=0.0000&TotalReceiver=2&TotalSent=2&RequestId=&TypeId=2"
    "&telcoid=1&phonenumber=0901888484&switchsmsid=": Outcome.UNDELIVERED,
    "https://{{yourportalreceivecallback}}?SMSID=849fe08c19294b02857cf91687021a50250&SendFailed=0"
    "&SendStatus=5&SendSuccess=1&TotalPrice=470.0000&TotalReceiver=1&TotalSent=1&RequestId="
    "&TypeId=23&telcoid=2&phonenumber=0901888484": Outcome.DELIVERED,
}


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_the_documents_voice_callback_example_is_undelivered() -> None:
    """eSMS's own callback example (empty CallStatus, SentResult 0, SendStatus 5) is a call
    the carrier did not deliver: completed / undelivered, with its SMSID and figures."""
    report = read_callback(_query(VOICE_EXAMPLE))
    assert report is not None
    assert report.smsid == "066107ee-6ec4-4283-b595-aa74977c65c5"
    assert report.outcome is Outcome.UNDELIVERED
    assert (report.call_status, report.duration_s, report.price_vnd) == (None, 0, 0.0)


def test_the_documents_status_example_is_answered() -> None:
    """The GetSendStatus example (ANSWERED, SendStatus 5, SentResult 1) is answered."""
    report = read_voice(json.loads(STATUS_EXAMPLE))
    assert (report.outcome, report.duration_s) == (Outcome.ANSWERED, 13)
    assert report.smsid == "505139D7-54F8-48A9-88FA-9460A78731DD"


@pytest.mark.parametrize(
    ("call_status", "sent_result", "expected"),
    [
        # SentResult 0: the carrier did not deliver the call, whatever CallStatus says.
        ("", 0, Outcome.UNDELIVERED),
        ("ANSWERED", 0, Outcome.UNDELIVERED),
        ("NO ANSWER", 0, Outcome.UNDELIVERED),
        ("NOANSWERED", 0, Outcome.UNDELIVERED),
        # SentResult 1: delivered; it rang unanswered, or it was answered.
        ("NO ANSWER", 1, Outcome.NOT_ANSWERED),
        ("NOANSWERED", 1, Outcome.NOT_ANSWERED),
        ("no  answer", 1, Outcome.NOT_ANSWERED),
        ("ANSWERED", 1, Outcome.ANSWERED),
    ],
)
def test_sent_result_decides_delivery_and_call_status_decides_the_rest(
    call_status: str, sent_result: int, expected: Outcome
) -> None:
    """Finished calls (SendStatus 5), read by the one table of voicecall.esms.results."""
    assert voice_outcome(call_status, 5, sent_result) is expected
    query = _query(VOICE_EXAMPLE) | {"CallStatus": call_status, "SentResult": str(sent_result)}
    report = read_callback(query)
    assert report is not None and report.outcome is expected


@pytest.mark.parametrize(("url", "expected"), SMS_EXAMPLES.items())
def test_the_documents_sms_style_callbacks(url: str, expected: Outcome) -> None:
    """The SMS-style examples: SendStatus 5 with SendSuccess 0 is undelivered, 1 delivered."""
    report = read_callback(_query(url))
    assert report is not None and report.outcome is expected


@pytest.mark.parametrize(
    "smsid",
    ["a" * 101, "a" * 8192, "abc:def", "abc def", "../x", "x\x00y", "<script>", "-leading", "é"],
)
def test_a_reference_id_that_is_no_smsid_is_refused_naming_it(smsid: str) -> None:
    """ReferenceId must look like an eSMS SMSID (letters, digits, '-', '_'; 1-100): anything
    else is refused naming the field, before any key can be named after it."""
    with pytest.raises(ReportRefused) as refused:
        read_callback(_query(VOICE_EXAMPLE) | {"ReferenceId": smsid})
    assert refused.value.field == "ReferenceId"


def test_the_documents_smsids_are_smsids() -> None:
    """Every SMSID in the documents' examples passes the format check (a trailing space, as
    in one example, is stripped)."""
    for smsid in (
        "066107ee-6ec4-4283-b595-aa74977c65c5",
        "505139D7-54F8-48A9-88FA-9460A78731DD",
        "82b0bb8aed914a0aab8deba567c9b8c2",
        "dc712784-9c5f-4c69-b9a8-ea69d56adc9a87",
        "8eb2af6d-fb4c4814-b9cc-4c0e3ed32edf ",
    ):
        report = read_callback(_query(VOICE_EXAMPLE) | {"ReferenceId": smsid})
        assert report is not None and report.smsid == smsid.strip()

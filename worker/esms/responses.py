"""Tolerant reading of eSMS response bodies into frozen dataclasses.

The documents' own examples disagree with themselves, so every reader here accepts:
the code under ``CodeResult`` or ``CodeResponse``; numbers sent as numbers or as strings
(``"100"``, ``850.0000``, ``"13"``); an SMSID with surrounding spaces; an empty string where
a value is unknown (``"Ivr": ""``); ``CallStatus`` spelled ``ANSWERED``, ``NOANSWERED`` or
``NO ANSWER``. A body without a readable code is the caller's "bad body" (see client).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voicecall.esms.results import Report, read_sms, read_voice, to_float, to_int, to_str
from voicecall.job.states import Outcome
from worker.esms.errors import CODE_DUPLICATE

SEND_STATUS_FINISHED = 5  # then read SentResult (calls) or SendSuccess/SendFailed (OTP)


def result_code(body: Mapping[str, Any]) -> int | None:
    """The eSMS result code from ``CodeResult`` or ``CodeResponse`` (whichever is there)."""
    for key in ("CodeResult", "CodeResponse"):
        code = to_int(body.get(key))
        if code is not None:
            return code
    return None


def error_message(body: Mapping[str, Any]) -> str | None:
    """eSMS's ``ErrorMessage``, if any."""
    return to_str(body.get("ErrorMessage"))


@dataclass(frozen=True, slots=True)
class Submission:
    """A send eSMS accepted: 100 now, or 124 (this RequestId was accepted earlier)."""

    code: int
    smsid: str | None
    duplicate: bool
    error_message: str | None


@dataclass(frozen=True, slots=True)
class CallStatusReport:
    """voiceapi GetSendStatus: a record/template call's state, read by voicecall.esms.results."""

    smsid: str | None
    send_status: int | None
    sent_result: int | None
    call_status: str | None
    call_duration_s: int | None
    ivr: str | None
    price: float | None
    report: Report

    @property
    def finished(self) -> bool:
        """SendStatus 5: eSMS is done with this call."""
        return self.send_status == SEND_STATUS_FINISHED

    @property
    def answered(self) -> bool | None:
        """True if answered, False if not (or not delivered), None while not known."""
        if self.report.outcome is None:
            return None
        return self.report.outcome is Outcome.ANSWERED


@dataclass(frozen=True, slots=True)
class OtpStatusReport:
    """rest GetSendStatus: a Voice OTP's state, read by voicecall.esms.results."""

    smsid: str | None
    send_status: int | None
    send_success: int | None
    send_failed: int | None
    total_price: float | None
    total_receiver: int | None
    total_sent: int | None
    report: Report

    @property
    def finished(self) -> bool:
        """SendStatus 5: eSMS is done; read ``delivered``."""
        return self.send_status == SEND_STATUS_FINISHED

    @property
    def delivered(self) -> bool | None:
        """True if delivered, False if not, None while not known."""
        if self.report.outcome is None:
            return None
        return self.report.outcome is Outcome.DELIVERED


@dataclass(frozen=True, slots=True)
class Balance:
    """GetBalance_json: the main account balance in VND."""

    balance_vnd: float
    user_id: int | None


def parse_submission(code: int, body: Mapping[str, Any]) -> Submission:
    """A send's body once its code is known to be 100 or 124."""
    return Submission(
        code=code,
        smsid=to_str(body.get("SMSID")),
        duplicate=code == CODE_DUPLICATE,
        error_message=error_message(body),
    )


def parse_call_status(body: Mapping[str, Any]) -> CallStatusReport:
    """A 100 body of voiceapi GetSendStatus (ValueError if a number breaks its rule)."""
    report = read_voice(body)
    return CallStatusReport(
        smsid=report.smsid,
        send_status=to_int(body.get("SendStatus")),
        sent_result=to_int(body.get("SentResult")),
        call_status=report.call_status,
        call_duration_s=report.duration_s,
        ivr=to_str(body.get("Ivr")),
        price=report.price_vnd,
        report=report,
    )


def parse_otp_status(body: Mapping[str, Any]) -> OtpStatusReport:
    """A 100 body of rest GetSendStatus (ValueError if a number breaks its rule)."""
    report = read_sms(body)
    return OtpStatusReport(
        smsid=report.smsid,
        send_status=to_int(body.get("SendStatus")),
        send_success=to_int(body.get("SendSuccess")),
        send_failed=to_int(body.get("SendFailed")),
        total_price=report.price_vnd,
        total_receiver=to_int(body.get("TotalReceiver")),
        total_sent=to_int(body.get("TotalSent")),
        report=report,
    )


def parse_balance(body: Mapping[str, Any]) -> Balance:
    """A 100 body of GetBalance_json; ``ValueError`` if it holds no readable balance."""
    amount = to_float(body.get("Balance"))
    if amount is None:
        raise ValueError("no readable Balance in a 100 body")
    return Balance(balance_vnd=amount, user_id=to_int(body.get("UserID")))

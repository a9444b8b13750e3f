"""Tolerant reading of eSMS response bodies into frozen dataclasses.

The documents' own examples disagree with themselves, so every reader here accepts:
the code under ``CodeResult`` or ``CodeResponse``; numbers sent as numbers or as strings
(``"100"``, ``850.0000``, ``"13"``); an SMSID with surrounding spaces; an empty string where
a value is unknown (``"Ivr": ""``); ``CallStatus`` spelled ``ANSWERED``, ``NOANSWERED`` or
``NO ANSWER``. A body without a readable code is the caller's "bad body" (see client).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from worker.esms.errors import CODE_DUPLICATE

SEND_STATUS_FINISHED = 5  # then read SentResult (calls) or SendSuccess/SendFailed (OTP)
_ANSWERED = {"ANSWERED"}
_NOT_ANSWERED = {"NOANSWERED", "NO ANSWER", "NOANSWER", "NO_ANSWER", "NO ANSWERED"}


def to_int(value: Any) -> int | None:
    """``13``, ``"13"``, ``" 13 "``, ``13.0`` → 13; empty, missing or unreadable → None."""
    number = to_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def to_float(value: Any) -> float | None:
    """``850``, ``"850.0000"``, ``850.0`` → 850.0; empty, missing or unreadable → None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_str(value: Any) -> str | None:
    """A stripped string; empty or missing → None. Numbers are written as text."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


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
    """voiceapi GetSendStatus: a record/template call's state."""

    smsid: str | None
    send_status: int | None
    sent_result: int | None
    call_status: str | None
    call_duration_s: int | None
    ivr: str | None
    price: float | None

    @property
    def finished(self) -> bool:
        """SendStatus 5: eSMS is done with this call."""
        return self.send_status == SEND_STATUS_FINISHED

    @property
    def answered(self) -> bool | None:
        """True if answered, False if not, None when eSMS has not said (yet)."""
        if self.call_status in _ANSWERED:
            return True
        if self.call_status in _NOT_ANSWERED:
            return False
        return None


@dataclass(frozen=True, slots=True)
class OtpStatusReport:
    """rest GetSendStatus: a Voice OTP's state."""

    smsid: str | None
    send_status: int | None
    send_success: int | None
    send_failed: int | None
    total_price: float | None
    total_receiver: int | None
    total_sent: int | None

    @property
    def finished(self) -> bool:
        """SendStatus 5: eSMS is done; read ``delivered``."""
        return self.send_status == SEND_STATUS_FINISHED

    @property
    def delivered(self) -> bool | None:
        """True if SendSuccess > 0, False if SendFailed > 0, else None (not known yet)."""
        if self.send_success:
            return True
        if self.send_failed:
            return False
        return None


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
    """A 100 body of voiceapi GetSendStatus."""
    status = to_str(body.get("CallStatus"))
    return CallStatusReport(
        smsid=to_str(body.get("ReferenceId")) or to_str(body.get("SMSID")),
        send_status=to_int(body.get("SendStatus")),
        sent_result=to_int(body.get("SentResult")),
        call_status=" ".join(status.upper().split()) if status else None,
        call_duration_s=to_int(body.get("CallDuration")),
        ivr=to_str(body.get("Ivr")),
        price=to_float(body.get("Price")),
    )


def parse_otp_status(body: Mapping[str, Any]) -> OtpStatusReport:
    """A 100 body of rest GetSendStatus."""
    return OtpStatusReport(
        smsid=to_str(body.get("SMSID")),
        send_status=to_int(body.get("SendStatus")),
        send_success=to_int(body.get("SendSuccess")),
        send_failed=to_int(body.get("SendFailed")),
        total_price=to_float(body.get("TotalPrice", body.get("Totalprice"))),
        total_receiver=to_int(body.get("TotalReceiver")),
        total_sent=to_int(body.get("TotalSent")),
    )


def parse_balance(body: Mapping[str, Any]) -> Balance:
    """A 100 body of GetBalance_json; ``ValueError`` if it holds no readable balance."""
    amount = to_float(body.get("Balance"))
    if amount is None:
        raise ValueError("no readable Balance in a 100 body")
    return Balance(balance_vnd=amount, user_id=to_int(body.get("UserID")))


def retry_after_s(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number (``"2"``, ``"1.5"``) or an HTTP date; else None."""
    if not value or not value.strip():
        return None
    text = value.strip()
    number = to_float(text)
    if number is not None:
        return max(0.0, number)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())

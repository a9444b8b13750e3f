"""The one reading of eSMS's answers: callbacks, status answers, sends and the balance.

eSMS's voice callback and voiceapi ``GetSendStatus`` carry the same fields (``ReferenceId``,
``CallStatus``, ``SendStatus``, ``SentResult``, ``CallDuration``, ``Price``); the SMS-style
callback of a Voice OTP and rest ``GetSendStatus`` share theirs (``SMSID``, ``SendStatus``,
``SendSuccess``, ``SendFailed``, ``TotalPrice``). So the callback route and the status polls
read them here, with the same rules; so do the eSMS client's send and balance answers
(:func:`result_code`, :func:`read_submission`, :func:`read_balance`), and an SMSID, wherever it
comes from, is read by one rule (:func:`read_smsid`).

Voice calls (record/template):

======================================================  ==========================================
report                                                  job
======================================================  ==========================================
``SendStatus`` 1, 2 or 7 (not finished)                 still submitted
``SendStatus`` 4 (refused by eSMS)                      completed / undelivered
``SentResult`` 0 (the carrier did not deliver the call)  completed / undelivered, whatever CallStatus
``CallStatus`` ``ANSWERED``                             completed / answered
``CallStatus`` ``NO ANSWER`` / ``NOANSWERED``           completed / not_answered (it rang)
``SendStatus`` 5 or none, ``SentResult`` 1              completed / answered
anything else (e.g. an undocumented CallStatus alone)   not readable yet: still submitted
======================================================  ==========================================

Voice OTP (SMS-style): ``SendStatus`` 1, 2 or 7 → still submitted; 4 → completed / undelivered;
5 with ``SendSuccess`` ≥ 1 → completed / delivered; 5 otherwise → completed / undelivered.

Numbers are hostile until checked: a value that is present must be a finite number in its range
(``Price`` and ``TotalPrice`` ≥ 0, ``CallDuration`` 0-86,400 s, counts ≥ 0), and ``CallStatus``
at most 40 characters, else the report is refused with :class:`ReportRefused` naming the
field, and nothing changes. So a report kept on a job (its result, or held for its SMSID) is
a few hundred bytes at most.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voicecall.errors import VoicecallError
from voicecall.job.states import Outcome

PENDING_SEND_STATUSES = frozenset({1, 2, 7})
REFUSED = 4
FINISHED = 5
MAX_CALL_DURATION_S = 86_400
SMSID_MAX_LEN = 100
CALL_STATUS_MAX_LEN = 40  # eSMS's are ANSWERED, NOANSWERED, NO ANSWER, or empty
_ANSWERED = frozenset({"ANSWERED"})
_NOT_ANSWERED = frozenset({"NO ANSWER", "NOANSWERED", "NOANSWER", "NO_ANSWER", "NO ANSWERED"})
# eSMS's SMSIDs are hex digits and dashes (``066107ee-6ec4-4283-b595-aa74977c65c5``,
# ``849fe08c19294b02857cf91687021a50250``); letters, digits, ``-`` and ``_`` are let through.
# Anything else, or longer, is no SMSID: refused before any key is named after it.
_SMSID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{SMSID_MAX_LEN - 1}}}")


class ReportRefused(VoicecallError, ValueError):
    """A report field breaks its rule; ``field`` names it. Nothing was changed."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} {rule}")
        self.field = field
        self.rule = rule


@dataclass(frozen=True)
class Report:
    """What one callback or status answer says, normalised."""

    smsid: str | None
    outcome: Outcome | None  # None: the call is not finished (or not readable) yet
    call_status: str | None = None
    duration_s: int | None = None
    price_vnd: float | None = None
    send_status: int | None = None
    sent_result: int | None = None  # voice calls
    send_success: int | None = None  # Voice OTP
    send_failed: int | None = None  # Voice OTP

    @property
    def finished(self) -> bool:
        """SendStatus 5: eSMS is done with this call."""
        return self.send_status == FINISHED

    @property
    def answered(self) -> bool | None:
        """A voice call: True if answered, False if not (or not delivered), None while unknown."""
        return None if self.outcome is None else self.outcome is Outcome.ANSWERED

    @property
    def delivered(self) -> bool | None:
        """A Voice OTP: True if delivered, False if not, None while not known."""
        return None if self.outcome is None else self.outcome is Outcome.DELIVERED

    def call_fields(self) -> dict[str, Any]:
        return {
            "status": self.call_status,
            "duration_s": self.duration_s,
            "price_vnd": self.price_vnd,
        }


# --- tolerant, bounded readers (eSMS sends numbers as numbers or strings) -----------------


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


def to_int(value: Any) -> int | None:
    """``13``, ``"13"``, ``" 13 "``, ``13.0`` → 13; empty, missing or unreadable → None."""
    number = to_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def to_str(value: Any) -> str | None:
    """A stripped string; empty or missing → None. Numbers are written as text."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _number(fields: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    raw = fields.get(name.lower())
    if not _present(raw):
        return None
    number = to_float(raw)
    if number is None or not low <= number <= high:
        raise ReportRefused(name, f"must be a finite number from {low:g} to {high:g}")
    return number


def _integer(fields: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    number = _number(fields, name, low, high)
    if number is None:
        return None
    if not number.is_integer():
        raise ReportRefused(name, "must be a whole number")
    return int(number)


def read_smsid(value: Any, name: str) -> str | None:
    """An SMSID (surrounding spaces stripped); None when absent; :class:`ReportRefused` naming
    ``name`` when it breaks the rule."""
    text = to_str(value)
    if text is None:
        return None
    if not _SMSID.fullmatch(text):
        raise ReportRefused(
            name, f"must be an eSMS SMSID: 1-{SMSID_MAX_LEN} letters, digits, '-' or '_'"
        )
    return text


def _lower(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in fields.items()}


def normal_call_status(value: Any) -> str | None:
    text = to_str(value)
    return " ".join(text.upper().split()) if text else None


# --- the rules ----------------------------------------------------------------------------


def voice_outcome(
    call_status: str | None, send_status: int | None, sent_result: int | None
) -> Outcome | None:
    """A voice call's outcome from its three fields (see the module table)."""
    if send_status in PENDING_SEND_STATUSES:
        return None
    if send_status == REFUSED or sent_result == 0:
        return Outcome.UNDELIVERED
    status = normal_call_status(call_status)
    if status in _ANSWERED:
        return Outcome.ANSWERED
    if status in _NOT_ANSWERED:
        return Outcome.NOT_ANSWERED
    if sent_result == 1 and send_status in (FINISHED, None):
        return Outcome.ANSWERED
    return None


def sms_outcome(send_status: int | None, send_success: int | None) -> Outcome | None:
    """A Voice OTP's outcome (SMS-style fields)."""
    if send_status == REFUSED:
        return Outcome.UNDELIVERED
    if send_status == FINISHED:
        return Outcome.DELIVERED if (send_success or 0) >= 1 else Outcome.UNDELIVERED
    return None


def read_voice(fields: Mapping[str, Any]) -> Report:
    """A voice callback's query or a voiceapi GetSendStatus body."""
    f = _lower(fields)
    call_status = normal_call_status(f.get("callstatus"))
    if call_status is not None and len(call_status) > CALL_STATUS_MAX_LEN:
        raise ReportRefused("CallStatus", f"must be at most {CALL_STATUS_MAX_LEN} characters")
    send_status = _integer(f, "SendStatus", 0, 99)
    sent_result = _integer(f, "SentResult", 0, 9)
    return Report(
        smsid=read_smsid(f.get("referenceid"), "ReferenceId")
        or read_smsid(f.get("smsid"), "SMSID"),
        outcome=voice_outcome(call_status, send_status, sent_result),
        call_status=call_status,
        duration_s=_integer(f, "CallDuration", 0, MAX_CALL_DURATION_S),
        price_vnd=_number(f, "Price", 0, 1e12),
        send_status=send_status,
        sent_result=sent_result,
    )


def read_sms(fields: Mapping[str, Any]) -> Report:
    """A Voice OTP's SMS-style callback query or a rest GetSendStatus body."""
    f = _lower(fields)
    send_status = _integer(f, "SendStatus", 0, 99)
    send_success = _integer(f, "SendSuccess", 0, 1_000_000)
    return Report(
        smsid=read_smsid(f.get("smsid"), "SMSID"),
        outcome=sms_outcome(send_status, send_success),
        price_vnd=_number(f, "TotalPrice", 0, 1e12),  # eSMS also spells it Totalprice
        send_status=send_status,
        send_success=send_success,
        send_failed=_integer(f, "SendFailed", 0, 1_000_000),
    )


def read_callback(query: Mapping[str, str]) -> Report | None:
    """A callback's query string, either shape; None when it carries neither."""
    f = _lower(query)
    if "referenceid" in f or "callstatus" in f:
        return read_voice(f)
    if "smsid" in f and "sendstatus" in f:
        return read_sms(f)
    return None


# --- the eSMS client's answers: their code, a send's SMSID, the balance -------------------


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
class Balance:
    """GetBalance_json: the main account balance in VND."""

    balance_vnd: float
    user_id: int | None


def read_submission(code: int, body: Mapping[str, Any], *, duplicate: bool) -> Submission:
    """A send's body once its code is known to be an acceptance; ``duplicate``: the code says
    this RequestId was accepted earlier (eSMS's 124). The call was placed, so an SMSID that
    breaks the rule is read as unknown, like a missing one (the job then waits for its poll
    deadline): no key is named after it, and the send is not repeated."""
    try:
        smsid = read_smsid(body.get("SMSID"), "SMSID")
    except ReportRefused:
        smsid = None
    return Submission(
        code=code,
        smsid=smsid,
        duplicate=duplicate,
        error_message=error_message(body),
    )


def read_balance(body: Mapping[str, Any]) -> Balance:
    """A 100 body of GetBalance_json; ``ValueError`` if it holds no readable balance."""
    amount = to_float(body.get("Balance"))
    if amount is None:
        raise ValueError("no readable Balance in a 100 body")
    return Balance(balance_vnd=amount, user_id=to_int(body.get("UserID")))

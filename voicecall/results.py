"""How eSMS's reports (callbacks and status answers) map to a job's final state.

Voice calls (record/template) — callback fields or voiceapi GetSendStatus:

============================================  ==========================================
report                                        job
============================================  ==========================================
``CallStatus`` ``ANSWERED``                   completed / answered
``CallStatus`` ``NO ANSWER`` or ``NOANSWERED``  completed / not_answered
``SendStatus`` 1, 2 or 7 (not finished)       still submitted
``SendStatus`` 4 (refused by eSMS)            completed / undelivered
``SendStatus`` 5, ``SentResult`` 1            completed / answered
``SendStatus`` 5, ``SentResult`` 0            completed / undelivered
============================================  ==========================================

Voice OTP (SMS-style) — callback fields or rest GetSendStatus:

``SendStatus`` 1, 2 or 7 → still submitted; 4 → completed / undelivered; 5 with
``SendSuccess`` ≥ 1 → completed / delivered; 5 otherwise → completed / undelivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voicecall.jobs import Outcome

PENDING_SEND_STATUSES = {1, 2, 7}
REFUSED = 4
FINISHED = 5
_ANSWERED = {"ANSWERED"}
_NOT_ANSWERED = {"NO ANSWER", "NOANSWERED", "NOANSWER", "NO_ANSWER", "BUSY", "FAILED"}


@dataclass(frozen=True)
class Report:
    """What one callback or status answer says, normalised."""

    smsid: str | None
    outcome: Outcome | None  # None: the call is not finished yet
    call_status: str | None = None
    duration_s: int | None = None
    price_vnd: float | None = None


def _int(value: object) -> int | None:
    try:
        return int(float(str(value).strip())) if value not in (None, "") else None
    except ValueError:
        return None


def _float(value: object) -> float | None:
    try:
        return float(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None


def voice_outcome(
    call_status: str | None, send_status: int | None, sent_result: int | None
) -> Outcome | None:
    status = (call_status or "").strip().upper()
    if status in _ANSWERED:
        return Outcome.ANSWERED
    if status in _NOT_ANSWERED:
        return Outcome.NOT_ANSWERED
    if send_status in PENDING_SEND_STATUSES:
        return None
    if send_status == REFUSED:
        return Outcome.UNDELIVERED
    if sent_result == 1:
        return Outcome.ANSWERED
    if sent_result == 0:
        return Outcome.UNDELIVERED
    return None


def sms_outcome(
    send_status: int | None, send_success: int | None, send_failed: int | None
) -> Outcome | None:
    if send_status in PENDING_SEND_STATUSES or send_status is None:
        return None
    if send_status == REFUSED:
        return Outcome.UNDELIVERED
    if send_status == FINISHED:
        return Outcome.DELIVERED if (send_success or 0) >= 1 else Outcome.UNDELIVERED
    return None


def from_callback(query: Mapping[str, str]) -> Report | None:
    """Parse a callback's query string; None when it carries neither known shape."""
    fields = {k.lower(): v for k, v in query.items()}
    if "referenceid" in fields or "callstatus" in fields:
        return Report(
            smsid=(fields.get("referenceid") or "").strip() or None,
            outcome=voice_outcome(
                fields.get("callstatus"),
                _int(fields.get("sendstatus")),
                _int(fields.get("sentresult")),
            ),
            call_status=(fields.get("callstatus") or "").strip() or None,
            duration_s=_int(fields.get("callduration")),
            price_vnd=_float(fields.get("price")),
        )
    if "smsid" in fields and "sendstatus" in fields:
        return Report(
            smsid=(fields.get("smsid") or "").strip() or None,
            outcome=sms_outcome(
                _int(fields.get("sendstatus")),
                _int(fields.get("sendsuccess")),
                _int(fields.get("sendfailed")),
            ),
            price_vnd=_float(fields.get("totalprice")),
        )
    return None

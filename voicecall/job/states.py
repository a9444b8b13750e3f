"""The words of a job's life: its kind, its states (which are final, which may be cancelled),
a completed call's outcome, and who holds a job until its time.

The Lua steps get the same values from here (voicecall.store.scripts writes them into lib.lua).
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    VOICE_OTP = "voice_otp"
    RECORD_CALL = "record_call"
    TEMPLATE_CALL = "template_call"


class State(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset(
    {State.COMPLETED, State.FAILED, State.REJECTED, State.EXPIRED, State.CANCELLED}
)


class Outcome(StrEnum):
    ANSWERED = "answered"
    NOT_ANSWERED = "not_answered"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


class ScheduleMode(StrEnum):
    WORKER = "worker"  # voicecall holds the job and sends it at its time
    PROVIDER = "provider"  # sent at once with eSMS SendDate

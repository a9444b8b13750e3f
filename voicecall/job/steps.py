"""A job step as the store runs it and answers it: :class:`Op`, one operation ready to run
(its Lua script, the keys it declares, its parameters), and :class:`Step`, what it did.

Every operation of voicecall.job.lifecycle and voicecall.job.upkeep is built here
(:func:`job_op`), so every one declares the keys all job steps share in the same places, and
names its own keys as its script does (voicecall/store/lua/lib.lua ``own_keys``); the store
runs an Op (voicecall.store) and reads its reply into a Step, whose :class:`Verdict` says what
it did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from voicecall.job import keys
from voicecall.job.records import JobRecord


@dataclass(frozen=True)
class Op:
    """One operation, ready to run: script name, declared keys, parameters."""

    script: str
    # Every key the step touches: COMMON_KEYS, the message keys, then its own keys.
    keys: tuple[str, ...]
    params: Mapping[str, Any]
    document: str | None = None  # ARGV[3]: a whole job (create only)
    # The step may send or end a job: the store adds the minute's activity hash (from the
    # step's time) as its last own key, ``activity`` (producer.console.activity).
    activity: bool = False
    # The names of the own keys, in order (lib.lua ``own_keys``, at the top of the script).
    slots: tuple[str, ...] = ()


class Verdict(StrEnum):
    """What a step did: one member per verdict a Lua script of voicecall/store/lua/ answers
    (tests/test_verdicts.py reads the scripts to keep it so)."""

    # Every step
    ABSENT = "absent"  # no such job
    NOOP = "noop"  # the job's state does not allow the step; nothing changed
    # create
    CREATED = "created"
    REPLAY = "replay"  # the idempotency key names an existing job (its id is the state field)
    EXISTS = "exists"  # a job with this id exists already
    # claim
    CLAIMED = "claimed"
    BUSY = "busy"  # claimed by a live worker
    FINAL = "final"  # ended here (expired, rejected, failed), or already final (redrive)
    HELD = "held"  # held back (quiet hours, a phone's rate); or a callback report held
    WAIT = "wait"  # not due yet or over the global rate: the detail says how long
    # renew, unclaim, retry, release, postpone, poll_pending
    RENEWED = "renewed"
    LOST = "lost"  # no longer this worker's claim
    UNCLAIMED = "unclaimed"
    RETRYING = "retrying"
    RELEASED = "released"
    POSTPONED = "postponed"
    PLANNED = "planned"
    # submit
    SUBMITTED = "submitted"
    LATE = "late"  # another worker's 124 came first, or the job has ended
    COMPLETED = "completed"  # a held callback's result applied at once
    # complete, confirm (a callback or status report)
    ACCEPTED = "accepted"
    CONFIRMING = "confirming"
    UNKNOWN_JOB = "unknown_job"
    FORGED = "forged"  # the callback's nonce is not the job's
    REPEAT = "repeat"  # the job is final already
    REFUSED = "refused"  # the job cannot take a report now
    SMSID_MISMATCH = "smsid_mismatch"
    HOLD_FULL = "hold_full"  # no room to hold one more report
    # end
    ENDED = "ended"
    # redrive (the sweeper)
    LEASED = "leased"
    WAITING = "waiting"
    REDRIVEN = "redriven"
    POLLED = "polled"
    # webhooks: webhook_due, delivery (its result is the Python side's), redeliver, dismiss
    SENT = "sent"
    DELIVERED = "delivered"
    RETRY = "retry"
    GAVE_UP = "gave_up"
    REDELIVERING = "redelivering"
    DISMISSED = "dismissed"
    # reopen, purge
    REOPENED = "reopened"
    NOT_FAILED = "not_failed"
    TOO_OLD = "too_old"
    PURGED = "purged"


@dataclass(frozen=True)
class Step:
    """What an operation did: its verdict, the job's state after it, a detail (the job as
    JSON when the step changed it, else a reason or nothing), and ``extra``: what a step that
    settles held callback reports counted (``{"smsid_mismatch": 1}``), else empty."""

    verdict: Verdict
    state: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def job(self) -> JobRecord | None:
        return JobRecord.parse(self.detail) if self.detail.startswith("{") else None

    @classmethod
    def of(cls, reply: Sequence[Any]) -> Step:
        said, state, detail = (x.decode() if isinstance(x, bytes) else str(x) for x in reply[:3])
        try:
            verdict = Verdict(said)
        except ValueError:
            # The scripts and this code disagree (a bug, or two versions side by side).
            raise RuntimeError(
                f"a store script answered the verdict {said!r}, which Verdict does not know"
            ) from None
        extra = json.loads(reply[3]) if len(reply) > 3 else {}
        return cls(verdict, state, detail, extra if isinstance(extra, dict) else {})


# The keys every job step declares first, by their names in lib.lua's ``K``.
COMMON_KEYS = ("job", "state_index", "due", "webhooks_due", "schedule", "campaign_stats")


def job_op(script: str, job_id: str, own_keys: Mapping[str, str | None], **params: Any) -> Op:
    """An operation on job ``job_id``: the keys every job step declares (COMMON_KEYS), the
    Dramatiq message keys, then ``own_keys`` by their names in the script (a key that is None
    does not exist for this job and is left out); parameters that are None are left out."""
    own = {name: key for name, key in own_keys.items() if key is not None}
    declared = (
        keys.job(job_id),
        keys.STATE_INDEX,
        keys.DUE,
        keys.WEBHOOKS_DUE,
        keys.SCHEDULE,
        keys.CAMPAIGN_STATS,
        *keys.message_keys(),
        *own.values(),
    )
    clean = {k: v for k, v in params.items() if v is not None}
    return Op(script, declared, {"id": job_id, **clean}, slots=tuple(own))


def counted_op(script: str, job_id: str, own_keys: Mapping[str, str | None], **params: Any) -> Op:
    """An operation that may send or end the job, so counts it in the minute's activity."""
    return replace(job_op(script, job_id, own_keys, **params), activity=True)

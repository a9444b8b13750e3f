"""Every state change of a job, each one named operation: the arrows of the state diagram.

::

    create ─▶ scheduled ──release──▶ queued ──claim──▶ sending ──submit──▶ submitted ──complete──▶ completed
                 ▲  │                 │   ▲              │  │                  │
                 │  └── cancel ───────┴───┼──▶ cancelled │  ├─ reject ─▶ rejected      expire ─▶ expired
                 └── hold (claim: quiet   │              │  ├─ fail ───▶ failed ──reopen──▶ queued
                     hours, phone limit)  └─ retry_later ┘  └─ (claim: OTP past its TTL ─▶ expired)
                                             (or unclaim)

Each operation here builds an :class:`~voicecall.job.steps.Op`: a Lua script of
``voicecall/store/lua/`` with the keys it touches (all built by :mod:`voicecall.job.keys`) and
its parameters. The store runs it (:meth:`voicecall.store.job_store.JobStore.apply`, or the
asyncio twin) as one atomic step that records the history, the state index (which also counts jobs by state), the due set (timers and
retention) and any Dramatiq message the step sends. Nothing else writes a job's keys; a test
(tests/test_store_boundary.py) and a ruff banned-api rule keep it so.

The steps that keep a job going without moving its state (timers, leases, webhook attempts,
retention) are in :mod:`voicecall.job.upkeep`. ``confirm`` moves none either
(CALLBACK_CONFIRM=status: a callback's result waits for the status poll it sends) but belongs
with ``complete``.

Only ``submit`` (eSMS's send answer) sets a job's SMSID. A callback's report about a job whose
SMSID is not known yet is held on the job by ``complete`` or ``confirm`` (lib.lua ``hold``) and
settled by the ``submit`` that names the SMSID; a final step drops what is still held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from voicecall.job import keys
from voicecall.job.layout import phone_entry
from voicecall.job.records import JobRecord
from voicecall.job.states import Outcome, State
from voicecall.job.steps import Op, counted_op, job_op

# The callback hold (lib.lua ``hold``): at most this many distinct reports per job wait for
# eSMS's send answer to name its SMSID, each at most ``hold_s`` (CALLBACK_HOLD_S).
HOLD_MAX_REPORTS = 3
DEFAULT_HOLD_S = 900.0  # CALLBACK_HOLD_S's default


def _states(states: Iterable[State]) -> list[str]:
    return [s.value for s in states]


# --- the arrows -----------------------------------------------------------------------


def create(job: JobRecord, *, grace_s: float) -> Op:
    """Intake: store a new job, index it, and either schedule it or send its message (whose
    id, ``job.msg``, the job carries); ``grace_s`` past its due time the sweeper looks. A job
    in a campaign carries the campaign's number and its place in it (``cid``, ``seq``), as
    :func:`voicecall.store.job_store.JobStore.reserve_campaign` gave them."""
    idem = None
    if job.idempotency_key:
        assert job.client is not None, "intake names the client of every job"
        idem = keys.idempotency(job.client, job.idempotency_key)
    chunk = None
    if job.cid is not None:
        assert job.seq is not None, "a job in a campaign has its place in it"
        chunk = keys.campaign_chunk(job.cid, job.seq)
    op = job_op(
        "create",
        job.id,
        {
            "phone_bucket": keys.phone_bucket(job.phone),
            "idempotency": idem,
            "campaign_chunk": chunk,
        },
        kind=job.kind.value,
        state=job.state.value,
        created_at=job.created_at,
        due_at=job.due_at,
        limit_key=job.limit_key,
        msg=job.msg,
        grace_s=grace_s,
        phone_entry=phone_entry(job),
        cid=job.cid,
        seq=job.seq,
    )
    return replace(op, document=job.document())


@dataclass(frozen=True)
class ClaimRules:
    """What the claim step checks, from settings (see voicecall.config.settings)."""

    owner: str  # the worker's id (its Dramatiq broker id)
    lease_s: float
    lease_check_s: float
    liveness_ms: int
    early_s: float
    grace_s: float
    max_retries: int
    retry_window_s: float
    max_window_s: float
    global_rate: int
    phone_limit: int
    phone_window_s: float


def claim(
    job_id: str,
    *,
    rules: ClaimRules,
    queue: str,
    limit_key: str | None,
    quiet_until: float,
    message_id: str | None = None,
) -> Op:
    """Send step: check limits and holds, then ``queued|retrying → sending`` with a lease.

    ``message_id``: the Dramatiq message (its ``redis_message_id``) this worker fetched for
    the claim, acknowledged in the same step whatever the verdict (worker.broker): the
    claim is the message's whole work, so Dramatiq's own ack would be two commands more."""
    return counted_op(
        "claim",
        job_id,
        {
            "workers": keys.WORKERS,
            "global_limit": keys.GLOBAL_LIMIT,
            "dead_letters": keys.dead_letters(queue),
            "phone_window": limit_key if (limit_key and rules.phone_limit) else None,
            "acks": keys.dramatiq_acks(rules.owner, queue) if message_id else None,
        },
        queue=queue,
        ack=message_id,
        owner=rules.owner,
        lease_s=rules.lease_s,
        lease_check_s=rules.lease_check_s,
        liveness_ms=rules.liveness_ms,
        early_s=rules.early_s,
        grace_s=rules.grace_s,
        max_retries=rules.max_retries,
        retry_window_s=rules.retry_window_s,
        max_window_s=rules.max_window_s,
        global_rate=rules.global_rate,
        phone_limit=rules.phone_limit if limit_key else 0,
        phone_window_s=rules.phone_window_s,
        quiet_until=quiet_until,
    )


def submit(
    job_id: str,
    *,
    smsid: str | None,
    code: int,
    poll_at: float,
    note: str,
    hold_s: float = DEFAULT_HOLD_S,
    redrive_s: float = 30.0,
) -> Op:
    """eSMS accepted the call (100), or had accepted it before (124): ``→ submitted``. The
    answer's SMSID settles the callback reports held for the job (``hold_s`` at most): the
    first about it applies (verdict ``completed``), or with CALLBACK_CONFIRM=status sends its
    status poll now (re-sent ``redrive_s`` later if lost); the others are refused."""
    return counted_op(
        "submit",
        job_id,
        {"smsid_bucket": keys.smsid_bucket(smsid) if smsid else None},
        smsid=smsid,
        smsid_field=keys.smsid_field(smsid) if smsid else None,
        code=code,
        poll_at=poll_at,
        note=note,
        hold_s=hold_s,
        redrive_s=redrive_s,
    )


def retry_later(job_id: str, *, error: Mapping[str, str], next_at: float, note: str) -> Op:
    """An attempt failed but may succeed later: ``sending → retrying`` until ``next_at``."""
    return job_op("retry", job_id, {}, error=dict(error), next_at=next_at, note=note)


def unclaim(job_id: str, *, owner: str, attempt: int, note: str) -> Op:
    """The worker holding the claim gives the job back before any call (it is stopping):
    ``sending → retrying``, due now, the attempt not counted (verdict ``unclaimed``); a
    claim that is no longer that worker's attempt is ``lost`` and changes nothing."""
    return job_op("unclaim", job_id, {}, owner=owner, attempt=attempt, note=note)


def _end(
    job_id: str,
    to: State,
    allowed: Iterable[State],
    *,
    note: str,
    dead_letters: str | None = None,
    unattempted: bool = False,
    error: Mapping[str, str] | None = None,
    reason: str | None = None,
) -> Op:
    return counted_op(
        "end",
        job_id,
        {"dead_letters": dead_letters},
        to=to.value,
        allowed=_states(allowed),
        note=note,
        unattempted=unattempted or None,
        error=dict(error) if error else None,
        reason=reason,
    )


def reject(job_id: str, *, error: Mapping[str, str], note: str) -> Op:
    """eSMS refused the request for good: ``sending → rejected``."""
    return _end(
        job_id, State.REJECTED, [State.SENDING], note=note, error=error, reason="esms_refused"
    )


def fail(job_id: str, *, queue: str, error: Mapping[str, str], note: str) -> Op:
    """Retries are spent: ``sending → failed``, and the job becomes a dead letter."""
    return _end(
        job_id,
        State.FAILED,
        [State.SENDING],
        note=note,
        error=error,
        reason="retries_exhausted",
        dead_letters=keys.dead_letters(queue),
    )


def expire(job_id: str, *, reason: str, note: str) -> Op:
    """No result came by the deadline: ``submitted → expired``."""
    return _end(job_id, State.EXPIRED, [State.SUBMITTED], note=note, reason=reason)


def cancel(job_id: str, *, note: str) -> Op:
    """``scheduled|queued → cancelled``, only for a job never handed to eSMS."""
    return _end(
        job_id,
        State.CANCELLED,
        [State.SCHEDULED, State.QUEUED],
        note=note,
        unattempted=True,
    )


def complete(
    job_id: str,
    *,
    outcome: Outcome,
    call: Mapping[str, Any],
    source: str,
    smsid: str | None,
    nonce: str | None = None,
    note: str | None = None,
    hold_s: float = DEFAULT_HOLD_S,
) -> Op:
    """eSMS reported the result (``source``: callback or poll): ``→ completed``. A callback
    about a job whose SMSID is not known yet is held (verdict ``held``), ``hold_s`` at most."""
    return counted_op(
        "complete",
        job_id,
        {"smsid_bucket": keys.smsid_bucket(smsid) if smsid else None},
        outcome=outcome.value,
        call={k: v for k, v in call.items() if v is not None},
        source=source,
        smsid=smsid,
        smsid_field=keys.smsid_field(smsid) if smsid else None,
        nonce=nonce,
        note=note or ("result by status poll" if source == "poll" else f"result by {source}"),
        hold_s=hold_s,
    )


def confirm(
    job_id: str,
    *,
    outcome: Outcome,
    smsid: str | None,
    nonce: str,
    redrive_s: float,
    hold_s: float = DEFAULT_HOLD_S,
) -> Op:
    """CALLBACK_CONFIRM=status: a callback's final result waits for one status poll (sent
    now; the due set re-sends it ``redrive_s`` later if it is lost). No state changes. Held
    as :func:`complete` holds it while the job's SMSID is not known."""
    return job_op(
        "confirm",
        job_id,
        {"smsid_bucket": keys.smsid_bucket(smsid) if smsid else None},
        outcome=outcome.value,
        smsid=smsid,
        smsid_field=keys.smsid_field(smsid) if smsid else None,
        nonce=nonce,
        redrive_s=redrive_s,
        hold_s=hold_s,
        confirm=True,
    )


def reopen(job_id: str, *, queue: str, max_age_s: float, redrive_s: float, note: str) -> Op:
    """An operator requeues a dead letter: ``failed → queued``."""
    return job_op(
        "reopen",
        job_id,
        {"dead_letters": keys.dead_letters(queue)},
        max_age_s=max_age_s,
        redrive_s=redrive_s,
        note=note,
    )


def release(job_id: str, *, grace_s: float) -> Op:
    """The scheduler: a scheduled job is near its time: ``scheduled → queued``."""
    return job_op("release", job_id, {}, grace_s=grace_s)

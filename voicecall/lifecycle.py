"""Every state change of a job, each one named operation: the arrows of the state diagram.

::

    create ─▶ scheduled ──release──▶ queued ──claim──▶ sending ──submit──▶ submitted ──complete──▶ completed
                 ▲  │                 │   ▲              │  │                  │
                 │  └── cancel ───────┴───┼──▶ cancelled │  ├─ reject ─▶ rejected      expire ─▶ expired
                 └── hold (claim: quiet   │              │  ├─ fail ───▶ failed ──reopen──▶ queued
                     hours, phone limit)  └─ retry_later ┘  └─ (claim: OTP past its TTL ─▶ expired)
                                             (or unclaim)

Each operation here builds an :class:`Op`: a Lua script of ``voicecall/lua/`` with the keys it
touches (all built by :mod:`voicecall.keys`) and its parameters. The store runs it
(:meth:`voicecall.store.JobStore.apply`, or the asyncio twin) as one atomic step that records
the history, the state index (which also counts jobs by state), the due set (timers and
retention) and any Dramatiq message the step sends. Nothing else writes a job's keys; a test
(tests/test_store_boundary.py) and a ruff banned-api rule keep it so.

Timer-only steps that move no state: ``redrive`` (a step that should have happened did not:
send the message again), ``poll_pending``, ``record_delivery``, ``redeliver``,
``webhook_due``, ``purge`` (retention is over), ``renew_lease`` (a claimed bulk call still
waits for its place at eSMS); and ``confirm`` (CALLBACK_CONFIRM=status: a callback's result
waits for the status poll it sends).

Only ``submit`` (eSMS's send answer) sets a job's SMSID. A callback's report about a job whose
SMSID is not known yet is held on the job by ``complete`` or ``confirm`` (lib.lua ``hold``) and
settled by the ``submit`` that names the SMSID; a final step drops what is still held.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from voicecall import keys
from voicecall.jobs import FINAL_STATES, Kind, Outcome, State
from voicecall.records import JobRecord

LUA_DIR = Path(__file__).with_name("lua")
SCRIPTS = (
    "create",
    "claim",
    "submit",
    "retry",
    "end",
    "complete",
    "confirm",
    "poll_pending",
    "delivery",
    "reopen",
    "redeliver",
    "release",
    "redrive",
    "webhook_due",
    "purge",
    "postpone",
    "renew",
    "unclaim",
    "dismiss",
)
# The callback hold (lib.lua ``hold``): at most this many distinct reports per job wait for
# eSMS's send answer to name its SMSID, each at most ``hold_s`` (CALLBACK_HOLD_S).
HOLD_MAX_REPORTS = 3
DEFAULT_HOLD_S = 900.0  # CALLBACK_HOLD_S's default
BAND_WIDTH = 2**42  # ms since the epoch stay below it until the year 2109
# A job that ends within this long of its creation needs no retention timer in the due set:
# the sweeper finds it by its place in the state index (voicecall.retention).
RETENTION_SLACK_S = 3600
# Bands of the state index, in order: a completed job's band also says its outcome.
STATUSES: tuple[str, ...] = (
    *(s.value for s in State if s is not State.COMPLETED),
    *(f"completed/{o.value}" for o in Outcome),
)
KINDS: tuple[Kind, ...] = tuple(Kind)
QUEUE_OF_KIND = {Kind.VOICE_OTP: keys.QUEUE_OTP}  # every other kind: the bulk queue
DEAD_LETTER_KEYS = tuple(keys.dead_letters(q) for q in (*keys.SEND_QUEUES, keys.QUEUE_WEBHOOKS))


def send_queue(kind: Kind) -> str:
    return QUEUE_OF_KIND.get(kind, keys.QUEUE_BULK)


def band(status: str, kind: Kind) -> int:
    """The state index band of (status, kind); ``status`` is a state, or completed/outcome."""
    return STATUSES.index(status) * len(KINDS) + KINDS.index(kind)


def final_bands() -> list[int]:
    """Every band of the state index that holds final jobs."""
    final = {s.value for s in FINAL_STATES}
    return [
        band(status, kind)
        for status in STATUSES
        if status.split("/", 1)[0] in final
        for kind in KINDS
    ]


def band_range(status: str) -> tuple[int, int]:
    """Scores (inclusive) of every job in ``status``, whatever its kind."""
    low = band(status, KINDS[0]) * BAND_WIDTH
    return low, low + len(KINDS) * BAND_WIDTH - 1


def _lua_table(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid Lua string literal here
    if isinstance(value, Mapping):
        return (
            "{" + ", ".join(f"[{_lua_table(k)}] = {_lua_table(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(type(value))


def constants() -> str:
    """The Lua table ``C`` of lib.lua, from the Python enums and keys (one source)."""
    return _lua_table(
        {
            "final": {s.value: True for s in FINAL_STATES},
            "status_rank": {status: rank for rank, status in enumerate(STATUSES)},
            "kind_rank": {kind.value: rank for rank, kind in enumerate(KINDS)},
            "kinds": len(KINDS),
            "band_width": BAND_WIDTH,
            "retention_slack_s": RETENTION_SLACK_S,
            "activity_ttl_s": keys.ACTIVITY_TTL_S,
            "queues": len(keys.ALL_QUEUES),
            "queue_slot": {q: slot for slot, q in enumerate(keys.ALL_QUEUES, start=1)},
            "actor": dict(keys.ACTOR_BY_QUEUE),
            "queue_otp": keys.QUEUE_OTP,
            "queue_bulk": keys.QUEUE_BULK,
            "queue_status": keys.QUEUE_STATUS,
            "queue_webhooks": keys.QUEUE_WEBHOOKS,
            "hold_max": HOLD_MAX_REPORTS,
        }
    )


@cache
def script_source(name: str) -> str:
    """lib.lua (with its constants) followed by the operation's own script."""
    return "local ACTIVITY = nil\n" + _lib_and(name)


def _lib_and(name: str) -> str:
    lib = (LUA_DIR / "lib.lua").read_text().replace("__CONSTANTS__", constants())
    return lib + "\n" + (LUA_DIR / f"{name}.lua").read_text()


# Operations the worker may run for several jobs in one script (AsyncJobStore.apply_together).
BATCHABLE = ("submit",)


def batch_source(name: str) -> str:
    """One script that runs operation ``name`` for several jobs in turn, each step the same as
    alone (its own KEYS and ARGV, its own atomic change), in one round trip. ARGV holds, per
    step, its key count, its argument count and its arguments; KEYS every step's keys in
    turn. The steps' activity counts are added once at the end, one HINCRBY per minute and
    field rather than one per step."""
    return f"""\
local ACTIVITY = {{}}
local function run(KEYS, ARGV)
{_lib_and(name)}
end
local replies, k, a = {{}}, 1, 1
while a <= #ARGV do
  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local step_keys, step_args = {{}}, {{}}
  for i = 1, nk do step_keys[i] = KEYS[k + i - 1] end
  for i = 1, na do step_args[i] = ARGV[a + 1 + i] end
  replies[#replies + 1] = run(step_keys, step_args)
  k, a = k + nk, a + 2 + na
end
for key, fields in pairs(ACTIVITY) do
  for field, n in pairs(fields) do
    if redis.call('HINCRBY', key, field, n) == n then
      redis.call('EXPIRE', key, {keys.ACTIVITY_TTL_S})
    end
  end
end
return replies
"""


@dataclass(frozen=True)
class Op:
    """One operation, ready to run: script name, declared keys, parameters."""

    script: str
    keys: tuple[str, ...]
    params: Mapping[str, Any]
    document: str | None = None  # ARGV[3]: a whole job (create only)
    # The step may send or end a job: the store names the minute's activity hash (from the
    # step's time) just before the message keys (voicecall.activity).
    activity: bool = False


@dataclass(frozen=True)
class Step:
    """What an operation did: its verdict, the job's state after it, a detail (the job as
    JSON when the step changed it, else a reason or nothing), and ``extra``: what a step that
    settles held callback reports counted (``{"smsid_mismatch": 1}``), else empty."""

    verdict: str
    state: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def job(self) -> JobRecord | None:
        return JobRecord.parse(self.detail) if self.detail.startswith("{") else None

    @classmethod
    def of(cls, reply: Sequence[Any]) -> Step:
        verdict, state, detail = (x.decode() if isinstance(x, bytes) else str(x) for x in reply[:3])
        extra = json.loads(reply[3]) if len(reply) > 3 else {}
        return cls(verdict, state, detail, extra if isinstance(extra, dict) else {})


def _op(script: str, job_id: str, own_keys: Iterable[str], **params: Any) -> Op:
    declared = (
        keys.job(job_id),
        keys.STATE_INDEX,
        keys.DUE,
        keys.WEBHOOKS_DUE,
        keys.SCHEDULE,
        keys.CAMPAIGN_STATS,
        *own_keys,
        *keys.message_keys(),
    )
    clean = {k: v for k, v in params.items() if v is not None}
    return Op(script, declared, {"id": job_id, **clean})


def _counted(script: str, job_id: str, own_keys: Iterable[str], **params: Any) -> Op:
    """An operation that may send or end the job, so counts it in the minute's activity."""
    op = _op(script, job_id, own_keys, **params)
    return Op(op.script, op.keys, op.params, op.document, activity=True)


def _states(states: Iterable[State]) -> list[str]:
    return [s.value for s in states]


# --- the arrows -----------------------------------------------------------------------


def phone_entry(job: JobRecord) -> str:
    """The job's member of the phone index: phone, then newest first, then id."""
    newness = MAX_MS - round(job.created_at * 1000)
    return f"{job.phone}:{newness:013d}:{job.id}"


MAX_MS = 10**13 - 1  # creation times in ms stay below it until the year 2286


def create(job: JobRecord, *, grace_s: float) -> Op:
    """Intake: store a new job, index it, and either schedule it or send its message (whose
    id, ``job.msg``, the job carries); ``grace_s`` past its due time the sweeper looks. A job
    in a campaign carries the campaign's number and its place in it (``cid``, ``seq``), as
    :func:`voicecall.store.JobStore.reserve_campaign` gave them."""
    idem = keys.idempotency(job.idempotency_key) if job.idempotency_key else keys.job(job.id)
    chunk = (
        keys.campaign_chunk(job.cid, job.seq)
        if job.cid is not None and job.seq is not None
        else keys.job(job.id)
    )
    op = _op(
        "create",
        job.id,
        [idem, keys.phone_bucket(job.phone), chunk],
        kind=job.kind.value,
        state=job.state.value,
        created_at=job.created_at,
        due_at=job.due_at,
        idem=bool(job.idempotency_key) or None,
        limit_key=job.limit_key,
        msg=job.msg,
        grace_s=grace_s,
        phone_entry=phone_entry(job),
        cid=job.cid,
        seq=job.seq,
    )
    return Op(op.script, op.keys, op.params, job.document())


@dataclass(frozen=True)
class ClaimRules:
    """What the claim step checks, from settings (see voicecall.settings)."""

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
    the claim, acknowledged in the same step whatever the verdict (voicecall.broker): the
    claim is the message's whole work, so Dramatiq's own ack would be two commands more."""
    return _counted(
        "claim",
        job_id,
        [
            keys.WORKERS,
            keys.GLOBAL_LIMIT,
            limit_key if (limit_key and rules.phone_limit) else keys.job(job_id),
            keys.dead_letters(queue),
            keys.dramatiq_acks(rules.owner, queue) if message_id else keys.job(job_id),
        ],
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
    return _counted(
        "submit",
        job_id,
        [keys.smsid_bucket(smsid) if smsid else keys.job(job_id)],
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
    return _op("retry", job_id, [], error=dict(error), next_at=next_at, note=note)


def unclaim(job_id: str, *, owner: str, attempt: int, note: str) -> Op:
    """The worker holding the claim gives the job back before any call (it is stopping):
    ``sending → retrying``, due now, the attempt not counted (verdict ``unclaimed``); a
    claim that is no longer that worker's attempt is ``lost`` and changes nothing."""
    return _op("unclaim", job_id, [], owner=owner, attempt=attempt, note=note)


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
    return _counted(
        "end",
        job_id,
        [dead_letters or keys.job(job_id)],
        to=to.value,
        allowed=_states(allowed),
        note=note,
        dead=bool(dead_letters) or None,
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
    return _counted(
        "complete",
        job_id,
        [keys.smsid_bucket(smsid) if smsid else keys.job(job_id)],
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
    return _op(
        "confirm",
        job_id,
        [keys.smsid_bucket(smsid) if smsid else keys.job(job_id)],
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
    return _op(
        "reopen",
        job_id,
        [keys.dead_letters(queue)],
        max_age_s=max_age_s,
        redrive_s=redrive_s,
        note=note,
    )


def release(job_id: str, *, grace_s: float) -> Op:
    """The scheduler: a scheduled job is near its time: ``scheduled → queued``."""
    return _op("release", job_id, [], grace_s=grace_s)


# --- timer-only steps -------------------------------------------------------------------


def poll_pending(job_id: str, *, next_at: float) -> Op:
    return _op("poll_pending", job_id, [], next_at=next_at)


def postpone(job_id: str, *, at: float) -> Op:
    """No worker slot was free: bring the queued job back at ``at``."""
    return _op("postpone", job_id, [], at=at)


def renew_lease(job_id: str, *, owner: str, attempt: int, lease_s: float) -> Op:
    """A claimed job still waits in its worker (for a place at eSMS): its lease runs
    ``lease_s`` from now, if it is still that worker's claim of that attempt (verdict
    ``renewed``, detail the new end), else verdict ``lost``."""
    return _op("renew", job_id, [], owner=owner, attempt=attempt, lease_s=lease_s)


def redrive(
    job_id: str,
    *,
    liveness_ms: int,
    lease_check_s: float,
    redrive_s: float,
    force: bool = False,
) -> Op:
    """Send again the message a job needs (``force``: before its time in the due set, for a
    job claimed by a worker found dead)."""
    return _op(
        "redrive",
        job_id,
        [keys.WORKERS],
        liveness_ms=liveness_ms,
        lease_check_s=lease_check_s,
        redrive_s=redrive_s,
        force=force or None,
    )


def record_delivery(
    job_id: str, *, delivery: Mapping[str, Any], result: str, next_at: float | None = None
) -> Op:
    """A webhook attempt: ``result`` is delivered, retry (at ``next_at``) or gave_up."""
    return _op(
        "delivery",
        job_id,
        [keys.dead_letters(keys.QUEUE_WEBHOOKS)],
        delivery={k: v for k, v in delivery.items() if v is not None},
        result=result,
        next_at=next_at,
    )


def dismiss(job_id: str, *, queue: str) -> Op:
    """An operator purges a dead letter (the job stays until its retention ends)."""
    return _op("dismiss", job_id, [keys.dead_letters(queue)])


def redeliver(job_id: str) -> Op:
    return _op("redeliver", job_id, [keys.dead_letters(keys.QUEUE_WEBHOOKS)])


def webhook_due(job_id: str) -> Op:
    return _op("webhook_due", job_id, [])


def purge(job: JobRecord | None, job_id: str) -> Op:
    """Retention is over: the job and its index entries leave together. A final job's
    record has no TTL, so it is here to name them (``job`` None: only after someone deleted
    its record by hand; its state and due entries still go)."""
    chunk = (
        keys.campaign_chunk(job.cid, job.seq)
        if job is not None and job.cid is not None and job.seq is not None
        else keys.SCHEDULE  # a sorted set the job is no longer in
    )
    bucket = keys.phone_bucket(job.phone) if job is not None else keys.SCHEDULE
    smsid = job.smsid if job is not None else None
    return _op(
        "purge",
        job_id,
        [*DEAD_LETTER_KEYS, bucket, chunk, keys.smsid_bucket(smsid) if smsid else keys.job(job_id)],
        phone_entry=phone_entry(job) if job is not None else None,
        smsid=smsid,
        smsid_field=keys.smsid_field(smsid) if smsid else None,
    )

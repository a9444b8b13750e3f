"""The job store in Redis, shared by producer and worker.

A job is one hash (``vc:job:{id}``) plus its history list; secondary keys index it by
idempotency key and by SMSID, and three sorted sets say what needs attention next (the
schedule, jobs in flight, jobs awaiting a poll). Every state change is one Lua script
(:mod:`voicecall.lua`), so it is atomic and recorded in the history with its time. No request
path scans keys: every lookup is by a known key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from voicecall import keys, lua
from voicecall.jobs import FINAL_STATES, Kind, Outcome, State

DAY_S = 86400


def now_s() -> float:
    return time.time()


@dataclass(frozen=True)
class Job:
    """A job as read from Redis. ``payload`` holds the kind-specific eSMS options."""

    id: str
    kind: Kind
    phone: str
    state: State
    created_at: float
    updated_at: float
    due_at: float
    schedule: str
    payload: dict[str, Any]
    labels: dict[str, str]
    outcome: Outcome | None = None
    idempotency_key: str | None = None
    body_hash: str = ""
    webhook_url: str | None = None
    trace_id: str | None = None
    smsid: str | None = None
    attempts: int = 0
    lease_until: float = 0.0
    first_attempt_at: float | None = None
    window_started_at: float | None = None  # start of the retry window (reset by a DLQ requeue)
    submitted_at: float | None = None
    finished_at: float | None = None
    expires_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    reason: str | None = None
    call_status: str | None = None
    call_duration_s: int | None = None
    price_vnd: float | None = None
    polls: int = 0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> Job:
        def opt(name: str) -> str | None:
            value = raw.get(name)
            return value if value not in (None, "") else None

        def opt_float(name: str) -> float | None:
            value = opt(name)
            return float(value) if value is not None else None

        outcome = opt("outcome")
        duration = opt("call_duration_s")
        return cls(
            id=raw["id"],
            kind=Kind(raw["kind"]),
            phone=raw["phone"],
            state=State(raw["state"]),
            created_at=float(raw["created_at"]),
            updated_at=float(raw.get("updated_at") or raw["created_at"]),
            due_at=float(raw.get("due_at") or raw["created_at"]),
            schedule=raw.get("schedule", "worker"),
            payload=json.loads(raw.get("payload") or "{}"),
            labels=json.loads(raw.get("labels") or "{}"),
            outcome=Outcome(outcome) if outcome else None,
            idempotency_key=opt("idempotency_key"),
            body_hash=raw.get("body_hash", ""),
            webhook_url=opt("webhook_url"),
            trace_id=opt("trace_id"),
            smsid=opt("smsid"),
            attempts=int(raw.get("attempts") or 0),
            lease_until=float(raw.get("lease_until") or 0),
            first_attempt_at=opt_float("first_attempt_at"),
            window_started_at=opt_float("window_started_at"),
            submitted_at=opt_float("submitted_at"),
            finished_at=opt_float("finished_at"),
            expires_at=opt_float("expires_at"),
            error_code=opt("error_code"),
            error_message=opt("error_message"),
            reason=opt("reason"),
            call_status=opt("call_status"),
            call_duration_s=int(duration) if duration is not None else None,
            price_vnd=opt_float("price_vnd"),
            polls=int(raw.get("polls") or 0),
        )


@dataclass(frozen=True)
class TransitionResult:
    applied: bool
    previous: State | None  # the state found; None when the job does not exist


def _flatten(fields: Mapping[str, object]) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        flat += [name, "" if value is None else str(value)]
    return flat


def _history_entry(state: str, at: float, note: str | None, extra: Mapping[str, object]) -> str:
    entry: dict[str, object] = {"state": state, "at": round(at, 6)}
    if note:
        entry["note"] = note
    entry.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps(entry, separators=(",", ":"))


class JobStore:
    """Reads and moves jobs. Thread-safe: it holds only a redis client (a connection pool)."""

    def __init__(self, client: redis.Redis, *, retention_days: int = 30) -> None:
        self.redis = client
        self.retention_s = retention_days * DAY_S
        self._create = client.register_script(lua.CREATE)
        self._transition = client.register_script(lua.TRANSITION)
        self._release = client.register_script(lua.RELEASE_DUE)
        self._claim_due = client.register_script(lua.CLAIM_DUE)

    @classmethod
    def from_url(cls, url: str, *, retention_days: int = 30, **options: Any) -> JobStore:
        options.setdefault("socket_timeout", 5)
        options.setdefault("socket_connect_timeout", 2)
        options.setdefault("health_check_interval", 10)
        client = redis.Redis.from_url(url, decode_responses=True, **options)
        return cls(client, retention_days=retention_days)

    # --- reads -------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        raw = cast(dict[str, str], self.redis.hgetall(keys.job(job_id)))
        return Job.from_hash(raw) if raw else None

    def history(self, job_id: str) -> list[dict[str, Any]]:
        return [
            json.loads(item)
            for item in cast(list[str], self.redis.lrange(keys.history(job_id), 0, -1))
        ]

    def id_for_idempotency_key(self, key: str) -> str | None:
        return cast(str | None, self.redis.get(keys.idempotency(key)))

    def id_for_smsid(self, smsid: str) -> str | None:
        return cast(str | None, self.redis.get(keys.smsid(smsid)))

    def state_counts(self) -> dict[str, int]:
        raw = cast(dict[str, str], self.redis.hgetall(keys.STATE_COUNTS))
        return {state: int(count) for state, count in raw.items()}

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # --- writes ------------------------------------------------------------------------

    def create(
        self,
        fields: Mapping[str, object],
        *,
        state: State,
        idempotency_key: str | None,
        body_hash: str,
        schedule_at: float | None = None,
        inflight_until: float | None = None,
        note: str | None = None,
        now: float | None = None,
    ) -> tuple[bool, str]:
        """Store a new job; returns ``(True, id)``, or ``(False, existing_id)`` for a known key.

        Raises ``KeyError`` when a job with this id already exists (without a key).
        """
        at = now if now is not None else now_s()
        job_id = str(fields["id"])
        status, existing = self._create(
            keys=[
                keys.job(job_id),
                keys.history(job_id),
                keys.idempotency(idempotency_key) if idempotency_key else "",
                keys.STATE_COUNTS,
                keys.SCHEDULE,
                keys.INFLIGHT,
            ],
            args=[
                at,
                state.value,
                "" if schedule_at is None else schedule_at,
                "" if inflight_until is None else inflight_until,
                _history_entry(state.value, at, note, {}),
                body_hash,
                *_flatten(fields),
            ],
        )
        if int(status) == -1:
            raise KeyError(job_id)
        return (True, job_id) if int(status) == 1 else (False, str(existing))

    def transition(
        self,
        job_id: str,
        to: State,
        *,
        allowed_from: Iterable[State],
        note: str | None = None,
        fields: Mapping[str, object] | None = None,
        schedule: str = "",
        inflight: str = "",
        polls: str = "",
        require_expired_lease: bool = False,
        history_extra: Mapping[str, object] | None = None,
        index_smsid: bool = False,
        require_unattempted: bool = False,
        now: float | None = None,
    ) -> TransitionResult:
        """Move a job to ``to`` if it is in one of ``allowed_from``; atomic.

        ``schedule``, ``inflight`` and ``polls`` are sorted-set operations: "" leaves the job's
        entry alone, "-" removes it, a number (as text) sets its score. A final state removes
        the job from all three and starts its retention clock. ``index_smsid`` also indexes the
        job's SMSID (as set by ``fields``) for lookups, in the same step. ``require_unattempted``
        refuses a job that has been handed to eSMS at least once (``attempts`` > 0).
        """
        at = now if now is not None else now_s()
        final = to in FINAL_STATES
        all_fields = dict(fields or {})
        if final:
            all_fields.setdefault("finished_at", at)
            schedule = inflight = polls = "-"
        result = self._transition(
            keys=[
                keys.job(job_id),
                keys.history(job_id),
                keys.STATE_COUNTS,
                keys.SCHEDULE,
                keys.INFLIGHT,
                keys.POLLS,
            ],
            args=[
                to.value,
                " ".join(s.value for s in allowed_from),
                at,
                _history_entry(to.value, at, note, history_extra or {}),
                self.retention_s if final else 0,
                schedule,
                inflight,
                polls,
                "1" if require_expired_lease else "0",
                self.smsid_ttl_s if index_smsid else 0,
                "1" if require_unattempted else "0",
                *_flatten(all_fields),
            ],
        )
        applied, previous = int(result[0]), str(result[1])
        return TransitionResult(applied == 1, State(previous) if previous else None)

    @property
    def smsid_ttl_s(self) -> int:
        """An SMSID lookup outlives the job's retention clock, which starts only when it ends."""
        return self.retention_s + 7 * DAY_S

    def index_smsid(self, job_id: str, smsid: str) -> None:
        self.redis.set(keys.smsid(smsid), job_id, ex=self.smsid_ttl_s)

    def release_due(
        self, *, horizon_s: float, limit: int, stale_after_s: float
    ) -> list[tuple[str, float, Kind]]:
        """Move jobs due within ``horizon_s`` from the schedule to ``queued``: (id, due, kind)."""
        now = now_s()
        flat = self._release(
            keys=[keys.SCHEDULE, keys.INFLIGHT, keys.STATE_COUNTS],
            args=[now, now + horizon_s, limit, stale_after_s],
        )
        return [
            (str(flat[i]), float(flat[i + 1]), Kind(flat[i + 2])) for i in range(0, len(flat), 3)
        ]

    def claim_due(
        self, zset: str, *, horizon_s: float, limit: int, push_back_s: float
    ) -> list[tuple[str, float]]:
        """(id, score) of entries due within ``horizon_s``; their scores move ``push_back_s`` on."""
        now = now_s()
        flat = self._claim_due(keys=[zset], args=[now + horizon_s, limit, push_back_s, now])
        return [(str(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    def plan_poll(self, job_id: str, at: float) -> None:
        """Move a submitted job's next poll; XX: never re-adds a job that has finished."""
        self.redis.zadd(keys.POLLS, {job_id: at}, xx=True)

    def schedule_stats(self) -> tuple[int, float]:
        """(jobs waiting in the schedule, age in seconds of the oldest overdue one, else 0)."""
        pipe = self.redis.pipeline()
        pipe.zcard(keys.SCHEDULE)
        pipe.zrange(keys.SCHEDULE, 0, 0, withscores=True)
        size, first = pipe.execute()
        oldest = max(0.0, now_s() - float(first[0][1])) if first else 0.0
        return int(size), oldest


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def public_view(job: Job, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The job as JSON for clients: ids, state, outcome, times in UTC ISO-8601, history.

    A Voice OTP's spoken content is never shown (it is erased once submitted anyway).
    """
    request = {k: v for k, v in job.payload.items() if k != "content"}
    view: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind.value,
        "phone": job.phone,
        "state": job.state.value,
        "outcome": job.outcome.value if job.outcome else None,
        "schedule": job.schedule,
        "due_at": _iso(job.due_at),
        "created_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at),
        "idempotency_key": job.idempotency_key,
        "webhook_url": job.webhook_url,
        "labels": job.labels,
        "trace_id": job.trace_id,
        "smsid": job.smsid,
        "attempts": job.attempts,
        "error": (
            {"code": job.error_code, "message": job.error_message}
            if job.error_code or job.error_message
            else None
        ),
        "reason": job.reason,
        "call": {
            "status": job.call_status,
            "duration_s": job.call_duration_s,
            "price_vnd": job.price_vnd,
        },
        "request": request,
    }
    if history is not None:
        view["history"] = [{**entry, "at": _iso(float(entry["at"]))} for entry in history]
    return view

"""Intake: turn a validated call request into a stored job and its Dramatiq message.

The message is addressed by queue and actor name, so a producer never imports worker code
nor holds eSMS credentials. Order of writes, and what a crash between them leaves:

1. The job record is created atomically (Lua) together with its idempotency key, and either
   put in the schedule (worker mode, due beyond the scheduler's horizon) or marked in flight
   with a deadline a few seconds ahead (``vc:inflight``).
2. The Dramatiq message is enqueued (with a delay up to the due time).

If the process dies between 1 and 2, the job sits in ``queued`` with no message; the worker's
sweeper finds it when its in-flight deadline passes and enqueues the message. A duplicate
message is harmless: the send step claims the job atomically before calling eSMS.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

import dramatiq

from voicecall.jobs import Kind, RecordCall, ScheduleMode, State, TemplateCall, VoiceOtpCall
from voicecall.messages import send_message
from voicecall.metrics import JOBS_ENQUEUED
from voicecall.settings import Settings
from voicecall.store import Job, JobStore, now_s

AnyCall = VoiceOtpCall | RecordCall | TemplateCall


class IdempotencyConflict(Exception):
    """The idempotency key is already used by a job with a different body."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            f"idempotency_key {key!r} is already used by job {job_id} with a different body"
        )
        self.key = key
        self.job_id = job_id


class DuplicateJobId(Exception):
    """A job with this id exists already (and no idempotency key says it is the same one)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"id {job_id!r} is already used by another job")
        self.job_id = job_id


@dataclass(frozen=True)
class Submitted:
    job: Job
    replay: bool  # True when an earlier request with the same idempotency key made the job


def body_hash(request: AnyCall) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class Intake:
    """Stores jobs and wakes the workers. Safe to share between threads."""

    def __init__(self, settings: Settings, store: JobStore, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker

    def submit(self, request: AnyCall, *, trace_id: str | None = None) -> Submitted:
        now = now_s()
        job_id = request.id or uuid.uuid4().hex
        digest = body_hash(request)
        due_at = request.send_at.timestamp() if request.send_at else now
        provider_mode = request.schedule is ScheduleMode.PROVIDER
        # Worker mode: far jobs wait in the schedule; near ones go straight to Dramatiq
        # with a short delay. Provider mode: sent at once, eSMS waits until SendDate.
        later = not provider_mode and due_at > now + self.settings.schedule_horizon_s
        state = State.SCHEDULED if later else State.QUEUED
        send_after = now if provider_mode else max(now, due_at)
        fields = self._fields(request, job_id, due_at, trace_id)
        try:
            created, existing_id = self.store.create(
                fields,
                state=state,
                idempotency_key=request.idempotency_key,
                body_hash=digest,
                schedule_at=due_at if later else None,
                inflight_until=None if later else send_after + self.settings.sweep_stale_queued_s,
                now=now,
            )
        except KeyError:
            raise DuplicateJobId(job_id) from None
        if not created:
            return self._replay(request, existing_id, digest)
        if state is State.QUEUED:
            send_message(self.broker, job_id, Kind(request.kind), delay_s=send_after - now)
        JOBS_ENQUEUED.labels(kind=request.kind).inc()
        # The job as just written (no read-back: a quarter of the Python API's time).
        written = {name: "" if value is None else str(value) for name, value in fields.items()}
        written.update(
            state=state.value, created_at=str(now), updated_at=str(now), body_hash=digest
        )
        return Submitted(job=Job.from_hash(written), replay=False)

    def _replay(self, request: AnyCall, existing_id: str, digest: str) -> Submitted:
        existing = self.store.get(existing_id)
        if existing is None or request.idempotency_key is None:
            raise DuplicateJobId(existing_id)
        if existing.body_hash != digest:
            raise IdempotencyConflict(request.idempotency_key, existing_id)
        return Submitted(job=existing, replay=True)

    def _fields(
        self, request: AnyCall, job_id: str, due_at: float, trace_id: str | None
    ) -> dict[str, object]:
        payload = request.model_dump(
            mode="json",
            exclude={
                "id",
                "phone",
                "send_at",
                "schedule",
                "idempotency_key",
                "webhook_url",
                "labels",
                "kind",
            },
            exclude_none=True,
        )
        fields: dict[str, object] = {
            "id": job_id,
            "kind": request.kind,
            "phone": request.phone,
            "due_at": due_at,
            "schedule": request.schedule.value,
            "payload": json.dumps(payload, separators=(",", ":")),
            "labels": json.dumps(request.labels, separators=(",", ":")),
            "idempotency_key": request.idempotency_key or "",
            "webhook_url": str(request.webhook_url) if request.webhook_url else "",
            "trace_id": trace_id or "",
        }
        if isinstance(request, VoiceOtpCall):
            fields["expires_at"] = due_at + (request.ttl_s or self.settings.otp_ttl_s)
        return fields

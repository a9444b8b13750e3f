"""Intake: turn a validated call request into a stored job, with its Dramatiq message.

Every job records the client that asked for it (``client``: its name, voicecall.config.clients), and
its idempotency key is that client's: the same key from two clients makes two jobs.

One Lua step (voicecall.job.lifecycle.create) refuses a known idempotency key or id, stores the
job, indexes it, and either puts it in the schedule (worker mode, due beyond the scheduler's
horizon) or writes its send message, addressed by queue and actor name. Nothing can be stored
without its message, nor a message without its job, and a producer never imports worker
code nor holds eSMS credentials. A worker holds a message for a job due within the horizon
until its time.

With an idempotency key, the job id (eSMS's RequestId) is derived from the key and the client
(:func:`derived_job_id`): the key's guarantee then holds even across a Redis failover that lost
the key's record. With REDIS_WAIT_REPLICAS, intake answers only once the new job is on that
many replicas (WAIT), and 503 otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass

from voicecall.config.settings import Settings
from voicecall.errors import DuplicateJobId, IdempotencyConflict
from voicecall.esms.callbacks import new_nonce
from voicecall.job import keys, lifecycle, steps
from voicecall.job.contract import CAMPAIGN_LABEL, AnyCall, VoiceOtpCall, params_of
from voicecall.job.records import HistoryEntry, JobRecord
from voicecall.job.states import Kind, ScheduleMode, State
from voicecall.job.steps import Step, Verdict
from voicecall.store.connection import now_s
from voicecall.store.job_store import AsyncJobStore, JobStore
from voicecall.telemetry import tracing
from voicecall.telemetry.carriers import Carrier
from voicecall.telemetry.metrics import JOBS_ENQUEUED

__all__ = ["DuplicateJobId", "IdempotencyConflict", "Intake", "Submitted", "body_hash"]


@dataclass(frozen=True)
class Submitted:
    job: JobRecord
    replay: bool  # True when an earlier request with the same idempotency key made the job


def body_hash(request: AnyCall) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def derived_job_id(secret: str, client: str, key: str) -> str:
    """The job id (so eSMS's RequestId) of ``client``'s idempotency key ``key``: a keyed
    digest (HMAC-SHA256 under a key derived from CALLBACK_SECRET), 24 hex characters (96
    bits; RequestId allows 50). A retry after a failover that lost the idempotency record
    makes the same RequestId, which eSMS refuses (code 124) instead of calling again."""
    derived = hmac.new(secret.encode(), b"voicecall job id", hashlib.sha256).digest()
    message = json.dumps([client, key], separators=(",", ":")).encode()
    return "k" + hmac.new(derived, message, hashlib.sha256).hexdigest()[:23]


def new_job_id() -> str:
    """20 hex characters (80 random bits): unique enough for eSMS's 24 h RequestId window and
    any retention, and 12 bytes less in each index than a full UUID."""
    return secrets.token_hex(10)


class Intake:
    """Stores jobs and wakes the workers. Safe to share between threads."""

    def __init__(
        self, settings: Settings, store: JobStore, async_store: AsyncJobStore | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.async_store = async_store

    def record(
        self,
        request: AnyCall,
        *,
        client: str,
        trace_id: str | None,
        now: float,
        place: tuple[int, int] | None = None,
        trace_ctx: Carrier | None = None,
    ) -> JobRecord:
        """The job a request of ``client`` (its name: voicecall.config.clients) makes, as intake
        writes it; ``place``: (cid, seq) in its campaign."""
        # Whole milliseconds: the store's Lua keeps 14 significant digits (cjson), and the
        # phone-index member made from created_at must come out the same when it is re-read.
        now = round(now, 3)
        due_at = round(request.send_at.timestamp() if request.send_at else now, 3)
        provider_mode = request.schedule is ScheduleMode.PROVIDER
        # Worker mode: far jobs wait in the schedule, near ones get their message now.
        # Provider mode: sent at once, eSMS waits until SendDate.
        later = not provider_mode and due_at > now + self.settings.schedule_horizon_s
        state = State.SCHEDULED if later else State.QUEUED
        expires_at = None
        if isinstance(request, VoiceOtpCall):
            expires_at = round(due_at + (request.ttl_s or self.settings.otp_ttl_s), 3)
        return JobRecord(
            id=request.id or self._job_id(request, client),
            kind=Kind(request.kind),
            phone=request.phone,
            state=state,
            schedule=request.schedule,
            request=params_of(request),
            labels=request.labels,
            idempotency_key=request.idempotency_key,
            client=client,
            body_hash=body_hash(request),
            webhook_url=str(request.webhook_url) if request.webhook_url else None,
            trace_id=trace_id,
            trace_ctx=trace_ctx or tracing.current_carrier(),
            limit_key=keys.phone_limit(request.phone),
            msg=None if later else uuid.uuid4().hex,
            callback_nonce=new_nonce(),
            created_at=now,
            updated_at=now,
            due_at=due_at,
            expires_at=expires_at,
            history=[HistoryEntry(state=state, at=now)],
            cid=place[0] if place else None,
            seq=place[1] if place else None,
        )

    def _job_id(self, request: AnyCall, client: str) -> str:
        if request.idempotency_key is None:
            return new_job_id()
        return derived_job_id(self.settings.callback_secret, client, request.idempotency_key)

    def submit(
        self,
        request: AnyCall,
        *,
        client: str,
        trace_id: str | None = None,
        trace_ctx: Carrier | None = None,
    ) -> Submitted:
        """Store the job ``client`` asks for, or find the one its idempotency key made;
        ``trace_ctx``: the trace it continues (default: the current span's, tracing on)."""
        campaign = request.labels.get(CAMPAIGN_LABEL)
        place = self.store.reserve_campaign(campaign) if campaign else None
        job = self.record(
            request, client=client, trace_id=trace_id, now=now_s(), place=place, trace_ctx=trace_ctx
        )
        step = self.store.apply_replicated(
            self._create(job), replicas=self.settings.wait_replicas, now=job.created_at
        )
        if step.verdict is Verdict.REPLAY:
            return self._replay(request, self.store.get(step.state), step.state)
        if self._refound(request, job, step):
            return self._replay(request, self.store.get(job.id), job.id)
        return self._created(job, step)

    async def submit_async(
        self, request: AnyCall, *, client: str, trace_id: str | None = None
    ) -> Submitted:
        """The same in one awaited round trip (the HTTP API's intake)."""
        assert self.async_store is not None
        campaign = request.labels.get(CAMPAIGN_LABEL)
        place = await self.async_store.reserve_campaign(campaign) if campaign else None
        job = self.record(request, client=client, trace_id=trace_id, now=now_s(), place=place)
        step = await self.async_store.apply_replicated(
            self._create(job), replicas=self.settings.wait_replicas, now=job.created_at
        )
        if step.verdict is Verdict.REPLAY:
            existing = await self.async_store.get(step.state)
            return self._replay(request, existing, step.state)
        if self._refound(request, job, step):
            return self._replay(request, await self.async_store.get(job.id), job.id)
        return self._created(job, step)

    @staticmethod
    def _refound(request: AnyCall, job: JobRecord, step: Step) -> bool:
        """The key's job is there but not its idempotency record: a replay all the same."""
        return (
            step.verdict is Verdict.EXISTS
            and request.id is None
            and job.idempotency_key is not None
        )

    def _create(self, job: JobRecord) -> steps.Op:
        # A new job's message waits its turn on its queue: the sweeper looks only after
        # REDRIVE_AFTER_S (it resends only a message that is gone).
        return lifecycle.create(job, grace_s=self.settings.redrive_after_s)

    @staticmethod
    def _created(job: JobRecord, step: Step) -> Submitted:
        if step.verdict is Verdict.EXISTS:
            raise DuplicateJobId(job.id)
        JOBS_ENQUEUED.labels(kind=job.kind.value).inc()
        return Submitted(job=job, replay=False)

    @staticmethod
    def _replay(request: AnyCall, existing: JobRecord | None, existing_id: str) -> Submitted:
        if existing is None or request.idempotency_key is None:
            raise DuplicateJobId(existing_id)
        if existing.body_hash != body_hash(request):
            raise IdempotencyConflict(request.idempotency_key, existing_id)
        return Submitted(job=existing, replay=True)

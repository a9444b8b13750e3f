"""The Python API: enqueue calls, look them up and cancel them, with only ``REDIS_URL``.

>>> from producer import VoiceCallClient
>>> client = VoiceCallClient.from_env()                       # doctest: +SKIP
>>> job = client.enqueue_otp("0901234567", "Ma cua ban la 123456")  # doctest: +SKIP
>>> client.get(job["id"])["state"]                          # doctest: +SKIP
'queued'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dramatiq

from producer.intake import Intake
from voicecall.broker import make_broker
from voicecall.exporter import mark_producer_broker
from voicecall.jobs import CANCELLABLE_STATES, CallRequestAdapter, State, validation_context
from voicecall.settings import Settings, load_settings
from voicecall.store import JobStore, public_view

__all__ = ["CancelRefused", "JobNotFound", "VoiceCallClient"]


class JobNotFound(LookupError):
    """No job with this id (or it has passed its retention)."""


class CancelRefused(Exception):
    """The job can no longer be cancelled: it was handed to eSMS or is final."""

    def __init__(self, job_id: str, state: State) -> None:
        super().__init__(
            f"job {job_id} is {state.value}: only a scheduled or queued job never yet handed "
            "to eSMS can be cancelled"
        )
        self.state = state


class VoiceCallClient:
    """Enqueue and manage call jobs from Python. Every method returns the job as JSON (a dict).

    Invalid input raises ``pydantic.ValidationError`` naming each field and rule; nothing is
    stored then.
    """

    def __init__(self, settings: Settings, store: JobStore, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.store = store
        self.intake = Intake(settings, store, broker)

    @classmethod
    def from_env(cls, **overrides: Any) -> VoiceCallClient:
        """Build from the environment (only ``REDIS_URL`` is needed)."""
        settings = load_settings(**overrides).require("producer")
        store = JobStore.from_url(
            settings.redis_url, retention_days=settings.finished_retention_days
        )
        return cls(settings, store, mark_producer_broker(make_broker(settings)))

    def enqueue(self, request: Mapping[str, Any], *, trace_id: str | None = None) -> dict[str, Any]:
        """Enqueue any kind from a dict as the HTTP API takes it; ``replay`` says if it existed.

        >>> client.enqueue({"kind": "voice_otp", "phone": "0901234567", "content": "123456"})  # doctest: +SKIP
        """
        call = CallRequestAdapter.validate_python(
            dict(request), context=validation_context(self.settings)
        )
        submitted = self.intake.submit(call, trace_id=trace_id)
        return {**public_view(submitted.job), "replay": submitted.replay}

    def enqueue_otp(self, phone: str, content: str, **options: Any) -> dict[str, Any]:
        """A Voice OTP call reading ``content`` out. Options: ttl_s, send_at, idempotency_key, ..."""
        return self.enqueue({"kind": "voice_otp", "phone": phone, "content": content, **options})

    def enqueue_record(self, phone: str, record_id: str, **options: Any) -> dict[str, Any]:
        """A call playing recording ``record_id``. Options: max_retry, wait_retry, ivr, ..."""
        return self.enqueue(
            {"kind": "record_call", "phone": phone, "record_id": record_id, **options}
        )

    def enqueue_template(
        self, phone: str, template_id: str, variables: Sequence[str] = (), **options: Any
    ) -> dict[str, Any]:
        """A text-to-speech call from script ``template_id`` with its ``variables`` in order."""
        return self.enqueue(
            {
                "kind": "template_call",
                "phone": phone,
                "template_id": template_id,
                "variables": list(variables),
                **options,
            }
        )

    def get(self, job_id: str) -> dict[str, Any]:
        """The job with its history; raises :class:`JobNotFound`."""
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return public_view(job, self.store.history(job_id))

    def find(
        self, *, idempotency_key: str | None = None, smsid: str | None = None
    ) -> dict[str, Any]:
        """Look a job up by its idempotency key or its eSMS SMSID."""
        job_id = (
            self.store.id_for_idempotency_key(idempotency_key)
            if idempotency_key
            else self.store.id_for_smsid(smsid)
            if smsid
            else None
        )
        if job_id is None:
            raise JobNotFound(idempotency_key or smsid or "")
        return self.get(job_id)

    def cancel(self, job_id: str, *, reason: str = "cancelled by request") -> dict[str, Any]:
        """Cancel a job not yet handed to eSMS; raises :class:`CancelRefused` otherwise."""
        result = self.store.transition(
            job_id,
            State.CANCELLED,
            allowed_from=CANCELLABLE_STATES,
            note=reason,
            require_unattempted=True,
        )
        if result.previous is None:
            raise JobNotFound(job_id)
        if not result.applied:
            raise CancelRefused(job_id, result.previous)
        return self.get(job_id)

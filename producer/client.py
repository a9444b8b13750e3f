"""The Python API: enqueue calls, look them up and cancel them, with only ``REDIS_URL``.

>>> from producer import VoiceCallClient
>>> client = VoiceCallClient.from_env()                       # doctest: +SKIP
>>> job = client.enqueue_otp("0901234567", "Ma cua ban la 123456")  # doctest: +SKIP
>>> client.get(job.id).state                                # doctest: +SKIP
<State.QUEUED: 'queued'>

Every method returns a :class:`~voicecall.records.JobView`, the same shape the HTTP API
answers with (``job.model_dump(mode="json")`` gives that JSON).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from producer.intake import Intake
from voicecall import lifecycle
from voicecall.errors import CancelRefused, JobNotFound
from voicecall.jobs import CallRequestAdapter, State, validation_context
from voicecall.records import JobView
from voicecall.settings import Settings, load_settings
from voicecall.store import JobStore

__all__ = ["CancelRefused", "JobNotFound", "JobView", "VoiceCallClient"]


class VoiceCallClient:
    """Enqueue and manage call jobs from Python.

    Invalid input raises ``pydantic.ValidationError`` naming each field and rule; nothing is
    stored then.
    """

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.intake = Intake(settings, store)

    @classmethod
    def from_env(cls, **overrides: Any) -> VoiceCallClient:
        """Build from the environment (only ``REDIS_URL`` is needed)."""
        settings = load_settings(**overrides).require("producer")
        return cls(settings, JobStore.from_settings(settings))

    def enqueue(self, request: Mapping[str, Any], *, trace_id: str | None = None) -> JobView:
        """Enqueue any kind from a dict as the HTTP API takes it; ``replay`` says if it existed.

        >>> client.enqueue({"kind": "voice_otp", "phone": "0901234567", "content": "123456"})  # doctest: +SKIP
        """
        call = CallRequestAdapter.validate_python(
            dict(request), context=validation_context(self.settings)
        )
        submitted = self.intake.submit(call, trace_id=trace_id)
        return JobView.of(submitted.job, history=False, replay=submitted.replay)

    def enqueue_otp(self, phone: str, content: str, **options: Any) -> JobView:
        """A Voice OTP call reading ``content`` out. Options: ttl_s, send_at, idempotency_key, ..."""
        return self.enqueue({"kind": "voice_otp", "phone": phone, "content": content, **options})

    def enqueue_record(self, phone: str, record_id: str, **options: Any) -> JobView:
        """A call playing recording ``record_id``. Options: max_retry, wait_retry, ivr, ..."""
        return self.enqueue(
            {"kind": "record_call", "phone": phone, "record_id": record_id, **options}
        )

    def enqueue_template(
        self, phone: str, template_id: str, variables: Sequence[str] = (), **options: Any
    ) -> JobView:
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

    def get(self, job_id: str) -> JobView:
        """The job with its history; raises :class:`JobNotFound`."""
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return JobView.of(job)

    def find(self, *, idempotency_key: str | None = None, smsid: str | None = None) -> JobView:
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

    def cancel(self, job_id: str, *, reason: str = "cancelled by request") -> JobView:
        """Cancel a job not yet handed to eSMS; raises :class:`CancelRefused` otherwise."""
        step = self.store.apply(lifecycle.cancel(job_id, note=reason))
        if step.verdict == "absent":
            raise JobNotFound(job_id)
        if step.verdict != "ended":
            raise CancelRefused(job_id, State(step.state))
        return self.get(job_id)

"""Dead letters: list, find, requeue and purge, shared by ``voicecall dlq`` (worker.dlq) and
the console (producer.console).

A dead letter is a job that gave up: a send whose retries were spent (``failed``, in
``vc:dead:voicecall-otp`` or ``vc:dead:voicecall-bulk``), or a webhook whose deliveries were
(``vc:dead:voicecall-webhooks``). Requeueing a send reopens its job (``failed → queued``, the
one operator action that leaves a final state) with a fresh retry budget. That is safe
because sending is idempotent: the job id is the eSMS RequestId, so a call that did reach
eSMS comes back as 124. eSMS forgets a RequestId after 24 hours, so a job first tried longer
ago than ``REQUEUE_MAX_AGE_S`` is refused. Requeueing a webhook delivers it again. Purging
takes a dead letter off the list; the job stays until its retention ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voicecall.config.settings import Settings
from voicecall.errors import ReopenRefused
from voicecall.formats.timefmt import from_epoch
from voicecall.job import keys, lifecycle, upkeep
from voicecall.job.records import JobRecord
from voicecall.job.steps import Op, Verdict
from voicecall.store.job_store import JobStore

REQUEUE_MAX_AGE_S = 23 * 3600
SEND_QUEUES = keys.SEND_QUEUES


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    job_id: str
    failed_at: float
    job: JobRecord | None

    def summary(self) -> dict[str, Any]:
        job = self.job
        return {
            "id": self.job_id,
            "queue": self.queue,
            "kind": job.kind.value if job else None,
            "state": job.state.value if job else None,
            "attempts": job.attempts if job else None,
            "error": job.error.model_dump() if job and job.error else None,
            "webhook": job.webhook.state if job and job.webhook else None,
            "failed_at": from_epoch(self.failed_at).isoformat(),
        }


class DeadLetters:
    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def list(self, queues: Sequence[str], limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        """Up to ``limit`` dead letters of ``queues``, oldest first, from ``offset`` in each."""
        found: list[DeadLetter] = []
        for queue in queues:
            rows = self.store.dead_letters(queue, limit, offset)
            jobs = self.store.get_many([job_id for job_id, _ in rows])
            found += [
                DeadLetter(queue, job_id, at, job)
                for (job_id, at), job in zip(rows, jobs, strict=True)
            ]
        return found[:limit]

    def find(self, job_id: str, queues: Sequence[str]) -> DeadLetter | None:
        for letter in self.list(queues, limit=100_000):
            if letter.job_id == job_id:
                return letter
        return None

    def _requeue_op(self, queue: str, job_id: str) -> Op:
        if queue == keys.QUEUE_WEBHOOKS:
            return upkeep.redeliver(job_id)
        return lifecycle.reopen(
            job_id,
            queue=queue,
            max_age_s=REQUEUE_MAX_AGE_S,
            redrive_s=self.settings.redrive_after_s,
            note="requeued from the dead letters by an operator",
        )

    def requeue_many(self, queue: str, job_ids: Sequence[str]) -> int:
        """Requeue these dead letters of ``queue`` in one round trip (each its own atomic
        step, refused as :meth:`requeue` refuses); how many were requeued."""
        steps = self.store.apply_many([self._requeue_op(queue, job_id) for job_id in job_ids])
        return sum(step.verdict in (Verdict.REOPENED, Verdict.REDELIVERING) for step in steps)

    def requeue(self, letter: DeadLetter) -> str:
        """Reopen a failed send, or deliver a webhook again; ReopenRefused when unsafe."""
        step = self.store.apply(self._requeue_op(letter.queue, letter.job_id))
        if letter.queue == keys.QUEUE_WEBHOOKS:
            if step.verdict is not Verdict.REDELIVERING:
                raise ReopenRefused(letter.job_id, "no longer exists (past its retention)")
            return f"requeued webhook of {letter.job_id}"
        reasons = {
            Verdict.ABSENT: "no longer exists (past its retention)",
            Verdict.NOT_FAILED: f"is {step.state}, not failed",
            Verdict.TOO_OLD: "was first tried over 23 h ago; eSMS may have forgotten its RequestId, "
            "so a requeue could call the person twice",
        }
        if step.verdict is not Verdict.REOPENED:
            raise ReopenRefused(letter.job_id, reasons.get(step.verdict, step.verdict))
        return f"requeued {letter.job_id} ({letter.queue})"

    def purge(self, letters: Sequence[DeadLetter]) -> int:
        steps = self.store.apply_many(
            [upkeep.dismiss(letter.job_id, queue=letter.queue) for letter in letters]
        )
        return sum(step.verdict is Verdict.DISMISSED for step in steps)

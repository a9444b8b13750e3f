"""Bulk actions, run in chunks: cancel many jobs, or requeue many dead letters, each job by
its own Lua step (lifecycle.cancel, lifecycle.reopen, upkeep.redeliver), ``CHUNK`` steps per
round trip. A step refuses what changed meanwhile: a job handed to eSMS since the action was
asked for is never cancelled, a dead letter requeued since is not requeued twice.

An action works on a snapshot: the job ids that matched when it started (a job scheduled
afterwards is not cancelled). Its record (``vc:bulk:{id}``, voicecall.store.bulk_ops) says how
far it got after each chunk: ``processed`` of ``total``, ``changed`` and ``skipped`` (refused
by its step: no longer in a state the action applies to). The API and the console run it on a
thread of their process (:func:`in_background`), the CLI in the foreground. A process that
stops mid-way leaves the record ``running`` with its last figures; asking again finishes it
(what was done is skipped).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from voicecall.config.settings import Settings
from voicecall.job import lifecycle
from voicecall.job.records import Time
from voicecall.job.steps import Verdict
from voicecall.store.connection import now_s
from voicecall.store.dead_letters import DeadLetters
from voicecall.store.job_store import JobStore
from voicecall.telemetry.logs import get_logger

CHUNK = 100  # steps per round trip
Action = Literal["cancel", "requeue"]
log = get_logger("voicecall.bulk")


class BulkOperation(BaseModel):
    """A bulk action and how far it got."""

    id: str = Field(description="The operation's id: GET /v1/bulk/{id} reads it.")
    action: Action = Field(description="cancel: scheduled calls; requeue: dead letters.")
    target: str = Field(description="What it applies to, as asked (filters, or a queue).")
    by: str = Field(description="Who asked: an API client's name, or console:<token id>.")
    state: Literal["running", "done", "failed"]
    total: int = Field(description="Jobs in the snapshot taken when it started.")
    processed: int = Field(description="Jobs whose step has run.")
    changed: int = Field(description="Cancelled, or requeued.")
    skipped: int = Field(description="Refused by their step: changed meanwhile.")
    started_at: Time
    finished_at: Time | None = None
    error: str | None = Field(default=None, description="Why it stopped, when it failed.")

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 1.0


def begin(store: JobStore, action: Action, target: str, by: str, total: int) -> BulkOperation:
    """Record a new operation (``running``) and return it."""
    op = BulkOperation(
        id=secrets.token_hex(8),
        action=action,
        target=target,
        by=by,
        state="running",
        total=total,
        processed=0,
        changed=0,
        skipped=0,
        started_at=datetime.fromtimestamp(now_s(), UTC),
    )
    _save(store, op)
    return op


def _save(store: JobStore, op: BulkOperation) -> None:
    fields = op.model_dump(mode="json", exclude_none=True)
    store.write_bulk_op(op.id, {k: str(v) for k, v in fields.items()})


def read(store: JobStore, op_id: str) -> BulkOperation | None:
    """The operation's record, or None (unknown id, or past its week)."""
    record = store.bulk_op(op_id) if 1 <= len(op_id) <= 64 and op_id.isalnum() else {}
    return BulkOperation.model_validate(record) if record else None


def run(
    store: JobStore, op: BulkOperation, step: Callable[[Sequence[str]], int], ids: Sequence[str]
) -> BulkOperation:
    """Work through ``ids`` ``CHUNK`` at a time; ``step`` runs one chunk and says how many it
    changed. The record follows after each chunk; the finished operation is returned."""
    try:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            changed = step(chunk)
            op = op.model_copy(
                update={
                    "processed": op.processed + len(chunk),
                    "changed": op.changed + changed,
                    "skipped": op.skipped + len(chunk) - changed,
                }
            )
            _save(store, op)
        op = op.model_copy(update={"state": "done"})
    except Exception as exc:  # the record says so; the caller's log line names it too
        op = op.model_copy(update={"state": "failed", "error": type(exc).__name__})
        log.warning("bulk_failed", op=op.id, error=type(exc).__name__)
    op = op.model_copy(update={"finished_at": datetime.fromtimestamp(now_s(), UTC)})
    _save(store, op)
    log.info("bulk_done", op=op.id, action=op.action, changed=op.changed, skipped=op.skipped)
    return op


def cancel_step(store: JobStore, reason: str) -> Callable[[Sequence[str]], int]:
    """One chunk of cancels: each job ``scheduled|queued → cancelled`` if never attempted."""

    def step(ids: Sequence[str]) -> int:
        steps = store.apply_many([lifecycle.cancel(job_id, note=reason) for job_id in ids])
        return sum(found.verdict is Verdict.ENDED for found in steps)

    return step


def requeue_step(store: JobStore, settings: Settings, queue: str) -> Callable[[Sequence[str]], int]:
    """One chunk of requeues of ``queue``'s dead letters (DeadLetters.requeue's rules)."""
    dead = DeadLetters(store, settings)
    return lambda ids: dead.requeue_many(queue, ids)


def dead_letter_ids(store: JobStore, queue: str) -> list[str]:
    """Every dead letter of ``queue``, oldest first (a snapshot)."""
    return [job_id for job_id, _ in store.dead_letters(queue, limit=2**31)]


def in_background(work: Callable[[], object]) -> None:
    """Run ``work`` on a thread of this process (a bulk action outlives its request)."""
    threading.Thread(target=work, name="voicecall-bulk", daemon=True).start()

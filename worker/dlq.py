"""``voicecall dlq list|show|requeue|purge``: the dead letters, for operators.

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

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voicecall import keys, lifecycle
from voicecall.errors import ReopenRefused
from voicecall.records import JobRecord, JobView
from voicecall.settings import Settings, get_settings
from voicecall.store import JobStore
from voicecall.timefmt import from_epoch

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

    def list(self, queues: Sequence[str], limit: int = 100) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for queue in queues:
            rows = self.store.dead_letters(queue, limit)
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

    def requeue(self, letter: DeadLetter) -> str:
        """Reopen a failed send, or deliver a webhook again; ReopenRefused when unsafe."""
        if letter.queue == keys.QUEUE_WEBHOOKS:
            step = self.store.apply(lifecycle.redeliver(letter.job_id))
            if step.verdict != "redelivering":
                raise ReopenRefused(letter.job_id, "no longer exists (past its retention)")
            return f"requeued webhook of {letter.job_id}"
        step = self.store.apply(
            lifecycle.reopen(
                letter.job_id,
                queue=letter.queue,
                max_age_s=REQUEUE_MAX_AGE_S,
                redrive_s=self.settings.redrive_after_s,
                note="requeued from the dead letters by an operator",
            )
        )
        reasons = {
            "absent": "no longer exists (past its retention)",
            "not_failed": f"is {step.state}, not failed",
            "too_old": "was first tried over 23 h ago; eSMS may have forgotten its RequestId, "
            "so a requeue could call the person twice",
        }
        if step.verdict != "reopened":
            raise ReopenRefused(letter.job_id, reasons.get(step.verdict, step.verdict))
        return f"requeued {letter.job_id} ({letter.queue})"

    def purge(self, letters: Sequence[DeadLetter]) -> int:
        steps = self.store.apply_many(
            [lifecycle.dismiss(letter.job_id, queue=letter.queue) for letter in letters]
        )
        return sum(step.verdict == "dismissed" for step in steps)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicecall dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--queue", "-Q", action="append", choices=keys.ALL_QUEUES, help="default: all queues"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="list dead letters (JSON lines)")
    listing.add_argument("--limit", type=int, default=100)
    show = sub.add_parser("show", help="one dead letter in full: its job with its history")
    show.add_argument("id", help="the job id")
    requeue = sub.add_parser("requeue", help="requeue dead letters by job id, or --all")
    requeue.add_argument("ids", nargs="*")
    requeue.add_argument("--all", action="store_true")
    purge = sub.add_parser("purge", help="take dead letters off the list by job id, or --all")
    purge.add_argument("ids", nargs="*")
    purge.add_argument("--all", action="store_true")
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings().require("producer")
    store = JobStore.from_settings(settings)
    dead = DeadLetters(store, settings)
    queues = args.queue or list(keys.ALL_QUEUES)
    if args.action == "list":
        for letter in dead.list(queues, args.limit):
            print(json.dumps(letter.summary()))
        return 0
    if args.action == "show":
        found = dead.find(args.id, queues)
        if found is None:
            print(f"voicecall dlq: no dead letter {args.id!r}", file=sys.stderr)
            return 1
        job = JobView.of(found.job).json_body() if found.job else None
        print(json.dumps({**found.summary(), "job": job}, indent=2, default=str))
        return 0
    if not args.ids and not args.all:
        print(f"voicecall dlq {args.action}: give job ids or --all", file=sys.stderr)
        return 2
    letters = (
        dead.list(queues, limit=100_000)
        if args.all
        else [hit for job_id in args.ids if (hit := dead.find(job_id, queues)) is not None]
    )
    missing = set(args.ids) - {letter.job_id for letter in letters}
    for job_id in sorted(missing):
        print(f"voicecall dlq: no dead letter {job_id!r}", file=sys.stderr)
    if args.action == "purge":
        print(f"purged {dead.purge(letters)} dead letters")
        return 1 if missing else 0
    failed = bool(missing)
    for letter in letters:
        try:
            print(dead.requeue(letter))
        except ReopenRefused as exc:
            print(f"voicecall dlq: not requeued {letter.job_id}: {exc.reason}", file=sys.stderr)
            failed = True
    return 1 if failed else 0

"""``voicecall dlq list|show|requeue|purge``: the dead letters, for operators.

What a dead letter is, and what requeueing and purging do: :mod:`voicecall.store.dead_letters`
(the console uses the same logic).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from voicecall.config.settings import get_settings
from voicecall.errors import ReopenRefused
from voicecall.job import keys
from voicecall.job.records import JobView
from voicecall.store.dead_letters import REQUEUE_MAX_AGE_S, SEND_QUEUES, DeadLetter, DeadLetters
from voicecall.store.job_store import JobStore

__all__ = ["REQUEUE_MAX_AGE_S", "SEND_QUEUES", "DeadLetter", "DeadLetters", "main"]


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

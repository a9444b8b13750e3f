"""``voicecall dlq list|show|requeue|purge``: Dramatiq's dead-letter queues, for operators.

Dead letters live in ``dramatiq:{queue}.XQ`` (a sorted set of message ids by time) and
``dramatiq:{queue}.XQ.msgs`` (the messages). Requeueing a send message reopens its ``failed``
job (the one operator action that leaves a final state) and enqueues the message afresh with
its retries reset. That is safe because sending is idempotent: the job id is the eSMS
RequestId, so a call that did reach eSMS comes back as 124. eSMS forgets a RequestId after
24 hours, so a job first tried longer ago than ``REQUEUE_MAX_AGE_S`` is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import dramatiq

from voicecall import keys
from voicecall.broker import make_broker
from voicecall.exporter import mark_producer_broker
from voicecall.jobs import State
from voicecall.settings import get_settings
from voicecall.store import JobStore, now_s

REQUEUE_MAX_AGE_S = 23 * 3600
SEND_ACTORS = {keys.ACTOR_SEND_OTP, keys.ACTOR_SEND_BULK}


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    redis_id: str
    failed_at_ms: int
    message: dramatiq.Message[Any]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.redis_id,
            "queue": self.queue,
            "actor": self.message.actor_name,
            "job_id": self.message.args[0] if self.message.args else None,
            "retries": self.message.options.get("retries", 0),
            "failed_at_ms": self.failed_at_ms,
        }


class DeadLetters:
    def __init__(self, store: JobStore, broker: dramatiq.Broker) -> None:
        self.store = store
        self.broker = broker
        self.redis = store.redis

    @staticmethod
    def _keys(queue: str) -> tuple[str, str]:
        zset = f"{keys.DRAMATIQ_NAMESPACE}:{queue}.XQ"
        return zset, zset + ".msgs"

    def list(self, queues: Sequence[str], limit: int = 100) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for queue in queues:
            zset, messages = self._keys(queue)
            entries = cast(
                list[tuple[str, float]], self.redis.zrange(zset, 0, limit - 1, withscores=True)
            )
            if not entries:
                continue
            bodies = cast(list[str | None], self.redis.hmget(messages, [rid for rid, _ in entries]))
            for (rid, score), body in zip(entries, bodies, strict=True):
                if body is not None:
                    found.append(
                        DeadLetter(queue, rid, int(score), dramatiq.Message.decode(body.encode()))
                    )
        return found[:limit]

    def find(self, redis_id: str, queues: Sequence[str]) -> DeadLetter | None:
        for queue in queues:
            _, messages = self._keys(queue)
            body = cast(str | None, self.redis.hget(messages, redis_id))
            if body is not None:
                score = self.redis.zscore(self._keys(queue)[0], redis_id) or 0
                return DeadLetter(
                    queue, redis_id, int(score), dramatiq.Message.decode(body.encode())
                )
        return None

    def requeue(self, letter: DeadLetter) -> str:
        """Put the message back on its queue; returns what was done, or raises ValueError."""
        message = letter.message
        job_id = str(message.args[0]) if message.args else ""
        if message.actor_name in SEND_ACTORS:
            job = self.store.get(job_id)
            if job is None:
                raise ValueError(f"job {job_id} no longer exists (past its retention)")
            if job.first_attempt_at and now_s() - job.first_attempt_at > REQUEUE_MAX_AGE_S:
                raise ValueError(
                    f"job {job_id} was first tried over 23 h ago; eSMS may have forgotten its "
                    "RequestId, so a requeue could call the person twice"
                )
            if job.state is State.FAILED:
                self.store.transition(
                    job_id,
                    State.QUEUED,
                    allowed_from=(State.FAILED,),
                    note="requeued from the dead-letter queue by an operator",
                    fields={"reason": "", "attempts": 0, "window_started_at": ""},
                    inflight=str(now_s() + 60),
                )
        fresh: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=letter.queue,
            actor_name=message.actor_name,
            args=message.args,
            kwargs=message.kwargs,
            options={k: v for k, v in message.options.items() if k == "trace_id"},
        )
        self.broker.enqueue(fresh)
        self._delete(letter)
        return f"requeued {letter.redis_id} ({message.actor_name} {job_id})"

    def purge(self, letters: Sequence[DeadLetter]) -> int:
        for letter in letters:
            self._delete(letter)
        return len(letters)

    def _delete(self, letter: DeadLetter) -> None:
        zset, messages = self._keys(letter.queue)
        pipe = self.redis.pipeline()
        pipe.zrem(zset, letter.redis_id)
        pipe.hdel(messages, letter.redis_id)
        pipe.execute()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicecall dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--queue", "-Q", action="append", choices=keys.ALL_QUEUES, help="default: all queues"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="list dead letters (JSON lines)")
    listing.add_argument("--limit", type=int, default=100)
    show = sub.add_parser("show", help="one dead letter in full, with its traceback")
    show.add_argument("id")
    requeue = sub.add_parser("requeue", help="requeue dead letters by id, or --all")
    requeue.add_argument("ids", nargs="*")
    requeue.add_argument("--all", action="store_true")
    purge = sub.add_parser("purge", help="delete dead letters by id, or --all")
    purge.add_argument("ids", nargs="*")
    purge.add_argument("--all", action="store_true")
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings().require("producer")
    store = JobStore.from_url(settings.redis_url, retention_days=settings.finished_retention_days)
    dead = DeadLetters(store, mark_producer_broker(make_broker(settings)))  # not a worker
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
        detail = {**found.summary(), "message": found.message.asdict()}
        print(json.dumps(detail, indent=2, default=str))
        return 0
    if not args.ids and not args.all:
        print(f"voicecall dlq {args.action}: give message ids or --all", file=sys.stderr)
        return 2
    letters = (
        dead.list(queues, limit=100_000)
        if args.all
        else [hit for rid in args.ids if (hit := dead.find(rid, queues)) is not None]
    )
    missing = set(args.ids) - {letter.redis_id for letter in letters}
    for rid in sorted(missing):
        print(f"voicecall dlq: no dead letter {rid!r}", file=sys.stderr)
    if args.action == "purge":
        print(f"purged {dead.purge(letters)} dead letters")
        return 1 if missing else 0
    failed = bool(missing)
    for letter in letters:
        try:
            print(dead.requeue(letter))
        except ValueError as exc:
            print(f"voicecall dlq: not requeued {letter.redis_id}: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0

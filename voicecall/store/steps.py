"""Running job steps: each operation of voicecall.job.lifecycle is one Lua script call,
atomic; the asyncio store also runs the worker's busiest step for several jobs in one round
trip (:meth:`AsyncSteps.apply_together`). The store's one way to change a job."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from redis.commands.core import AsyncScript, Script

from voicecall.config.settings import Settings
from voicecall.job import keys
from voicecall.job.steps import Op, Step
from voicecall.store.connection import now_s
from voicecall.store.failover import ReplicationTimeout
from voicecall.telemetry import tracing
from voicecall.telemetry.metrics import REDIS_WAIT_TIMEOUTS

DAY_S = 86400
# How long intake waits for REDIS_WAIT_REPLICAS replicas to have a new job (WAIT): on
# loopback or in one zone they answer in a millisecond; longer means a replica is gone.
WAIT_TIMEOUT_MS = 1000
# A channel no one listens to: PUBLISH to it is replicated, so WAIT after it covers every
# write this connection saw, also the one a replayed idempotency key found.
_WAIT_MARK = "vc:replicated"
MAX_BATCH = 64  # steps in one script of apply_together: a batch holds Redis ~1-2 ms at most


@dataclass(frozen=True)
class StoreConfig:
    """Durations every operation may need (from settings)."""

    retention_s: int = 30 * DAY_S
    webhook_redrive_s: float = 60.0
    # The longest a job lives after its due time: the retry window (at most 24 h), the poll
    # deadline and a day of margin. An idempotency key outlives its job by at most this.
    after_due_s: int = 2 * DAY_S

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreConfig:
        return cls(
            retention_s=settings.finished_retention_days * DAY_S,
            webhook_redrive_s=settings.redrive_after_s,
            after_due_s=int(
                max(settings.send_retry_window_s, DAY_S) + settings.poll_deadline_s + DAY_S
            ),
        )

    def common(self) -> dict[str, Any]:
        return {
            "token": secrets.token_hex(8),
            "retention_s": self.retention_s,
            "webhook_redrive_s": self.webhook_redrive_s,
            "after_due_s": self.after_due_s,
        }


def _args(op: Op, config: StoreConfig, now: float) -> list[str]:
    params = {**config.common(), **op.params, "slots": [*op.slots]}
    if op.activity:
        params["slots"].append("activity")  # the minute's hash is declared last (see _keys)
    args = [repr(round(now, 3)), json.dumps(params)]
    if op.document is not None:
        args.append(op.document)
    return args


def _keys(op: Op, now: float) -> list[str]:
    """The op's keys, with the minute's activity hash (of ``now``, the step's own time) last
    when the step may send or end a job: its own key ``activity`` (lib.lua count_activity)."""
    if op.activity:
        return [*op.keys, keys.activity(now)]
    return list(op.keys)


def _replicated(step: Step, acked: int, replicas: int) -> Step:
    if acked < replicas:
        REDIS_WAIT_TIMEOUTS.inc()
        raise ReplicationTimeout(f"the step reached {acked} of {replicas} replicas in time")
    return step


class Steps:
    """:meth:`apply` and :meth:`apply_many` for the blocking store."""

    _redis: redis.Redis
    config: StoreConfig
    _scripts: dict[str, Script]

    def apply(self, op: Op, *, now: float | None = None) -> Step:
        """Run one operation of :mod:`voicecall.job.lifecycle` (atomic)."""
        at = now_s() if now is None else now
        reply = self._scripts[op.script](
            keys=_keys(op, at), args=_args(op, self.config, at), client=self._redis
        )
        return _traced(op, Step.of(reply))

    def apply_replicated(self, op: Op, *, replicas: int, now: float | None = None) -> Step:
        """:meth:`apply`, answered only once the step's change, or the job it found, is on
        ``replicas`` replicas (WAIT); :class:`ReplicationTimeout` otherwise."""
        if replicas <= 0:
            return self.apply(op, now=now)
        at = now_s() if now is None else now
        pipe = self._redis.pipeline(transaction=False)
        self._scripts[op.script](keys=_keys(op, at), args=_args(op, self.config, at), client=pipe)
        pipe.publish(_WAIT_MARK, "")
        pipe.wait(replicas, WAIT_TIMEOUT_MS)
        reply, _, acked = pipe.execute()
        return _replicated(Step.of(reply), int(acked), replicas)

    def apply_many(self, ops: Sequence[Op], *, now: float | None = None) -> list[Step]:
        """Several operations in one round trip; each is atomic on its own."""
        if not ops:
            return []
        pipe = self._redis.pipeline(transaction=False)
        at = now_s() if now is None else now
        for op in ops:
            self._scripts[op.script](
                keys=_keys(op, at), args=_args(op, self.config, at), client=pipe
            )
        return [_traced(op, Step.of(reply)) for op, reply in zip(ops, pipe.execute(), strict=True)]


class AsyncSteps:
    """:meth:`apply` and :meth:`apply_together` for the asyncio store."""

    _redis: redis.asyncio.Redis
    config: StoreConfig
    _scripts: dict[str, AsyncScript]
    _batch_scripts: dict[str, AsyncScript]
    _waiting: dict[str, list[tuple[Op, asyncio.Future[Step]]]]
    _flushes: dict[str, asyncio.Task[None]]

    async def apply(self, op: Op, *, now: float | None = None) -> Step:
        return _traced(op, await self._run(op, now_s() if now is None else now))

    async def _run(self, op: Op, at: float) -> Step:
        reply = await self._scripts[op.script](
            keys=_keys(op, at), args=_args(op, self.config, at), client=self._redis
        )
        return Step.of(reply)

    async def apply_replicated(self, op: Op, *, replicas: int, now: float | None = None) -> Step:
        """:meth:`Steps.apply_replicated`, awaited."""
        if replicas <= 0:
            return await self.apply(op, now=now)
        at = now_s() if now is None else now
        pipe = self._redis.pipeline(transaction=False)
        script = self._scripts[op.script]
        await script(keys=_keys(op, at), args=_args(op, self.config, at), client=pipe)
        pipe.publish(_WAIT_MARK, "")
        pipe.wait(replicas, WAIT_TIMEOUT_MS)
        reply, _, acked = await pipe.execute()
        return _replicated(Step.of(reply), int(acked), replicas)

    async def apply_together(self, op: Op) -> Step:
        """:meth:`apply`, sharing one round trip with the steps of the same operation that are
        awaited meanwhile on this loop: the first goes at once, those that come while it is in
        flight go together next, in one script (scripts.batch_source). Each step is still
        atomic on its own. For the worker's busiest step (``scripts.BATCHABLE``)."""
        future: asyncio.Future[Step] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(op.script, []).append((op, future))
        if op.script not in self._flushes:
            self._flushes[op.script] = asyncio.create_task(self._flush(op.script))
        return _traced(op, await future)  # in the caller's span, not the flushing task's

    async def _flush(self, script: str) -> None:
        try:
            while waiting := self._waiting.get(script):
                batch, self._waiting[script] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                try:
                    steps = await self._apply_batch(script, [op for op, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise  # cancelled: the loop is closing
                    continue
                for (_, future), step in zip(batch, steps, strict=True):
                    if not future.done():  # its caller may have been cancelled
                        future.set_result(step)
        finally:
            del self._flushes[script]

    async def _apply_batch(self, script: str, ops: Sequence[Op]) -> list[Step]:
        at = now_s()
        if len(ops) == 1:
            return [await self._run(ops[0], at)]
        declared: list[str] = []
        args: list[Any] = []
        for op in ops:
            op_keys, op_args = _keys(op, at), _args(op, self.config, at)
            declared += op_keys
            args += [len(op_keys), len(op_args), *op_args]
        replies = await self._batch_scripts[script](keys=declared, args=args, client=self._redis)
        return [Step.of(reply) for reply in replies]


def _traced(op: Op, step: Step) -> Step:
    """Each lifecycle step is an event of the current span (tracing on): its name and verdict."""
    tracing.add_event(
        "voicecall.step",
        {
            "db.system.name": "redis",
            "db.operation.name": "EVALSHA",
            "voicecall.step.name": op.script,
            "voicecall.step.verdict": str(step.verdict),
        },
    )
    return step

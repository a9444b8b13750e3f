"""A job step as the store runs it and answers it: :class:`Op`, one operation ready to run
(its Lua script, the keys it declares, its parameters), and :class:`Step`, what it did.

Every operation of voicecall.job.lifecycle is built here (:func:`job_op`), so every one
declares the keys all job steps share in the same places; the store runs an Op
(voicecall.store) and reads its reply into a Step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicecall.job import keys
from voicecall.job.records import JobRecord


@dataclass(frozen=True)
class Op:
    """One operation, ready to run: script name, declared keys, parameters."""

    script: str
    keys: tuple[str, ...]
    params: Mapping[str, Any]
    document: str | None = None  # ARGV[3]: a whole job (create only)
    # The step may send or end a job: the store names the minute's activity hash (from the
    # step's time) just before the message keys (producer.console.activity).
    activity: bool = False


@dataclass(frozen=True)
class Step:
    """What an operation did: its verdict, the job's state after it, a detail (the job as
    JSON when the step changed it, else a reason or nothing), and ``extra``: what a step that
    settles held callback reports counted (``{"smsid_mismatch": 1}``), else empty."""

    verdict: str
    state: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def job(self) -> JobRecord | None:
        return JobRecord.parse(self.detail) if self.detail.startswith("{") else None

    @classmethod
    def of(cls, reply: Sequence[Any]) -> Step:
        verdict, state, detail = (x.decode() if isinstance(x, bytes) else str(x) for x in reply[:3])
        extra = json.loads(reply[3]) if len(reply) > 3 else {}
        return cls(verdict, state, detail, extra if isinstance(extra, dict) else {})


def job_op(script: str, job_id: str, own_keys: Iterable[str], **params: Any) -> Op:
    """An operation on job ``job_id``: the keys every job step declares, then ``own_keys``,
    then the Dramatiq message keys; parameters that are None are left out."""
    declared = (
        keys.job(job_id),
        keys.STATE_INDEX,
        keys.DUE,
        keys.WEBHOOKS_DUE,
        keys.SCHEDULE,
        keys.CAMPAIGN_STATS,
        *own_keys,
        *keys.message_keys(),
    )
    clean = {k: v for k, v in params.items() if v is not None}
    return Op(script, declared, {"id": job_id, **clean})


def counted_op(script: str, job_id: str, own_keys: Iterable[str], **params: Any) -> Op:
    """An operation that may send or end the job, so counts it in the minute's activity."""
    op = job_op(script, job_id, own_keys, **params)
    return Op(op.script, op.keys, op.params, op.document, activity=True)

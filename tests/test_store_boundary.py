"""Only the job store changes a job, and its scripts touch only the keys they declare.

- No module outside voicecall/store/ may import redis (ruff's banned-api rule, TID251, in
  pyproject.toml), nor reach into a store's client: checked here over the package sources.
- No Lua script builds a key name: no key prefix appears in any script.
- Every key a script touches is one of its ``KEYS``: checked for real, by running every
  operation of voicecall.job.lifecycle through a whole life under Redis ``MONITOR`` and comparing
  each command a script ran with the keys its EVALSHA declared.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import steps
from tests.fixtures.redis_monitor import Monitor
from voicecall.config.settings import load_settings
from voicecall.job import keys, lifecycle, upkeep
from voicecall.job.contract import CallRequestAdapter, params_of, validation_context
from voicecall.job.records import HistoryEntry, JobRecord
from voicecall.job.states import Kind, Outcome, ScheduleMode, State
from voicecall.store.job_store import JobStore

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("voicecall", "producer", "worker", "simulator")
STORE = ROOT / "voicecall" / "store"
# Redis commands the scripts use, and where their keys are (all: first argument only).
KEYED_COMMANDS = {
    "GET", "SET", "DEL", "EXPIRE", "ZADD", "ZREM", "ZSCORE", "ZCARD", "ZRANGE",
    "ZREMRANGEBYSCORE", "HSET", "HEXISTS", "RPUSH", "LLEN", "SMEMBERS",
}  # fmt: skip


def _sources() -> Iterator[Path]:
    for package in PACKAGES:
        yield from (ROOT / package).rglob("*.py")


def test_only_the_store_reaches_its_redis_client() -> None:
    """No package module outside voicecall/store/ uses a store's client (``._redis``)."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources()
        if not path.is_relative_to(STORE) and "._redis" in path.read_text()
    ]
    assert offenders == []


def test_only_the_store_imports_redis() -> None:
    """The banned-api rule has no exception in the packages but the store itself."""
    importing = [
        path
        for path in _sources()
        if re.search(r"^\s*(import redis|from redis)", path.read_text(), re.MULTILINE)
    ]
    assert importing, "the store imports redis"
    assert [str(p.relative_to(ROOT)) for p in importing if not p.is_relative_to(STORE)] == []


def test_no_script_builds_a_key_name() -> None:
    """No Lua script holds a key prefix: every key comes in through KEYS."""
    scripts = sorted((STORE / "lua").glob("*.lua"))
    assert len(scripts) > 10  # the scripts are where this test looks
    for script in scripts:
        text = script.read_text()
        assert "vc:" not in text and "dramatiq:" not in text, script.name


def _job(job_id: str, kind: str = "record_call") -> JobRecord:
    examples = {
        "record_call": {"kind": "record_call", "phone": "0901234568", "record_id": "r1"},
        "voice_otp": {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 1"},
    }
    request = CallRequestAdapter.validate_python(
        {**examples[kind], "idempotency_key": f"k-{job_id}", "webhook_url": "https://e.com/h"},
        context=validation_context(load_settings()),
    )
    now = round(time.time(), 3)
    return JobRecord(
        id=job_id,
        kind=Kind(kind),
        phone=request.phone,
        state=State.QUEUED,
        schedule=ScheduleMode.WORKER,
        request=params_of(request),
        idempotency_key=request.idempotency_key,
        client="python",
        webhook_url=request.webhook_url,
        limit_key=keys.phone_limit(request.phone),
        msg=f"m-{job_id}",
        callback_nonce="n",
        created_at=now,
        updated_at=now,
        due_at=now,
        history=[HistoryEntry(state=State.QUEUED, at=now)],
    )


def _every_operation(store: JobStore) -> None:
    """Each operation of voicecall.job.lifecycle at least once, on real jobs."""
    for job_id in ("a", "b", "c", "d"):
        job = _job(job_id)
        if job_id in ("a", "c"):  # in a campaign: its counters and index move too
            cid, seq = store.reserve_campaign("spring")
            job = job.model_copy(update={"labels": {"campaign": "spring"}, "cid": cid, "seq": seq})
        assert store.apply(lifecycle.create(job, grace_s=1)).verdict == "created"
    rules = steps.RULES
    rules_on = lifecycle.ClaimRules(**{**vars(rules), "global_rate": 5, "phone_limit": 3})
    limit = keys.phone_limit("84901234568")
    store.beat(rules.owner)
    claim = lifecycle.claim(
        "a", rules=rules_on, queue=keys.QUEUE_BULK, limit_key=limit, quiet_until=0
    )
    assert store.apply(claim).verdict == "claimed"
    poll_at = time.time() + 60
    assert (
        store.apply(
            lifecycle.submit("a", smsid="s-a", code=100, poll_at=poll_at, note="ok")
        ).verdict
        == "submitted"
    )
    store.apply(upkeep.poll_pending("a", next_at=poll_at))
    confirming = lifecycle.confirm(
        "a", outcome=Outcome.ANSWERED, smsid="s-a", nonce="n", redrive_s=1
    )
    assert store.apply(confirming).verdict == "confirming"
    completed = lifecycle.complete(
        "a",
        outcome=Outcome.ANSWERED,
        call={"status": "ANSWERED"},
        source="callback",
        smsid="s-a",
        nonce="n",
    )
    assert store.apply(completed).verdict == "accepted"
    delivery = {"at": time.time(), "status": None, "error": "timeout"}
    store.apply(upkeep.record_delivery("a", delivery=delivery, result="gave_up"))
    store.apply(upkeep.redeliver("a"))
    store.apply(upkeep.webhook_due("a"))
    steps.claim(store, "b")
    store.apply(upkeep.renew_lease("b", owner=steps.RULES.owner, attempt=1, lease_s=60))
    store.apply(lifecycle.unclaim("b", owner=steps.RULES.owner, attempt=1, note="n"))
    steps.claim(store, "b")
    store.apply(
        lifecycle.retry_later(
            "b", error={"code": "x", "message": "m"}, next_at=time.time(), note="n"
        )
    )
    store.apply(upkeep.redrive("b", liveness_ms=3000, lease_check_s=1, redrive_s=1))
    steps.claim(store, "b")
    store.apply(
        lifecycle.fail("b", queue=keys.QUEUE_BULK, error={"code": "x", "message": "m"}, note="n")
    )
    store.apply(lifecycle.reopen("b", queue=keys.QUEUE_BULK, max_age_s=3600, redrive_s=1, note="n"))
    store.apply(upkeep.postpone("b", at=time.time()))
    store.apply(upkeep.redrive("b", liveness_ms=3000, lease_check_s=1, redrive_s=1))
    store.apply(lifecycle.cancel("c", note="n"))
    steps.claim(store, "d")
    store.apply(lifecycle.reject("d", error={"code": "104", "message": "m"}, note="n"))
    store.apply(lifecycle.expire("d", reason="r", note="n"))
    store.apply(upkeep.dismiss("b", queue=keys.QUEUE_BULK))
    store.apply(lifecycle.release("c", grace_s=1))
    store.apply(upkeep.purge(store.get("c"), "c"), now=time.time() + 10**9)


def _declared_and_touched(events: list[tuple[str, list[str]]]) -> list[tuple[set[str], str, str]]:
    """(keys declared by the EVALSHA, command, key) for every keyed command run by a script."""
    out: list[tuple[set[str], str, str]] = []
    declared: set[str] = set()
    for source, words in events:
        if not words:
            continue
        name = words[0].upper()
        if source != "lua":
            if name == "EVALSHA":
                count = int(words[2])
                declared = set(words[3 : 3 + count])
            continue
        if name in KEYED_COMMANDS and len(words) > 1:
            out.append((declared, name, words[1]))
    return out


@pytest.mark.parametrize("kind", ["record_call"])
def test_every_key_a_script_touches_is_declared(redis_url: str, kind: str) -> None:
    """Under MONITOR: each command a lifecycle script runs names a key its EVALSHA declared."""
    store = JobStore.from_url(redis_url)
    with Monitor(redis_url) as monitor:
        _every_operation(store)
        time.sleep(0.3)
    touched = _declared_and_touched(monitor.events)
    assert len(touched) > 50  # the life above ran through the scripts
    undeclared = [(name, key) for declared, name, key in touched if key not in declared]
    assert undeclared == []
    store.close()

"""Every Lua script names its key slots once, at its top, and the Python side passes keys by
those names.

- A job step (lib.lua, then its script): lib.lua's ``K`` names the keys every step declares
  first (voicecall.job.steps.COMMON_KEYS, same order), then come the queues' message keys,
  then the step's own keys, which the script names in ``own_keys(needs, may)``. Every
  operation voicecall.job.lifecycle and voicecall.job.upkeep build passes only declared
  slots, always those it needs, and each declared slot is passed by some operation. No key
  is passed twice: an absent key is left out, never stood in for by another (a placeholder).
- A plain script's ``local K = {name = KEYS[n], ...}`` names what its Python builder passes,
  in order.
- No script reads a ``KEYS[...]`` but to name a slot.
- On a real Redis, a step given a slot its script does not declare, or missing one it needs,
  is refused before it writes anything.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType

import pytest
import redis

from voicecall.job import keys, lifecycle, upkeep
from voicecall.job.records import HistoryEntry, JobRecord
from voicecall.job.states import Kind, Outcome, ScheduleMode, State
from voicecall.job.steps import COMMON_KEYS, Op
from voicecall.store import scripts
from voicecall.store.campaigns import reserve_keys
from voicecall.store.job_store import JobStore
from voicecall.store.quotas import quota_keys
from voicecall.store.steps import StoreConfig, _args, _keys
from voicecall.store.workers import recover_keys
from worker.broker import fetch_keys

LUA = scripts.LUA_DIR
OWN_KEYS = re.compile(r"own_keys\(\{([^}]*)\},\s*\{([^}]*)\}\)")
NAMED_SLOT = re.compile(r"(\w+) = KEYS\[([^\]]+)\]")
QUEUES = len(keys.ALL_QUEUES)

# Each plain script (no lib.lua) and the Python side's slots for it, (name, key) in order.
PLAIN: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "quota": lambda: list(quota_keys("vc:quota:c").items()),
    "reserve_campaign": lambda: list(reserve_keys().items()),
    "recover_worker": lambda: recover_keys("w1"),
    "dramatiq_fetch": lambda: list(fetch_keys("w1", keys.QUEUE_BULK).items()),
}


def _job(*, idempotent: bool, campaign: bool, smsid: str | None = None) -> JobRecord:
    now = round(time.time(), 3)
    return JobRecord(
        id="j1",
        kind=Kind.RECORD_CALL,
        phone="84901234567",
        state=State.QUEUED,
        schedule=ScheduleMode.WORKER,
        request={"kind": "record_call", "record_id": "r1"},
        idempotency_key="k1" if idempotent else None,
        client="python",
        limit_key=keys.phone_limit("84901234567"),
        msg="m1",
        callback_nonce="n",
        created_at=now,
        updated_at=now,
        due_at=now,
        cid=1 if campaign else None,
        seq=7 if campaign else None,
        smsid=smsid,
        history=[HistoryEntry(state=State.QUEUED, at=now)],
    )


def _every_op() -> dict[str, list[Op]]:
    """Each operation builder of lifecycle and upkeep, with every optional key both passed
    and left out, by builder name."""
    rules = lifecycle.ClaimRules(
        owner="w1", lease_s=60, lease_check_s=60, liveness_ms=3000, early_s=0.05, grace_s=30,
        max_retries=8, retry_window_s=21600, max_window_s=85800, global_rate=5,
        phone_limit=0, phone_window_s=600,
    )  # fmt: skip
    limited = replace(rules, phone_limit=3)
    error = {"code": "x", "message": "m"}
    full, bare = (
        _job(idempotent=True, campaign=True, smsid="S1"),
        _job(idempotent=False, campaign=False),
    )
    return {
        "create": [lifecycle.create(full, grace_s=30), lifecycle.create(bare, grace_s=30)],
        "claim": [
            lifecycle.claim(
                "j1", rules=rules, queue=keys.QUEUE_BULK, limit_key=None, quiet_until=0
            ),
            lifecycle.claim(
                "j1",
                rules=limited,
                queue=keys.QUEUE_OTP,
                limit_key=full.limit_key,
                quiet_until=0,
                message_id="m1",
            ),
        ],
        "submit": [
            lifecycle.submit("j1", smsid=smsid, code=100, poll_at=1.0, note="n")
            for smsid in ("S1", None)
        ],
        "retry_later": [lifecycle.retry_later("j1", error=error, next_at=1.0, note="n")],
        "unclaim": [lifecycle.unclaim("j1", owner="w1", attempt=1, note="n")],
        "reject": [lifecycle.reject("j1", error=error, note="n")],
        "fail": [lifecycle.fail("j1", queue=keys.QUEUE_BULK, error=error, note="n")],
        "expire": [lifecycle.expire("j1", reason="r", note="n")],
        "cancel": [lifecycle.cancel("j1", note="n")],
        "complete": [
            lifecycle.complete("j1", outcome=Outcome.ANSWERED, call={}, source="poll", smsid=s)
            for s in ("S1", None)
        ],
        "confirm": [
            lifecycle.confirm("j1", outcome=Outcome.ANSWERED, smsid=s, nonce="n", redrive_s=1)
            for s in ("S1", None)
        ],
        "reopen": [
            lifecycle.reopen("j1", queue=keys.QUEUE_BULK, max_age_s=1, redrive_s=1, note="n")
        ],
        "release": [lifecycle.release("j1", grace_s=30)],
        "poll_pending": [upkeep.poll_pending("j1", next_at=1.0)],
        "postpone": [upkeep.postpone("j1", at=1.0)],
        "renew_lease": [upkeep.renew_lease("j1", owner="w1", attempt=1, lease_s=60)],
        "redrive": [upkeep.redrive("j1", liveness_ms=3000, lease_check_s=1, redrive_s=1)],
        "record_delivery": [upkeep.record_delivery("j1", delivery={}, result="delivered")],
        "dismiss": [upkeep.dismiss("j1", queue=keys.QUEUE_OTP)],
        "redeliver": [upkeep.redeliver("j1")],
        "webhook_due": [upkeep.webhook_due("j1")],
        "purge": [upkeep.purge(full, "j1"), upkeep.purge(bare, "j1"), upkeep.purge(None, "j1")],
    }


def _builders(module: ModuleType) -> set[str]:
    return {
        name
        for name, f in inspect.getmembers(module, inspect.isfunction)
        if f.__module__ == module.__name__ and not name.startswith("_")
        and f.__annotations__.get("return") == "Op"
    }  # fmt: skip


def _declared(script: str) -> tuple[list[str], list[str]]:
    """(needs, may) of a job step's ``own_keys`` call, the first statement of its script."""
    calls = OWN_KEYS.findall((LUA / f"{script}.lua").read_text())
    assert len(calls) == 1, f"{script}.lua names its own keys once"
    needs, may = ([n.strip().strip("'") for n in part.split(",") if n.strip()] for part in calls[0])
    return needs, may


def _sent(op: Op) -> tuple[list[str], list[str]]:
    """(keys, own slot names) as the store sends them."""
    return _keys(op, 0.0), json.loads(_args(op, StoreConfig(), 0.0)[1])["slots"]


def test_every_builder_is_checked_here() -> None:
    """The operations below are all that lifecycle and upkeep build."""
    assert set(_every_op()) == _builders(lifecycle) | _builders(upkeep)


def test_lib_names_the_common_keys_as_steps_passes_them() -> None:
    """lib.lua's ``K`` names KEYS[1..6] as COMMON_KEYS, and every op passes its keys there,
    then the queues' list and bodies (lib.lua QUEUE_KEYS) in ALL_QUEUES order."""
    header = (LUA / "lib.lua").read_text().split("local K = {", 1)[1].split("}", 1)[0]
    named = [(name, int(slot)) for name, slot in NAMED_SLOT.findall(header)]
    assert named == [(name, i) for i, name in enumerate(COMMON_KEYS, start=1)]
    op = upkeep.webhook_due("j1")
    assert op.keys[: len(COMMON_KEYS)] == (
        keys.job("j1"), keys.STATE_INDEX, keys.DUE, keys.WEBHOOKS_DUE, keys.SCHEDULE,
        keys.CAMPAIGN_STATS,
    )  # fmt: skip
    messages = op.keys[len(COMMON_KEYS) : len(COMMON_KEYS) + 2 * QUEUES]
    assert list(messages) == keys.message_keys()
    assert list(messages[0::2]) == [keys.dramatiq_queue(q) for q in keys.ALL_QUEUES]


def test_every_step_passes_the_slots_its_script_declares() -> None:
    """Each op names only declared slots, always those its script needs, one key per slot;
    every declared slot is passed by some op; no key is passed twice (no placeholder)."""
    passed: dict[str, set[str]] = {}
    for name, ops in _every_op().items():
        for op in ops:
            assert op.script in scripts.SCRIPTS, name
            needs, may = _declared(op.script)
            assert not set(needs + may) & set(COMMON_KEYS), op.script
            sent_keys, slots = _sent(op)
            assert set(needs) <= set(slots) <= set(needs + may), (name, slots)
            assert len(sent_keys) == len(COMMON_KEYS) + 2 * QUEUES + len(slots), name
            assert len(set(sent_keys)) == len(sent_keys), (name, sent_keys)
            assert ("activity" in slots) == op.activity, name
            passed.setdefault(op.script, set()).update(slots)
    assert set(passed) == set(scripts.SCRIPTS)
    for script, slots in passed.items():
        needs, may = _declared(script)
        assert slots == set(needs + may), f"{script}.lua declares a slot no op passes"


def test_own_slots_carry_the_right_keys() -> None:
    """Each own slot's key is the one its name says (spot checks of the optional ones)."""
    full = _job(idempotent=True, campaign=True, smsid="S1")
    sent_keys, slots = _sent(lifecycle.create(full, grace_s=30))
    own = dict(zip(slots, sent_keys[-len(slots) :], strict=True))
    assert own == {
        "phone_bucket": keys.phone_bucket(full.phone),
        "idempotency": keys.idempotency("python", "k1"),
        "campaign_chunk": keys.campaign_chunk(1, 7),
    }
    sent_keys, slots = _sent(upkeep.purge(full, "j1"))
    own = dict(zip(slots, sent_keys[-len(slots) :], strict=True))
    assert own["dead_webhooks"] == keys.dead_letters(keys.QUEUE_WEBHOOKS)
    assert own["smsid_bucket"] == keys.smsid_bucket("S1")
    assert "activity" not in own  # purge neither sends nor ends a job
    sent_keys, slots = _sent(lifecycle.submit("j1", smsid=None, code=124, poll_at=1.0, note="n"))
    assert dict(zip(slots, sent_keys[-len(slots) :], strict=True)) == {
        "activity": keys.activity(0.0)
    }


@pytest.mark.parametrize("script", sorted(PLAIN))
def test_plain_scripts_name_what_python_passes(script: str) -> None:
    """``local K`` of a plain script names its slots in the order its builder passes them:
    fixed ones (``KEYS[n]``), then a repeated group (``KEYS[i + n]``)."""
    named = NAMED_SLOT.findall((LUA / f"{script}.lua").read_text())
    fixed = [name for name, slot in named if slot.isdigit()]
    group = [name for name, slot in named if not slot.isdigit()]
    assert [slot for name, slot in named if slot.isdigit()] == [
        str(i) for i in range(1, len(fixed) + 1)
    ]
    passed = [name for name, _ in PLAIN[script]()]
    repeats = (len(passed) - len(fixed)) // len(group) if group else 0
    assert passed == fixed + group * repeats


def test_every_script_file_is_known_and_reads_keys_only_by_name() -> None:
    """Every .lua file is lib.lua, batch.lua, a job step or a plain script; no script (but
    batch.lua, which splits KEYS among its steps) reads KEYS[...] but to name a slot."""
    files = {path.stem for path in LUA.glob("*.lua")}
    assert files == {"lib", "batch", *scripts.SCRIPTS, *PLAIN}
    for name in files - {"batch"}:
        text = (LUA / f"{name}.lua").read_text()
        uses = len(re.findall(r"\bKEYS\[", text))
        named = len(NAMED_SLOT.findall(text)) + text.count("K[name] = KEYS[")
        assert uses == named, f"{name}.lua reads KEYS[...] outside its named slots"


def test_a_step_with_a_slot_its_script_does_not_declare_is_refused(redis_url: str) -> None:
    """On a real Redis: an undeclared slot name, a missing needed slot or a key count that does
    not match the names is an error before the step writes anything."""
    store = JobStore.from_url(redis_url)
    op = lifecycle.create(_job(idempotent=False, campaign=False), grace_s=30)
    bad = [
        replace(op, slots=("phone_bucket", "dead_letters"), keys=(*op.keys, keys.DUE)),
        replace(op, slots=(), keys=op.keys[:-1]),
        replace(op, keys=(*op.keys, keys.DUE)),
    ]
    for wrong, message in zip(
        bad, ["undeclared key slot", "missing key slot", "keys:"], strict=True
    ):
        with pytest.raises(redis.ResponseError, match=message):
            store.apply(wrong)
    assert store.get("j1") is None
    assert store.apply(op).verdict == "created"
    store.close()


def test_every_script_compiles(redis_url: str) -> None:
    """Redis compiles each job step alone and in a batch, and each plain script."""
    client = redis.Redis.from_url(redis_url)
    sources = [scripts.script_source(name) for name in scripts.SCRIPTS]
    sources += [scripts.batch_source(name) for name in scripts.BATCHABLE]
    sources += [scripts.plain_source(name) for name in PLAIN]
    for source in sources:
        assert len(client.script_load(source)) == 40  # its SHA1
    client.close()

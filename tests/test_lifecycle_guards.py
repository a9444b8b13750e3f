"""The store's Lua steps at their edges, on a real Redis with the clock given to each step:
the per-phone limit is a true sliding window (issue 10 §9), and a report can never re-point
another job's SMSID lookup (§8)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
import redis

from tests.fixtures import steps
from voicecall import keys, lifecycle
from voicecall.callbacks import CallbackResult
from voicecall.jobs import CallRequestAdapter, Outcome, State, params_of, validation_context
from voicecall.metrics import _CALLBACK_RESULTS
from voicecall.records import HistoryEntry, JobRecord
from voicecall.settings import SettingsError, load_settings
from voicecall.store import JobStore

PHONE = "0901234567"
LIMIT = 5
WINDOW_S = 600


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


def _create(store: JobStore, job_id: str, kind: str = "voice_otp") -> None:
    examples = {
        "voice_otp": {"kind": "voice_otp", "phone": PHONE, "content": "Ma 1"},
        "record_call": {"kind": "record_call", "phone": PHONE, "record_id": "r1"},
    }
    request = CallRequestAdapter.validate_python(
        examples[kind], context=validation_context(load_settings())
    )
    now = round(time.time(), 3)
    job = JobRecord(
        id=job_id,
        kind=request.kind,
        phone=request.phone,
        state=State.QUEUED,
        request=params_of(request),
        limit_key=keys.phone_limit(request.phone),
        msg=f"m-{job_id}",
        callback_nonce="n",
        created_at=now,
        updated_at=now,
        due_at=now,
        history=[HistoryEntry(state=State.QUEUED, at=now)],
    )
    assert store.apply(lifecycle.create(job, grace_s=30)).verdict == "created"


def _claim_at(store: JobStore, job_id: str, at: float) -> str:
    rules = lifecycle.ClaimRules(
        **{**vars(steps.RULES), "phone_limit": LIMIT, "phone_window_s": WINDOW_S}
    )
    op = lifecycle.claim(
        job_id,
        rules=rules,
        queue=keys.QUEUE_OTP,
        limit_key=store.get(job_id).limit_key,  # type: ignore[union-attr]
        quiet_until=0,
    )
    step = store.apply(op, now=at)
    return step.verdict if step.verdict == "claimed" else step.state


def test_phone_limit_holds_across_a_fixed_window_edge(store: JobStore) -> None:
    """5 OTP calls to one phone in the 2.5 s before a multiple of the window and 5 in the
    2.5 s after it: a fixed window would let all 10 through; the sliding window places 5 and
    rejects the other 5. A slot frees exactly when its call is WINDOW_S old."""
    edge = math.ceil(time.time() / WINDOW_S) * WINDOW_S + WINDOW_S
    times = [edge - 2.5 + 0.5 * i for i in range(5)] + [edge + 0.5 + 0.5 * i for i in range(5)]
    for i in range(12):
        _create(store, f"otp-{i}")
    verdicts = [_claim_at(store, f"otp-{i}", at) for i, at in enumerate(times)]
    assert verdicts == ["claimed"] * 5 + ["rejected"] * 5
    assert all(store.get(f"otp-{i}").reason == "rate_limited" for i in range(5, 10))  # type: ignore[union-attr]
    # The first call leaves the window 600 s after it: one slot, and one only.
    assert _claim_at(store, "otp-10", times[0] + WINDOW_S + 0.1) == "claimed"
    assert _claim_at(store, "otp-11", times[0] + WINDOW_S + 0.2) == "rejected"


def test_a_report_cannot_repoint_another_jobs_smsid(
    store: JobStore, redis_client: redis.Redis
) -> None:
    """A job whose SMSID is unknown (still sending, or a lost 124) reporting the SMSID of
    another job is refused (smsid_mismatch), by complete and confirm alike; the lookup keeps
    naming the other job. Its own SMSID is then taken and indexed."""
    _create(store, "c", "record_call")
    _create(store, "d", "record_call")
    steps.submit(store, "c", "s-c")
    steps.claim(store, "d")
    for op in (
        lifecycle.complete(
            "d",
            outcome=Outcome.ANSWERED,
            call={"status": "ANSWERED"},
            source="callback",
            smsid="s-c",
            nonce="n",
        ),
        lifecycle.confirm("d", outcome=Outcome.ANSWERED, smsid="s-c", nonce="n", redrive_s=30),
    ):
        assert store.apply(op).verdict == "smsid_mismatch"
    assert redis_client.hget(keys.smsid_bucket("s-c"), keys.smsid_field("s-c")) == "c"
    assert store.get("d").state is State.SENDING  # type: ignore[union-attr]
    own = lifecycle.complete(
        "d", outcome=Outcome.ANSWERED, call={}, source="callback", smsid="s-d", nonce="n"
    )
    assert store.apply(own).verdict == "accepted"
    assert redis_client.hget(keys.smsid_bucket("s-d"), keys.smsid_field("s-d")) == "d"


def test_every_callback_result_is_counted_from_zero() -> None:
    """Each result the callback route can give is a label exported at 0 from the start, so
    increase() and the alerts see its first occurrence."""
    assert set(_CALLBACK_RESULTS) == {result.value for result in CallbackResult}


def test_callback_confirm_is_off_by_default_and_a_bad_value_stops_start_up() -> None:
    """CALLBACK_CONFIRM: `off` unless set; `status` turns confirmation on; anything else is
    one start-up error naming the setting."""
    assert load_settings().callback_confirm == "off"
    assert load_settings(callback_confirm="status").callback_confirm == "status"
    with pytest.raises(SettingsError) as caught:
        load_settings(callback_confirm="always")
    assert "CALLBACK_CONFIRM" in str(caught.value)

"""The store's Lua steps at their edges, on a real Redis with the clock given to each step:
the per-phone limit is a true sliding window (issue 10 §9), a report can never re-point
another job's SMSID lookup (§8), and only eSMS's send answer sets a job's SMSID: a callback
before it is held, bounded, and settled by it (issue 18 §3). A claim's lease is renewed, or the
claim given back uncounted, only by the worker and attempt that hold it."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from tests.fixtures import steps
from voicecall.config.settings import SettingsError, load_settings
from voicecall.esms.callbacks import HELD_ENDINGS, CallbackResult
from voicecall.job import keys, lifecycle, upkeep
from voicecall.job.states import Outcome, State
from voicecall.job.steps import Op
from voicecall.store.job_store import JobStore
from voicecall.telemetry.finish import observe_finished
from voicecall.telemetry.metrics import _CALLBACK_RESULTS

LIMIT = 5
WINDOW_S = 600


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


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
        steps.create(store, f"otp-{i}")
    verdicts = [_claim_at(store, f"otp-{i}", at) for i, at in enumerate(times)]
    assert verdicts == ["claimed"] * 5 + ["rejected"] * 5
    assert all(store.get(f"otp-{i}").reason == "rate_limited" for i in range(5, 10))  # type: ignore[union-attr]
    # The first call leaves the window 600 s after it: one slot, and one only.
    assert _claim_at(store, "otp-10", times[0] + WINDOW_S + 0.1) == "claimed"
    assert _claim_at(store, "otp-11", times[0] + WINDOW_S + 0.2) == "rejected"


def test_a_report_cannot_repoint_another_jobs_smsid(
    store: JobStore, redis_client: redis.Redis
) -> None:
    """A job whose SMSID is unknown (still sending) reporting the SMSID of another job is
    refused (smsid_mismatch), by complete and confirm alike; the lookup keeps naming the other
    job. A report about its own SMSID is held, not taken: the lookup names it only once the
    send answer does."""
    steps.create(store, "c", "record_call")
    steps.create(store, "d", "record_call")
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
    assert store.apply(own).verdict == "held"
    assert (store.get("d").state, store.get("d").smsid) == (State.SENDING, None)  # type: ignore[union-attr]
    assert redis_client.hget(keys.smsid_bucket("s-d"), keys.smsid_field("s-d")) is None


def _report(job_id: str, smsid: str | None, outcome: Outcome = Outcome.ANSWERED) -> Op:
    """A CALLBACK_CONFIRM=off callback's report, as the receiver applies it."""
    call = {"status": "ANSWERED", "duration_s": 86400, "price_vnd": 1e12}
    return lifecycle.complete(
        job_id, outcome=outcome, call=call, source="callback", smsid=smsid, nonce="n", hold_s=60
    )


def _answer(job_id: str, smsid: str | None, at: float) -> Op:
    """eSMS's send answer: 100 with ``smsid``, or 124 without one."""
    return lifecycle.submit(
        job_id, smsid=smsid, code=100 if smsid else 124, poll_at=at + 600, note="t", hold_s=60
    )


def test_a_report_before_the_send_answer_never_sets_the_smsid(store: JobStore) -> None:
    """Hostile: on a job still sending, a callback naming no SMSID is refused; one naming a
    forged SMSID is held, never kept as the SMSID. eSMS's answer then names the real SMSID:
    the job is submitted with it, the forged report is refused (counted smsid_mismatch, said
    in the history), nothing of its figures is kept, and the due set holds the first poll."""
    steps.create(store, "e", "record_call")
    steps.claim(store, "e")
    now = time.time()
    assert store.apply(_report("e", None), now=now).verdict == "smsid_mismatch"
    assert store.apply(_report("e", "forged-1"), now=now).verdict == "held"
    assert store.get("e").smsid is None  # type: ignore[union-attr]
    step = store.apply(_answer("e", "real-e", now + 1), now=now + 1)
    assert (step.verdict, step.extra) == ("submitted", {"smsid_mismatch": 1})
    job = store.get("e")
    assert job is not None
    assert (job.state, job.smsid, job.outcome, job.call, job.held_reports) == (
        State.SUBMITTED,
        "real-e",
        None,
        None,
        None,
    )
    assert "1 held callback report(s) about another SMSID refused" in job.history[-1].note  # type: ignore[operator]
    assert store.id_for_smsid("real-e") == "e" and store.id_for_smsid("forged-1") is None


def test_a_held_report_about_the_named_smsid_applies_once(
    store: JobStore, redis_client: redis.Redis
) -> None:
    """CALLBACK_CONFIRM=off: a genuine report held while the job was sending completes it in
    the step that records eSMS's answer (verdict completed, held_applied 1), once: a repeat
    held beside it is not kept twice, and a report after the end is a repeat. With
    CALLBACK_CONFIRM=status the same report only sends the status poll, in that step."""
    steps.create(store, "f", "record_call")
    steps.claim(store, "f")
    now = time.time()
    assert store.apply(_report("f", "real-f"), now=now).verdict == "held"
    assert store.apply(_report("f", "real-f"), now=now + 0.5).verdict == "held"  # eSMS resent
    assert len(store.get("f").held_reports or []) == 1  # type: ignore[union-attr]
    step = store.apply(_answer("f", "real-f", now + 1), now=now + 1)
    assert (step.verdict, step.extra) == ("completed", {"held_applied": 1})
    job = step.job()
    assert job is not None and (job.state, job.outcome) == (State.COMPLETED, Outcome.ANSWERED)
    assert [h.note for h in job.history if h.state is State.COMPLETED] == [
        "result by callback, held until eSMS named the SMSID"
    ]
    assert store.apply(_report("f", "real-f"), now=now + 2).verdict == "repeat"

    steps.create(store, "g", "record_call")
    steps.claim(store, "g")
    confirm = lifecycle.confirm(
        "g", outcome=Outcome.ANSWERED, smsid="real-g", nonce="n", redrive_s=30, hold_s=60
    )
    assert store.apply(confirm, now=now).verdict == "held"
    before = redis_client.hlen(keys.dramatiq_messages(keys.QUEUE_STATUS))
    step = store.apply(_answer("g", "real-g", now + 1), now=now + 1)
    assert (step.verdict, step.extra) == ("submitted", {"held_applied": 1})
    job = store.get("g")
    assert job is not None and job.state is State.SUBMITTED and job.reported is not None
    assert redis_client.hlen(keys.dramatiq_messages(keys.QUEUE_STATUS)) == before + 1
    assert redis_client.zscore(keys.DUE, "g") == pytest.approx(now + 1 + 30)


def test_the_hold_is_bounded_in_count_and_time(store: JobStore) -> None:
    """Hostile: a leaked URL floods a sending job with distinct reports: 3 are held, the
    4th gets hold_full and is not kept. One held longer than hold_s is dropped (counted
    held_expired) when a later step meets it, never applied."""
    steps.create(store, "h", "record_call")
    steps.claim(store, "h")
    now = time.time()
    for i in range(lifecycle.HOLD_MAX_REPORTS):
        assert store.apply(_report("h", f"x-{i}"), now=now).verdict == "held"
    size = len(store.get("h").model_dump_json())  # type: ignore[union-attr]
    assert store.apply(_report("h", "x-9"), now=now).verdict == "hold_full"
    assert len(store.get("h").model_dump_json()) == size  # type: ignore[union-attr]
    assert size < 4000
    later = store.apply(_report("h", "x-new"), now=now + 61)
    assert (later.verdict, later.extra) == ("held", {"held_expired": 3})
    step = store.apply(_answer("h", "x-new", now + 200), now=now + 200)
    assert (step.verdict, step.extra) == ("submitted", {"held_expired": 1})
    job = store.get("h")
    assert job is not None and job.outcome is None and job.state is State.SUBMITTED


def test_held_reports_wait_through_a_124_and_end_with_the_job(store: JobStore) -> None:
    """A 124 without an SMSID settles nothing: the reports stay held. A later answer that
    names the SMSID settles them; a job that ends first (expired at the poll deadline)
    drops them, and its final history entry says how many (voicecall.telemetry.finish counts them)."""
    now = time.time()
    for job_id in ("i", "j"):
        steps.create(store, job_id, "record_call")
        steps.claim(store, job_id)
        assert store.apply(_report(job_id, f"real-{job_id}"), now=now).verdict == "held"
        step = store.apply(_answer(job_id, None, now + 1), now=now + 1)
        assert (step.verdict, step.extra) == ("submitted", {})
        assert len(store.get(job_id).held_reports or []) == 1  # type: ignore[union-attr]
    late = store.apply(_answer("i", "real-i", now + 2), now=now + 2)
    assert (late.verdict, late.extra) == ("completed", {"held_applied": 1})
    expire = lifecycle.expire("j", reason="smsid_unknown", note="t")
    ended = store.apply(expire, now=now + 3)
    job = ended.job()
    assert ended.verdict == "ended" and job is not None and job.held_reports is None
    assert job.history[-1].model_extra == {"held_dropped": 1}
    counted = REGISTRY.get_sample_value("voicecall_callbacks_total", {"result": "held_dropped"})
    observe_finished(job)
    after = REGISTRY.get_sample_value("voicecall_callbacks_total", {"result": "held_dropped"})
    assert (after or 0) - (counted or 0) == 1


def test_only_the_claims_own_worker_and_attempt_renew_its_lease(store: JobStore) -> None:
    """A bulk call waiting for its place at eSMS renews its claim's lease (verdict renewed,
    the new end as detail, nothing else changed). Hostile: another worker, a stale attempt
    (the job was re-driven and claimed again), a job already submitted or gone: each is
    ``lost`` and changes nothing."""
    steps.create(store, "k", "record_call")
    claimed = steps.claim(store, "k").job()
    assert claimed is not None and claimed.lease is not None and claimed.attempts == 1
    now = time.time() + 50
    renew = upkeep.renew_lease("k", owner=steps.RULES.owner, attempt=1, lease_s=60)
    step = store.apply(renew, now=now)
    assert (step.verdict, step.state) == ("renewed", "sending")
    assert float(step.detail) == pytest.approx(now + 60, abs=0.01)
    job = store.get("k")
    assert job is not None and job.lease is not None and job.lease.until == float(step.detail)
    assert job.history == claimed.history and job.attempts == 1
    before = store.get("k")
    for op in (
        upkeep.renew_lease("k", owner="another-worker", attempt=1, lease_s=60),
        upkeep.renew_lease("k", owner=steps.RULES.owner, attempt=2, lease_s=60),
        upkeep.renew_lease("nobody", owner=steps.RULES.owner, attempt=1, lease_s=60),
    ):
        assert store.apply(op, now=now + 1).verdict in ("lost", "absent")
    assert store.get("k") == before
    store.apply(_answer("k", "s-k", now + 2), now=now + 2)
    assert store.apply(renew, now=now + 3).verdict == "lost"


def test_a_claim_given_back_before_its_call_spends_no_attempt(
    store: JobStore, redis_client: redis.Redis
) -> None:
    """A stopping worker gives back a claimed job whose call still waited for its place:
    ``retrying``, due now, its attempt uncounted (the next claim is attempt 1 again), the
    history saying why. Hostile: another worker or a stale attempt gives back nothing."""
    steps.create(store, "m", "record_call")
    steps.claim(store, "m")
    note = "no call made"
    for op in (
        lifecycle.unclaim("m", owner="another-worker", attempt=1, note=note),
        lifecycle.unclaim("m", owner=steps.RULES.owner, attempt=2, note=note),
    ):
        assert store.apply(op).verdict == "lost"
    now = time.time()
    mine = lifecycle.unclaim("m", owner=steps.RULES.owner, attempt=1, note=note)
    step = store.apply(mine, now=now)
    job = step.job()
    assert step.verdict == "unclaimed" and job is not None
    assert (job.state, job.attempts, job.window_attempts, job.lease) == (State.RETRYING, 0, 0, None)
    assert (job.history[-1].state, job.history[-1].note) == (State.RETRYING, note)
    assert redis_client.zscore(keys.DUE, "m") == pytest.approx(now, abs=0.01)
    assert store.apply(mine).verdict == "lost"  # given back once
    again = steps.claim(store, "m").job()
    assert again is not None and (again.attempts, again.window_attempts) == (1, 1)


def test_every_callback_result_is_counted_from_zero() -> None:
    """Each result the callback route can give, and each way a held report ends, is a label
    exported at 0 from the start, so increase() and the alerts see its first occurrence."""
    results = {result.value for result in CallbackResult} | set(HELD_ENDINGS)
    assert set(_CALLBACK_RESULTS) == results


def test_callback_confirm_is_status_by_default_and_a_bad_value_stops_start_up() -> None:
    """CALLBACK_CONFIRM: `status` unless set; `off` is the opt-out; anything else is one
    start-up error naming the setting. CALLBACK_HOLD_S defaults to the store's own default."""
    assert load_settings().callback_confirm == "status"
    assert load_settings(callback_confirm="off").callback_confirm == "off"
    assert load_settings().callback_hold_s == lifecycle.DEFAULT_HOLD_S
    with pytest.raises(SettingsError) as caught:
        load_settings(callback_confirm="always")
    assert "CALLBACK_CONFIRM" in str(caught.value)

"""The worker against real processes: transitions, timing, retries, 124, callbacks, polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures.stack import Stack, producer_client, wait_until
from voicecall.job import keys
from voicecall.job.states import Outcome, State
from voicecall.store.job_store import JobStore
from voicecall.store.steps import StoreConfig
from worker.retention import RetentionScan


def _history_states(stack: Stack, job_id: str) -> list[str]:
    return [entry.state.value for entry in stack.job(job_id).history]


def _notes(stack: Stack, job_id: str) -> str:
    return stack.notes(job_id)


def _ledger_by_request(stack: Stack) -> dict[str, list[dict[str, object]]]:
    ledger: dict[str, list[dict[str, object]]] = {}
    for call in stack.sim.calls():
        ledger.setdefault(str(call["request_id"]), []).append(call)
    return ledger


def test_callback_is_confirmed_by_exactly_one_status_request(
    stack_factory: Callable[..., Stack],
) -> None:
    """The default (CALLBACK_CONFIRM=status): with callbacks delivered, each callback sends
    one GetSendStatus at once, and eSMS's answer completes the job: one request per call."""
    stack = stack_factory(poll_margin_s=30)  # first poll planned far after the callback
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    job = stack.wait_final([job_id], timeout=20)[job_id]
    assert (job.state, job.outcome) == (State.COMPLETED, Outcome.ANSWERED)
    assert "result by status poll, confirming a callback" in _notes(stack, job_id)
    assert stack.sim.calls()[0]["status_requests"] == 1


def test_a_confirmation_answered_105_asks_again_within_seconds_not_the_poll_backoff(
    stack_factory: Callable[..., Stack],
) -> None:
    """eSMS's status lags its callback (105 for a just-sent SMSID): the confirming poll asks
    again after 1 s, then as long as the report has waited, so the job ends a few seconds
    after the status is ready, not after POLL_MARGIN_S (30 s: the next regular poll)."""
    not_ready_s = 4.0
    stack = stack_factory(poll_margin_s=30, poll_max_interval_s=1800)  # production's backoff
    stack.sim.configure(status_not_ready_s=not_ready_s)
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    job = stack.wait_final([job_id], timeout=25)[job_id]
    assert (job.state, job.outcome) == (State.COMPLETED, Outcome.ANSWERED)
    call = stack.sim.calls()[0]
    accepted_at = datetime.fromisoformat(str(call["accepted_at"])).timestamp()
    callback_at = datetime.fromisoformat(str(call["callbacks"][0]["at"])).timestamp()
    assert callback_at - accepted_at < not_ready_s  # the confirmation met the lag
    assert call["status_requests"] >= 2  # at least one 105 before the answer
    assert job.finished_at is not None
    # Ready at accepted_at + 4 s; asked again at most as long after as the report had waited.
    assert job.finished_at - accepted_at < 2 * not_ready_s + 2


def test_with_confirm_off_the_callback_completes_the_job_without_any_status_request(
    stack_factory: Callable[..., Stack],
) -> None:
    """CALLBACK_CONFIRM=off: with callbacks delivered, the result comes by callback and no
    GetSendStatus is made."""
    stack = stack_factory(callback_confirm="off", poll_margin_s=30)
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    job = stack.wait_final([job_id], timeout=20)[job_id]
    assert (job.state, job.outcome) == (State.COMPLETED, Outcome.ANSWERED)
    assert "result by callback" in _notes(stack, job_id)
    assert stack.sim.calls()[0]["status_requests"] == 0


def test_lost_callback_is_covered_by_polling(stack_factory: Callable[..., Stack]) -> None:
    """When every callback is dropped, the status poll completes the job (MaxRetry-aware)."""
    stack = stack_factory()
    stack.sim.configure(callback_drop_rate=1.0)
    stack.start_worker()
    body = {
        "kind": "record_call",
        "phone": "0901234561",
        "record_id": "rec1",
        "max_retry": 1,
        "wait_retry": 30,
    }
    job_id = stack.post_call(body)["id"]
    job = stack.wait_final([job_id], timeout=30)[job_id]
    assert (job.state, job.outcome) == (State.COMPLETED, Outcome.NOT_ANSWERED)
    assert "result by status poll" in _notes(stack, job_id)
    assert stack.sim.calls()[0]["dials_made"] == 2


def test_late_callback_after_poll_is_a_noop_and_forged_callback_is_refused(
    stack_factory: Callable[..., Stack],
) -> None:
    """Poll first: a later genuine callback answers 200 and changes nothing; a forged one gets 403."""
    stack = stack_factory()
    stack.sim.configure(callback_drop_rate=1.0)
    stack.start_worker()
    job_id = stack.post_call({"kind": "template_call", "phone": "0901234569", "template_id": "t1"})[
        "id"
    ]
    done = stack.wait_final([job_id], timeout=30)[job_id]
    history_before = stack.job(job_id).history
    url = stack.callback_url(job_id)
    query = {
        "ReferenceId": done.smsid or "",
        "CallStatus": "NO ANSWER",
        "SentResult": "0",
        "SendStatus": "5",
    }
    assert httpx.get(url, params=query).status_code == 200
    forged = url.rsplit("/", 1)[0] + "/" + "0" * 32
    response = httpx.get(forged, params=query)
    assert response.status_code == 403
    assert stack.job(job_id).history == history_before
    assert stack.job(job_id).outcome is Outcome.ANSWERED


def test_forged_callback_changes_nothing_on_a_pending_job(
    stack_factory: Callable[..., Stack],
) -> None:
    """A callback whose signature does not match gets 403 and leaves a submitted job submitted."""
    stack = stack_factory(poll_margin_s=600)
    stack.sim.configure(callback_drop_rate=1.0)
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    wait_until(lambda: stack.job(job_id).state is State.SUBMITTED, 15, what="submitted")
    nonce = stack.job(job_id).callback_nonce
    other = stack.callback_url("another-job", nonce=nonce)
    forged = f"{stack.api_url}/v1/esms/callback/{job_id}/{nonce}/{other.rsplit('/', 1)[1]}"
    response = httpx.get(
        forged, params={"ReferenceId": "x", "CallStatus": "ANSWERED", "SendStatus": "5"}
    )
    assert response.status_code == 403
    assert stack.job(job_id).state is State.SUBMITTED


def test_worker_mode_sends_within_a_second_of_send_at(stack_factory: Callable[..., Stack]) -> None:
    """A worker-mode job due in 3 s reaches eSMS no earlier than, and within 1 s of, its time."""
    stack = stack_factory()
    stack.start_worker()
    due = datetime.now(UTC) + timedelta(seconds=3)
    job_id = stack.post_call(
        {
            "kind": "record_call",
            "phone": "0901234568",
            "record_id": "rec1",
            "send_at": due.isoformat(),
        }
    )["id"]
    stack.wait_final([job_id], timeout=20)
    accepted = datetime.fromisoformat(str(stack.sim.calls()[0]["accepted_at"]))
    lateness = (accepted - due).total_seconds()
    assert -0.05 <= lateness <= 1.0, lateness


def test_provider_mode_passes_send_date_exactly(stack_factory: Callable[..., Stack]) -> None:
    """A provider-mode job is sent at once with SendDate equal to send_at (Vietnam time)."""
    stack = stack_factory()
    stack.start_worker()
    due = (datetime.now(UTC) + timedelta(minutes=7)).replace(microsecond=0)
    job_id = stack.post_call(
        {
            "kind": "template_call",
            "phone": "0901234569",
            "template_id": "t1",
            "schedule": "provider",
            "send_at": due.isoformat(),
        }
    )["id"]
    wait_until(lambda: stack.job(job_id).state is State.SUBMITTED, 15, what="submitted")
    call = stack.sim.calls()[0]
    assert datetime.fromisoformat(str(call["send_date"])) == due
    assert call["params"]["SendDate"] == due.astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Ho_Chi_Minh")
    ).strftime("%Y/%m/%d %H:%M:%S")


def test_injected_500s_are_retried_to_completion_with_one_call_per_job(
    stack_factory: Callable[..., Stack],
) -> None:
    """With half of eSMS's answers HTTP 500, every job still completes and eSMS saw one call each."""
    stack = stack_factory()
    stack.sim.configure(error_rate=0.5, fault_scope="send")
    stack.start_worker(threads=8)
    client = producer_client(stack)
    ids = [client.enqueue_record(f"09012{i:04d}8", "rec1").id for i in range(30)]
    jobs = stack.wait_final(ids, timeout=60)
    assert {job.state for job in jobs.values()} == {State.COMPLETED}
    ledger = _ledger_by_request(stack)
    assert sorted(ledger) == sorted(ids)
    assert all(len(calls) == 1 for calls in ledger.values())
    assert stack.sim.stats()["faults"]["http_500"] > 0


@pytest.mark.parametrize("mode", ["status", "off"])
def test_accepted_but_response_lost_becomes_submitted_through_124(
    stack_factory: Callable[..., Stack], mode: str
) -> None:
    """eSMS accepts but the answer is lost: the retry gets 124, the job is submitted, one call
    only. eSMS never names its SMSID (and has no lookup by RequestId), so the call's genuine
    callback is held, never applied, in either confirm mode: the job waits for the poll
    deadline (it then ends `expired`, reason smsid_unknown: tests/test_worker_crash.py)."""
    stack = stack_factory(callback_confirm=mode)
    stack.sim.configure(accept_then_drop_rate=1.0)
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    wait_until(lambda: len(stack.sim.calls()) == 1, 10, what="the call in the ledger")
    stack.sim.configure(accept_then_drop_rate=0.0)
    wait_until(lambda: stack.job(job_id).state is State.SUBMITTED, 20, what="submitted")
    smsid = str(stack.sim.calls()[0]["smsid"])
    wait_until(lambda: stack.sim.call(smsid)["callbacks"], 10, what="eSMS's callback")
    wait_until(lambda: stack.job(job_id).held_reports, 10, what="the callback held")
    job = stack.job(job_id)
    assert (job.state, job.smsid, job.outcome) == (State.SUBMITTED, None, None)
    assert [report.smsid for report in job.held_reports or []] == [smsid]
    notes = _notes(stack, job_id)
    assert "124" in notes and "expires at the poll deadline" in notes
    assert stack.sim.call(smsid)["status_requests"] == 0
    assert len(stack.sim.calls()) == 1


def test_permanent_code_rejects_and_cancel_before_time_prevents_the_call(
    stack_factory: Callable[..., Stack], esms_sim_factory: Callable[..., object]
) -> None:
    """An unknown recording (106) ends `rejected` with its code; a job cancelled before its time is never called."""
    sim = esms_sim_factory(
        recordings="rec1", time_scale=0.01, status_not_ready_s=0.2, callback_retry_delay_s=5
    )
    stack = stack_factory(sim=sim)
    stack.start_worker()
    rejected = stack.post_call(
        {"kind": "record_call", "phone": "0901234568", "record_id": "missing"}
    )["id"]
    later = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()
    cancelled = stack.post_call(
        {"kind": "record_call", "phone": "0901234567", "record_id": "rec1", "send_at": later}
    )["id"]
    with stack.http() as http:
        assert http.delete(f"/v1/calls/{cancelled}").status_code == 200
    job = stack.wait_final([rejected], timeout=20)[rejected]
    assert (job.state, (job.error.code if job.error else None)) == (State.REJECTED, "106")
    assert _history_states(stack, cancelled) == ["scheduled", "cancelled"]
    assert [c["request_id"] for c in stack.sim.calls()] == []  # type: ignore[attr-defined]


def test_otp_past_its_ttl_is_expired_without_a_call(stack_factory: Callable[..., Stack]) -> None:
    """An OTP whose time to live passed before a worker could send it ends `expired`, uncalled."""
    stack = stack_factory()
    # Due 11 s ago (the API takes a send_at up to a minute past) with a 10 s TTL: the OTP
    # waits in its queue, no worker yet, already past its TTL, with no sleep through the TTL.
    due = (datetime.now(UTC) - timedelta(seconds=11)).isoformat()
    job_id = stack.post_call(
        {"kind": "voice_otp", "phone": "0901234567", "content": "123456", "ttl_s": 10,
         "send_at": due}
    )["id"]  # fmt: skip
    assert stack.job(job_id).state is State.QUEUED
    stack.start_worker()
    job = stack.wait_final([job_id], timeout=15)[job_id]
    assert (job.state, job.reason) == (State.EXPIRED, "ttl")
    assert stack.sim.calls() == []


def test_submitted_otp_content_is_erased(stack_factory: Callable[..., Stack]) -> None:
    """Once a Voice OTP is submitted, its spoken content is no longer in the store."""
    stack = stack_factory()
    stack.start_worker()
    job_id = stack.post_call({"kind": "voice_otp", "phone": "0901234567", "content": "Ma 424242"})[
        "id"
    ]
    stack.wait_final([job_id], timeout=20)
    raw = stack.redis_client.get(f"vc:job:{job_id}")
    assert raw is not None and "424242" not in raw
    assert stack.sim.calls()[0]["params"]["Content"] == "Ma 424242"


def test_messages_of_a_dead_worker_are_recovered_and_sent_once(
    stack_factory: Callable[..., Stack],
) -> None:
    """A worker died after fetching a job's message, before claiming the job: once its
    heartbeat is stale, the sweeper puts the message back and the job is sent once."""
    stack = stack_factory()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    redis = stack.redis_client
    message_id = redis.lpop("dramatiq:voicecall-bulk")  # as Dramatiq's fetch does it
    assert message_id is not None
    redis.sadd("dramatiq:__acks__.dead-worker.voicecall-bulk", message_id)
    redis.zadd("vc:workers", {"dead-worker": int((time.time() - 60) * 1000)})
    stack.start_worker()
    job = stack.wait_final([job_id], timeout=15)[job_id]
    assert job.state is State.COMPLETED
    assert [c["request_id"] for c in stack.sim.calls()] == [job_id]
    assert redis.exists("dramatiq:__acks__.dead-worker.voicecall-bulk") == 0


def test_finished_jobs_expire_after_the_retention_period(
    stack_factory: Callable[..., Stack],
) -> None:
    """A final job is kept FINISHED_RETENTION_DAYS, then purged with every index entry (the
    record has no TTL: purge names them from it); its idempotency key expires soon after. A
    job that ended within the hour after its creation has no timer: the retention scan finds
    it by its place in the state index."""
    stack = stack_factory(finished_retention_days=2)
    stack.start_worker()
    posted = stack.post_call(
        {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 1", "idempotency_key": "ret-1"}
    )
    job_id = posted["id"]
    job = stack.wait_final([job_id], timeout=20)[job_id]
    two_days = 2 * 86400
    assert stack.redis_client.ttl(f"vc:job:{job_id}") == -1
    idem = keys.idempotency(posted["client"], "ret-1")  # the key is its client's
    assert two_days - 60 <= stack.redis_client.ttl(idem) <= two_days + 7 * 86400
    assert job.smsid and stack.store.id_for_smsid(job.smsid) == job_id
    assert stack.redis_client.zscore("vc:due", job_id) is None
    store = JobStore.from_url(stack.redis.url, StoreConfig(retention_s=two_days))
    assert RetentionScan(store).run(time.time() + two_days - 60) == 0
    assert RetentionScan(store).run(time.time() + two_days + 3600 + 60) == 1
    assert store.get(job_id) is None and store.id_for_smsid(job.smsid) is None
    store.close()


def test_far_polls_wait_in_redis_and_are_released_by_the_scheduler(
    stack_factory: Callable[..., Stack],
) -> None:
    """A poll due beyond the scheduler's horizon is no Dramatiq delayed message; the scheduler
    releases it in time and it completes the job (callbacks dropped)."""
    stack = stack_factory(schedule_horizon_s=1, poll_margin_s=4)
    stack.sim.configure(callback_drop_rate=1.0)
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    wait_until(lambda: stack.job(job_id).state is State.SUBMITTED, 10, what="submitted")
    planned = stack.redis_client.zscore("vc:due", job_id)
    submitted_at = stack.job(job_id).submitted_at
    assert planned is not None and submitted_at is not None
    assert planned - submitted_at >= 4  # the poll's own time, not a backstop
    assert stack.redis_client.hlen("dramatiq:voicecall-status.DQ.msgs") == 0
    job = stack.wait_final([job_id], timeout=20)[job_id]
    assert (job.state, job.polls) == (State.COMPLETED, 1)
    assert "result by status poll" in _notes(stack, job_id)


def test_a_job_already_tried_with_esms_cannot_be_cancelled(
    stack_factory: Callable[..., Stack],
) -> None:
    """A job retrying after a failed attempt (which may have reached eSMS) gets 409 on cancel."""
    stack = stack_factory(send_retry_min_backoff_s=30, send_retry_max_backoff_s=60)
    stack.sim.configure(error_rate=1.0, fault_scope="send")
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    wait_until(lambda: stack.job(job_id).state is State.RETRYING, 15, what="retrying")
    with stack.http() as http:
        response = http.delete(f"/v1/calls/{job_id}")
    assert response.status_code == 409
    assert response.json()["state"] == "retrying"
    assert stack.job(job_id).state is State.RETRYING

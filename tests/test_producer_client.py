"""The Python API (``producer.VoiceCallClient``) against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

import producer
from producer import (
    CancelRefused,
    DuplicateJobId,
    IdempotencyConflict,
    JobNotFound,
    VoiceCallClient,
)
from tests.fixtures import steps
from voicecall.errors import IntakeError
from voicecall.job import keys
from voicecall.job.params import TemplateParams
from voicecall.job.states import State


@pytest.fixture()
def client(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> VoiceCallClient:
    monkeypatch.setenv("REDIS_URL", redis_url)
    return VoiceCallClient.from_env()


def _messages(redis_client: redis.Redis, queue: str) -> int:
    return int(redis_client.hlen(keys.dramatiq_messages(queue)))


def test_public_api_is_pinned() -> None:
    """`producer` exports exactly these names; changing them is a deliberate diff."""
    assert producer.__all__ == [
        "CallPage",
        "CampaignNotFound",
        "CampaignSummary",
        "CancelRefused",
        "DuplicateJobId",
        "IdempotencyConflict",
        "JobNotFound",
        "JobView",
        "SearchError",
        "VoiceCallClient",
    ]
    assert all(getattr(producer, name) for name in producer.__all__)


def test_from_env_reads_redis_url(client: VoiceCallClient, redis_url: str) -> None:
    """from_env builds a client on REDIS_URL with nothing else configured."""
    assert client.settings.redis_url == redis_url
    assert client.store.ping()


def test_enqueue_otp_queues_on_the_otp_queue(
    client: VoiceCallClient, redis_client: redis.Redis
) -> None:
    """enqueue_otp stores a queued voice_otp job and a message on the OTP queue."""
    job = client.enqueue_otp("0901234567", "Ma 123456", ttl_s=120)
    assert (job.kind, job.state, job.phone, job.replay) == (
        "voice_otp",
        "queued",
        "84901234567",
        False,
    )
    assert job.expires_at is not None
    assert _messages(redis_client, keys.QUEUE_OTP) == 1
    assert _messages(redis_client, keys.QUEUE_BULK) == 0


def test_enqueue_record_queues_on_the_bulk_queue(
    client: VoiceCallClient, redis_client: redis.Redis
) -> None:
    """enqueue_record keeps the eSMS options in the job's request and uses the bulk queue."""
    job = client.enqueue_record("0901234567", "rec-1", max_retry=2, wait_retry=60)
    assert job.json_body()["request"] == {
        "kind": "record_call",
        "record_id": "rec-1",
        "max_retry": 2,
        "wait_retry": 60,
    }
    assert _messages(redis_client, keys.QUEUE_BULK) == 1


def test_enqueue_template_keeps_variables_in_order(client: VoiceCallClient) -> None:
    """enqueue_template stores the variables in the given order."""
    job = client.enqueue_template("0901234567", "tpl-1", ["Trung", "20000"], voice="female")
    assert isinstance(job.request, TemplateParams)
    assert (job.request.variables, job.request.voice) == (["Trung", "20000"], "female")


def test_enqueue_carries_the_trace_id(client: VoiceCallClient) -> None:
    """enqueue stores the caller's trace id with the job."""
    job = client.enqueue(
        {"kind": "record_call", "phone": "0901234567", "record_id": "r"}, trace_id="t-1"
    )
    assert client.get(job.id).trace_id == "t-1"


def test_far_future_job_waits_in_the_schedule(
    client: VoiceCallClient, redis_client: redis.Redis
) -> None:
    """A job due in an hour is scheduled, in vc:schedule, with no Dramatiq message yet."""
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    job = client.enqueue_record("0901234567", "rec-1", send_at=send_at)
    assert job.state == "scheduled"
    assert redis_client.zscore(keys.SCHEDULE, job.id) is not None
    assert _messages(redis_client, keys.QUEUE_BULK) == 0


def test_invalid_input_raises_and_stores_nothing(client: VoiceCallClient) -> None:
    """Invalid input raises IntakeError naming the field and its rule in plain words (as the
    API's 422 does); nothing is stored."""
    with pytest.raises(IntakeError) as caught:
        client.enqueue_record("0901234567", "rec-1", max_retry=6)
    assert caught.value.errors == [{"field": "max_retry", "message": "must be at most 5"}]
    assert client.store.state_counts() == {}


def test_idempotency_replay_and_conflict(client: VoiceCallClient) -> None:
    """The same key and body replays the job; the same key with another body raises."""
    first = client.enqueue_otp("0901234567", "Ma 1", idempotency_key="k")
    again = client.enqueue_otp("0901234567", "Ma 1", idempotency_key="k")
    assert (again.id, again.replay) == (first.id, True)
    with pytest.raises(IdempotencyConflict) as caught:
        client.enqueue_otp("0901234567", "Ma 2", idempotency_key="k")
    assert caught.value.job_id == first.id
    assert client.store.state_counts() == {"queued": 1}


def test_a_taken_id_raises_duplicate_job_id(client: VoiceCallClient) -> None:
    """A second job with the same id (and no idempotency key) raises DuplicateJobId."""
    client.enqueue_record("0901234567", "rec-1", id="order-7")
    with pytest.raises(DuplicateJobId):
        client.enqueue_record("0901234568", "rec-1", id="order-7")


def test_get_returns_history_and_raises_for_unknown(client: VoiceCallClient) -> None:
    """get returns the job with its history; an unknown id raises JobNotFound."""
    job_id = client.enqueue_otp("0901234567", "Ma 1").id
    assert [h.state for h in client.get(job_id).history or []] == ["queued"]
    with pytest.raises(JobNotFound):
        client.get("nope")


def test_find_by_idempotency_key_and_smsid(client: VoiceCallClient) -> None:
    """find looks a job up by idempotency key or SMSID; unknown ones raise JobNotFound."""
    job_id = client.enqueue_otp("0901234567", "Ma 1", idempotency_key="find-me").id
    steps.submit(client.store, job_id, "sms-1", queue=keys.QUEUE_OTP)
    assert client.find(idempotency_key="find-me").id == job_id
    assert client.find(smsid="sms-1").id == job_id
    for lookup in ({"idempotency_key": "other"}, {"smsid": "sms-2"}, {}):
        with pytest.raises(JobNotFound):
            client.find(**lookup)


def test_cancel_scheduled_and_queued_jobs(
    client: VoiceCallClient, redis_client: redis.Redis
) -> None:
    """cancel moves scheduled and queued jobs to cancelled and out of the schedule."""
    send_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    scheduled = client.enqueue_record("0901234567", "rec-1", send_at=send_at).id
    queued = client.enqueue_otp("0901234567", "Ma 1").id
    for job_id in (scheduled, queued):
        job = client.cancel(job_id, reason="test")
        assert (job.state, (job.history or [])[-1].note) == ("cancelled", "test")
    assert redis_client.zcard(keys.SCHEDULE) == 0
    counts = {state: n for state, n in client.store.state_counts().items() if n}
    assert counts == {"cancelled": 2}


def test_cancel_refused_once_sending_and_for_unknown(client: VoiceCallClient) -> None:
    """cancel raises CancelRefused (with the state) once a job is sending; JobNotFound if unknown."""
    job_id = client.enqueue_otp("0901234567", "Ma 1").id
    steps.claim(client.store, job_id, queue=keys.QUEUE_OTP)
    with pytest.raises(CancelRefused) as caught:
        client.cancel(job_id)
    assert caught.value.state is State.SENDING
    with pytest.raises(JobNotFound):
        client.cancel("nope")

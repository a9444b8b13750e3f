"""Every method of voicecall.Client and voicecall.AsyncClient against the real API (uvicorn, on
a real Redis), each test once per client; with a worker and the eSMS simulator where a job must
be sent (SMSIDs, webhooks).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import steps
from tests.fixtures.api import ApiServer
from tests.fixtures.clients import FLAVOURS, open_client
from tests.fixtures.stack import WEBHOOK_SECRET, Stack, wait_until
from tests.fixtures.webhook_receiver import Receiver, answer
from voicecall.client import (
    Conflict,
    InvalidWebhook,
    NotFound,
    Unauthorized,
    ValidationFailed,
    verify_webhook,
)
from voicecall.client.models import BulkOperation
from voicecall.job import keys, lifecycle
from voicecall.job.contract import VoiceOtpCall
from voicecall.job.esms_limits import Voice
from voicecall.job.records import JobView
from voicecall.job.states import Kind, ScheduleMode, State
from voicecall.store.job_store import JobStore

ROOT = Path(__file__).resolve().parents[1]
LATER = datetime.now(UTC) + timedelta(hours=2)


def test_each_kind_is_created_with_typed_options_and_read_back(client: Any) -> None:
    """OTP, record and template calls from keywords, a server model and a dict come back as JobViews (the OTP's code never), and get_call adds the history."""
    otp = client.create_otp_call(
        "0901234567", "Ma xac thuc 482913", ttl_s=300, labels={"app": "login"}
    )
    record = client.create_record_call(
        "+84 90 123 4568", "rec-welcome", max_retry=2, wait_retry=60, send_at=LATER
    )
    template = client.create_template_call(
        "84901234569", "tpl-due", ["Trung", "20000"], voice=Voice.FEMALE, speed=0,
        schedule=ScheduleMode.WORKER,
    )  # fmt: skip
    model = client.create_call(
        VoiceOtpCall(kind="voice_otp", phone="0901234560", content="Ma 1", id="from-a-model")
    )
    mapping = client.create_call({"kind": "record_call", "phone": "0901234561", "record_id": "r"})

    assert (otp.kind, otp.phone, otp.state, otp.labels) == (
        Kind.VOICE_OTP, "84901234567", State.QUEUED, {"app": "login"},
    )  # fmt: skip
    assert "content" not in otp.request.model_dump(exclude_none=True)
    assert (record.state, record.request.model_dump()["max_retry"]) == (State.SCHEDULED, 2)
    assert abs(record.due_at.timestamp() - LATER.timestamp()) < 0.01
    assert template.request.model_dump()["variables"] == ["Trung", "20000"]
    assert (model.id, mapping.kind) == ("from-a-model", Kind.RECORD_CALL)
    for job in (otp, record, template, model, mapping):
        assert job.idempotency_key is not None and job.idempotency_key.startswith("vc-")
        assert job.client is not None and job.client.startswith("token-")
        assert job.history is None
    read = client.get_call(otp.id)
    assert isinstance(read, JobView) and read.id == otp.id
    assert [step.state for step in read.history or []] == [State.QUEUED]


def test_a_repeated_key_replays_and_another_body_conflicts(client: Any) -> None:
    """The same key and body give the same job (replay); the same key with another body is Conflict naming the job."""
    first = client.create_otp_call("0901234567", "Ma 1", idempotency_key="order-1")
    again = client.create_otp_call("0901234567", "Ma 1", idempotency_key="order-1")
    assert (again.id, first.replay, again.replay) == (first.id, False, True)
    with pytest.raises(Conflict) as caught:
        client.create_otp_call("0901234567", "Ma 2", idempotency_key="order-1")
    assert (caught.value.status, caught.value.code) == (409, "idempotency_conflict")
    assert caught.value.job_id == first.id


def test_refusals_are_typed_errors_with_the_body_and_request_id(
    client: Any, api_server: ApiServer
) -> None:
    """A bad phone is ValidationFailed naming `phone`; an unknown job, SMSID or campaign NotFound; every one carries the X-Request-ID."""
    with pytest.raises(ValidationFailed) as invalid:
        client.create_otp_call("12345", "Ma 1")
    assert [e["field"] for e in invalid.value.errors] == ["phone"]
    assert invalid.value.request_id and invalid.value.body["request_id"] == invalid.value.request_id
    for missing in (
        lambda: client.get_call("no-such-job"),
        lambda: client.find_by_smsid("no-such-smsid"),
        lambda: client.get_campaign("no-such-campaign"),
    ):
        with pytest.raises(NotFound) as caught:
            missing()
        assert caught.value.status == 404 and caught.value.request_id


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_wrong_token_is_unauthorized(flavour: str, api_server: ApiServer) -> None:
    """A token the API does not know: Unauthorized (401), and the token is in no message."""
    token = "not-a-configured-token-0123"
    with open_client(flavour, api_server.base_url, token) as client:
        with pytest.raises(Unauthorized) as caught:
            client.list_calls()
        assert client.alive() is True and client.ready() is True  # the probes need no token
    assert caught.value.status == 401
    assert token not in str(caught.value) and token not in repr(client)


def test_cancel_then_cancel_again(client: Any) -> None:
    """A scheduled job cancels with its reason in the history; cancelling it again is Conflict with its state."""
    job = client.create_record_call("0901234567", "r", send_at=LATER)
    cancelled = client.cancel_call(job.id, reason="customer asked")
    assert cancelled.state == State.CANCELLED
    assert client.get_call(job.id).history[-1].note == "customer asked"
    with pytest.raises(Conflict) as caught:
        client.cancel_call(job.id)
    assert (caught.value.code, caught.value.state) == ("cancel_refused", "cancelled")


def test_a_batch_stores_each_call_on_its_own_and_makes_a_campaign(client: Any) -> None:
    """A batch with one bad call stores the others in the campaign; the campaign's figures and list show them."""
    result = client.create_batch(
        [
            {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 1"},
            VoiceOtpCall(kind="voice_otp", phone="0901234568", content="Ma 2"),
            {"kind": "voice_otp", "phone": "not a phone", "content": "Ma 3"},
        ],
        campaign="tet-2030",
    )
    assert (result.accepted, result.failed) == (2, 1)
    bad = result.results[2]
    assert bad.status == 422 and bad.error is not None
    assert [e.field for e in bad.error.errors or []] == ["phone"]
    assert all(
        item.job and item.job.labels == {"campaign": "tet-2030"} for item in result.results[:2]
    )
    summary = client.get_campaign("tet-2030")
    assert (summary.name, summary.total, summary.by_state["queued"]) == ("tet-2030", 2, 2)
    assert [c.name for c in client.list_campaigns()] == ["tet-2030"]


def test_campaign_names_with_slashes_and_dots_are_one_path_segment(client: Any) -> None:
    """Campaigns named "a/b", ".." and "ä ?#" are read by name, not resolved into other routes (the API took no "/" in a name: %2F arrives decoded)."""
    for name in ("a/b", "..", "ä ?#"):
        client.create_batch(
            [{"kind": "record_call", "phone": "0901234567", "record_id": "r"}], campaign=name
        )
        assert client.get_campaign(name).name == name


def test_pagination_over_250_jobs_sees_each_once(client: Any) -> None:
    """250 jobs, pages of 40 followed by their cursors (by the campaign index and by the state index): each job once."""
    calls = [{"kind": "record_call", "phone": f"0901{i:06d}", "record_id": "r"} for i in range(250)]
    result = client.create_batch(calls, campaign="p250")
    assert result.accepted == 250
    created = sorted(item.job.id for item in result.results)
    for filters in ({"labels": {"campaign": "p250"}}, {"state": [State.QUEUED]}):
        seen = [job.id for job in client.iter_calls(page_size=40, **filters)]
        assert len(seen) == 250
        assert sorted(seen) == created
    first = client.list_calls(limit=40, kind=Kind.RECORD_CALL)
    assert len(first.data) == 40 and first.next_cursor is not None


def test_filters_reach_the_api_and_bad_ones_are_named(client: Any) -> None:
    """Enum, list, datetime and label filters select jobs; a naive time is read in TIMEZONE;
    an unknown filter and a time that is not one are ValidationFailed naming them."""
    otp = client.create_otp_call("0901234567", "Ma 1", labels={"app": "a"})
    client.create_record_call("0901234568", "r", labels={"app": "b"})
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = client.list_calls(kind=[Kind.VOICE_OTP], created_from=since, labels={"app": "a"})
    assert [job.id for job in found.data] == [otp.id]
    assert [job.id for job in client.list_calls(phone="0901234567").data] == [otp.id]
    with pytest.raises(ValidationFailed) as unknown:
        client.list_calls(**{"colour": "red"})
    assert [e["field"] for e in unknown.value.errors] == ["colour"]
    # A time without an offset is read in TIMEZONE, as intake reads send_at (issue 23).
    assert client.list_calls(created_from=datetime(2030, 1, 1)).data == []
    with pytest.raises(ValidationFailed) as wrong:
        client.list_calls(created_from="tomorrow")
    assert [e["field"] for e in wrong.value.errors] == ["created_from"]


def test_export_streams_to_a_file_and_as_rows(
    client: Any, api_server: ApiServer, tmp_path: Path
) -> None:
    """export_calls writes exactly the API's CSV and counts its rows; iter_export_rows gives them as dicts, hostile labels intact; a refused export creates no file."""
    labels = {"campaign": "x", "note": 'a "quoted", comma; =1+1 ünï'}
    ids = [client.create_record_call(f"090123456{i}", "r", labels=labels).id for i in range(3)]
    path = tmp_path / "calls.csv"
    assert client.export_calls(path, labels={"campaign": "x"}) == 3
    with api_server.client() as http:
        raw = http.get("/v1/calls/export", params={"label": "campaign:x"}).content
    assert path.read_bytes() == raw
    rows = list(client.iter_export_rows(labels={"campaign": "x"}))
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert all(json.loads(row["labels"]) == labels for row in rows)
    refused = tmp_path / "refused.csv"
    with pytest.raises(ValidationFailed):
        client.export_calls(refused, state="no-such-state")
    assert not refused.exists()


def _finished(client: Any, started: BulkOperation) -> BulkOperation:
    """get_bulk_operation until the action is no longer running (20 s at most)."""
    deadline = time.monotonic() + 20
    while (op := client.get_bulk_operation(started.id)).state == "running":
        assert time.monotonic() < deadline, op
        time.sleep(0.05)
    return op


def test_bulk_actions_cancel_scheduled_calls_and_requeue_dead_letters(
    client: Any, redis_url: str
) -> None:
    """cancel_scheduled_calls cancels exactly a campaign's scheduled calls (its queued call and another campaign's stay), each with the reason in its history; requeue_dead_letters reopens a queue's dead letters (failed -> queued, the list emptied); get_bulk_operation reads each record to done with its counts, and an unknown id is NotFound."""
    later = LATER.isoformat()
    batch = client.create_batch(
        [{"kind": "record_call", "phone": f"090100000{i}", "record_id": "r", "send_at": later}
         for i in range(3)],
        campaign="bulk-lib",
    )  # fmt: skip
    targets = [item.job.id for item in batch.results]
    queued = client.create_record_call("0901000009", "r", labels={"campaign": "bulk-lib"})
    other = client.create_record_call(
        "0901000008", "r", send_at=LATER, labels={"campaign": "other"}
    )
    started = client.cancel_scheduled_calls(labels={"campaign": "bulk-lib"}, reason="by lib")
    assert isinstance(started, BulkOperation)
    assert (started.action, started.total, started.target, started.by) == (
        "cancel", 3, "scheduled calls with label=campaign:bulk-lib", queued.client,
    )  # fmt: skip
    cancel = _finished(client, started)
    assert (cancel.id, cancel.state, cancel.error) == (started.id, "done", None)
    assert (cancel.processed, cancel.changed, cancel.skipped) == (3, 3, 0)
    assert cancel.finished_at is not None and cancel.finished_at >= cancel.started_at
    for job_id in targets:
        job = client.get_call(job_id)
        assert job.state is State.CANCELLED and job.history[-1].note == "by lib"
    assert client.get_call(queued.id).state is State.QUEUED
    assert client.get_call(other.id).state is State.SCHEDULED

    store = JobStore.from_url(redis_url)
    with closing(store):
        dead = [f"dead-{n}" for n in range(2)]
        for job_id in dead:
            steps.create(store, job_id, "record_call")
            steps.claim(store, job_id)
            failed = lifecycle.fail(job_id, queue=keys.QUEUE_BULK, error={"code": "x"}, note="t")
            store.apply(failed)
        assert sorted(i for i, _ in store.dead_letters(keys.QUEUE_BULK)) == dead
        assert {client.get_call(job_id).state for job_id in dead} == {State.FAILED}
        started = client.requeue_dead_letters(keys.QUEUE_BULK)
        assert (started.action, started.total, started.target) == (
            "requeue", 2, f"dead letters of {keys.QUEUE_BULK}",
        )  # fmt: skip
        requeue = _finished(client, started)
        assert (requeue.state, requeue.processed, requeue.changed, requeue.skipped) == (
            "done", 2, 2, 0,
        )  # fmt: skip
        assert store.dead_letters(keys.QUEUE_BULK) == []
    assert {client.get_call(job_id).state for job_id in dead} == {State.QUEUED}
    with pytest.raises(NotFound) as missing:
        client.get_bulk_operation("0123456789abcdef")
    assert missing.value.status == 404


def test_the_probes(client: Any) -> None:
    """alive() and ready() are True against a running API with Redis."""
    assert client.alive() is True
    assert client.ready() is True


def test_a_sent_call_is_found_by_smsid_and_its_webhook_verifies(
    stack_factory: Callable[..., Stack],
) -> None:
    """Through a worker and the simulator: both clients find the job by its SMSID, and verify_webhook accepts the worker's signed delivery, and refuses it altered."""
    receiver = Receiver(answer(200))
    try:
        stack = stack_factory(webhook_allowed_hosts="127.0.0.1")
        stack.start_worker(processes=1)
        with open_client("sync", stack.api_url, stack.token) as client:
            job = client.create_otp_call("0901234567", "Ma 1", webhook_url=receiver.url())
        final = stack.wait_final([job.id])[job.id]
        assert final.smsid is not None
        for flavour in FLAVOURS:
            with open_client(flavour, stack.api_url, stack.token) as client:
                assert client.find_by_smsid(final.smsid).id == job.id
        wait_until(lambda: receiver.received, 30, what="the webhook")
    finally:
        receiver.close()
    delivery = receiver.received[0]
    event = verify_webhook(delivery.headers, delivery.body, WEBHOOK_SECRET)
    assert (event.job.id, event.job.state) == (job.id, final.state)
    assert event.id == delivery.headers["webhook-id"]
    with pytest.raises(InvalidWebhook):
        verify_webhook(delivery.headers, delivery.body.replace(b'"', b"'", 1), WEBHOOK_SECRET)


def _run_example(name: str, api_server: ApiServer) -> list[str]:
    env = {**os.environ, "VOICECALL_URL": api_server.base_url, "VOICECALL_TOKEN": api_server.token}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_readmes_quickstart_is_the_example_and_runs(api_server: ApiServer) -> None:
    """The README's integration section opens with examples/quickstart.py, in under ten lines with its install; run with only VOICECALL_URL and VOICECALL_TOKEN, it enqueues an OTP. The asyncio example runs a campaign."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Submitting calls") :]
    shell, python = re.findall(r"```(?:sh|python)\n(.*?)```", section, re.S)[:2]
    example = (ROOT / "examples" / "quickstart.py").read_text()
    assert example.endswith(python)
    assert len([line for line in (shell + python).splitlines() if line.strip()]) < 10
    job_line, state_line = _run_example("quickstart.py", api_server)
    assert job_line.endswith(" queued") and state_line == "queued"
    lines = _run_example("quickstart_async.py", api_server)
    assert lines[0] == "3 accepted, 0 refused" and lines[-1] == "0.0"
    assert len(lines) == 5

"""The callback route refuses what it should (issue 10, §1, §6, §8), against real processes:
the API (uvicorn), Dramatiq workers, Redis and the eSMS simulator over HTTP.

Each refusal is checked the same way: the answer's status and the field it names, then the
job's stored document and the set of voicecall keys, byte for byte the same as before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.stack import Stack, wait_until
from tests.fixtures.webhook_receiver import Receiver, answer
from voicecall import keys, lifecycle
from voicecall.jobs import Outcome, State

RECORD = {"kind": "record_call", "record_id": "rec1"}


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    server = Receiver(answer(200))
    yield server
    server.close()


# Keys that come and go on their own clock whatever a callback does: the rate limiters'
# windows (vc:limit:..., they expire), the balance refresh's lock and reading, heartbeats.
_LIMITS = keys.GLOBAL_LIMIT.rsplit(":", 1)[0] + ":"
_OWN_CLOCK = (_LIMITS, keys.BALANCE_LOCK, keys.ESMS_BALANCE, keys.WORKERS)


def _snapshot(stack: Stack, job_id: str) -> tuple[str | None, list[str]]:
    """The job's stored document and every voicecall key but those on their own clock
    (Dramatiq's keys are left out too: workers write heartbeats and acks on their own)."""
    raw = stack.redis_client.get(keys.job(job_id))
    found = stack.redis_client.scan_iter(match=f"{keys.PREFIX}*", count=1000)
    return raw, sorted(key for key in found if not key.startswith(_OWN_CLOCK))


def _callback_counts(stack: Stack) -> dict[str, float]:
    text = httpx.get(f"{stack.api_url}/metrics", timeout=5).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "voicecall_callbacks":
            for sample in family.samples:
                if sample.name == "voicecall_callbacks_total":
                    counts[sample.labels["result"]] = sample.value
    return counts


def _no_nan(constant: str) -> Any:
    raise AssertionError(f"{constant} in a JSON body")


def _voice(smsid: str, **fields: str) -> dict[str, str]:
    """A voice callback's query as eSMS sends it (an answered call unless overridden)."""
    base = {
        "ReferenceId": smsid,
        "CallDuration": "13",
        "CallStatus": "ANSWERED",
        "Ivr": "",
        "Price": "850.0000",
        "SentResult": "1",
        "CID": "02871002454",
        "SendStatus": "5",
    }
    return {**base, **fields}


BAD_NUMBERS = [
    ("Price", "nan"),
    ("Price", "NaN"),
    ("Price", "inf"),
    ("Price", "-inf"),
    ("Price", "-5"),
    ("Price", "1e309"),
    ("Price", "9" * 5000),
    ("Price", "abc"),
    ("CallDuration", "nan"),
    ("CallDuration", "inf"),
    ("CallDuration", "-1"),
    ("CallDuration", "86401"),
    ("CallDuration", "1e309"),
    ("CallDuration", "9" * 5000),
]


def test_forged_reports_and_bad_numbers_change_nothing(
    stack_factory: Callable[..., Stack], receiver: Receiver
) -> None:
    """On a submitted call: a report about another SMSID (final or not), or about none, gets
    403 and is counted as smsid_mismatch; a non-finite or out-of-range Price/CallDuration and an 8 KB
    ReferenceId get 400 naming the field; none of them changes the job or creates a key.
    The genuine callback then completes the job, GET answers 200, and the webhook body is
    strict JSON (no NaN) with eSMS's figures."""
    stack = stack_factory(poll_margin_s=600, webhook_allowed_hosts="127.0.0.1")
    stack.sim.configure(callback_drop_rate=1.0)  # only the callbacks this test sends arrive
    stack.start_worker()
    body = {**RECORD, "phone": "0901234568", "webhook_url": receiver.url()}
    job_id = stack.post_call(body)["id"]
    wait_until(lambda: stack.job(job_id).state is State.SUBMITTED, 15, what="submitted")
    smsid = stack.job(job_id).smsid
    assert smsid
    url = stack.callback_url(job_id)
    before = _snapshot(stack, job_id)
    counts_before = _callback_counts(stack)

    forged = _voice("0bad0bad-0000-4000-8000-000000000000", CallDuration="3600", Price="99999999")
    missing = {k: v for k, v in forged.items() if k != "ReferenceId"}
    not_yet = _voice("0bad0bad-0000-4000-8000-000000000000", SendStatus="2", CallStatus="")
    for query in (forged, missing, not_yet):
        response = httpx.get(url, params=query)
        assert response.status_code == 403, response.text
        assert "SMSID" in response.json()["message"]
    for field, value in BAD_NUMBERS:
        response = httpx.get(url, params=_voice(smsid, **{field: value}))
        assert response.status_code == 400, (field, value, response.text)
        assert response.json()["message"].startswith(field), response.json()
    response = httpx.get(url, params=_voice("a" * 8192))
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("ReferenceId")
    assert _snapshot(stack, job_id) == before
    counts = _callback_counts(stack)
    assert counts["smsid_mismatch"] - counts_before["smsid_mismatch"] == 3
    assert counts["invalid"] - counts_before["invalid"] == len(BAD_NUMBERS) + 1
    assert counts["accepted"] == counts_before["accepted"]

    assert httpx.get(url, params=_voice(smsid)).json() == {"result": "accepted"}
    with stack.http() as http:
        view = http.get(f"/v1/calls/{job_id}")
    assert view.status_code == 200
    assert (view.json()["state"], view.json()["outcome"]) == ("completed", "answered")
    wait_until(lambda: receiver.received, 20, what="the webhook")
    sent = json.loads(receiver.received[-1].body, parse_constant=_no_nan)
    assert (sent["call"]["duration_s"], sent["call"]["price_vnd"]) == (13, 850.0)


def test_a_callback_cannot_repoint_another_jobs_smsid(stack_factory: Callable[..., Stack]) -> None:
    """A scheduled job's signed URL reporting a submitted job's SMSID gets 403; the SMSID
    lookup still names the submitted job and no key is created."""
    stack = stack_factory(poll_margin_s=600)
    stack.sim.configure(callback_drop_rate=1.0)
    stack.start_worker()
    sent = stack.post_call({**RECORD, "phone": "0901234568"})["id"]
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    held = stack.post_call({**RECORD, "phone": "0901234569", "send_at": later})["id"]
    wait_until(lambda: stack.job(sent).state is State.SUBMITTED, 15, what="submitted")
    smsid = stack.job(sent).smsid
    assert (
        smsid and stack.redis_client.hget(keys.smsid_bucket(smsid), keys.smsid_field(smsid)) == sent
    )
    before = _snapshot(stack, held)
    response = httpx.get(stack.callback_url(held), params=_voice(smsid))
    assert response.status_code == 403
    assert stack.redis_client.hget(keys.smsid_bucket(smsid), keys.smsid_field(smsid)) == sent
    assert _snapshot(stack, held) == before
    with stack.http() as http:
        assert http.get(f"/v1/calls/by-smsid/{smsid}").json()["id"] == sent


def test_an_old_url_dies_with_its_job(stack_factory: Callable[..., Stack]) -> None:
    """A job purged and created again under the same id has a new nonce: the URL of the old
    job gets 403, even with the new call's own SMSID, and the new job stays submitted."""
    stack = stack_factory(poll_margin_s=600)
    stack.start_worker()
    body = {**RECORD, "id": "reused-1", "phone": "0901234568"}
    stack.post_call(body)
    old = stack.wait_final(["reused-1"], timeout=20)["reused-1"]
    old_url = stack.callback_url("reused-1")
    assert "result by callback" in stack.notes("reused-1")
    purge = lifecycle.purge(old, "reused-1")
    assert stack.store.apply(purge, now=time.time() + 10**9).verdict == "purged"

    stack.sim.reset()  # eSMS has forgotten the RequestId (its 24 h are over)
    stack.sim.configure(callback_drop_rate=1.0)
    stack.post_call(body)
    wait_until(lambda: stack.job("reused-1").state is State.SUBMITTED, 15, what="submitted")
    new = stack.job("reused-1")
    assert new.callback_nonce != old.callback_nonce and new.smsid
    before = _snapshot(stack, "reused-1")
    for smsid in (new.smsid, old.smsid or ""):
        assert httpx.get(old_url, params=_voice(smsid)).status_code == 403
    assert _snapshot(stack, "reused-1") == before
    assert httpx.get(stack.callback_url("reused-1"), params=_voice(new.smsid)).status_code == 200
    assert stack.job("reused-1").state is State.COMPLETED


def test_callback_confirm_status_ends_with_esms_result(stack_factory: Callable[..., Stack]) -> None:
    """CALLBACK_CONFIRM=status: a validly signed callback claiming ANSWERED (with the right
    SMSID) for a call that rang unanswered, and one for a call the carrier never delivered,
    are answered 200 `confirming`; one status request each confirms them, and the jobs end
    with eSMS's own results (not_answered, undelivered), none of the claimed figures kept."""
    stack = stack_factory(callback_confirm="status", poll_margin_s=600)
    stack.sim.configure(callback_drop_rate=1.0)
    stack.start_worker()
    rang = stack.post_call({**RECORD, "phone": "0901234561"})["id"]  # rings unanswered
    failed = stack.post_call({**RECORD, "phone": "0901234562"})["id"]  # carrier failure
    for job_id in (rang, failed):
        wait_until(lambda j=job_id: stack.job(j).state is State.SUBMITTED, 15, what="submitted")
        claim = _voice(stack.job(job_id).smsid or "", CallDuration="3600", Price="99999999")
        response = httpx.get(stack.callback_url(job_id), params=claim)
        assert response.json() == {"result": "confirming"}, response.text
        assert "confirming with eSMS" in stack.notes(job_id)
    jobs = stack.wait_final([rang, failed], timeout=30)
    assert (jobs[rang].state, jobs[rang].outcome) == (State.COMPLETED, Outcome.NOT_ANSWERED)
    assert (jobs[failed].state, jobs[failed].outcome) == (State.COMPLETED, Outcome.UNDELIVERED)
    for job_id, job in jobs.items():
        assert "confirming a callback" in stack.notes(job_id)
        assert job.call is None or (job.call.duration_s, job.call.price_vnd) != (3600, 99999999)
        assert stack.sim.call(job.smsid or "")["status_requests"] >= 1
    assert _callback_counts(stack)["confirming"] == 2


def test_otp_callbacks_are_held_to_the_same_rules(stack_factory: Callable[..., Stack]) -> None:
    """A Voice OTP's SMS-style callback: another SMSID gets 403; a non-finite or negative
    TotalPrice, SendSuccess or SendFailed gets 400 naming it; nothing changes. Its own
    SMSID then completes it delivered."""
    stack = stack_factory(poll_margin_s=600)
    stack.sim.configure(callback_drop_rate=1.0)
    stack.start_worker()
    job_id = stack.post_call({"kind": "voice_otp", "phone": "0901234567", "content": "Ma 1"})["id"]
    wait_until(lambda: stack.job(job_id).state is State.SUBMITTED, 15, what="submitted")
    smsid = stack.job(job_id).smsid or ""
    url = stack.callback_url(job_id)
    sms = {"SMSID": smsid, "SendFailed": "0", "SendStatus": "5", "SendSuccess": "1"}
    sms |= {"TotalPrice": "850.0000", "TotalReceiver": "1", "TotalSent": "1", "RequestId": ""}
    before = _snapshot(stack, job_id)
    assert httpx.get(url, params=sms | {"SMSID": "another-smsid-0001"}).status_code == 403
    for field, value in [
        ("TotalPrice", "nan"),
        ("TotalPrice", "-1"),
        ("TotalPrice", "1e309"),
        ("SendSuccess", "inf"),
        ("SendSuccess", "-1"),
        ("SendFailed", "nan"),
    ]:
        response = httpx.get(url, params=sms | {field: value})
        assert response.status_code == 400, (field, value, response.text)
        assert response.json()["message"].startswith(field)
    assert _snapshot(stack, job_id) == before
    assert httpx.get(url, params=sms).json() == {"result": "accepted"}
    job = stack.job(job_id)
    assert (job.state, job.outcome) == (State.COMPLETED, Outcome.DELIVERED)

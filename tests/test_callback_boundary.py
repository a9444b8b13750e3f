"""The callback route refuses what it should (issue 10, §1, §6, §8), and only eSMS decides a
result by default (issue 18, §3), against real processes: the API (uvicorn), Dramatiq
workers, Redis and the eSMS simulator over HTTP.

Each refusal is checked the same way: the answer's status and the field it names, then the
job's stored document and the set of voicecall keys, byte for byte the same as before.
Tests of the CALLBACK_CONFIRM=off opt-out set it explicitly; the others run the default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.stack import Service, Stack, wait_until
from tests.fixtures.webhook_receiver import Receiver, answer
from voicecall.job import keys, upkeep
from voicecall.job.states import Outcome, State

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


def _callback_counts(stack: Stack, worker: Service | None = None) -> dict[str, float]:
    """``voicecall_callbacks_total`` by result, from the API (or from ``worker``'s metrics,
    where the send answer settles held reports)."""
    port = worker.env["METRICS_PORT"] if worker is not None else None
    url = f"http://127.0.0.1:{port}/metrics" if port else f"{stack.api_url}/metrics"
    text = httpx.get(url, timeout=5).text
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
    ("CallStatus", "ANSWERED" * 600),
]


def test_forged_reports_and_bad_numbers_change_nothing(
    stack_factory: Callable[..., Stack], receiver: Receiver
) -> None:
    """On a submitted call: a report about another SMSID (final or not), or about none, gets
    403 and is counted as smsid_mismatch; a non-finite or out-of-range Price/CallDuration and an 8 KB
    ReferenceId get 400 naming the field; none of them changes the job or creates a key.
    With CALLBACK_CONFIRM=off, the genuine callback then completes the job, GET answers 200,
    and the webhook body is strict JSON (no NaN) with eSMS's figures."""
    stack = stack_factory(
        callback_confirm="off", poll_margin_s=600, webhook_allowed_hosts="127.0.0.1"
    )
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
    job gets 403, even with the new call's own SMSID, and the new job stays submitted
    (CALLBACK_CONFIRM=off, so its own URL's callback ends it at once)."""
    stack = stack_factory(callback_confirm="off", poll_margin_s=600)
    stack.start_worker()
    body = {**RECORD, "id": "reused-1", "phone": "0901234568"}
    stack.post_call(body)
    old = stack.wait_final(["reused-1"], timeout=20)["reused-1"]
    old_url = stack.callback_url("reused-1")
    assert "result by callback" in stack.notes("reused-1")
    purge = upkeep.purge(old, "reused-1")
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
    """The default (CALLBACK_CONFIRM=status): a validly signed callback claiming ANSWERED (with
    the right SMSID) for a call that rang unanswered, and one for a call the carrier never
    delivered, are answered 200 `confirming`; one status request each confirms them, and the
    jobs end with eSMS's own results (not_answered, undelivered), none of the claimed figures
    kept."""
    stack = stack_factory(poll_margin_s=600)
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


def test_a_leaked_url_and_smsid_cannot_set_the_result_by_default(
    stack_factory: Callable[..., Stack],
) -> None:
    """Finding 3, first attack, with the default settings: a leaked callback URL plus the
    job's SMSID (which any API client can read) forging `ANSWERED, 86400 s, Price 1e12` for
    a call that rang unanswered is answered `confirming`, sends one status request, and the
    job ends with eSMS's real result; the campaign's cost and duration stay eSMS's (0)."""
    stack = stack_factory(poll_margin_s=600)
    stack.sim.configure(callback_drop_rate=1.0)  # only the forged callback arrives
    stack.start_worker()
    body = {**RECORD, "phone": "0901234561", "labels": {"campaign": "leak"}}
    job_id = stack.post_call(body)["id"]
    wait_until(lambda: stack.job(job_id).state is State.SUBMITTED, 15, what="submitted")
    with stack.http() as http:
        smsid = http.get(f"/v1/calls/{job_id}").json()["smsid"]
    stack.sim.wait_finished(smsid)  # so eSMS's status is final when the poll asks
    forged = _voice(smsid, CallDuration="86400", Price="1e12")
    answers = [httpx.get(stack.callback_url(job_id), params=forged).json() for _ in range(3)]
    assert answers[0] == {"result": "confirming"}
    assert {a["result"] for a in answers[1:]} <= {"confirming", "repeat"}  # no second poll
    job = stack.wait_final([job_id], timeout=30)[job_id]
    assert (job.state, job.outcome) == (State.COMPLETED, Outcome.NOT_ANSWERED)
    assert job.call is None or (job.call.duration_s, job.call.price_vnd) != (86400, 1e12)
    with stack.http() as http:
        campaign = http.get("/v1/campaigns/leak").json()
    assert (campaign["cost_vnd"], campaign["duration_s"], campaign["answered"]) == (0, 0, 0)
    assert campaign["by_outcome"]["not_answered"] == 1
    assert stack.sim.call(smsid)["status_requests"] == 1


def test_a_forged_smsid_on_a_sending_job_is_not_kept(stack_factory: Callable[..., Stack]) -> None:
    """Finding 3, second attack: while eSMS's answer is on its way (withheld 5 s) the job is
    `sending` and its URL alone reaches it. Callbacks naming forged SMSIDs are held (200
    `held`), never kept as the SMSID; past 3 distinct ones a 4th gets 429 `hold_full` with
    Retry-After, and a repeat is not kept twice. eSMS's answer then names the real SMSID:
    the job is submitted with it, the 3 held reports are refused and counted smsid_mismatch
    by the worker, and the job ends with eSMS's real result by status poll."""
    stack = stack_factory(esms_read_timeout_s=15, esms_attempt_budget_s=20, send_lease_s=30)
    stack.sim.configure(callback_drop_rate=1.0, accept_then_hang_rate=1.0, hang_s=5.0)
    worker = stack.start_worker()
    job_id = stack.post_call({**RECORD, "phone": "0901234568"})["id"]
    wait_until(lambda: stack.sim.calls(), 10, what="eSMS accepted the call (answer withheld)")
    url = stack.callback_url(job_id)
    forged = [
        _voice(f"0bad0bad-0000-4000-8000-00000000000{i}", CallDuration="86400", Price="1e12")
        for i in range(4)
    ]
    answers = [httpx.get(url, params=query) for query in forged]
    assert [a.status_code for a in answers] == [200, 200, 200, 429], answers[-1].text
    assert [a.json().get("result") for a in answers[:3]] == ["held"] * 3
    assert answers[3].json()["error"] == "hold_full" and int(answers[3].headers["Retry-After"]) > 0
    assert httpx.get(url, params=forged[0]).json() == {"result": "held"}
    held = stack.job(job_id)
    assert (held.state, held.smsid, len(held.held_reports or [])) == (State.SENDING, None, 3)
    counts = _callback_counts(stack)
    assert (counts["held"], counts["hold_full"]) == (4, 1)

    job = stack.wait_final([job_id], timeout=30)[job_id]
    [call] = stack.sim.calls()
    assert (job.state, job.outcome, job.smsid) == (State.COMPLETED, Outcome.ANSWERED, call["smsid"])
    assert job.call is None or (job.call.duration_s, job.call.price_vnd) != (86400, 1e12)
    assert job.held_reports is None
    notes = stack.notes(job_id)
    assert "3 held callback report(s) about another SMSID refused" in notes
    assert "result by status poll" in notes
    assert stack.store.id_for_smsid(forged[0]["ReferenceId"]) is None
    assert _callback_counts(stack, worker)["smsid_mismatch"] == 3


def test_an_early_genuine_callback_is_held_then_confirmed_once(
    stack_factory: Callable[..., Stack],
) -> None:
    """eSMS calls back before its send answer returns (the simulator withholds the answer
    until its callback was answered): the API holds it (200 `held`); the answer names the
    SMSID, the held report matches and, with the default CALLBACK_CONFIRM=status, sends its
    one status request in the same step; the job ends with eSMS's result, counted once."""
    stack = stack_factory(
        esms_read_timeout_s=10, esms_attempt_budget_s=15, send_lease_s=30, poll_margin_s=600
    )
    stack.sim.configure(callback_before_answer_rate=1.0, hang_s=10.0)
    worker = stack.start_worker()
    body = {**RECORD, "phone": "0901234568", "labels": {"campaign": "early"}}
    job_id = stack.post_call(body)["id"]
    job = stack.wait_final([job_id], timeout=30)[job_id]
    [call] = stack.sim.calls()
    assert [attempt["status_code"] for attempt in call["callbacks"]] == [200]
    assert stack.sim.stats()["faults"]["callback_before_answer"] == 1
    assert (job.state, job.outcome, job.smsid) == (State.COMPLETED, Outcome.ANSWERED, call["smsid"])
    submitted = next(h for h in job.history if h.state is State.SUBMITTED)
    confirming = next(h for h in job.history if h.note and "confirming with eSMS" in h.note)
    assert confirming.at == submitted.at  # in the step that recorded eSMS's answer
    assert "confirming a callback" in stack.notes(job_id)
    assert stack.sim.call(call["smsid"])["status_requests"] == 1
    assert _callback_counts(stack)["held"] == 1
    assert _callback_counts(stack, worker)["held_applied"] == 1
    with stack.http() as http:
        campaign = http.get("/v1/campaigns/early").json()
    assert (campaign["answered"], campaign["finished"], campaign["total"]) == (1, 1, 1)


def test_with_confirm_off_an_early_callback_is_applied_by_the_send_answer(
    stack_factory: Callable[..., Stack],
) -> None:
    """CALLBACK_CONFIRM=off: an early callback is held the same way and applied by the step
    that records eSMS's answer: the job ends with the callback's figures, without any status
    request, its cost counted once."""
    stack = stack_factory(
        callback_confirm="off",
        esms_read_timeout_s=10,
        esms_attempt_budget_s=15,
        send_lease_s=30,
        poll_margin_s=600,
    )
    stack.sim.configure(callback_before_answer_rate=1.0, hang_s=10.0)
    worker = stack.start_worker()
    body = {**RECORD, "phone": "0901234568", "labels": {"campaign": "early-off"}}
    job_id = stack.post_call(body)["id"]
    job = stack.wait_final([job_id], timeout=30)[job_id]
    [call] = stack.sim.calls()
    assert (job.state, job.outcome, job.smsid) == (State.COMPLETED, Outcome.ANSWERED, call["smsid"])
    assert "result by callback, held until eSMS named the SMSID" in stack.notes(job_id)
    assert job.call is not None and job.call.price_vnd == 850.0
    assert stack.sim.call(call["smsid"])["status_requests"] == 0
    assert _callback_counts(stack, worker)["held_applied"] == 1
    with stack.http() as http:
        campaign = http.get("/v1/campaigns/early-off").json()
    assert (campaign["answered"], campaign["cost_vnd"]) == (1, 850.0)


def test_otp_callbacks_are_held_to_the_same_rules(stack_factory: Callable[..., Stack]) -> None:
    """A Voice OTP's SMS-style callback: another SMSID gets 403; a non-finite or negative
    TotalPrice, SendSuccess or SendFailed gets 400 naming it; nothing changes. Its own
    SMSID then has eSMS confirm it (the default), and the job ends delivered."""
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
    assert httpx.get(url, params=sms).json() == {"result": "confirming"}
    job = stack.wait_final([job_id], timeout=20)[job_id]
    assert (job.state, job.outcome) == (State.COMPLETED, Outcome.DELIVERED)
    assert "confirming a callback" in stack.notes(job_id)

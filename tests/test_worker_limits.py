"""Retries exhausted and dead letters, rate limits, quiet hours and the outbound webhook."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
import standardwebhooks

from tests.fixtures.redis import free_port
from tests.fixtures.stack import Stack, producer_client, wait_until
from tests.fixtures.webhook_receiver import Receiver, after, answer
from voicecall.job import keys
from voicecall.job.states import State


def _voicecall(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicecall.cli", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exhausted_retries_fail_the_job_and_dlq_requeue_completes_it(
    stack_factory: Callable[..., Stack],
) -> None:
    """Every attempt gets HTTP 500: the job ends `failed`, its message is dead-lettered; a requeue
    after eSMS recovers completes it with one call."""
    stack = stack_factory(send_max_retries=2)
    stack.sim.configure(error_rate=1.0, fault_scope="send")
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    job = stack.wait_final([job_id], timeout=40)[job_id]
    assert (job.state, job.attempts) == (State.FAILED, 3)
    listing = wait_until(
        lambda: _voicecall(stack, "dlq", "list").stdout.strip(), 10, what="a dead letter"
    )
    letter = json.loads(listing.splitlines()[0])
    assert (letter["id"], letter["queue"], letter["state"]) == (job_id, "voicecall-bulk", "failed")
    assert job_id in _voicecall(stack, "dlq", "show", letter["id"]).stdout
    stack.sim.configure(error_rate=0.0)
    requeued = _voicecall(stack, "dlq", "requeue", letter["id"])
    assert requeued.returncode == 0, requeued.stderr
    job = stack.wait_final([job_id], timeout=30)[job_id]
    assert job.state is State.COMPLETED
    assert _voicecall(stack, "dlq", "list").stdout.strip() == ""
    assert len(stack.sim.calls()) == 1


def test_per_phone_limit_rejects_otp_and_defers_bulk_without_spending_retries(
    stack_factory: Callable[..., Stack],
) -> None:
    """Over 2 calls per window to one phone: the third OTP is rejected `rate_limited`, a bulk call waits."""
    stack = stack_factory(phone_limit_calls=2, phone_limit_window_s=3600)
    stack.start_worker()
    client = producer_client(stack)
    otps = [client.enqueue_otp("0901234567", f"Ma {i}").id for i in range(2)]
    stack.wait_final(otps, timeout=20)
    third = client.enqueue_otp("0901234567", "Ma 3").id
    bulk = client.enqueue_record("0901234567", "rec1").id
    job = stack.wait_final([third], timeout=20)[third]
    assert (job.state, job.reason) == (State.REJECTED, "rate_limited")
    wait_until(lambda: stack.job(bulk).state is State.SCHEDULED, 10, what="bulk call held back")
    held = stack.job(bulk)
    assert (held.reason, held.attempts) == ("phone_rate_limit", 0)
    assert len(stack.sim.calls()) == 2


def test_quiet_hours_hold_bulk_calls_but_not_otp(stack_factory: Callable[..., Stack]) -> None:
    """During quiet hours a bulk call waits in the schedule until they end; an OTP goes out at once."""
    stack = stack_factory(quiet_hours="00:00-23:59", timezone="UTC")
    stack.start_worker()
    client = producer_client(stack)
    bulk = client.enqueue_template("0901234569", "t1", ["a"]).id
    otp = client.enqueue_otp("0901234567", "Ma 123456").id
    assert stack.wait_final([otp], timeout=20)[otp].state is State.COMPLETED
    wait_until(lambda: stack.job(bulk).state is State.SCHEDULED, 10, what="bulk call held")
    held = stack.job(bulk)
    assert (held.reason, held.attempts) == ("quiet_hours", 0)
    assert held.due_at <= stack.redis_client.zscore("vc:schedule", bulk)
    assert [c["kind"] for c in stack.sim.calls()] == ["otp"]


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        failing = len(type(self).received) <= type(self).fail_first
        self.send_response(500 if failing else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def webhook_receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "fail_first": 1})
    server = HTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", handler
    server.shutdown()


def test_webhook_delivers_the_final_job_signed_and_retries_failures(
    stack_factory: Callable[..., Stack], webhook_receiver: tuple[str, type[_Receiver]]
) -> None:
    """The final job is POSTed signed per Standard Webhooks (verified with the stock library,
    under WEBHOOK_SECRET); a 500 is retried with the same webhook-id; the job is unchanged."""
    url, receiver = webhook_receiver
    stack = stack_factory(webhook_allowed_hosts="127.0.0.1")  # the receiver is local
    stack.start_worker()
    job_id = stack.post_call(
        {"kind": "record_call", "phone": "0901234568", "record_id": "rec1", "webhook_url": url}
    )["id"]
    stack.wait_final([job_id], timeout=20)
    wait_until(lambda: len(receiver.received) >= 2, 20, what="webhook retried and delivered")
    (first_headers, _), (headers, body) = receiver.received[0], receiver.received[-1]
    sent = standardwebhooks.Webhook(stack.env["WEBHOOK_SECRET"]).verify(body, headers)
    assert (sent["id"], sent["state"], sent["outcome"]) == (job_id, "completed", "answered")
    assert headers["webhook-id"] == first_headers["webhook-id"]
    assert "authorization" not in {name.lower() for name in headers}
    assert stack.job(job_id).state is State.COMPLETED


def test_webhook_to_an_internal_address_is_refused_and_not_retried(
    stack_factory: Callable[..., Stack], webhook_receiver: tuple[str, type[_Receiver]]
) -> None:
    """An API that lets internal URLs in (WEBHOOK_ALLOW_PRIVATE) in front of workers with the
    default policy: the worker refuses the address at delivery, records the attempt, gives up
    at once (a dead letter of the webhooks), and the job stays completed."""
    url, receiver = webhook_receiver
    stack = stack_factory(api_env={"WEBHOOK_ALLOW_PRIVATE": "true"})
    worker = stack.start_worker()
    job_id = stack.post_call(
        {"kind": "record_call", "phone": "0901234568", "record_id": "rec1", "webhook_url": url}
    )["id"]
    stack.wait_final([job_id], timeout=20)
    wait_until(lambda: '"webhook_given_up"' in worker.log_text(), 20, what="webhook refused")
    assert '"error": "refused_address"' in worker.log_text()
    assert receiver.received == []
    job = stack.job(job_id)
    assert job.state is State.COMPLETED
    assert job.webhook is not None and job.webhook.state == "gave_up"
    assert [d.error for d in job.webhook.deliveries] == ["refused_address"]
    assert stack.redis_client.zscore(keys.dead_letters(keys.QUEUE_WEBHOOKS), job_id) is not None


def test_attempts_that_die_without_an_answer_are_bounded(
    stack_factory: Callable[..., Stack],
) -> None:
    """eSMS hangs past the actor's time limit on every try: the job ends `failed` after
    SEND_MAX_RETRIES + 1 claims instead of being re-driven forever."""
    stack = stack_factory(
        send_max_retries=1,
        send_time_limit_s=5,
        send_lease_s=5,
        sweep_stale_queued_s=1,
        redrive_after_s=3,  # the sweeper looks at a claimed job every 3 s
        esms_read_timeout_s=30,
        esms_attempt_budget_s=60,
    )
    stack.sim.configure(timeout_rate=1.0, hang_s=30, fault_scope="send")
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    job = stack.wait_final([job_id], timeout=60)[job_id]
    assert (job.state, job.reason, job.attempts) == (State.FAILED, "attempts_exhausted", 2)


def test_dlq_purge_removes_dead_letters_and_leaves_jobs_failed(
    stack_factory: Callable[..., Stack],
) -> None:
    """`voicecall dlq purge --all` empties the dead-letter queues; the failed job stays failed."""
    stack = stack_factory(send_max_retries=0)
    stack.sim.configure(error_rate=1.0, fault_scope="send")
    stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "rec1"})[
        "id"
    ]
    assert stack.wait_final([job_id], timeout=30)[job_id].state is State.FAILED
    wait_until(lambda: _voicecall(stack, "dlq", "list").stdout.strip(), 10, what="a dead letter")
    purged = _voicecall(stack, "dlq", "purge", "--all")
    assert (purged.returncode, purged.stdout.strip()) == (0, "purged 1 dead letters")
    assert _voicecall(stack, "dlq", "list").stdout.strip() == ""
    assert _voicecall(stack, "dlq", "requeue", "no-such-id").returncode == 1
    assert stack.job(job_id).state is State.FAILED


def test_a_full_webhooks_pool_holds_no_thread_an_otp_needs(
    stack_factory: Callable[..., Stack],
) -> None:
    """One thread, one webhook slot held by a receiver that never answers, a 30 s slot wait:
    more webhook messages return at once (their due set brings them back), so an OTP enqueued
    behind them is sent well before a thread waiting for a webhook slot would be free."""
    receiver = Receiver(after(120, answer(200)))
    try:
        stack = stack_factory(
            webhook_allowed_hosts="127.0.0.1",
            webhook_concurrency=1,
            webhook_timeout_s=120,
            handoff_wait_s=30,
        )
        stack.start_worker(processes=1, threads=1)
        client = producer_client(stack, webhook_allowed_hosts="127.0.0.1")
        ids = [
            client.enqueue_record(f"09012345{i:02d}", "rec1", webhook_url=receiver.url()).id
            for i in range(4, 10)
        ]
        stack.wait_final(ids, timeout=30)
        wait_until(lambda: receiver.received, 20, what="the first delivery holds the slot")
        wait_until(
            lambda: stack.redis.client().llen(f"dramatiq:{keys.QUEUE_WEBHOOKS}") == 0,
            20,
            what="every webhook message taken",
        )
        otp = client.enqueue_otp("0909876544", "Ma xac thuc 123456").id
        wait_until(lambda: stack.sim.calls(request_id=otp), 15, what="the OTP sent")
        assert len(receiver.received) == 1  # the other deliveries wait for the slot
    finally:
        receiver.close()


def test_bulk_requests_at_esms_are_capped_and_an_otp_does_not_wait_behind_them(
    stack_factory: Callable[..., Stack],
) -> None:
    """BULK_SEND_CONCURRENCY=2 with eSMS answering in 1 s: 6 record calls reach eSMS two at a
    time (three waves), while an OTP sent with them is answered in the first second."""
    from datetime import datetime

    stack = stack_factory(bulk_send_concurrency=2)
    stack.sim.configure(latency_ms=1000)
    stack.start_worker(threads=4)
    bulk = stack.post_record_calls("09012347", 6)
    otp = stack.post_call({"kind": "voice_otp", "phone": "0901234799", "content": "1"})["id"]
    stack.wait_final([*bulk, otp], timeout=60)
    accepted = {
        str(c["request_id"]): datetime.fromisoformat(str(c["accepted_at"])).timestamp()
        for c in stack.sim.calls()
    }
    # Each bulk request was at eSMS during the second before its answer: never more than 2 at
    # once (the middle of each second, so that waves that touch do not count twice).
    spans = [(accepted[i] - 0.9, accepted[i] - 0.1) for i in bulk]
    most = max(sum(start <= at < end for start, end in spans) for at, _ in spans)
    assert most <= 2, sorted(accepted[i] for i in bulk)
    assert max(accepted[i] for i in bulk) - min(accepted[i] for i in bulk) >= 1.5  # 3 waves
    assert accepted[otp] - stack.job(otp).created_at < 1.8  # not behind the bulk waves


def test_bulk_calls_waiting_for_an_esms_place_keep_their_claim_and_spend_no_retry(
    stack_factory: Callable[..., Stack],
) -> None:
    """One bulk place, eSMS answering in 1 s, an 8 s lease and no retry allowed: 12 calls
    wait their turn, the last past its first lease, renewing their leases. Each is claimed
    once (never retried, never re-driven beside its waiting claim) and called once.

    Waiting for a place once ended in a failed attempt with no call: with SEND_MAX_RETRIES=0
    these jobs ended ``failed``, and a slow eSMS burnt any number of retries in seconds. (The
    read timeout is well above the 1 s, so every answer arrives: a call whose answer timed out
    would get 124 without an SMSID and could only expire at the poll deadline.)"""
    from datetime import datetime

    lease_s = 8
    stack = stack_factory(
        bulk_send_concurrency=1,
        send_lease_s=lease_s,
        esms_attempt_budget_s=3,
        esms_read_timeout_s=2.8,
        send_max_retries=0,
    )
    stack.sim.configure(latency_ms=1000, fault_scope="send")
    stack.start_worker(threads=8)
    ids = stack.post_record_calls("09012348", 12)
    jobs = stack.wait_final(ids, timeout=120)
    assert {
        job.id: (job.state, job.reason) for job in jobs.values() if job.state is not State.COMPLETED
    } == {}
    calls = [str(c["request_id"]) for c in stack.sim.calls()]
    assert sorted(calls) == sorted(ids)  # one call each
    assert {job.id: job.attempts for job in jobs.values()} == dict.fromkeys(ids, 1)
    claimed = {
        job.id: next(h.at for h in job.history if h.state is State.SENDING) for job in jobs.values()
    }
    accepted = {
        str(c["request_id"]): datetime.fromisoformat(str(c["accepted_at"])).timestamp()
        for c in stack.sim.calls()
    }
    waited = max(accepted[job_id] - claimed[job_id] for job_id in ids)
    assert waited > lease_s, waited  # the last call's wait outlived the lease its claim gave

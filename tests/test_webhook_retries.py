"""WEBHOOK_MAX_RETRIES is honoured, and each delivery attempt (its time and HTTP status) shows
in the job's JSON (issue 10 §3), against real processes and a real receiver. Whatever a
receiver answers, and whatever error an attempt meets, the attempt is recorded and counted,
and the webhook ends in the dead letters once its retries are spent (issue 18, finding 2)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.fixtures import raising_webhooks
from tests.fixtures.stack import Stack, wait_until
from tests.fixtures.webhook_receiver import Receiver, answer
from voicecall.job import keys


@pytest.fixture()
def failing() -> Iterator[Receiver]:
    server = Receiver(answer(500))
    yield server
    server.close()


def test_a_failing_receiver_gets_one_try_plus_max_retries_and_the_job_shows_each(
    stack_factory: Callable[..., Stack], failing: Receiver
) -> None:
    """WEBHOOK_MAX_RETRIES=2 and a receiver answering 500: exactly 3 POSTs, then the webhook
    gives up as a dead letter; GET /v1/calls/{id} lists the 3 attempts with their time and
    status 500."""
    stack = stack_factory(webhook_allowed_hosts="127.0.0.1", webhook_max_retries=2)
    stack.start_worker()
    deliveries = give_up_after_retries(stack, failing, retries=2)
    assert [d["status"] for d in deliveries] == [500, 500, 500]
    assert all(d["at"] for d in deliveries)


def give_up_after_retries(
    stack: Stack, receiver: Receiver, retries: int
) -> list[dict[str, object]]:
    """Post one call with a webhook to ``receiver``; wait until the webhook gave up; check it
    got exactly 1 + ``retries`` POSTs and joined the dead letters; its recorded deliveries."""
    body = {"kind": "record_call", "phone": "0901234568", "record_id": "rec1"}
    job_id = stack.post_call({**body, "webhook_url": receiver.url()})["id"]
    stack.wait_final([job_id], timeout=20)

    def given_up() -> bool:
        job = stack.job(job_id)
        return job.webhook is not None and job.webhook.state == "gave_up"

    wait_until(given_up, 30, what="the webhook given up")
    time.sleep(1.5)  # longer than the last retry delay: another attempt would have come
    assert len(receiver.received) == 1 + retries
    dead = stack.store.dead_letters(keys.QUEUE_WEBHOOKS)
    assert [job for job, _ in dead] == [job_id]
    with stack.http() as http:
        view = http.get(f"/v1/calls/{job_id}").json()
    assert view["webhook"]["state"] == "gave_up"
    deliveries: list[dict[str, object]] = view["webhook"]["deliveries"]
    assert len(deliveries) == 1 + retries
    return deliveries


def test_retry_after_superscript_two_is_recorded_counted_and_dead_lettered(
    stack_factory: Callable[..., Stack],
) -> None:
    """A receiver answering 503 with `Retry-After: ²` (passes str.isdigit(), breaks float()):
    each attempt is recorded with its status, WEBHOOK_MAX_RETRIES bounds them, and the
    webhook ends in the dead letters (it used to repeat every 30 s, unrecorded)."""
    receiver = Receiver(answer(503, headers=[("Retry-After", "²")]))
    try:
        stack = stack_factory(webhook_allowed_hosts="127.0.0.1", webhook_max_retries=2)
        stack.start_worker()
        deliveries = give_up_after_retries(stack, receiver, retries=2)
    finally:
        receiver.close()
    assert [(d["status"], d["error"]) for d in deliveries] == [(503, "http_503")] * 3
    assert all("retry_after_s" not in d for d in deliveries)  # unreadable: no hint kept


def test_an_attempt_that_raises_is_recorded_counted_and_dead_lettered(
    stack_factory: Callable[..., Stack],
) -> None:
    """A receiver whose answer makes the attempt raise (a fault injected into the worker's
    processes, past deliver's own safety net): each attempt is recorded as failed
    (internal_error), counts against WEBHOOK_MAX_RETRIES, and the webhook ends in the dead
    letters."""
    receiver = Receiver(answer(raising_webhooks.RAISING_STATUS))
    try:
        stack = stack_factory(webhook_allowed_hosts="127.0.0.1", webhook_max_retries=2)
        stack.start_worker(extra_env={"PYTHONPATH": raising_webhooks.PYTHONPATH})
        deliveries = give_up_after_retries(stack, receiver, retries=2)
    finally:
        receiver.close()
    assert [d["error"] for d in deliveries] == ["internal_error"] * 3
    assert all(d["at"] for d in deliveries)

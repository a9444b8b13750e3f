"""WEBHOOK_MAX_RETRIES is honoured, and each delivery attempt (its time and HTTP status) shows
in the job's JSON (issue 10 §3), against real processes and a real receiver."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.fixtures.stack import Stack, wait_until
from tests.fixtures.webhook_receiver import Receiver, answer


@pytest.fixture()
def failing() -> Iterator[Receiver]:
    server = Receiver(answer(500))
    yield server
    server.close()


def test_a_failing_receiver_gets_one_try_plus_max_retries_and_the_job_shows_each(
    stack_factory: Callable[..., Stack], failing: Receiver
) -> None:
    """WEBHOOK_MAX_RETRIES=2 and a receiver answering 500: exactly 3 POSTs, then the webhook
    gives up; GET /v1/calls/{id} lists the 3 attempts with their time and status 500."""
    stack = stack_factory(webhook_allowed_hosts="127.0.0.1", webhook_max_retries=2)
    stack.start_worker()
    body = {"kind": "record_call", "phone": "0901234568", "record_id": "rec1"}
    job_id = stack.post_call({**body, "webhook_url": failing.url()})["id"]
    stack.wait_final([job_id], timeout=20)

    def given_up() -> bool:
        job = stack.job(job_id)
        return job.webhook is not None and job.webhook.state == "gave_up"

    wait_until(given_up, 30, what="the webhook given up")
    time.sleep(1.5)  # longer than the last retry delay: a 4th attempt would have come
    assert len(failing.received) == 3
    with stack.http() as http:
        view = http.get(f"/v1/calls/{job_id}").json()
    deliveries = view["webhook"]["deliveries"]
    assert view["webhook"]["state"] == "gave_up"
    assert [d["status"] for d in deliveries] == [500, 500, 500]
    assert all(d["at"] for d in deliveries)

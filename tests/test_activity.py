"""The console's activity counters (producer.console.activity): the lifecycle steps count each send
and each ending in the minute it happened, in the same Lua step, on a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from producer.console import activity
from tests.fixtures import steps
from voicecall.job import keys, lifecycle
from voicecall.job.states import Outcome
from voicecall.store.job_store import JobStore


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


def test_sends_and_endings_are_counted_in_the_minute_of_their_step(
    store: JobStore, redis_client: redis.Redis
) -> None:
    """Two calls sent, one answered, one (claimed) failed into the dead letters and one cancelled: the
    minute of each step holds sent=2, outcome:answered=1, failed=1, cancelled=1; a step
    given another time counts in that time's minute; each hash expires within 2 h."""
    for job_id in ("a", "b", "c", "e"):
        steps.create(store, job_id, "record_call")
    steps.submit(store, "a", "s-a")
    steps.submit(store, "b", "s-b")
    done = lifecycle.complete(
        "a", outcome=Outcome.ANSWERED, call={"status": "ANSWERED"}, source="poll", smsid="s-a"
    )
    assert store.apply(done).verdict == "accepted"
    store.apply(lifecycle.cancel("c", note="test"))
    an_hour_ago = time.time() - 3600 + 120
    failed = lifecycle.fail("e", queue=keys.QUEUE_BULK, error={"code": "x"}, note="test")
    steps.claim(store, "e")
    assert store.apply(failed, now=an_hour_ago).verdict == "ended"

    recent = activity.recent(store, minutes=60)
    assert len(recent.minutes) == 60
    assert recent.sent == 2
    assert recent.endings() == {"cancelled": 1, "failed": 1, "outcome:answered": 1}
    assert recent.minutes[-1].counts == {"sent": 2, "outcome:answered": 1, "cancelled": 1}
    assert activity.recent(store, minutes=1, now=an_hour_ago).endings() == {"failed": 1}
    for key in redis_client.scan_iter("vc:activity:*"):
        assert 0 < redis_client.ttl(key) <= keys.ACTIVITY_TTL_S


def test_a_late_step_counts_nothing(store: JobStore) -> None:
    """A submit that finds the job already past sending (a late 124) is not a second send."""
    steps.create(store, "d", "record_call")
    steps.submit(store, "d", "s-d")
    late = lifecycle.submit("d", smsid="s-d", code=124, poll_at=0, note="again")
    assert store.apply(late).verdict == "late"
    assert activity.recent(store, minutes=2).sent == 1

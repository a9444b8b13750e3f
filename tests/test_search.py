"""Finding jobs (producer.search.walk) against a real Redis, with jobs moved by the store's own
operations: filters, newest first, cursors that neither repeat nor skip while jobs change
state, campaign counters, and indexes that leave with their job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from producer.intake import Intake
from producer.search import cursors, walk
from producer.search.campaigns import campaign, campaigns
from producer.search.filters import Filters
from tests.fixtures import steps
from voicecall.config.settings import load_settings
from voicecall.errors import CampaignNotFound, SearchError
from voicecall.job import keys, lifecycle, upkeep
from voicecall.job.contract import CallRequestAdapter, validation_context
from voicecall.job.records import JobRecord
from voicecall.job.states import Kind, Outcome, State
from voicecall.store.job_store import JobStore

CALLER = cursors.Caller("python", cursors.cursor_key(""))


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


def _intake(store: JobStore) -> Intake:
    return Intake(load_settings(), store)


def _make(store: JobStore, n: int, **extra: Any) -> list[str]:
    intake, settings = _intake(store), load_settings()
    ids = []
    for i in range(n):
        body = {"kind": "record_call", "phone": f"09012{i % 7:05d}", "record_id": "r1", **extra}
        request = CallRequestAdapter.validate_python(body, context=validation_context(settings))
        ids.append(intake.submit(request, client="python").job.id)
        time.sleep(0.002)  # distinct creation times, so newest-first is the order made
    return ids


def _all(store: JobStore, filters: Filters, limit: int) -> list[JobRecord]:
    found: list[JobRecord] = []
    cursor = None
    while True:
        page = walk.search(store, filters, CALLER, limit=limit, cursor=cursor)
        found += page.jobs
        if page.cursor is None:
            return found
        cursor = page.cursor


def _complete(store: JobStore, job_id: str, outcome: Outcome, duration: int, price: float) -> None:
    steps.submit(store, job_id, f"sms-{job_id}")
    call = {"status": "ANSWERED", "duration_s": duration, "price_vnd": price}
    op = lifecycle.complete(
        job_id, outcome=outcome, call=call, source="poll", smsid=f"sms-{job_id}"
    )
    assert store.apply(op).verdict == "accepted"


def test_newest_first_by_state_kind_and_outcome(store: JobStore) -> None:
    """Each filter finds exactly its jobs, newest first, through cursor pages."""
    ids = _make(store, 9)
    for job_id in ids[:3]:
        _complete(store, job_id, Outcome.ANSWERED, 10, 800.0)
    store.apply(lifecycle.cancel(ids[3], note="test"))
    queued = _all(store, Filters(states=(State.QUEUED,)), limit=2)
    assert [j.id for j in queued] == list(reversed(ids[4:]))
    answered = _all(store, Filters(outcomes=(Outcome.ANSWERED,)), limit=2)
    assert [j.id for j in answered] == list(reversed(ids[:3]))
    assert _all(store, Filters(kinds=(Kind.VOICE_OTP,)), limit=5) == []
    everything = _all(store, Filters(), limit=4)
    assert [j.id for j in everything] == list(reversed(ids))


def test_pages_neither_repeat_nor_skip_while_jobs_change_state(store: JobStore) -> None:
    """Paging through every job while others move from queued to sending to final: each job
    comes exactly once."""
    ids = _make(store, 12)
    seen: list[str] = []
    cursor = None
    moves = iter(ids)
    while True:
        page = walk.search(store, Filters(), CALLER, limit=3, cursor=cursor)
        seen += [j.id for j in page.jobs]
        for _ in range(2):  # between pages, two jobs change state
            job_id = next(moves, None)
            if job_id is not None:
                _complete(store, job_id, Outcome.NOT_ANSWERED, 0, 0.0)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


def test_labels_phone_and_created_range(store: JobStore) -> None:
    """Labels AND together; a phone as given at intake finds its jobs; created ranges cut."""
    tet = _make(store, 4, labels={"campaign": "tet", "team": "a"})
    _make(store, 2, labels={"campaign": "tet", "team": "b"})
    _make(store, 3, labels={"campaign": "other"})
    team_a = _all(store, Filters(labels=(("campaign", "tet"), ("team", "a"))), limit=2)
    assert [j.id for j in team_a] == list(reversed(tet))
    phone = _all(store, Filters(phone="84901200001"), limit=1)
    assert phone and all(j.phone == "84901200001" for j in phone)
    assert [j.created_at for j in phone] == sorted((j.created_at for j in phone), reverse=True)
    first = store.get(tet[0])
    assert first is not None
    window = Filters(created_from=first.created_at, created_to=first.created_at)
    assert [j.id for j in _all(store, window, limit=10)] == [tet[0]]


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda: Filters(created_from=2.0, created_to=1.0), "created_from"),
        (lambda: Filters(finished_from=2.0, finished_to=1.0), "finished_from"),
    ],
)
def test_an_inverted_range_names_its_parameter(make: Any, param: str) -> None:
    """A time range whose start is after its end is refused naming the range's `from` parameter."""
    with pytest.raises(SearchError) as caught:
        make()
    assert caught.value.param == param


def test_bad_limits_and_cursors_are_refused(store: JobStore) -> None:
    """A limit out of 1-500, a forged cursor, or a cursor of another search: SearchError."""
    _make(store, 3)
    for limit in (0, 501):
        with pytest.raises(SearchError, match="limit"):
            walk.search(store, Filters(), CALLER, limit=limit)
    with pytest.raises(SearchError, match="cursor"):
        walk.search(store, Filters(), CALLER, cursor="not-a-cursor")
    page = walk.search(store, Filters(), CALLER, limit=1)
    assert page.cursor is not None
    with pytest.raises(SearchError, match="other filters"):
        walk.search(store, Filters(states=(State.QUEUED,)), CALLER, cursor=page.cursor)


def test_campaign_figures_are_counters_kept_with_each_step(store: JobStore) -> None:
    """Counts by state and outcome, answer rate, durations, cost, progress; no scan."""
    ids = _make(store, 5, labels={"campaign": "spring"})
    _complete(store, ids[0], Outcome.ANSWERED, 30, 800.0)
    _complete(store, ids[1], Outcome.ANSWERED, 10, 800.5)
    _complete(store, ids[2], Outcome.NOT_ANSWERED, 0, 0.0)
    store.apply(lifecycle.cancel(ids[3], note="test"))
    summary = campaign(store, "spring")
    assert summary is not None
    assert (summary.total, summary.finished, summary.answered) == (5, 4, 2)
    assert summary.by_state["completed"] == 3 and summary.by_state["queued"] == 1
    assert summary.by_outcome == {
        "answered": 2,
        "not_answered": 1,
        "delivered": 0,
        "undelivered": 0,
    }
    assert (summary.answer_rate, summary.duration_s, summary.average_duration_s) == (
        round(2 / 3, 4),
        40,
        20.0,
    )
    assert summary.cost_vnd == pytest.approx(1600.5)
    assert summary.progress == 0.8
    assert summary.first_sent_at is not None and summary.last_sent_at is not None
    with pytest.raises(CampaignNotFound):
        campaign(store, "nobody-named-this")
    assert [c.name for c in campaigns(store)] == ["spring"]


def test_indexes_leave_with_their_job(store: JobStore, redis_client: redis.Redis) -> None:
    """At the end of retention the purge takes the job out of every index in the same step."""
    (job_id,) = _make(store, 1, labels={"campaign": "gone"})
    _complete(store, job_id, Outcome.ANSWERED, 5, 1.0)
    job = store.get(job_id)
    assert job is not None and job.cid is not None and job.seq is not None
    chunk, bucket = keys.campaign_chunk(job.cid, job.seq), keys.phone_bucket(job.phone)
    assert redis_client.zcard(chunk) == 1 and redis_client.zcard(bucket) == 1
    assert job.smsid and store.id_for_smsid(job.smsid) == job_id
    later = time.time() + store.config.retention_s + 10
    assert store.apply(upkeep.purge(job, job_id), now=later).verdict == "purged"
    assert redis_client.exists(keys.job(job_id)) == 0
    for key in (keys.STATE_INDEX, keys.DUE, chunk, bucket):
        assert redis_client.zcard(key) == 0, key
    assert store.id_for_smsid(job.smsid) is None
    assert redis_client.exists(keys.smsid_bucket(job.smsid)) == 0

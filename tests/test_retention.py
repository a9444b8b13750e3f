"""Retention without a timer per job (worker.retention), against a real Redis: a job that
ended within the hour after its creation is purged by its place in the state index once
``created + retention + slack`` has passed; one that ended later keeps its own time in the
due set and is left alone, and the scan steps over such jobs however many share a score."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from producer.intake import Intake
from tests.fixtures import steps
from voicecall.config.settings import load_settings
from voicecall.job import keys, lifecycle
from voicecall.job.contract import CallRequestAdapter, validation_context
from voicecall.job.states import Outcome
from voicecall.store.job_store import JobStore
from worker import retention
from worker.retention import RetentionScan

HOUR = 3600.0


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


def _finished(store: JobStore, job_id: str, created: float, after_s: float) -> None:
    """Create ``job_id`` at ``created`` and complete it ``after_s`` later, as a worker would."""
    settings = load_settings()
    request = CallRequestAdapter.validate_python(
        {"kind": "record_call", "phone": "0901234567", "record_id": "r1", "id": job_id},
        context=validation_context(settings),
    )
    job = Intake(settings, store).record(request, client="python", trace_id=None, now=created)
    assert store.apply(lifecycle.create(job, grace_s=30), now=created).verdict == "created"
    at = created + after_s
    store.beat(steps.RULES.owner)
    claim = lifecycle.claim(
        job_id, rules=steps.RULES, queue=keys.QUEUE_BULK, limit_key=None, quiet_until=0
    )
    assert store.apply(claim, now=at).verdict == "claimed"
    submit = lifecycle.submit(job_id, smsid=f"sms-{job_id}", code=100, poll_at=at + 60, note="t")
    assert store.apply(submit, now=at).verdict == "submitted"
    done = lifecycle.complete(
        job_id, outcome=Outcome.ANSWERED, call={}, source="poll", smsid=f"sms-{job_id}"
    )
    assert store.apply(done, now=at + 1).verdict == "accepted"


def test_a_quick_job_is_purged_by_its_place_and_a_late_one_keeps_its_timer(
    store: JobStore, redis_client: redis.Redis
) -> None:
    """A job that ended soon after creation has no timer and is purged with its indexes once
    created + retention + slack has passed, not before; one that ended later keeps its timer
    and stays."""
    now = time.time()
    days = store.config.retention_s
    created = now - days - 1.5 * HOUR
    _finished(store, "quick", created, after_s=60)
    _finished(store, "late", created, after_s=2 * HOUR)
    assert redis_client.zscore(keys.DUE, "quick") is None  # no timer for a quick job
    late_due = redis_client.zscore(keys.DUE, "late")
    assert late_due is not None and late_due > now  # its retention is not over yet

    scan = RetentionScan(store)
    assert scan.run(now - 2 * HOUR) == 0  # before created + retention + slack: nothing
    assert store.get("quick") is not None

    assert RetentionScan(store).run(now) == 1
    assert store.get("quick") is None and store.get("late") is not None
    assert store.id_for_smsid("sms-quick") is None
    assert redis_client.zscore(keys.STATE_INDEX, "quick") is None
    assert redis_client.zcard(keys.phone_bucket("84901234567")) == 1  # the late job's entry


def test_the_scan_steps_over_late_jobs_that_share_a_score(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More late jobs than a page at one creation time do not hide the quick ones after them."""
    monkeypatch.setattr(retention, "BATCH", 2)
    now = time.time()
    days = store.config.retention_s
    created = round(now - days - 1.5 * HOUR, 3)
    for job_id in ("a1", "a2", "a3"):  # first in the index: same score, lower ids
        _finished(store, job_id, created, after_s=2 * HOUR)
    for job_id in ("b1", "b2"):
        _finished(store, job_id, created, after_s=60)

    scan = RetentionScan(store)
    assert scan.run(now) == 2
    assert [store.get(j) is None for j in ("a1", "a2", "a3", "b1", "b2")] == [
        False,
        False,
        False,
        True,
        True,
    ]
    _finished(store, "b3", created, after_s=60)  # joins behind the mark
    assert scan.run(now + retention.SCAN_EVERY_S) == 1
    assert store.get("b3") is None


def test_a_purge_leaves_no_phone_entry_whatever_the_creation_time(
    store: JobStore, redis_client: redis.Redis
) -> None:
    """Creation times with sub-millisecond digits: the phone-index member the purge names is
    the one intake wrote, though the stored document keeps only 14 significant digits."""
    now = time.time()
    created = now - store.config.retention_s - 1.5 * HOUR
    for i in range(40):
        _finished(store, f"j{i}", created + i * 0.0000137, after_s=60)
    assert redis_client.zcard(keys.phone_bucket("84901234567")) == 40
    assert RetentionScan(store).run(now) == 40
    assert redis_client.zcard(keys.phone_bucket("84901234567")) == 0

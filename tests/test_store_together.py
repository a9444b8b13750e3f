"""AsyncJobStore.apply_together: submits awaited at the same time share one script, and each
job ends exactly as a submit of its own would leave it (real Redis)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from producer.console import activity
from tests.fixtures import steps
from voicecall.job import keys, lifecycle
from voicecall.job.states import State
from voicecall.job.steps import Op, Step
from voicecall.store.job_store import AsyncJobStore, JobStore
from voicecall.store.steps import MAX_BATCH

N = 100  # more than MAX_BATCH: two batches at least


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


def _submit(job_id: str) -> Op:
    return lifecycle.submit(
        job_id, smsid=f"S-{job_id}", code=100, poll_at=time.time() + 600, note="accepted"
    )


def _evalsha_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def _together(redis_url: str, ops: list[Op]) -> list[Step]:
    async_store = AsyncJobStore.from_url(redis_url)
    try:
        return list(await asyncio.gather(*(async_store.apply_together(op) for op in ops)))
    finally:
        await async_store.close()


def test_submits_awaited_together_share_scripts_and_end_as_alone(
    store: JobStore, redis_url: str
) -> None:
    """Submits awaited together run as a few batched scripts, not one each, and leave every job,
    index, counter and poll time as one submit alone does."""
    ids = [f"tog-{i}" for i in range(N)]
    for job_id in [*ids, "alone"]:
        steps.create(store, job_id, kind="record_call")
        steps.claim(store, job_id)
    client = redis.Redis.from_url(redis_url)
    sent_before = activity.recent(store, 2).sent
    before = _evalsha_calls(client)
    results = asyncio.run(_together(redis_url, [_submit(i) for i in ids]))
    scripts = _evalsha_calls(client) - before
    assert [r.verdict for r in results] == ["submitted"] * N
    # one per batch of at most MAX_BATCH (plus a reload on NOSCRIPT), not one per step
    assert scripts <= N // MAX_BATCH + 3, scripts
    assert activity.recent(store, 2).sent - sent_before == N  # each counted once
    alone = store.apply(_submit("alone"))
    reference = alone.job()
    assert reference is not None
    for job_id, step in zip(ids, results, strict=True):
        job = store.get(job_id)
        assert job is not None and job.state is State.SUBMITTED
        assert step.job() == job
        assert job.smsid == f"S-{job_id}" and store.id_for_smsid(f"S-{job_id}") == job_id
        assert [h.state for h in job.history] == [h.state for h in reference.history]
        assert [h.note for h in job.history] == [h.note for h in reference.history]
        assert job.lease is None and job.submitted_at is not None
    assert store.state_counts().get(State.SUBMITTED.value) == N + 1
    due = {m.decode() for m in client.zrange(keys.DUE, 0, -1)}
    assert set(ids) <= due  # each has its poll time
    client.close()


def test_a_failed_batch_fails_every_step_in_it(store: JobStore, redis_url: str) -> None:
    """Redis gone: each caller gets the error (and may retry), none waits forever."""
    ids = [f"gone-{i}" for i in range(5)]
    for job_id in ids:
        steps.create(store, job_id, kind="record_call")
        steps.claim(store, job_id)

    async def run() -> list[BaseException | Step]:
        dead = AsyncJobStore.from_url("redis://127.0.0.1:1/0")
        try:
            calls = (dead.apply_together(_submit(i)) for i in ids)
            return list(await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10))
        finally:
            await dead.close()

    outcomes = asyncio.run(run())
    assert all(isinstance(o, redis.ConnectionError) for o in outcomes), outcomes
    assert all(store.get(i).state is State.SENDING for i in ids)  # type: ignore[union-attr]

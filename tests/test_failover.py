"""A Redis failover on real processes loses no acknowledged call and places none twice
(issue 20, points 3, 5 and 6).

Setup: one primary, two replicas and three sentinels (``redis-server``, loopback, free
ports); the API, a worker with 2 processes and the eSMS simulator, all given only
REDIS_SENTINELS and REDIS_SENTINEL_MASTER. Clients submit mixed calls (OTP, record, template,
a fifth scheduled 5-25 s ahead) one by one, each with an Idempotency-Key, sending the same
request again on a 5xx or a broken connection. During the stream the primary is killed
(``kill -9``), and later handed over by ``SENTINEL FAILOVER``.

Then: every acknowledged job is there and ends final, the simulator saw at most one call per
RequestId, the API never answered 500, and no process was restarted. Last, the idempotency
record and the job of a finished call are deleted by hand and the request sent again: the
job comes back under the same id (the key's digest), and eSMS (code 124) places no second
call.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.fixtures.failover_load import SETTINGS, Stream, Submission, run_failovers
from tests.fixtures.sentinel import Topology
from tests.fixtures.stack import FINAL, Stack, wait_until
from voicecall.config.settings import load_settings
from voicecall.job import keys
from voicecall.store.job_store import JobStore


@pytest.mark.timeout(300)
def test_failovers_lose_no_acknowledged_call_and_place_none_twice(
    stack_factory: Callable[..., Stack], sentinel_topology: Callable[..., Topology]
) -> None:
    """See the module docstring: kill -9, then SENTINEL FAILOVER, under a stream of calls."""
    # The conditions under which a planned failover too loses nothing: every replica has a
    # write before it counts (the servers' min-replicas-to-write, and intake's WAIT).
    topology = sentinel_topology(min_replicas_to_write=2)
    stack = stack_factory(api=False, **SETTINGS)
    stack.env.update({**topology.env(), "REDIS_WAIT_REPLICAS": "2"})
    stack.store.close()
    settings = load_settings(**{k.lower(): v for k, v in topology.env().items()})
    stack.store = JobStore.from_settings(settings)
    api = stack.start_api()
    worker = stack.start_worker(processes=2, threads=4)

    stream = Stream(stack.api_url, stack.token)
    faults = run_failovers(stack, topology, stream)
    acked = stream.acked()
    statuses = Counter(s for sub in stream.submissions for s in sub.statuses)
    assert len(acked) == len(stream.submissions) > 50, statuses
    assert statuses[500] == 0 and all(
        s in (200, 201, 202, 503) for s in statuses if isinstance(s, int)
    ), statuses
    # The API followed both changes of primary (and says so), with no restart.
    metrics = httpx.get(f"{stack.api_url}/metrics").text
    changes = re.search(r"^voicecall_redis_primary_changes_total (\S+)$", metrics, re.M)
    assert changes and float(changes.group(1)) >= 2, metrics[-3000:]  # views in flux count too
    primary = (
        f'voicecall_redis_role{{address="127.0.0.1:{topology.primary_port()}",role="primary"}} 1.0'
    )
    assert primary in metrics

    try:
        jobs = stack.wait_final([str(sub.job_id) for sub in acked], timeout=150)
    except TimeoutError:
        _explain(stack, acked, faults)
        raise
    assert all(job.state.value in FINAL for job in jobs.values())  # none missing, none stuck
    calls = Counter(str(call["request_id"]) for call in stack.sim.calls())
    assert [rid for rid, n in calls.items() if n > 1] == []
    assert set(calls) <= set(jobs)
    assert api.alive and worker.alive  # nothing restarted by hand

    # The key's guarantee when Redis forgot: the record and the job deleted by hand.
    done = next(
        sub for sub in acked if sub.job_id in calls and jobs[sub.job_id].state.value == "completed"
    )
    raw = topology.client(topology.primary_port())
    client_keys = raw.keys(keys.idempotency("*", done.key))
    assert len(client_keys) == 1
    assert raw.delete(keys.job(str(done.job_id)), client_keys[0]) == 2
    with stack.http() as http:
        again = http.post("/v1/calls", json=done.body, headers={"Idempotency-Key": done.key})
    assert again.status_code == 202, again.text
    assert again.json()["id"] == done.job_id  # the same RequestId
    wait_until(lambda: "124" in stack.notes(str(done.job_id)), 60, what="eSMS's answer")
    assert len(stack.sim.calls(request_id=str(done.job_id))) == 1  # refused: code 124
    assert stack.store.get(str(done.job_id)) is not None


def _explain(stack: Stack, acked: list[Submission], faults: dict[str, float]) -> None:
    """On failure: when each missing or unfinished job was acknowledged, from each fault."""
    for sub in acked:
        job = stack.store.get(str(sub.job_id))
        since = {name: round(float(sub.acked_at or 0) - at, 2) for name, at in faults.items()}
        if job is None:
            print("missing", sub.key, "acknowledged after", since, sub.statuses)
        elif job.state.value not in FINAL:
            print("unfinished", sub.key, job.state.value, since, stack.notes(job.id))

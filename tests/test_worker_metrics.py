"""Worker metrics that do not lie, against real processes: ``voicecall_workers_alive`` counts
worker processes only, and ``voicecall_worker_threads`` is reported by every worker.

Worker processes beat into ``vc:workers``; nothing else does. The standalone scheduler and
the dead-letter CLI write jobs and messages through the store, and the API and the producer
library need no Dramatiq broker at all, so none of them can be counted as a worker.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from tests.fixtures.stack import Stack
from voicecall.job import keys
from voicecall.job.states import State


def _gauge(url: str, name: str) -> float:
    """The value of the unlabelled metric ``name`` in the exposition at ``url``."""
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported by {url}")


def test_standalone_scheduler_is_not_a_worker_and_workers_report_their_threads(
    stack_factory: Callable[..., Stack],
) -> None:
    """With SCHEDULER_IN_WORKER=false, 2 worker processes of 3 threads and `voicecall scheduler` releasing a job: workers_alive is 2, worker_threads is 6."""
    stack = stack_factory(scheduler_in_worker="false", schedule_horizon_s=1)
    worker = stack.start_worker(processes=2, threads=3)
    send_at = datetime.now(UTC) + timedelta(seconds=2)
    job = stack.post_call(
        {
            "kind": "record_call",
            "phone": "0901234568",
            "record_id": "r1",
            "send_at": send_at.isoformat(),
        }
    )
    assert stack.job(job["id"]).state.value == "scheduled"
    scheduler = stack.start_service("scheduler", ["scheduler"])
    stack.wait_final([job["id"]], timeout=30)  # released by the scheduler, then sent
    assert scheduler.alive
    assert _gauge(f"{stack.api_url}/metrics", "voicecall_workers_alive") == 2
    worker_metrics = f"http://127.0.0.1:{worker.env['METRICS_PORT']}/metrics"
    assert _gauge(worker_metrics, "voicecall_worker_threads") == 2 * 3


def test_dlq_requeue_is_not_a_worker(stack_factory: Callable[..., Stack]) -> None:
    """`voicecall dlq requeue` sends a message but leaves workers_alive at 0."""
    stack = stack_factory(send_max_retries=0, worker_liveness_s=1)
    stack.sim.configure(error_rate=1.0, fault_scope="send")
    worker = stack.start_worker()
    job_id = stack.post_call({"kind": "record_call", "phone": "0901234568", "record_id": "r1"})[
        "id"
    ]
    assert stack.wait_final([job_id], timeout=30)[job_id].state is State.FAILED
    worker.stop()
    result = subprocess.run(
        [sys.executable, "-m", "voicecall.cli", "dlq", "requeue", "--all"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert stack.job(job_id).state is State.QUEUED
    assert stack.redis_client.hlen(keys.dramatiq_messages(keys.QUEUE_BULK)) == 1
    assert _gauge(f"{stack.api_url}/metrics", "voicecall_workers_alive") == 0

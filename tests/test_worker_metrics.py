"""Worker metrics that do not lie, against real processes: ``voicecall_workers_alive`` counts
Dramatiq worker processes only, and ``voicecall_worker_threads`` is reported by every worker.

Dramatiq's Redis broker writes a heartbeat (``dramatiq:__heartbeats__``) on every command it
runs, enqueues included, so any process that enqueues looks like a worker unless its broker
id marks it as a producer (:func:`voicecall.exporter.mark_producer_broker`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dramatiq
import httpx

from tests.fixtures.stack import Stack
from voicecall import keys
from voicecall.exporter import HEARTBEATS_KEY, dead_letter_messages


def _gauge(url: str, name: str) -> float:
    """The value of the unlabelled metric ``name`` in the exposition at ``url``."""
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported by {url}")


def _recent_heartbeats(stack: Stack) -> list[str]:
    since_ms = (time.time() - 30) * 1000
    return list(stack.store.redis.zrangebyscore(HEARTBEATS_KEY, since_ms, "+inf"))


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
    stack.wait_final([job["id"]], timeout=30)  # released by the scheduler's broker, then sent
    assert scheduler.alive

    assert len(_recent_heartbeats(stack)) >= 3  # 2 workers and the scheduler all heartbeat
    assert _gauge(f"{stack.api_url}/metrics", "voicecall_workers_alive") == 2
    worker_metrics = f"http://127.0.0.1:{worker.env['METRICS_PORT']}/metrics"
    assert _gauge(worker_metrics, "voicecall_worker_threads") == 2 * 3


def test_dlq_requeue_is_not_a_worker(stack_factory: Callable[..., Stack]) -> None:
    """`voicecall dlq requeue` enqueues (and so heartbeats) but leaves workers_alive at 0."""
    stack = stack_factory()
    message: dramatiq.Message[object] = dramatiq.Message(
        queue_name=keys.QUEUE_WEBHOOKS,
        actor_name=keys.ACTOR_WEBHOOK,
        args=("no-such-job",),
        kwargs={},
        options={},
    )
    dead_zset = f"{keys.DRAMATIQ_NAMESPACE}:{keys.dead_letter_queue(keys.QUEUE_WEBHOOKS)}"
    stack.store.redis.zadd(dead_zset, {message.message_id: int(time.time() * 1000)})
    stack.store.redis.hset(
        dead_letter_messages(keys.QUEUE_WEBHOOKS), message.message_id, message.encode()
    )

    result = subprocess.run(
        [sys.executable, "-m", "voicecall.cli", "dlq", "requeue", "--all"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert stack.store.redis.hlen(keys.dramatiq_messages(keys.QUEUE_WEBHOOKS)) == 1
    assert len(_recent_heartbeats(stack)) >= 1  # the CLI's broker heartbeat on its enqueue
    assert _gauge(f"{stack.api_url}/metrics", "voicecall_workers_alive") == 0

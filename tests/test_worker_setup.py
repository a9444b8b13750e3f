"""Worker start-up and wiring: settings errors, RabbitMQ refused, log context, queue subsets, global rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.stack import Stack, producer_client, wait_until
from voicecall.job import keys
from voicecall.job.states import State


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicecall.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _clean_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ESMS_", "REDIS_", "API_", "CALLBACK_", "PUBLIC_", "WEBHOOK_"))
    }
    return {**env, **values}


# Everything a worker needs but WEBHOOK_SECRET.
_WORKER = {
    "ESMS_API_KEY": "k",
    "ESMS_SECRET_KEY": "s",
    "CALLBACK_SECRET": "x" * 20,
    "PUBLIC_BASE_URL": "http://a",
}


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["worker"], {"CALLBACK_SECRET": "x" * 20, "PUBLIC_BASE_URL": "http://a"}, "ESMS_API_KEY"),
        (
            ["worker"],
            {"ESMS_API_KEY": "k", "ESMS_SECRET_KEY": "s", "CALLBACK_SECRET": "short"},
            "CALLBACK_SECRET",
        ),
        (["worker"], {**_WORKER, "WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET"),
        (["worker"], {**_WORKER, "WEBHOOK_SECRET": "x" * 32}, "WEBHOOK_SECRET"),
        (["api"], {"API_TOKENS": "tooshort", "CALLBACK_SECRET": "x" * 20}, "API_TOKENS"),
        (["status", "x"], {"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        (["worker"], {"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        (["scheduler"], {"QUIET_HOURS": "late"}, "QUIET_HOURS"),
        (
            ["api"],
            {"API_TOKENS": "t" * 20, "CALLBACK_SECRET": "x" * 20, "OTP_TTL_S": "-1"},
            "OTP_TTL_S",
        ),
    ],
)
def test_bad_settings_stop_start_up_with_one_line_and_exit_2(
    args: list[str], env: dict[str, str], named: str
) -> None:
    """A missing or invalid setting: exit code 2 and one line on stderr naming the setting."""
    result = _run(args, _clean_env(**env))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_worker_log_lines_carry_job_id_kind_attempt_and_the_intake_trace_id(
    stack_factory: Callable[..., Stack],
) -> None:
    """The request id given at intake travels with the job into the worker's structured logs."""
    stack = stack_factory()
    worker = stack.start_worker()
    with stack.http() as http:
        response = http.post(
            "/v1/calls",
            json={"kind": "record_call", "phone": "0901234568", "record_id": "rec1"},
            headers={"X-Request-ID": "trace-4f2a9c"},
        )
    job_id = response.json()["id"]
    stack.wait_final([job_id], timeout=20)
    wait_until(lambda: "job_submitted" in worker.log_text(), 5, what="the submission log line")
    events = [json.loads(line) for line in worker.log_text().splitlines() if line.startswith("{")]
    submitted = next(e for e in events if e.get("event") == "job_submitted")
    assert (
        submitted["job_id"],
        submitted["kind"],
        submitted["attempt"],
        submitted["trace_id"],
    ) == (
        job_id,
        "record_call",
        1,
        "trace-4f2a9c",
    )
    assert stack.job(job_id).trace_id == "trace-4f2a9c"


def test_a_worker_pointed_at_the_otp_queue_sends_only_otp(
    stack_factory: Callable[..., Stack],
) -> None:
    """`--queues voicecall-otp`: OTP calls go out while bulk calls wait for a bulk worker."""
    stack = stack_factory()
    stack.start_worker(queues=[keys.QUEUE_OTP, keys.QUEUE_STATUS])
    client = producer_client(stack)
    bulk = client.enqueue_record("0901234568", "rec1").id
    otp = client.enqueue_otp("0901234567", "Ma 123456").id
    assert stack.wait_final([otp], timeout=20)[otp].state is State.COMPLETED
    assert stack.job(bulk).state is State.QUEUED
    stack.start_worker(queues=[keys.QUEUE_BULK, keys.QUEUE_STATUS])
    assert stack.wait_final([bulk], timeout=20)[bulk].state is State.COMPLETED


def test_global_send_rate_is_shared_by_all_workers(stack_factory: Callable[..., Stack]) -> None:
    """A global rate of 5/s holds over two worker processes, and holding back spends no retry."""
    stack = stack_factory(global_send_rate_per_s=5)
    stack.start_worker(processes=2, threads=4)
    client = producer_client(stack)
    ids = [client.enqueue_record(f"09{i:07d}8", "rec1").id for i in range(20)]
    jobs = stack.wait_final(ids, timeout=60)
    assert {job.state for job in jobs.values()} == {State.COMPLETED}
    starts = sorted(
        datetime.fromisoformat(str(c["accepted_at"])).timestamp() for c in stack.sim.calls()
    )
    # 20 sends at 5 per one-second bucket need 4 buckets, so they span at least 2 s (an
    # unlimited worker sends them in well under half a second). Per-second counts seen by the
    # simulator are not checked: a request acquired at a bucket's end may arrive in the next.
    assert starts[-1] - starts[0] >= 1.9, starts
    assert all(job.attempts == 1 for job in jobs.values())  # held back, never retried


VALID_FOR_EVERY_ROLE = {
    "ESMS_API_KEY": "k",
    "ESMS_SECRET_KEY": "s",
    "CALLBACK_SECRET": "x" * 20,
    "PUBLIC_BASE_URL": "http://127.0.0.1:9",
    "API_TOKENS": "t" * 20,
    "WEBHOOK_SECRET": "whsec_dm9pY2VjYWxsLXRlc3Qtd2ViaG9vay1zZWNyZXQtMQ==",
}


@pytest.mark.parametrize(
    ("args", "role"),
    [
        (["worker"], "worker"),
        (["scheduler"], "scheduler"),
        (["api"], "api"),
        (["enqueue", "otp", "--phone", "0901234567", "--content", "Ma 1"], "producer"),
        (["dlq", "list"], "producer"),
        (["check-settings", "producer"], "producer"),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else value,
)
@pytest.mark.parametrize("scheme", ["amqp", "amqps"])
def test_rabbitmq_is_refused_at_start_up_with_one_line(
    args: list[str], role: str, scheme: str, redis_url: str
) -> None:
    """BROKER_URL=amqp(s)://... stops every command with exit 2 and one line saying RabbitMQ is not supported and why."""
    env = _clean_env(**VALID_FOR_EVERY_ROLE, REDIS_URL=redis_url)
    assert _run(["check-settings", role], env).returncode == 0  # only BROKER_URL is wrong
    result = _run(args, {**env, "BROKER_URL": f"{scheme}://guest:guest@127.0.0.1:5672/%2F"})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("voicecall: invalid setting: BROKER_URL: RabbitMQ is not supported: ")
    for reason in ("job store", "dead-letter CLI", "queue-depth gauges", "KEDA"):
        assert reason in line, reason
    assert result.stdout == ""


def test_scheduler_can_run_apart_from_the_workers(stack_factory: Callable[..., Stack]) -> None:
    """With SCHEDULER_IN_WORKER=false a scheduled job waits until `voicecall scheduler` runs."""
    stack = stack_factory(scheduler_in_worker="false", schedule_horizon_s=1)
    stack.start_worker()
    client = producer_client(stack, schedule_horizon_s=1)
    due = datetime.now(UTC) + timedelta(seconds=2)
    job_id = client.enqueue_record("0901234568", "rec1", send_at=due.isoformat()).id
    time.sleep(3)
    assert stack.job(job_id).state is State.SCHEDULED  # no scheduler yet
    stack.start_service("scheduler", ["scheduler"])
    job = stack.wait_final([job_id], timeout=20)[job_id]
    assert job.state is State.COMPLETED
    assert [e.state.value for e in stack.job(job_id).history][:2] == ["scheduled", "queued"]


@pytest.mark.parametrize(
    ("version", "too_old"),
    [("5.0.7", True), ("6.0.16", True), ("6.2.0", False), ("7.0.15", False), ("7.2.4", False),
     ("10.0.0", False)],
)  # fmt: skip
def test_the_worker_refuses_a_redis_without_lpop_count(version: str, too_old: bool) -> None:
    """Redis versions before 6.2 (no LPOP count) are too old for the worker; 6.2 and later are not."""
    from worker.cli import redis_too_old

    assert redis_too_old(version) is too_old


def test_the_worker_starts_on_this_redis(redis_url: str) -> None:
    """The check reads the real server's version and lets this one (≥ 6.2) through."""
    from voicecall.config.settings import load_settings
    from worker.cli import _refuse_old_redis

    settings = load_settings(redis_url=redis_url)
    assert _refuse_old_redis(settings) is None

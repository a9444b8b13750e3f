"""The HTTP API against a real uvicorn process and a real Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
import structlog

from producer.api import create_app
from tests.fixtures import steps
from tests.fixtures.api import ApiServer
from voicecall.config.settings import load_settings
from voicecall.job import keys
from voicecall.job.contract import EXAMPLES
from voicecall.store.job_store import JobStore

OTP = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma cua ban la 123456"}
RECORD = {"kind": "record_call", "phone": "0901234568", "record_id": "rec-1"}


@pytest.fixture()
def http(api_server: ApiServer) -> Iterator[httpx.Client]:
    with api_server.client() as client:
        yield client


@pytest.fixture()
def store(redis_url: str) -> JobStore:
    return JobStore.from_url(redis_url)


def _post(http: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return http.post("/v1/calls", json=body, headers=headers)


# --- operations ----------------------------------------------------------------------------


def test_healthz_and_readyz_answer_without_auth(api_server: ApiServer) -> None:
    """/healthz and /readyz need no token and say ok while Redis is up."""
    assert httpx.get(f"{api_server.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api_server.base_url}/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


def test_metrics_expose_redis_gauges(
    api_server: ApiServer, http: httpx.Client, redis_client: redis.Redis
) -> None:
    """/metrics (no auth) shows jobs by state, queue depth, dead letters and live workers."""
    assert _post(http, OTP).status_code == 202
    assert _post(http, RECORD).status_code == 202
    now_ms = int(time.time() * 1000)
    redis_client.zadd(keys.dead_letters(keys.QUEUE_BULK), {"job-1": time.time()})
    # Workers beat into vc:workers; Dramatiq's own heartbeats (every broker that ever
    # enqueued leaves one) are not counted.
    redis_client.zadd(
        keys.WORKERS, {"worker-a": now_ms, "worker-b": now_ms - 1000, "gone": now_ms - 120_000}
    )
    redis_client.zadd("dramatiq:__heartbeats__", {"producer-x": now_ms, "scheduler-y": now_ms})
    text = httpx.get(f"{api_server.base_url}/metrics").text
    expected = [
        'voicecall_jobs_by_state{state="queued"} 2.0',
        'voicecall_jobs_by_state{state="cancelled"} 0.0',
        f'voicecall_queue_depth{{queue="{keys.QUEUE_OTP}"}} 1.0',
        f'voicecall_queue_depth{{queue="{keys.QUEUE_BULK}"}} 1.0',
        f'voicecall_dead_letters{{queue="{keys.QUEUE_BULK}"}} 1.0',
        f'voicecall_dead_letters{{queue="{keys.QUEUE_OTP}"}} 0.0',
        "voicecall_schedule_size 0.0",
        "voicecall_schedule_oldest_overdue_seconds 0.0",
        "voicecall_workers_alive 2.0",
        "voicecall_exporter_redis_up 1.0",
        'voicecall_jobs_enqueued_total{kind="voice_otp"}',
    ]
    assert [line for line in expected if line not in text] == []


def test_metrics_report_overdue_schedule(api_server: ApiServer, redis_client: redis.Redis) -> None:
    """The oldest overdue scheduled job's age is reported from the schedule's head."""
    redis_client.zadd(keys.SCHEDULE, {"a": time.time() - 30, "b": time.time() + 3600})
    text = httpx.get(f"{api_server.base_url}/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("voicecall_schedule_oldest_overdue"))
    assert "voicecall_schedule_size 2.0" in text
    assert 29 <= float(line.split()[1]) < 60


def test_openapi_examples_are_each_accepted(api_server: ApiServer, http: httpx.Client) -> None:
    """Every per-kind example in /openapi.json is complete and valid: POSTing it gives 202."""
    document = httpx.get(f"{api_server.base_url}/openapi.json").json()
    body = document["paths"]["/v1/calls"]["post"]["requestBody"]["content"]["application/json"]
    examples = {name: example["value"] for name, example in body["examples"].items()}
    assert examples == EXAMPLES
    assert "CallRequest" in document["components"]["schemas"]
    for kind, example in examples.items():
        response = _post(http, example)
        assert (response.status_code, response.json()["kind"]) == (202, kind), response.text


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789", "Bearer", "Basic dXNlcjpwYXNz", "token"],
    ids=["missing", "wrong", "empty", "basic", "no-scheme"],
)
def test_calls_need_a_valid_bearer_token(api_server: ApiServer, authorization: str | None) -> None:
    """Without a right token the API answers 401 JSON with WWW-Authenticate: Bearer."""
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{api_server.base_url}/v1/calls", json=OTP, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"


def test_every_configured_token_is_accepted(api_server: ApiServer) -> None:
    """Each token in API_TOKENS authenticates."""
    for token in (api_server.token, api_server.other_token):
        with api_server.client(token) as client:
            assert client.get("/v1/calls/none").status_code == 404


# --- POST /v1/calls ------------------------------------------------------------------------


def test_post_stores_a_queued_job_with_the_request_id_as_trace_id(
    http: httpx.Client, store: JobStore
) -> None:
    """A new call answers 202 with the job; the sent X-Request-ID comes back and is its trace id."""
    response = _post(http, OTP, **{"X-Request-ID": "req-123.abc"})
    job = response.json()
    assert response.status_code == 202
    assert response.headers["x-request-id"] == "req-123.abc"
    assert response.headers["location"] == f"/v1/calls/{job['id']}"
    assert (job["state"], job["phone"], job["replay"], job["trace_id"]) == (
        "queued",
        "84901234567",
        False,
        "req-123.abc",
    )
    stored = store.get(job["id"])
    assert stored is not None and stored.trace_id == "req-123.abc"


def test_an_insane_request_id_is_replaced(http: httpx.Client) -> None:
    """A request id with odd characters or too long is replaced by a generated one."""
    for sent in ("has space", "x" * 65, "a\tb"):
        response = http.get("/v1/calls/nope", headers={"X-Request-ID": sent})
        returned = response.headers["x-request-id"]
        assert returned != sent and len(returned) == 32
        assert response.json()["request_id"] == returned


def test_same_idempotency_key_and_body_replays_the_job(http: httpx.Client) -> None:
    """A repeat with the same key and body answers 202 with the same job and replay true."""
    body = {**OTP, "idempotency_key": "k-1"}
    first, second = _post(http, body), _post(http, body)
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.json()["id"] == first.json()["id"]
    assert (first.json()["replay"], second.json()["replay"]) == (False, True)
    assert second.headers["idempotent-replayed"] == "true"


def test_same_idempotency_key_other_body_is_409(http: httpx.Client) -> None:
    """Reusing a key with a different body is a 409 idempotency_conflict naming the job."""
    first = _post(http, {**OTP, "idempotency_key": "k-2"}).json()
    response = _post(http, {**OTP, "content": "other", "idempotency_key": "k-2"})
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_conflict"
    assert response.json()["job_id"] == first["id"]


def test_a_taken_job_id_is_409(http: httpx.Client) -> None:
    """A second job with an id already used answers 409 duplicate_id."""
    assert _post(http, {**OTP, "id": "order-1"}).status_code == 202
    response = _post(http, {**RECORD, "id": "order-1"})
    assert (response.status_code, response.json()["error"]) == (409, "duplicate_id")


def test_50_concurrent_identical_posts_make_one_job(http: httpx.Client, store: JobStore) -> None:
    """50 identical POSTs at once (same key) create exactly one job and all get its id."""
    body = {**OTP, "idempotency_key": "burst-1"}
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: _post(http, body), range(50)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.json()["replay"] for r in responses) == 49
    assert store.state_counts() == {"queued": 1}


def test_far_send_at_is_scheduled(http: httpx.Client, store: JobStore) -> None:
    """A call due in an hour is stored as scheduled (worker mode), with due_at at that time."""
    due = time.time() + 3600
    send_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    job = _post(http, {**RECORD, "send_at": send_at}).json()
    assert job["state"] == "scheduled"
    assert job["due_at"].startswith(send_at[:-1])
    assert store.schedule_stats()[0] == 1


# --- batch ---------------------------------------------------------------------------------


def test_batch_reports_each_item(http: httpx.Client, store: JobStore) -> None:
    """A batch stores the good items and reports each bad one by index, status and error (an
    item that is no object at all makes the batch malformed: tests/test_api_fuzz.py)."""
    calls: list[Any] = [
        OTP,
        {**OTP, "phone": "12345"},
        {**RECORD, "idempotency_key": "b-1"},
        {**RECORD, "idempotency_key": "b-1"},
        {**RECORD, "record_id": "rec-2", "idempotency_key": "b-1"},
        {"kind": "no_such_kind"},
    ]
    response = http.post("/v1/calls/batch", json={"calls": calls})
    result = response.json()
    assert response.status_code == 200
    assert [(r["index"], r["status"]) for r in result["results"]] == [
        (0, 202), (1, 422), (2, 202), (3, 202), (4, 409), (5, 422),
    ]  # fmt: skip
    assert result["results"][1]["error"]["errors"] == [
        {"field": "phone", "message": "is not a valid Vietnamese number (wrong length or prefix)"}
    ]
    assert result["results"][4]["error"]["error"] == "idempotency_conflict"
    assert (result["accepted"], result["replays"], result["failed"]) == (3, 1, 3)
    assert result["results"][3]["job"]["id"] == result["results"][2]["job"]["id"]
    assert store.state_counts() == {"queued": 2}


def test_batch_of_1000_is_accepted(http: httpx.Client, store: JobStore) -> None:
    """1,000 calls, the limit, are all stored from one batch request."""
    calls = [{**RECORD, "phone": f"09{i:08d}"} for i in range(1000)]
    response = http.post("/v1/calls/batch", json={"calls": calls}, timeout=60)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1000
    assert store.state_counts() == {"queued": 1000}


# --- lookups and cancel --------------------------------------------------------------------


def test_get_returns_the_job_with_its_history(http: httpx.Client) -> None:
    """GET /v1/calls/{id} shows the job and its transitions; unknown ids are 404."""
    job_id = _post(http, OTP).json()["id"]
    job = http.get(f"/v1/calls/{job_id}").json()
    assert (job["id"], [h["state"] for h in job["history"]]) == (job_id, ["queued"])
    assert "content" not in job["request"]
    missing = http.get("/v1/calls/no-such-job")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


def test_lookup_by_idempotency_key(http: httpx.Client) -> None:
    """GET /v1/calls?idempotency_key= lists the one job made with the key; none for another
    key; an empty key is 422 naming it."""
    job_id = _post(http, {**OTP, "idempotency_key": "look-1"}).json()["id"]
    found = http.get("/v1/calls", params={"idempotency_key": "look-1"}).json()
    assert ([job["id"] for job in found["data"]], found["next_cursor"]) == ([job_id], None)
    assert http.get("/v1/calls", params={"idempotency_key": "other"}).json()["data"] == []
    empty = http.get("/v1/calls", params={"idempotency_key": ""})
    assert (empty.status_code, empty.json()["errors"][0]["field"]) == (422, "idempotency_key")


def test_lookup_by_smsid(http: httpx.Client, store: JobStore) -> None:
    """GET /v1/calls/by-smsid/{smsid} finds a job once its SMSID is indexed."""
    job_id = _post(http, RECORD).json()["id"]
    steps.submit(store, job_id, "sms-777")
    assert http.get("/v1/calls/by-smsid/sms-777").json()["id"] == job_id
    assert http.get("/v1/calls/by-smsid/sms-000").status_code == 404


def test_cancel_a_queued_job(http: httpx.Client) -> None:
    """DELETE cancels a queued job; a second DELETE is 409 with its state; unknown is 404."""
    job_id = _post(http, OTP).json()["id"]
    cancelled = http.delete(f"/v1/calls/{job_id}")
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
    again = http.delete(f"/v1/calls/{job_id}")
    assert (again.status_code, again.json()["error"], again.json()["state"]) == (
        409,
        "cancel_refused",
        "cancelled",
    )
    assert http.delete("/v1/calls/no-such-job").status_code == 404


def test_cancel_refused_once_handed_to_esms(http: httpx.Client, store: JobStore) -> None:
    """A job being sent to eSMS (sending) can no longer be cancelled: 409."""
    job_id = _post(http, RECORD).json()["id"]
    steps.claim(store, job_id)
    response = http.delete(f"/v1/calls/{job_id}")
    assert (response.status_code, response.json()["state"]) == (409, "sending")


# --- logs and robustness -------------------------------------------------------------------


def _access_line(server: ApiServer, request_id: str) -> str:
    """The server's access log line for ``request_id`` (written just after the response)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [x for x in server.logs().splitlines() if request_id in x and '"request"' in x]
        if lines or time.monotonic() > deadline:
            assert lines, f"no access log line for {request_id}"
            return lines[0]
        time.sleep(0.05)


def test_access_log_masks_phone_numbers(api_server: ApiServer, http: httpx.Client) -> None:
    """Access log lines carry the request id but never a full phone number."""
    response = http.get("/v1/calls", params={"idempotency_key": "0987654321"})
    line = _access_line(api_server, response.headers["x-request-id"])
    assert "0987654321" not in line
    assert "098***4321" in line


def test_access_log_cuts_callback_signatures(api_server: ApiServer) -> None:
    """The signature in an eSMS callback URL never reaches the access log."""
    url = f"{api_server.base_url}/v1/esms/callback/job-1/deadbeefcafe0123"
    line = _access_line(api_server, httpx.get(url).headers["x-request-id"])
    assert "deadbeefcafe0123" not in line
    assert "/v1/esms/callback/job-1/***" in line


def test_a_body_over_the_limit_is_413(api_server: ApiServer, http: httpx.Client) -> None:
    """A Content-Length over API_MAX_BODY_BYTES is refused with a JSON 413 before reading it."""
    response = http.post(
        "/v1/calls", content=b"x" * 2_000_001, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")


def test_a_chunked_body_over_the_limit_is_413(api_server: ApiServer, http: httpx.Client) -> None:
    """A body without Content-Length is cut off with 413 once it passes the limit."""

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 100_000

    response = http.post(
        "/v1/calls", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")


def test_api_refuses_to_start_without_tokens(redis_url: str) -> None:
    """`voicecall api` without API_TOKENS exits 2 with one line naming the setting."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS",)}
    env.update(REDIS_URL=redis_url, CALLBACK_SECRET="x" * 20)
    done = subprocess.run(
        [sys.executable, "-m", "voicecall.cli", "api", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "voicecall: invalid setting: API_TOKENS is required by `voicecall api` and is not set"
    ]


def test_two_workers_share_multiprocess_metrics(
    redis_url: str, start_api: Callable[..., ApiServer]
) -> None:
    """With --workers 2, /metrics adds up both processes' counters (multiprocess mode)."""
    server = start_api(redis_url, "--workers", "2")
    with server.client() as client:
        for _ in range(6):  # new connections: spread over both processes
            assert (
                httpx.post(
                    f"{server.base_url}/v1/calls", json=OTP, headers=client.headers
                ).status_code
                == 202
            )
    text = httpx.get(f"{server.base_url}/metrics").text
    assert 'voicecall_jobs_enqueued_total{kind="voice_otp"} 6.0' in text
    assert 'voicecall_jobs_by_state{state="queued"} 6.0' in text


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_an_unexpected_error_is_a_json_500_with_the_request_id(
    redis_url: str, restore_logging: None
) -> None:
    """An unhandled exception gives a JSON 500 with the request id, no traceback, and a log line."""
    settings = load_settings(redis_url=redis_url, api_tokens="t" * 16, callback_secret="c" * 16)
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get("/boom", headers={"X-Request-ID": "rid-500"})

    with structlog.testing.capture_logs() as logs:
        response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "unexpected error; quote the request id",
        "request_id": "rid-500",
    }
    assert "secret internals" not in response.text
    assert any(e["event"] == "unhandled_error" and e.get("exc_info") for e in logs)


def test_the_api_freezes_its_start_up_objects_out_of_the_collector(
    redis_url: str, restore_logging: None
) -> None:
    """After start-up the app's long-lived objects are frozen: a full collection, which took
    ~30 ms over them and stalled every request in flight, no longer walks them."""
    import gc

    settings = load_settings(redis_url=redis_url, api_tokens="t" * 16, callback_secret="c" * 16)
    app = create_app(settings)

    async def start_and_measure() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    try:
        assert asyncio.run(start_and_measure()) > 10_000
    finally:
        gc.unfreeze()

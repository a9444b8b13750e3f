"""The API's boundaries against hostile and clumsy clients (issue 10 §4, §7, §8), on the real
API process and a real Redis: ids that look like internal keys, the Idempotency-Key header,
media types, deep nesting, duplicate keys, control characters, naive times, error logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import structlog
from fastapi import Request

from producer.api import create_app
from producer.body import MAX_DEPTH, too_deep
from tests.fixtures.api import ApiServer
from voicecall.config.settings import load_settings
from voicecall.esms.callbacks import CALLBACK_PATH
from voicecall.job import keys
from voicecall.store.job_store import JobStore
from voicecall.telemetry.logs import configure_logging

OTP: dict[str, Any] = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}
RECORD: dict[str, Any] = {"kind": "record_call", "phone": "0901234567", "record_id": "rec-1"}
TEMPLATE: dict[str, Any] = {"kind": "template_call", "phone": "0901234567", "template_id": "t-1"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture()
def http(api_server: ApiServer) -> Iterator[httpx.Client]:
    with api_server.client() as client:
        yield client


@pytest.fixture()
def store(redis_url: str) -> JobStore:
    return JobStore.from_url(redis_url)


def _fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json().get("errors", [])]


def _queued_messages(store: JobStore) -> int:
    return sum(store.queue_depths().values())


# --- §4 job ids that look like internal keys ----------------------------------------------


def test_an_id_shaped_like_an_internal_key_cannot_break_another_job(
    http: httpx.Client, store: JobStore
) -> None:
    """`victim:history` then `victim`: both are stored whole, each with its own send message;
    neither answers 500 nor leaves a job that is never sent."""
    first = http.post("/v1/calls", json={**OTP, "id": "victim:history"})
    second = http.post("/v1/calls", json={**OTP, "id": "victim"})
    assert (first.status_code, second.status_code) == (202, 202)
    assert [j.state.value for j in store.get_many(["victim:history", "victim"]) if j] == [
        "queued",
        "queued",
    ]
    assert _queued_messages(store) == 2
    assert http.get("/v1/calls/victim").json()["id"] == "victim"


def test_the_job_key_space_holds_nothing_but_jobs(http: httpx.Client, redis_url: str) -> None:
    """Every key under vc:job: is one job document: no id can name an index or a list."""
    import redis

    for job_id in ("a:history", "a:idem:x", "a", "a.b", "a-b_c"):
        assert http.post("/v1/calls", json={**OTP, "id": job_id}).status_code == 202
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    job_keys = list(client.scan_iter(match=keys.job("*")))
    assert sorted(job_keys) == sorted(
        keys.job(i) for i in ("a:history", "a:idem:x", "a", "a.b", "a-b_c")
    )
    assert {client.type(k) for k in job_keys} == {"string"}
    client.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/calls/x%0Ahistory"),
        ("GET", "/v1/calls/-leading-dash"),
        ("GET", "/v1/calls/a%00b"),
        ("GET", "/v1/calls/" + "a" * 51),
        ("GET", "/v1/calls/a%20b"),
        ("DELETE", "/v1/calls/x%0Dhistory"),
        ("DELETE", "/v1/calls/" + "a" * 51),
    ],
)
def test_a_path_id_outside_the_pattern_is_422_naming_id(
    http: httpx.Client, method: str, path: str
) -> None:
    """GET and DELETE check the id's shape before looking anything up."""
    response = http.request(method, path)
    assert response.status_code == 422, response.text
    assert _fields(response) == ["id"]


@pytest.mark.parametrize("reason", ["a\nb", "a\x00b", "x" * 201])
def test_a_cancel_reason_with_control_characters_is_422(
    http: httpx.Client, store: JobStore, reason: str
) -> None:
    """The reason lands in the job's history: no CR, LF or NUL, at most 200 characters."""
    job_id = http.post("/v1/calls", json=OTP).json()["id"]
    response = http.delete(f"/v1/calls/{job_id}", params={"reason": reason})
    assert response.status_code == 422
    assert _fields(response) == ["reason"]
    job = store.get(job_id)
    assert job is not None and job.state.value == "queued"


def test_get_of_an_internal_looking_id_is_a_plain_404(http: httpx.Client) -> None:
    """`x:history` is a valid id that names no job: 404, never 500."""
    response = http.get("/v1/calls/x:history")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")


# --- §7 the Idempotency-Key header ---------------------------------------------------------


def test_five_retries_with_the_header_make_one_call(http: httpx.Client, store: JobStore) -> None:
    """Five POSTs with one Idempotency-Key: one job, one send message; four replays marked."""
    responses = [
        http.post("/v1/calls", json=OTP, headers={"Idempotency-Key": "login-42"}) for _ in range(5)
    ]
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert [r.headers.get("Idempotent-Replayed") for r in responses] == [None] + ["true"] * 4
    assert responses[0].json()["idempotency_key"] == "login-42"
    assert sum(store.state_counts().values()) == 1
    assert _queued_messages(store) == 1


def test_header_and_field_with_the_same_key_are_one_key(http: httpx.Client) -> None:
    """The header means what the field means: a request with either replays the other."""
    by_field = http.post("/v1/calls", json={**OTP, "idempotency_key": "k-1"})
    by_header = http.post("/v1/calls", json=OTP, headers={"Idempotency-Key": "k-1"})
    both = http.post(
        "/v1/calls", json={**OTP, "idempotency_key": "k-1"}, headers={"Idempotency-Key": "k-1"}
    )
    assert by_field.json()["id"] == by_header.json()["id"] == both.json()["id"]
    assert by_header.headers["Idempotent-Replayed"] == "true"


def test_header_and_field_that_differ_are_422(http: httpx.Client, store: JobStore) -> None:
    """Two different keys in one request: refused, nothing stored."""
    response = http.post(
        "/v1/calls", json={**OTP, "idempotency_key": "a"}, headers={"Idempotency-Key": "b"}
    )
    assert response.status_code == 422
    assert _fields(response) == ["idempotency_key"]
    assert sum(store.state_counts().values()) == 0


def test_the_header_with_another_body_is_409(http: httpx.Client) -> None:
    """The header key reused for another call is a conflict, as with the field."""
    http.post("/v1/calls", json=OTP, headers={"Idempotency-Key": "k-2"})
    other = http.post("/v1/calls", json=RECORD, headers={"Idempotency-Key": "k-2"})
    assert (other.status_code, other.json()["error"]) == (409, "idempotency_conflict")


def test_a_header_key_breaking_the_rules_is_422(http: httpx.Client) -> None:
    """Over 200 characters, or a control character: 422 naming the key."""
    long = http.post("/v1/calls", json=OTP, headers={"Idempotency-Key": "k" * 201})
    assert long.status_code == 422
    assert _fields(long) == ["Idempotency-Key"]
    tab = http.post("/v1/calls", json=OTP, headers={"Idempotency-Key": "a\tb"})
    assert tab.status_code == 422
    assert _fields(tab) == ["idempotency_key"]


def test_the_batch_refuses_the_header(http: httpx.Client, store: JobStore) -> None:
    """One key cannot name many jobs: the batch says so instead of ignoring it."""
    response = http.post(
        "/v1/calls/batch", json={"calls": [OTP]}, headers={"Idempotency-Key": "k-3"}
    )
    assert response.status_code == 422
    assert _fields(response) == ["Idempotency-Key"]
    assert sum(store.state_counts().values()) == 0


def test_openapi_documents_the_header(http: httpx.Client) -> None:
    """The header is a documented parameter of POST /v1/calls."""
    operation = http.get("/openapi.json").json()["paths"]["/v1/calls"]["post"]
    names = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
    assert ("Idempotency-Key", "header") in names
    assert "Idempotent-Replayed" in operation["responses"]["202"]["headers"]


# --- §8 bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/v1/calls", "/v1/calls/batch"])
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin-1"],
)
def test_a_body_that_is_not_json_is_415(
    http: httpx.Client, store: JobStore, route: str, content_type: str
) -> None:
    """Only application/json bodies are read; anything else is 415, nothing stored."""
    body = json.dumps(OTP if route == "/v1/calls" else {"calls": [OTP]})
    response = http.post(route, content=body, headers={"Content-Type": content_type})
    assert (response.status_code, response.json()["error"]) == (415, "unsupported_media_type")
    assert sum(store.state_counts().values()) == 0


def test_json_with_a_charset_is_accepted(http: httpx.Client) -> None:
    """`application/json; charset=utf-8` is JSON."""
    response = http.post(
        "/v1/calls",
        content=json.dumps(OTP),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202


@pytest.mark.parametrize("route", ["/v1/calls", "/v1/calls/batch"])
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_a_deeply_nested_body_is_422(http: httpx.Client, route: str, depth: int) -> None:
    """A body nested 1,000 (or 100,000) levels deep gets 422 on `body`, not a 500."""
    body = '{"kind": "voice_otp", "labels": ' + "[" * depth + "]" * depth + "}"
    response = http.post(route, content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert _fields(response) == ["body"]


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    """The depth scan skips strings, escaped quotes included."""
    assert not too_deep(json.dumps({"content": "[" * 500, "x": ['\\"[[[' * 50]}).encode())
    assert too_deep(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"kind":"voice_otp","phone":"0901234567","content":"1","content":"2"}', "content"),
        ('{"kind":"voice_otp","kind":"record_call","phone":"0901234567","record_id":"r"}', "kind"),
        (
            '{"kind":"voice_otp","phone":"0901234567","content":"1","labels":{"a":"1","a":"2"}}',
            "labels.a",
        ),
    ],
)
def test_a_duplicate_json_key_is_422_naming_it(
    http: httpx.Client, store: JobStore, body: str, field: str
) -> None:
    """Parsers disagree on which copy of a key wins: refuse, naming the key."""
    response = http.post("/v1/calls", content=body, headers=JSON)
    assert response.status_code == 422
    assert _fields(response) == [field]
    assert sum(store.state_counts().values()) == 0


def test_a_duplicate_key_inside_a_batch_is_named_by_its_path(
    http: httpx.Client, store: JobStore
) -> None:
    """The whole batch is refused (its JSON is ambiguous), naming calls.N.key."""
    body = '{"calls": [{"kind": "voice_otp"}, {"kind": "voice_otp", "phone": "1", "phone": "2"}]}'
    response = http.post("/v1/calls/batch", content=body, headers=JSON)
    assert response.status_code == 422
    assert _fields(response) == ["calls.1.phone"]
    assert sum(store.state_counts().values()) == 0


@pytest.mark.parametrize("char", ["\x00", "\r", "\n"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**OTP, "id": "job{c}1"}, "id"),
        ({**OTP, "idempotency_key": "key{c}1"}, "idempotency_key"),
        ({**OTP, "labels": {"app": "a{c}b"}}, "labels"),
        ({**OTP, "labels": {"a{c}b": "app"}}, "labels"),
        ({**RECORD, "record_id": "rec{c}1"}, "record_id"),
        ({**TEMPLATE, "variables": ["ok", "x{c}y"]}, "variables"),
        ({**TEMPLATE, "template_id": "t{c}1"}, "template_id"),
    ],
)
def test_nul_cr_lf_are_refused_naming_the_field(
    http: httpx.Client, char: str, body: dict[str, Any], field: str
) -> None:
    """NUL, CR and LF in ids, keys, labels, record ids and variables: 422 naming the field."""
    filled = json.loads(json.dumps(body).replace("{c}", json.dumps(char)[1:-1]))
    response = http.post("/v1/calls", json=filled)
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]


def test_a_naive_send_at_error_names_the_zone_it_was_read_in(http: httpx.Client) -> None:
    """A naive time is read in TIMEZONE; when it is refused, the message says in which."""
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    naive = (datetime.now(zone) - timedelta(hours=2)).replace(tzinfo=None).isoformat()
    response = http.post("/v1/calls", json={**OTP, "send_at": naive})
    assert response.status_code == 422
    assert "read in Asia/Ho_Chi_Minh" in response.json()["errors"][0]["message"]
    aware = (datetime.now(zone) - timedelta(hours=2)).isoformat()
    aware_response = http.post("/v1/calls", json={**OTP, "send_at": aware})
    assert "read in" not in aware_response.json()["errors"][0]["message"]


# --- §8 logs ----------------------------------------------------------------------------------


def _access_line(server: ApiServer, request_id: str) -> str:
    import time

    deadline = time.monotonic() + 5
    while True:
        lines = [x for x in server.logs().splitlines() if request_id in x and '"request"' in x]
        if lines or time.monotonic() > deadline:
            assert lines, f"no access log line for {request_id}"
            return lines[0]
        time.sleep(0.05)


def test_access_log_cuts_callback_nonce_and_signature(api_server: ApiServer) -> None:
    """The access log keeps a callback's job id, never its nonce or its signature."""
    url = f"{api_server.base_url}{CALLBACK_PATH}/job-1/noncenonce42/deadbeefcafe0123"
    response = httpx.get(url, params={"CallStatus": "ANSWERED"})
    line = _access_line(api_server, response.headers["x-request-id"])
    assert "noncenonce42" not in line
    assert "deadbeefcafe0123" not in line
    assert f"{CALLBACK_PATH}/job-1/***" in line


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_error_log_lines_cut_callback_signatures(redis_url: str, restore_logging: None) -> None:
    """An error while serving a callback URL logs the job id, not the nonce or signature,
    in the event's fields and in the traceback alike."""
    settings = load_settings(redis_url=redis_url, api_tokens="t" * 16, callback_secret="c" * 16)
    app = create_app(settings)
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)

    @app.get(CALLBACK_PATH + "/{job_id}/{nonce}/{signature}/boom")
    def boom(request: Request) -> None:
        raise RuntimeError(f"failed on {request.url}")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get(f"{CALLBACK_PATH}/job-9/noncenonce77/sigsigsig99/boom")

    assert asyncio.run(call()).status_code == 500
    output = stream.getvalue()
    assert "unhandled_error" in output
    assert "job-9" in output
    assert "noncenonce77" not in output
    assert "sigsigsig99" not in output

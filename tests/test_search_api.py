"""Finding jobs over the real API (a uvicorn process) on real Redis: GET /v1/calls with its
filters and cursors, the CSV export, the campaigns, and every bad parameter refused with 422
naming it. Jobs are made over HTTP and moved by the store's own operations."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from producer.search import export
from tests.fixtures import steps
from tests.fixtures.api import ApiServer
from tests.fixtures.cursors import cursor_content, signed_cursor
from voicecall.job import lifecycle
from voicecall.job.states import Outcome
from voicecall.store.job_store import JobStore


@pytest.fixture()
def http(api_server: ApiServer) -> Iterator[httpx.Client]:
    with api_server.client() as client:
        yield client


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


def _batch(http: httpx.Client, n: int, campaign: str | None = None, **extra: Any) -> list[str]:
    calls = [
        {"kind": "record_call", "phone": f"0901{i % 5:06d}", "record_id": "r1", **extra}
        for i in range(n)
    ]
    body: dict[str, Any] = {"calls": calls}
    if campaign is not None:
        body["campaign"] = campaign
    answer = http.post("/v1/calls/batch", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == n, answer.json()
    return [item["job"]["id"] for item in answer.json()["results"]]


def _complete(store: JobStore, job_id: str, outcome: Outcome, duration: int, price: float) -> None:
    steps.submit(store, job_id, f"sms-{job_id}")
    call = {"status": "ANSWERED", "duration_s": duration, "price_vnd": price}
    op = lifecycle.complete(
        job_id, outcome=outcome, call=call, source="poll", smsid=f"sms-{job_id}"
    )
    assert store.apply(op).verdict == "accepted"


def _created_ms(store: JobStore, job_id: str) -> int:
    job = store.get(job_id)
    assert job is not None
    return round(job.created_at * 1000)


def _ids(http: httpx.Client, params: Any, limit: int = 2) -> list[str]:
    """Every id the search finds, following cursors page by page."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        query = [*params, ("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
        answer = http.get("/v1/calls", params=query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += [job["id"] for job in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _refused(answer: httpx.Response, param: str) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_failed"
    assert [e["field"] for e in body["errors"]] == [param], body


def test_list_filters_newest_first_through_cursor_pages(
    http: httpx.Client, store: JobStore
) -> None:
    """state, kind, outcome, label (ANDed), phone (any form intake takes) and created range
    each find exactly their jobs, newest first, across pages."""
    spring = _batch(http, 6, campaign="spring", labels={"team": "a"})
    autumn = _batch(http, 3, campaign="autumn")
    for job_id in spring[:2]:
        _complete(store, job_id, Outcome.ANSWERED, 12, 880.0)
    _complete(store, spring[2], Outcome.NOT_ANSWERED, 0, 0.0)

    # A batch makes several jobs in one millisecond: the state index orders those by id.
    def newest_first(ids: list[str]) -> list[str]:
        return sorted(ids, key=lambda i: (_created_ms(store, i), i), reverse=True)

    assert _ids(http, []) == newest_first(spring + autumn)
    assert _ids(http, [("state", "completed")]) == newest_first(spring[:3])
    assert _ids(http, [("state", "queued,completed")]) == newest_first(spring + autumn)
    assert _ids(http, [("outcome", "answered")]) == newest_first(spring[:2])
    assert _ids(http, [("kind", "voice_otp")]) == []
    assert _ids(http, [("label", "campaign:spring"), ("label", "team:a")]) == list(reversed(spring))
    assert _ids(http, [("label", "campaign:spring"), ("label", "team:b")]) == []
    by_phone = _ids(http, [("phone", "+84 90 100 0001")], limit=1)
    assert sorted(by_phone) == sorted([spring[1], autumn[1]])
    assert by_phone[0] == autumn[1]  # made by the later batch
    first = http.get(f"/v1/calls/{spring[0]}").json()["created_at"]
    assert _ids(http, [("created_from", first), ("created_to", first)]) == [spring[0]]
    # Without an offset a time is read in TIMEZONE (Asia/Ho_Chi_Minh), as intake reads send_at.
    local = datetime.fromisoformat(first).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    naive = local.replace(tzinfo=None).isoformat(timespec="milliseconds")
    assert _ids(http, [("created_from", naive), ("created_to", naive)]) == [spring[0]]
    finished = _ids(http, [("finished_from", str(time.time() - 60))])
    assert sorted(finished) == sorted(spring[:3])
    page = http.get("/v1/calls", params={"limit": 1}).json()
    assert set(page["data"][0]) >= {"id", "kind", "phone", "state", "outcome", "labels"}
    assert "history" not in page["data"][0]


def test_pages_neither_repeat_nor_skip_while_jobs_change_state(
    http: httpx.Client, store: JobStore
) -> None:
    """Paging through every job while, between pages, others finish: each comes once."""
    ids = _batch(http, 10)
    moves = iter(ids)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/calls", params=params).json()
        seen += [job["id"] for job in page["data"]]
        for job_id in [next(moves, None), next(moves, None)]:
            if job_id is not None:
                _complete(store, job_id, Outcome.ANSWERED, 1, 1.0)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ([("status", "queued")], "status"),
        ([("state", "queued"), ("sort", "asc")], "sort"),
        ([("state", "lost")], "state"),
        ([("kind", "fax")], "kind"),
        ([("outcome", "maybe")], "outcome"),
        ([("label", "campaign")], "label"),
        ([("label", ":x")], "label"),
        ([("phone", "12345")], "phone"),
        ([("phone", "0901000001"), ("phone", "0901000002")], "phone"),
        ([("phone", "0901\x00000001")], "phone"),
        ([("idempotency_key", "")], "idempotency_key"),
        ([("created_from", "yesterday")], "created_from"),
        ([("created_from", "2030-13-01T00:00:00")], "created_from"),
        ([("due_to", "nan")], "due_to"),
        ([("due_to", "inf")], "due_to"),
        ([("finished_from", "-5")], "finished_from"),
        ([("created_from", "2030-01-02T00:00:00Z"), ("created_to", "2030-01-01T00:00:00Z")],
         "created_from"),
        ([("finished_from", "20"), ("finished_to", "10")], "finished_from"),
        ([("limit", "0")], "limit"),
        ([("limit", "501")], "limit"),
        ([("limit", "ten")], "limit"),
        ([("cursor", "bm90LWEtY3Vyc29y")], "cursor"),
        ([("cursor", "%%%")], "cursor"),
        ([("state", "x" * 2000)], "state"),
    ],
)  # fmt: skip
def test_bad_parameters_get_422_naming_them(
    http: httpx.Client, query: list[tuple[str, str]], param: str
) -> None:
    """Each bad search parameter (unknown, malformed, out of range, repeated, too long) gets 422
    validation_failed naming that parameter only."""
    _refused(http.get("/v1/calls", params=query), param)


def test_a_cursor_of_another_search_or_too_old_is_refused(http: httpx.Client) -> None:
    """A cursor is bound to its filters and lasts 24 h; a tampered one is refused too."""
    _batch(http, 3)
    cursor = http.get("/v1/calls", params={"limit": 1}).json()["next_cursor"]
    assert cursor
    _refused(http.get("/v1/calls", params={"cursor": cursor, "state": "queued"}), "cursor")
    data = cursor_content(cursor)
    old = signed_cursor({**data, "t": data["t"] - 25 * 3600})  # signed as the API signs
    expired = http.get("/v1/calls", params={"cursor": old})
    _refused(expired, "cursor")
    assert "expired" in expired.json()["errors"][0]["message"]
    assert http.get("/v1/calls", params={"cursor": cursor, "limit": 1}).status_code == 200


def test_search_routes_need_the_bearer_token(api_server: ApiServer) -> None:
    """Listing, exporting and the campaign routes answer 401 without the bearer token."""
    with httpx.Client(base_url=api_server.base_url) as anonymous:
        for path in ("/v1/calls", "/v1/calls/export", "/v1/campaigns", "/v1/campaigns/x"):
            assert anonymous.get(path).status_code == 401, path


def test_export_streams_one_row_per_job_with_the_same_filters(
    http: httpx.Client, store: JobStore
) -> None:
    """The CSV has the documented columns, a row per matching job (newest first), the call's
    duration and price, and cells a spreadsheet would run as a formula neutralised."""
    ids = _batch(http, 4, campaign="export-me", labels={"note": '=HYPERLINK("http://x")'})
    _batch(http, 2, campaign="not-me")
    _complete(store, ids[0], Outcome.ANSWERED, 42, 880.5)
    with http.stream("GET", "/v1/calls/export", params={"label": "campaign:export-me"}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.headers["content-disposition"].startswith("attachment;")
        text = answer.read().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == export.COLUMNS
    assert [row["id"] for row in rows] == list(reversed(ids))
    done = rows[-1]
    assert (done["state"], done["outcome"], done["duration_s"], done["price_vnd"]) == (
        "completed",
        "answered",
        "42",
        "880.5",
    )
    assert done["finished_at"].endswith("Z") and done["phone"].startswith("84")
    assert json.loads(rows[0]["labels"]) == {
        "campaign": "export-me",
        "note": '=HYPERLINK("http://x")',
    }
    _refused(http.get("/v1/calls/export", params={"limit": "5"}), "limit")
    _refused(http.get("/v1/calls/export", params={"state": "nope"}), "state")


def test_export_of_many_jobs_is_complete(http: httpx.Client) -> None:
    """More rows than one read batch and one chunk: every job once."""
    ids = [job_id for _ in range(3) for job_id in _batch(http, 400, campaign="big")]
    text = http.get("/v1/calls/export", params={"label": "campaign:big"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(row["id"] for row in rows) == sorted(ids)


def test_a_formula_in_a_label_never_starts_a_cell() -> None:
    """Labels are a JSON object, and any cell starting like a formula gets a quote."""
    doc = {
        "id": "j1",
        "phone": "84901000001",
        "kind": "record_call",
        "state": "failed",
        "error": {"code": "=1+1", "message": "@SUM(A1)"},
        "labels": {},
    }
    cells = export.row(doc)
    assert cells[export.COLUMNS.index("error_code")] == "'=1+1"
    assert cells[export.COLUMNS.index("error_message")] == "'@SUM(A1)"


def test_campaign_figures_while_it_runs_and_after(http: httpx.Client, store: JobStore) -> None:
    """A batch sets the campaign of every call; its figures follow each step; a call of the
    batch naming another campaign is refused on its own; unknown campaigns are 404."""
    ids = _batch(http, 4, campaign="tet")
    running = http.get("/v1/campaigns/tet").json()
    assert (running["total"], running["progress"], running["answer_rate"]) == (4, 0.0, None)
    assert running["by_state"]["queued"] == 4
    _complete(store, ids[0], Outcome.ANSWERED, 30, 880.0)
    _complete(store, ids[1], Outcome.NOT_ANSWERED, 0, 0.0)
    http.delete(f"/v1/calls/{ids[2]}")
    summary = http.get("/v1/campaigns/tet").json()
    assert summary["by_state"] == {
        "scheduled": 0,
        "queued": 1,
        "sending": 0,
        "submitted": 0,
        "retrying": 0,
        "completed": 2,
        "failed": 0,
        "rejected": 0,
        "expired": 0,
        "cancelled": 1,
    }
    assert summary["by_outcome"]["answered"] == 1 and summary["by_outcome"]["not_answered"] == 1
    assert (summary["answered"], summary["finished"], summary["answer_rate"]) == (1, 3, 0.5)
    assert (summary["duration_s"], summary["average_duration_s"], summary["cost_vnd"]) == (
        30,
        30.0,
        880.0,
    )
    assert summary["first_sent_at"] <= summary["last_sent_at"]
    assert summary["progress"] == 0.75

    mixed = http.post(
        "/v1/calls/batch",
        json={
            "campaign": "tet",
            "calls": [
                {"kind": "record_call", "phone": "0901000009", "record_id": "r1"},
                {
                    "kind": "record_call",
                    "phone": "0901000009",
                    "record_id": "r1",
                    "labels": {"campaign": "other"},
                },
            ],
        },
    ).json()
    assert [item["status"] for item in mixed["results"]] == [202, 422]
    assert mixed["results"][1]["error"]["errors"][0]["field"] == "labels.campaign"
    assert http.get("/v1/campaigns/tet").json()["total"] == 5

    listed = http.get("/v1/campaigns").json()["data"]
    assert [c["name"] for c in listed] == ["tet"]
    missing = http.get("/v1/campaigns/never-ran")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    _refused(http.get("/v1/campaigns", params={"state": "queued"}), "state")


@pytest.mark.parametrize(
    ("campaign", "message"),
    [("", "1-256"), ("x" * 300, "1-256"), ("a\nb", "control"), (7, "string")],
)
def test_a_bad_batch_campaign_refuses_the_whole_batch(
    http: httpx.Client, store: JobStore, campaign: Any, message: str
) -> None:
    """A batch whose campaign is empty, too long, has a control character or is not a string is
    refused whole (422 naming campaign) and creates no job."""
    call = {"kind": "record_call", "phone": "0901000001", "record_id": "r1"}
    answer = http.post("/v1/calls/batch", json={"campaign": campaign, "calls": [call]})
    _refused(answer, "campaign")
    assert message in answer.json()["errors"][0]["message"]
    assert store.state_counts() == {}


def test_openapi_describes_the_search_routes(http: httpx.Client) -> None:
    """Each new route is in the document with its parameters, 422 and an example."""
    document = http.get("/openapi.json").json()
    paths = document["paths"]
    listing = paths["/v1/calls"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names >= {"state", "kind", "outcome", "label", "phone", "created_from", "cursor"}
    for path in ("/v1/calls", "/v1/calls/export", "/v1/campaigns", "/v1/campaigns/{name}"):
        operation = paths[path]["get"]
        assert "422" in operation["responses"], path
        content = operation["responses"]["200"]["content"]
        assert any("example" in media for media in content.values()), path
    assert "404" in paths["/v1/campaigns/{name}"]["get"]["responses"]

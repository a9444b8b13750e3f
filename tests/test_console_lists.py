"""The console's lists and bulk actions over HTTP, against a real API process and Redis
(issue 23): times in TIMEZONE with the zone and ISO on hover, local-time filters, true totals
and previous/next paging past 200, multi-value filters, the client filter; bulk cancel and
bulk requeue through the API (``/v1/bulk``) and the console, each one audit line."""

from __future__ import annotations

import html
import json
import re
import time
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from producer.bulk_api import describe
from producer.console import timeline
from tests.fixtures import steps
from tests.fixtures.api import ApiServer
from tests.fixtures.console import login as _login
from tests.fixtures.steps import create as _create
from voicecall.client import Client
from voicecall.config.clients import bare_token_name
from voicecall.job import keys, lifecycle
from voicecall.job.states import Outcome, State
from voicecall.store.job_store import JobStore

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")  # TIMEZONE's default
ROW = re.compile(r'<a href="/console/calls/([^"/]+)">')


def _scheduled_batch(api: httpx.Client, count: int, campaign: str, send_at: str) -> list[str]:
    calls = [
        {"kind": "record_call", "phone": f"0901{i:06d}", "record_id": "r1", "send_at": send_at}
        for i in range(count)
    ]
    answer = api.post("/v1/calls/batch", json={"calls": calls, "campaign": campaign})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert all(r["status"] == 202 for r in results), results[:3]
    return [r["job"]["id"] for r in results]


def _tomorrow_local() -> datetime:
    """Tomorrow at 09:00 in TIMEZONE (naive, as an operator types it)."""
    day = datetime.now(ZONE).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0)


def _ids(page: str) -> list[str]:
    return ROW.findall(page)


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _wait_done(api: httpx.Client, op_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while True:
        op = api.get(f"/v1/bulk/{op_id}").json()
        if op["state"] != "running" or time.monotonic() > deadline:
            return dict(op)
        time.sleep(0.05)


def test_lists_show_times_in_the_zone_and_page_past_200_with_a_true_total(
    api_server: ApiServer,
) -> None:
    """213 calls sent with a naive send_at of 09:00 show as due 09:00 UTC+07 (ISO on hover);
    Scheduled says 213 and pages through every one of them, forward and back."""
    local = _tomorrow_local()
    with api_server.client() as api:
        ids = _scheduled_batch(api, 213, "paging", local.isoformat(sep=" "))
    client, _ = _login(api_server)
    with closing(client):
        first = client.get("/console/scheduled").text
        assert "Jobs 1–50 of 213" in first
        due = local.replace(tzinfo=ZONE).isoformat()
        assert f'<time datetime="{due}" title="{due}">{local:%d %b} 09:00:00 UTC+07</time>' in first
        seen, pages, url = [], [first], _link(first, "next")
        seen += _ids(first)
        while url:
            page = client.get(url).text
            pages.append(page)
            seen += _ids(page)
            url = _link(page, "next")
        assert len(pages) == 5 and "Jobs 201–213 of 213" in pages[-1]
        assert sorted(seen) == sorted(ids)  # each once, none missing
        back = client.get(_link(pages[-1], "prev") or "").text
        assert "Jobs 151–200 of 213" in back and _ids(back) == _ids(pages[3])
        assert _link(first, "prev") is None
        # A local-time filter (datetime-local sends no offset): read in TIMEZONE.
        until = (local - timedelta(minutes=1)).isoformat()
        none = client.get("/console/calls", params={"due_to": until, "state": "scheduled"})
        assert none.status_code == 200 and "No jobs on this page, of 0" in none.text
        some = client.get("/console/calls", params={"due_from": local.isoformat()})
        assert "of 213" in some.text


def test_filters_take_several_values_and_the_client(api_server: ApiServer) -> None:
    """The Calls list takes several states, kinds and outcomes at once, and a filter by API client."""
    with api_server.client() as api:
        sched = _scheduled_batch(api, 2, "multi", (_tomorrow_local()).isoformat())
        api.delete(f"/v1/calls/{sched[0]}")
    client, _ = _login(api_server)
    with closing(client):
        both = client.get("/console/calls?state=scheduled&state=cancelled").text
        assert sorted(_ids(both)) == sorted(sched) and "of 2" in both
        assert 'value="cancelled" selected' in both and 'value="scheduled" selected' in both
        name = bare_token_name(api_server.token)
        assert f'<option value="{name}"' in both  # the client filter offers API_TOKENS' names
        mine = client.get("/console/calls", params={"client": name, "state": "scheduled"}).text
        assert _ids(mine) == [sched[1]] and "of 1" in mine
        assert "No jobs on this page, of 0" in client.get("/console/calls?client=cli").text


def test_bulk_cancel_over_the_api_cancels_a_campaigns_scheduled_calls(
    api_server: ApiServer,
) -> None:
    """POST /v1/bulk/cancel-calls cancels every scheduled call of a campaign server-side; GET /v1/bulk/{id} reports its progress and count."""
    with api_server.client() as api:
        doomed = _scheduled_batch(api, 230, "bulk-a", _tomorrow_local().isoformat())
        kept = _scheduled_batch(api, 3, "bulk-b", _tomorrow_local().isoformat())
        answer = api.post("/v1/bulk/cancel-calls", params={"label": "campaign:bulk-a"})
        assert answer.status_code == 202, answer.text
        op = answer.json()
        assert answer.headers["location"] == f"/v1/bulk/{op['id']}"
        assert (op["action"], op["total"]) == ("cancel", 230)
        done = _wait_done(api, op["id"])
        assert (done["state"], done["changed"], done["skipped"]) == ("done", 230, 0)
        states = {api.get(f"/v1/calls/{i}").json()["state"] for i in doomed}
        assert states == {"cancelled"}
        assert {api.get(f"/v1/calls/{i}").json()["state"] for i in kept} == {"scheduled"}
        again = _wait_done(
            api, api.post("/v1/bulk/cancel-calls?label=campaign:bulk-a").json()["id"]
        )
        assert (again["total"], again["changed"]) == (0, 0)
        bad = api.post("/v1/bulk/cancel-calls", params={"state": "queued"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "state"
        assert api.get("/v1/bulk/nope").status_code == 404
        assert httpx.post(f"{api_server.base_url}/v1/bulk/cancel-calls").status_code == 401
    assert '"bulk_started"' in api_server.logs() or "bulk_started" in api_server.logs()


def test_bulk_cancel_in_the_console_confirms_the_count_and_audits_once(
    api_server: ApiServer,
) -> None:
    """The console's bulk cancel asks once, stating the count, then cancels them all and writes one audit line."""
    with api_server.client() as api:
        doomed = _scheduled_batch(api, 12, "console-bulk", _tomorrow_local().isoformat())
    client, csrf = _login(api_server)
    with closing(client):
        campaign = client.get("/console/campaign", params={"name": "console-bulk"}).text
        link = re.search(r'id="bulk-cancel" href="([^"]+)"', campaign)
        assert link, campaign
        confirm = client.get(html.unescape(link.group(1))).text
        assert "Cancel 12 scheduled calls?" in confirm
        action = re.search(r'action="(/console/bulk/cancel\?[^"]+)"', confirm)
        assert action
        url = html.unescape(action.group(1))
        assert client.post(url, data={"csrf": "forged", "confirm": "yes"}).status_code == 403
        started = client.post(url, data={"csrf": csrf, "confirm": "yes", "reason": "tet moved"})
        assert started.status_code == 303
        progress = started.headers["location"]
        deadline = time.monotonic() + 20
        while "done" not in client.get(progress).text and time.monotonic() < deadline:
            time.sleep(0.05)
        page = client.get(progress).text
        assert 'id="bulk-changed">12<' in page and 'id="bulk-state"' in page
    with api_server.client() as api:
        job = api.get(f"/v1/calls/{doomed[0]}").json()
        assert job["state"] == "cancelled" and job["history"][-1]["note"] == "tet moved"
    audits = [
        json.loads(line)
        for line in api_server.logs().splitlines()
        if '"console_bulk_cancel"' in line
    ]
    assert len(audits) == 1 and audits[0]["total"] == 12


def test_bulk_requeue_of_a_queues_dead_letters(api_server: ApiServer, redis_url: str) -> None:
    """Requeueing a queue's dead letters in bulk: one confirmation stating the count, every one
    requeued; an unknown queue is 422 and an empty one a job of 0."""
    store = JobStore.from_url(redis_url)
    with closing(store):
        for n in range(3):
            job_id = f"dead-{n}"
            _create_failed(store, job_id)
        client, csrf = _login(api_server)
        with closing(client):
            listed = client.get(f"/console/dead?queue={keys.QUEUE_BULK}").text
            assert "Dead letters 1–3 of 3" in listed
            confirm = client.get(f"/console/dead/{keys.QUEUE_BULK}/requeue-all").text
            assert "Requeue 3 dead letters?" in confirm
            started = client.post(
                f"/console/dead/{keys.QUEUE_BULK}/requeue-all",
                data={"csrf": csrf, "confirm": "yes"},
            )
            assert started.status_code == 303
        with api_server.client() as api:
            op_id = started.headers["location"].rsplit("/", 1)[-1]
            done = _wait_done(api, op_id)
            assert (done["action"], done["changed"]) == ("requeue", 3)
            assert (
                api.post("/v1/bulk/requeue-dead-letters", params={"queue": "x"}).status_code == 422
            )
            empty = api.post("/v1/bulk/requeue-dead-letters", params={"queue": keys.QUEUE_BULK})
            assert empty.status_code == 202 and empty.json()["total"] == 0
        assert {store.get(f"dead-{n}").state for n in range(3)} == {State.QUEUED}  # type: ignore[union-attr]


def _create_failed(store: JobStore, job_id: str) -> None:
    _create(store, job_id, "record_call")
    steps.claim(store, job_id)
    store.apply(lifecycle.fail(job_id, queue=keys.QUEUE_BULK, error={"code": "x"}, note="t"))


def test_the_job_page_shows_the_request_masked_and_its_raw_json(api_server: ApiServer) -> None:
    """An OTP job's page: what was asked without the code, the finish time (— until it
    ends), the raw JSON of GET /v1/calls/{id} with the phone masked, and live updates on."""
    with api_server.client() as api:
        body = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma OTP 482913",
                "send_at": _tomorrow_local().isoformat()}  # fmt: skip
        job = api.post("/v1/calls", json=body).json()
    client, _ = _login(api_server)
    with closing(client):
        page = client.get(f"/console/calls/{job['id']}").text
    assert "482913" not in page and "masked (an OTP" in page
    assert 'id="job-finished">—<' in page and 'data-live="1"' in page
    raw = html.unescape(re.search(r"<pre><code>(.*?)</code></pre>", page, re.S).group(1))  # type: ignore[union-attr]
    view = json.loads(raw)
    assert view["id"] == job["id"] and view["phone"] == "8490***4567"
    assert "content" not in view["request"] and view["history"][0]["state"] == "scheduled"


def test_the_last_error_shows_only_while_it_matters(redis_url: str) -> None:
    """A job's last error shows while it may still retry or as why it failed, not once it completed."""
    store = JobStore.from_url(redis_url)
    with closing(store):
        _create(store, "err-1", "record_call")
        steps.claim(store, "err-1")
        store.apply(lifecycle.fail("err-1", queue=keys.QUEUE_BULK, error={"code": "x"}, note="t"))
        failed = store.get("err-1")
        assert failed is not None and timeline.matters(failed)  # why it failed
        done = failed.model_copy(update={"state": State.COMPLETED})
        assert not timeline.matters(done)


def test_charts_are_server_rendered_svg_of_sends_endings_and_answer_rate(
    api_server: ApiServer, redis_url: str
) -> None:
    """The charts page is server-rendered SVG (no script, no CDN) of sends, endings and the answer rate."""
    store = JobStore.from_url(redis_url)
    with closing(store):
        for job_id, outcome in (("ch-1", Outcome.ANSWERED), ("ch-2", Outcome.NOT_ANSWERED)):
            _create(store, job_id, "record_call")
            steps.submit(store, job_id, f"sms-{job_id}")
            call = {"status": "ANSWERED", "duration_s": 3, "price_vnd": 880.0}
            op = lifecycle.complete(
                job_id, outcome=outcome, call=call, source="poll", smsid=f"sms-{job_id}"
            )
            assert store.apply(op).verdict == "accepted"
    client, _ = _login(api_server)
    with closing(client):
        page = client.get("/console/charts").text
    for chart in ("chart-minutes", "chart-minute-rate", "chart-hours", "chart-hour-rate"):
        assert f'<svg id="{chart}" class="chart"' in page
    minutes = page[page.index('id="chart-minutes"') : page.index('id="chart-minute-rate"')]
    assert re.search(r'<rect class="sent"[^>]*><title>[^<]*: sent 2</title>', minutes)
    assert re.search(r'<rect class="ok"[^>]*><title>[^<]*: answered 1</title>', minutes)
    assert re.search(r'<rect class="warn"[^>]*><title>[^<]*: not_answered 1</title>', minutes)
    assert "50% answered" in page and "<script" not in page.split("</main>")[0]


def test_a_campaign_page_charts_its_sends_endings_and_answer_rate_per_hour(
    api_server: ApiServer, redis_url: str
) -> None:
    """A campaign's page charts its own sends and endings per hour since its first send, and
    its answer rate, from counters its jobs' steps keep per hour (no scan of its jobs)."""
    with api_server.client() as api:
        calls = [
            {"kind": "record_call", "phone": f"0902{i:06d}", "record_id": "r1"} for i in range(3)
        ]
        answer = api.post("/v1/calls/batch", json={"calls": calls, "campaign": "hourly"})
        assert answer.status_code == 200, answer.text
        ids = [r["job"]["id"] for r in answer.json()["results"]]
    store = JobStore.from_url(redis_url)
    started_hour = int(time.time() // 3600)
    with closing(store):
        for job_id in ids:
            steps.submit(store, job_id, f"sms-{job_id}")
        for job_id, outcome in zip(ids, (Outcome.ANSWERED, Outcome.NOT_ANSWERED), strict=False):
            call = {"status": "ANSWERED", "duration_s": 3, "price_vnd": 880.0}
            op = lifecycle.complete(
                job_id, outcome=outcome, call=call, source="poll", smsid=f"sms-{job_id}"
            )
            assert store.apply(op).verdict == "accepted"
        found = store.campaign_number("hourly")
        assert found is not None
        hours = sorted({started_hour, int(time.time() // 3600)})  # an hour may turn meanwhile
        names = ["sent", "outcome:answered", "outcome:not_answered"]
        counted: Counter[str] = Counter()
        for counts in store.campaign_hours(found[0], hours, names):
            counted.update(counts)
        assert counted == {"sent": 3, "outcome:answered": 1, "outcome:not_answered": 1}
    client, _ = _login(api_server)
    with closing(client):
        page = client.get("/console/campaign", params={"name": "hourly"}).text
    assert '<svg id="chart-campaign-hours" class="chart"' in page
    if len(hours) == 1:  # the figures of one bar
        bars = page[
            page.index('id="chart-campaign-hours"') : page.index('id="chart-campaign-rate"')
        ]
        assert re.search(r'<rect class="sent"[^>]*><title>[^<]*: sent 3</title>', bars)
        assert re.search(r'<rect class="ok"[^>]*><title>[^<]*: answered 1</title>', bars)
        assert re.search(r'<rect class="warn"[^>]*><title>[^<]*: not_answered 1</title>', bars)
        assert "50% answered" in page[page.index('id="chart-campaign-rate"') :]


def test_the_client_library_runs_and_reads_bulk_actions(api_server: ApiServer) -> None:
    """voicecall.Client starts a bulk cancel and reads its progress to the end."""
    with api_server.client() as api:
        ids = _scheduled_batch(api, 4, "client-bulk", _tomorrow_local().isoformat())
    with Client(api_server.base_url, api_server.token) as client:
        op = client.cancel_scheduled_calls(labels={"campaign": "client-bulk"}, reason="by lib")
        assert (op.action, op.total, op.target) == (
            "cancel",
            4,
            "scheduled calls with label=campaign:client-bulk",
        )
        deadline = time.monotonic() + 20
        while (op := client.get_bulk_operation(op.id)).state == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (op.state, op.changed) == ("done", 4)
        assert client.get_call(ids[0]).state is State.CANCELLED
        requeue = client.requeue_dead_letters(keys.QUEUE_OTP)
        assert (requeue.action, requeue.total) == ("requeue", 0)


def test_a_bulk_actions_target_masks_a_phone_filter() -> None:
    """The record's target is shown to every client and kept a week: no full number in it."""
    target = describe([("phone", "0901234567"), ("label", "campaign:x")])
    assert target == "scheduled calls with phone=090***4567 label=campaign:x"
    assert describe([]) == "every scheduled call"

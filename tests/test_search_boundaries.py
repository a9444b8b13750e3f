"""Search on hostile input, against a real Redis (issue 18, findings 1, 6 and 7): job ids that
hold ``:`` in the phone index, and (below) cursors that are forged, tampered with or made for
another client, and the budget of Redis work every page keeps to."""

from __future__ import annotations

import base64
import io
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from producer.client import VoiceCallClient
from producer.search import cursors, walk
from producer.search.filters import Filters
from tests.fixtures.api import ApiServer
from tests.fixtures.cursors import cursor_content, sign, signed_cursor
from voicecall.config.clients import bare_token_name
from voicecall.config.settings import load_settings
from voicecall.errors import SearchError
from voicecall.job import keys
from voicecall.job.states import Kind, State
from voicecall.store.job_store import JobStore

PHONE = "84901234567"


@pytest.fixture()
def store(redis_url: str) -> Iterator[JobStore]:
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


@pytest.fixture()
def client(store: JobStore) -> VoiceCallClient:
    return VoiceCallClient(load_settings(), store)


def _record(job_id: str, phone: str = PHONE, **extra: Any) -> dict[str, Any]:
    return {"kind": "record_call", "id": job_id, "phone": phone, "record_id": "r1", **extra}


# --- finding 7: the phone index holds whatever an id contains -----------------------------


def test_ids_with_colons_are_found_once_by_phone_and_hide_nobody(
    client: VoiceCallClient, store: JobStore
) -> None:
    """Ids holding ``:`` (which ids may) come back whole from a phone search and its export;
    ``attacker:victim-id`` neither hides itself nor makes ``victim-id`` appear twice."""
    ids = ["victim-id", "attacker:victim-id", "a:b:c", "x:", "trailing:84901234567"]
    for job_id in ids:
        client.enqueue(_record(job_id))
    client.enqueue(_record("other-phone:victim-id", phone="84901234568"))
    found = [job.id for job in client.iter_calls(phone=PHONE)]
    assert sorted(found) == sorted(ids)
    paged: list[str] = []
    cursor = None
    while True:
        page = walk.search(store, Filters(phone=PHONE), client.caller, limit=1, cursor=cursor)
        paged += [job.id for job in page.jobs]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(paged) == sorted(ids)
    out = io.StringIO()
    assert client.export(out, phone=PHONE) == len(ids)
    rows = [line.split(",", 1)[0] for line in out.getvalue().splitlines()[1:]]
    assert sorted(rows) == sorted(ids)


# --- findings 1 and 6: cursors are signed, checked field by field, for one client -----------


@pytest.fixture()
def http(api_server: ApiServer) -> Iterator[httpx.Client]:
    with api_server.client() as client:
        yield client


def _refused_cursor(answer: httpx.Response) -> str:
    """The rule a 422 names for ``cursor`` (and nothing else)."""
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert [e["field"] for e in errors] == ["cursor"], errors
    rule: str = errors[0]["message"]
    return rule


def _batch(http: httpx.Client, n: int, campaign: str | None = None) -> list[str]:
    calls = [{"kind": "record_call", "phone": f"0901{i:06d}", "record_id": "r1"} for i in range(n)]
    body: dict[str, Any] = {"calls": calls, **({"campaign": campaign} if campaign else {})}
    answer = http.post("/v1/calls/batch", json=body)
    assert answer.status_code == 200 and answer.json()["accepted"] == n, answer.text
    return [item["job"]["id"] for item in answer.json()["results"]]


def _first_cursor(http: httpx.Client, params: list[tuple[str, str]]) -> str:
    page = http.get("/v1/calls", params=[*params, ("limit", "1")]).json()
    cursor: str = page["next_cursor"]
    assert cursor
    return cursor


def test_finding_1_a_tampered_campaign_cursor_is_refused_and_a_signed_one_is_bounded(
    http: httpx.Client, redis_client: redis.Redis
) -> None:
    """The attack of finding 1: a campaign cursor's position set to 10^15. Altered, it is
    refused (422 naming cursor); signed with the API's own key it is clamped to the campaign
    and answers at once, without walking 10^15 chunks."""
    _batch(http, 2, campaign="spring")
    cursor = _first_cursor(http, [("label", "campaign:spring")])
    content = cursor_content(cursor)
    assert content["i"] == "campaign"
    forged = {**content, "p": [10**15]}
    payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    tampered = f"{payload}.{cursor.split('.')[1]}"
    params = {"label": "campaign:spring", "cursor": tampered}
    assert "altered" in _refused_cursor(http.get("/v1/calls", params=params))
    started = time.monotonic()
    signed = http.get("/v1/calls", params={**params, "cursor": signed_cursor(forged)})
    assert signed.status_code == 200, signed.text
    assert time.monotonic() - started < 5  # one page's budget at most; 10^15 chunks never end
    assert len(signed.json()["data"]) == 2  # clamped to the campaign's last place: all of it


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("missing field", lambda c: {k: v for k, v in c.items() if k != "p"}),
        ("missing client", lambda c: {k: v for k, v in c.items() if k != "c"}),
        ("string position", lambda c: {**c, "p": "1"}),
        ("string in position", lambda c: {**c, "p": [str(c["p"][0]), c["p"][1]]}),
        ("short position", lambda c: {**c, "p": c["p"][:1]}),
        ("long position", lambda c: {**c, "p": [*c["p"], 1]}),
        ("Infinity", lambda c: {**c, "p": [math.inf, c["p"][1]]}),
        ("NaN", lambda c: {**c, "p": [math.nan, c["p"][1]]}),
        ("huge number", lambda c: {**c, "p": [10**400, c["p"][1]]}),
        ("negative time", lambda c: {**c, "p": [-1, c["p"][1]]}),
        ("float time", lambda c: {**c, "p": [c["p"][0] + 0.5, c["p"][1]]}),
        ("bool time", lambda c: {**c, "p": [True, c["p"][1]]}),
        ("huge created", lambda c: {**c, "t": 10**30}),
        ("NaN created", lambda c: {**c, "t": math.nan}),
        ("future created", lambda c: {**c, "t": c["t"] + 86_400}),
        ("other version", lambda c: {**c, "v": 1}),
        ("extra field", lambda c: {**c, "x": 1}),
        ("null", lambda c: None),
        ("list", lambda c: [c]),
        ("long id", lambda c: {**c, "p": [c["p"][0], "x" * 500]}),
        ("lone surrogate", lambda c: {**c, "p": [c["p"][0], "a\ud800"]}),
        ("other index", lambda c: {**c, "i": "phone"}),
        ("other filters", lambda c: {**c, "f": "000000000000"}),
    ],
)
def test_a_signed_cursor_with_bad_content_gets_422_naming_cursor(
    http: httpx.Client, name: str, change: Any
) -> None:
    """Content that passes the MAC (signed with the API's own key) but is not what the API
    gives: 422 naming ``cursor``, never a 500 (finding 6)."""
    _batch(http, 3)
    content = cursor_content(_first_cursor(http, []))
    _refused_cursor(http.get("/v1/calls", params={"cursor": signed_cursor(change(content))}))


@pytest.mark.parametrize(
    "position",
    [
        "84901000000:\ud800",  # a lone surrogate: not UTF-8, Redis cannot be sent it
        "84901000000:\x00",
        "84901000000:9999999999999:" + "x" * 60,
        "84901000000:123:a",
        "84901000001:9999999999999:a",  # another phone's member
        "849010000001:9999999999999:a",
    ],
)
def test_a_signed_phone_cursor_holds_only_a_member_of_its_phone(
    http: httpx.Client, position: str
) -> None:
    """A phone search's position is one of that phone's index members, else 422 naming
    ``cursor`` (a lone surrogate once reached Redis's encoder: a 500)."""
    _batch(http, 2)
    params = [("phone", "0901000000")]
    content = cursor_content(_first_cursor(http, params))
    assert content["i"] == "phone"
    cursor = signed_cursor({**content, "p": [position]})
    _refused_cursor(http.get("/v1/calls", params=[*params, ("cursor", cursor)]))


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "abc.def",
        "!!!!.AAAAAAAAAAAAAAAAAAAAAA",
        "eyJ2Ijoy.AAAAAAAAAAAAAAAAAAAAAA",  # base64 of a cut JSON, a MAC of zeros
        "A.AAAAAAAAAAAAAAAAAAAAAA",  # a payload base64 cannot decode (1 character)
        "x" * 1025,
        "a" * 1000 + "." + "A" * 22,
        "....",
        "\u00e9t\u00e9.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_a_malformed_or_unsigned_cursor_gets_422_naming_cursor(
    http: httpx.Client, cursor: str
) -> None:
    """Bad base64, no MAC, a wrong MAC, oversized: 422 naming ``cursor``."""
    _refused_cursor(http.get("/v1/calls", params={"cursor": cursor}))
    _refused_cursor(http.get("/v1/calls", params={"cursor": sign(cursor.encode())}))


def test_a_cursor_from_another_client_is_refused(api_server: ApiServer) -> None:
    """A cursor is its client's: the same search's cursor from another token gets 422."""
    with api_server.client() as first, api_server.client(api_server.other_token) as second:
        _batch(first, 3)
        cursor = _first_cursor(first, [])
        assert first.get("/v1/calls", params={"cursor": cursor}).status_code == 200
        rule = _refused_cursor(second.get("/v1/calls", params={"cursor": cursor}))
        assert "another API client" in rule
        content = cursor_content(cursor)
        assert content["c"] == bare_token_name(api_server.token)
        # Signed again for the other client's name, it is accepted: the MAC covers the name.
        mine = signed_cursor({**content, "c": bare_token_name(api_server.other_token)})
        assert second.get("/v1/calls", params={"cursor": mine}).status_code == 200


# --- finding 1: every page keeps to a budget of Redis work --------------------------------


class CountingRedis:
    """Counts the Redis work a store does: round trips, and the entries each one returns."""

    def __init__(self, store: JobStore) -> None:
        self.calls = 0
        self.entries = 0
        client = store._redis
        execute = client.execute_command

        def counted(*args: Any, **options: Any) -> Any:
            reply = execute(*args, **options)
            self.calls += 1
            self.entries += len(reply) if isinstance(reply, list) else 0
            return reply

        client.execute_command = counted  # type: ignore[method-assign]

    @property
    def work(self) -> int:
        return self.calls * walk.CALL_COST + self.entries

    def reset(self) -> None:
        self.calls = self.entries = 0


def _empty_places(redis_client: redis.Redis, campaign: str, places: int) -> None:
    """Reserve ``places`` more places in ``campaign`` with no job in them (as failed
    creates leave): its index then holds that many empty chunks."""
    cid = redis_client.hget(keys.CAMPAIGNS, campaign)
    assert cid is not None
    redis_client.hincrby(keys.CAMPAIGN_SEQ, cid, places)


def test_a_campaign_walk_over_empty_chunks_ends_pages_early_and_goes_on(
    client: VoiceCallClient, store: JobStore, redis_client: redis.Redis
) -> None:
    """2 jobs, then a million empty places (7,800 empty chunks), then 1 job: each page does
    at most WORK_BUDGET of Redis work and ends early with a cursor; following the cursors
    finds the 3 jobs, each once."""
    first = [client.enqueue(_record(f"old-{i}", labels={"campaign": "gaps"})).id for i in range(2)]
    _empty_places(redis_client, "gaps", 1_000_000)
    newest = client.enqueue(_record("new-0", labels={"campaign": "gaps"})).id
    counter = CountingRedis(store)
    found: list[str] = []
    cursor = None
    pages = 0
    while True:
        counter.reset()
        page = walk.search(
            store, Filters(labels=(("campaign", "gaps"),)), client.caller, cursor=cursor
        )
        pages += 1
        assert counter.work <= walk.WORK_BUDGET, (pages, counter.calls, counter.entries)
        found += [job.id for job in page.jobs]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert found == [newest, *reversed(first)]
    assert pages >= 3  # 7,800 chunks do not fit in one page


def test_a_page_over_many_jobs_that_do_not_match_ends_at_the_budget(
    client: VoiceCallClient, store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter checked on the documents (a label) over many jobs that mostly lack it: a page
    ends at the budget with a cursor (the scan limit counted only jobs found), and the pages
    that follow find each job that has it once."""
    labelled = []
    for i in range(500):
        labels = {"team": "x"} if i in (0, 250, 499) else {}
        call = {"kind": "record_call", "phone": f"0901{i:06d}", "record_id": "r1"}
        job = client.enqueue({**call, "labels": labels})
        if labels:
            labelled.append(job.id)
    monkeypatch.setattr(walk, "WORK_BUDGET", 1_000)  # the rule at a smaller scale: fast
    counter = CountingRedis(store)
    # One band of the state index (queued record calls), a label three jobs have.
    filters = Filters(states=(State.QUEUED,), kinds=(Kind.RECORD_CALL,), labels=(("team", "x"),))
    found: list[str] = []
    cursor = None
    pages = 0
    while pages < 12:
        counter.reset()
        page = walk.search(store, filters, client.caller, cursor=cursor)
        pages += 1
        assert counter.work <= 1_000
        found += [job.id for job in page.jobs]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert page.cursor is None and pages >= 2
    assert sorted(found) == sorted(labelled)


def test_the_budget_covers_the_first_step_of_the_widest_search() -> None:
    """Every page makes progress: the budget pays for one read of each band of the state
    index (a search with no filter merges them all) and one batch of documents."""
    bands = len(walk._bands(Filters()))
    first_step = (bands + 1) * (walk.CALL_COST + walk._BATCH)
    assert first_step * 2 < walk.WORK_BUDGET


# Arbitrary JSON, with the values that broke cursors before (NaN, infinities, huge numbers,
# strings where numbers go) and the shapes a position has.
_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, 2**42, 2**53, 10**15, -1, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=60),
    st.sampled_from(["", "~", PHONE, f"{PHONE}:", f"{PHONE}:9999999999999:x", "old-0", "\ud800"]),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


def test_any_signed_cursor_content_gets_a_page_or_422_within_the_budget(
    client: VoiceCallClient, store: JobStore, redis_client: redis.Redis
) -> None:
    """Hypothesis over cursor contents that pass the MAC (signed with the right key), for
    each index a search can walk: every answer is a page or a SearchError naming ``cursor``
    (a 422: never a 5xx), and no page does more Redis work than WORK_BUDGET."""
    for i in range(3):
        client.enqueue(_record(f"old-{i}", labels={"campaign": "gaps"}, idempotency_key=f"k{i}"))
    _empty_places(redis_client, "gaps", 600_000)
    client.enqueue(_record("new-0", labels={"campaign": "gaps"}))
    searches = [
        Filters(),
        Filters(states=(State.QUEUED,), kinds=(Kind.RECORD_CALL,)),
        Filters(labels=(("campaign", "gaps"),)),
        Filters(phone=PHONE),
        Filters(idempotency_key="k1"),
    ]
    caller = client.caller
    counter = CountingRedis(store)
    now = int(time.time())
    ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:.-_~\ud800\x00", max_size=60)
    positions = {  # of the right shape for each index (any values), or anything at all
        "state": st.tuples(st.integers(-(2**60), 2**60), ids).map(list),
        "campaign": st.tuples(st.one_of(st.integers(-5, 2**60), st.just(10**15))).map(list),
        "phone": st.tuples(st.builds(lambda rest: f"{PHONE}:{rest}", ids)).map(list),
        "key": st.tuples(ids).map(list),
    }

    @st.composite
    def contents(draw: st.DrawFn, filters: Filters) -> Any:
        """Mostly a well-formed content for this search with an arbitrary position; else
        one field (or the whole) replaced by arbitrary JSON."""
        scoped = filters.scoped(caller.client)
        index = walk._plan(scoped)[0]
        data: Any = {
            "v": 2,
            "c": caller.client,
            "i": index,
            "p": draw(st.one_of(positions[index], _json)),
            "f": scoped.digest(),
            "t": draw(st.integers(now - 100, now)),
        }
        mutation = draw(st.sampled_from(["none", "none", "field", "extra", "whole"]))
        if mutation == "field":
            data[draw(st.sampled_from(sorted(data)))] = draw(_json)
        elif mutation == "extra":
            data[draw(st.text(max_size=3))] = draw(_json)
        elif mutation == "whole":
            data = draw(_json)
        return data

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data(), filters=st.sampled_from(searches))
    def one(data: st.DataObject, filters: Filters) -> None:
        content = data.draw(contents(filters))
        counter.reset()
        try:
            page = walk.search(
                store, filters, caller, limit=50, cursor=signed_cursor(content, caller.key)
            )
        except SearchError as exc:
            assert exc.param == "cursor"
            event("refused")
        else:
            assert page.cursor is None or len(page.cursor) <= cursors.MAX_CURSOR_LENGTH
            event("a page")
        target(float(counter.work), label="Redis work")  # steer towards the costliest
        assert counter.work <= walk.WORK_BUDGET, (counter.calls, counter.entries, content)

    one()

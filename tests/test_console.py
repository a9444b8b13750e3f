"""The console's session, CSRF and reveal rules: the signed cookie (unit), then a real API
process (uvicorn) on a real Redis: login, cookie attributes, CSRF refusal, the masked reveal
log, and the local Swagger UI assets."""

from __future__ import annotations

import json
import re
import time
from contextlib import closing
from datetime import UTC, datetime

import httpx
import pytest

from producer.console import session as sessions
from tests.fixtures import steps
from tests.fixtures.api import ApiServer
from tests.fixtures.console import login, login_csrf
from voicecall.job import keys, lifecycle
from voicecall.store.job_store import JobStore

TOKENS = [b"token-one-0123456789", b"token-two-0123456789"]
KEY = sessions.signing_key(TOKENS)
PHONE = "0901234567"
TOMORROW = datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()


# --- the signed session (unit) ------------------------------------------------------------


def test_a_session_reads_back_and_names_its_token_by_an_hmac_only() -> None:
    """issue() then read() gives the same session; the cookie holds neither token nor key."""
    value, issued = sessions.issue(KEY, TOKENS[0], now=1000.0)
    assert sessions.read(value, KEY, TOKENS, now=1001.0) == issued
    assert TOKENS[0].decode() not in value and KEY.hex() not in value
    assert issued.expires_at == 1000.0 + sessions.MAX_AGE_S


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),  # signature changed
        lambda v: "e30" + v[3:],  # payload changed
        lambda v: v.replace(".", ""),  # no signature
        lambda v: "",
    ],
)
def test_a_tampered_cookie_is_no_session(tamper: object) -> None:
    """A session cookie with its signature or payload changed, cut, or empty reads as no session."""
    value, _ = sessions.issue(KEY, TOKENS[0], now=1000.0)
    assert callable(tamper)
    assert sessions.read(tamper(value), KEY, TOKENS, now=1001.0) is None


def test_a_session_ends_at_its_expiry_and_when_its_token_is_removed() -> None:
    """A session is refused once it reaches its maximum age, under the key of another token
    list, and once its API token is no longer configured."""
    value, _ = sessions.issue(KEY, TOKENS[1], now=1000.0)
    assert sessions.read(value, KEY, TOKENS, now=1000.0 + sessions.MAX_AGE_S) is None
    # The key is derived from every token: another token list cannot read it...
    assert sessions.read(value, sessions.signing_key(TOKENS[:1]), TOKENS[:1], now=1001) is None
    # ... and with the same key, a token no longer listed is refused too.
    assert sessions.read(value, KEY, TOKENS[:1], now=1001.0) is None


def test_csrf_matches_only_the_sessions_own_token() -> None:
    """A session's CSRF check passes with its own token only: not another session's, none or empty."""
    _, one = sessions.issue(KEY, TOKENS[0], now=1000.0)
    _, two = sessions.issue(KEY, TOKENS[0], now=1000.0)
    assert sessions.check_csrf(one, one.csrf)
    assert not sessions.check_csrf(one, two.csrf)
    assert not sessions.check_csrf(one, None)
    assert not sessions.check_csrf(one, "")


# --- against a real API process -----------------------------------------------------------


def test_login_sets_an_httponly_samesite_strict_cookie(api_server: ApiServer) -> None:
    """A wrong token gets 401 naming API_TOKENS; the right one sets an HttpOnly, SameSite=Strict
    cookie scoped to /console that does not hold the token."""
    with httpx.Client(base_url=api_server.base_url, timeout=10) as client:
        refused = client.post("/console/login", data={"token": "wrong", "csrf": login_csrf(client)})
        assert refused.status_code == 401
        assert "not one of API_TOKENS" in refused.text
        answer = client.post(
            "/console/login", data={"token": api_server.token, "csrf": login_csrf(client)}
        )
        assert answer.status_code == 303
        [cookie] = [
            c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{sessions.COOKIE}=")
        ]
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/console"} <= attributes
        assert api_server.token not in cookie


def test_a_login_without_its_forms_csrf_token_is_refused(api_server: ApiServer) -> None:
    """A login posted from elsewhere (no csrf field, or one that is not its cookie's) is 403
    csrf_failed and sets no session, even with a valid token."""
    with httpx.Client(base_url=api_server.base_url, timeout=10) as client:
        bare = client.post("/console/login", data={"token": api_server.token})
        assert (bare.status_code, bare.json()["error"]) == (403, "csrf_failed")
        login_csrf(client)  # the cookie is set, but the form's field is another
        forged = client.post("/console/login", data={"token": api_server.token, "csrf": "x" * 32})
        assert (forged.status_code, forged.json()["error"]) == (403, "csrf_failed")
        assert sessions.COOKIE not in client.cookies
        assert client.get("/console/").status_code == 303


def test_pages_need_a_session(api_server: ApiServer) -> None:
    """Console pages redirect to the login page without a session; a bearer token is no session."""
    with httpx.Client(base_url=api_server.base_url, timeout=10) as client:
        answer = client.get("/console/calls")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")
        # A bearer token is no session: the console only takes its cookie.
        bearer = client.get(
            "/console/overview.json", headers={"Authorization": f"Bearer {api_server.token}"}
        )
        assert bearer.status_code == 303


def test_a_state_changing_request_without_the_csrf_token_is_refused(
    api_server: ApiServer,
) -> None:
    """Cancel posted with no csrf field, or another session's, is 403 csrf_failed and the
    job stays scheduled; with the session's token it is cancelled."""
    with api_server.client() as api:
        job = api.post(
            "/v1/calls",
            json={
                "kind": "record_call",
                "phone": PHONE,
                "record_id": "r1",
                "send_at": TOMORROW,
            },
        ).json()
    client, csrf = login(api_server)
    other_client, other = login(api_server)
    other_client.close()
    with closing(client):
        for form in ({"confirm": "yes"}, {"confirm": "yes", "csrf": other}):
            refused = client.post(f"/console/calls/{job['id']}/cancel", data=form)
            assert refused.status_code == 403
            assert refused.json()["error"] == "csrf_failed"
            assert "csrf" in refused.json()["message"]
        with api_server.client() as api:
            assert api.get(f"/v1/calls/{job['id']}").json()["state"] == "scheduled"
        done = client.post(
            f"/console/calls/{job['id']}/cancel", data={"confirm": "yes", "csrf": csrf}
        )
        assert done.status_code == 303
        with api_server.client() as api:
            assert api.get(f"/v1/calls/{job['id']}").json()["state"] == "cancelled"


def test_a_reveal_shows_the_number_and_logs_it_masked(api_server: ApiServer) -> None:
    """The job page masks the number; a reveal (POST with CSRF) shows it in full and logs
    console_phone_revealed with the job id and the number masked, never in full."""
    with api_server.client() as api:
        job = api.post(
            "/v1/calls",
            json={
                "kind": "record_call",
                "phone": PHONE,
                "record_id": "r1",
                "send_at": TOMORROW,
            },
        ).json()
    client, csrf = login(api_server)
    with closing(client):
        page = client.get(f"/console/calls/{job['id']}")
        assert "84901234567" not in page.text and "8490***4567" in page.text
        shown = client.post(f"/console/calls/{job['id']}/reveal", data={"csrf": csrf})
        assert shown.status_code == 200
        assert "84901234567" in shown.text

    def revealed() -> list[dict[str, object]]:
        lines = [
            json.loads(line) for line in api_server.logs().splitlines() if line.startswith("{")
        ]
        return [
            e
            for e in lines
            if e.get("event") == "console_phone_revealed" and e.get("job_id") == job["id"]
        ]

    deadline = time.monotonic() + 5
    while not revealed() and time.monotonic() < deadline:
        time.sleep(0.05)
    [entry] = revealed()
    assert entry["phone"] == "8490***4567"
    assert "84901234567" not in api_server.logs() and "0901234567" not in api_server.logs()


def test_swagger_ui_loads_only_local_assets(api_server: ApiServer) -> None:
    """/docs loads each of its scripts and styles from the API itself, none from a CDN."""
    with httpx.Client(base_url=api_server.base_url, timeout=10) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        for source in sources:
            assert client.get(source).status_code == 200, source
        assert "cdn" not in docs.text.lower()


def test_purge_asks_for_confirmation_then_takes_the_dead_letter_off(
    api_server: ApiServer, redis_url: str
) -> None:
    """A purge posted without confirm=yes only leads to the confirmation page; confirmed, the
    dead letter leaves its list (the job stays)."""
    store = JobStore.from_url(redis_url)
    steps.create(store, "dead-1", "record_call")
    steps.claim(store, "dead-1")
    store.apply(lifecycle.fail("dead-1", queue=keys.QUEUE_BULK, error={"code": "x"}, note="t"))
    client, csrf = login(api_server)
    url = f"/console/dead/{keys.QUEUE_BULK}/dead-1/purge"
    with closing(client), closing(store):
        listed = client.get("/console/dead")
        assert "dead-1" in listed.text and "Requeue dead-1" in listed.text
        unconfirmed = client.post(url, data={"csrf": csrf})
        assert (unconfirmed.status_code, unconfirmed.headers["location"]) == (303, url)
        assert "Yes, purge it" in client.get(url).text
        assert store.dead_letters(keys.QUEUE_BULK) != []
        done = client.post(url, data={"csrf": csrf, "confirm": "yes"})
        assert done.status_code == 303
        assert store.dead_letters(keys.QUEUE_BULK) == []
        assert store.get("dead-1") is not None


def test_campaign_page_has_a_csv_export_of_its_calls(api_server: ApiServer) -> None:
    """The campaign page's export form (POST, with the session's CSRF token) gives its calls
    as CSV; an unknown campaign is 404."""
    with api_server.client() as api:
        job = api.post(
            "/v1/calls",
            json={"kind": "record_call", "phone": PHONE, "record_id": "r1",
                  "labels": {"campaign": "spring"}},
        ).json()  # fmt: skip
    client, csrf = login(api_server)
    with closing(client):
        page = client.get("/console/campaign", params={"name": "spring"})
        assert page.status_code == 200
        action = re.search(r'action="(/console/calls/export\?[^"]+)"', page.text)
        assert action, page.text
        csv = client.post(action.group(1).replace("&amp;", "&"), data={"csrf": csrf})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert job["id"] in csv.text
        assert client.get("/console/campaign", params={"name": "nope"}).status_code == 404


def test_a_bad_search_filter_is_named_on_the_page(api_server: ApiServer) -> None:
    """An unknown state in the console's search gets 422 and a page naming the field and value."""
    client, _ = login(api_server)
    with closing(client):
        answer = client.get("/console/calls", params={"state": "sleeping"})
        assert answer.status_code == 422
        assert "state" in answer.text and "sleeping" in answer.text

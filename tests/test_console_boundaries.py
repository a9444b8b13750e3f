"""The console's boundaries, attacked from outside over real HTTP (a real uvicorn API process
on a real Redis), one block per finding of issue 18:

- 8: logout ends the session on the server: a copied cookie opens nothing afterwards; a
  validly signed cookie the server never opened is refused; sessions end at their max age
  and each token keeps a bounded number;
- 9: the cancel reason refuses control characters exactly as the API does;
- 10: the CSV export masks phone numbers unless the form asks for full ones, and is audited;
- 11: the banner shows only the texts of known codes, never the URL's words;
- 12: names reach their own pages whatever they hold (``/``, ``..``, ``?#%``);
- 15: the cookie's Secure flag follows CONSOLE_COOKIE_SECURE, not the request's scheme, and
  proxy headers count only from FORWARDED_ALLOW_IPS.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
import redis

from producer.console import session as sessions
from producer.console.web import segment
from tests.fixtures.api import ApiServer
from tests.fixtures.console import login
from voicecall.config.settings import load_settings
from voicecall.errors import SettingsError
from voicecall.job import keys
from voicecall.store.job_store import JobStore

PHONE = "0901234567"
FULL = "84901234567"
MASKED = "8490***4567"
TOMORROW = datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()


def _scheduled(server: ApiServer, **extra: Any) -> str:
    with server.client() as api:
        answer = api.post(
            "/v1/calls",
            json={"kind": "record_call", "phone": PHONE, "record_id": "r1", "send_at": TOMORROW,
                  **extra},
        )  # fmt: skip
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _state(server: ApiServer, job_id: str) -> str:
    with server.client() as api:
        return str(api.get(f"/v1/calls/{job_id}").json()["state"])


def _log_events(server: ApiServer, event: str, since: int = 0) -> list[dict[str, Any]]:
    """The server's log lines of ``event`` written after the first ``since`` characters (the
    session's server keeps one log for every test)."""
    text = server.logs()[since:]
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def _wait_for(what: Callable[[], list[Any]], count: int) -> list[Any]:
    """``what()`` once it has ``count`` entries (log lines land a moment after the answer)."""
    deadline = time.monotonic() + 10
    while len(found := what()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


# --- finding 8: logout ends the session on the server ------------------------------------


def test_a_copied_cookie_opens_nothing_after_logout(api_server: ApiServer) -> None:
    """A second client holding a copy of the session cookie is in while the session is open;
    after the operator logs out, the copy gets the login page for pages, the live figures
    and a state-changing form (which changes nothing)."""
    job_id = _scheduled(api_server)
    operator, csrf = login(api_server)
    copied = operator.cookies[sessions.COOKIE]
    with closing(operator), httpx.Client(base_url=api_server.base_url, timeout=10) as thief:
        thief.cookies.set(sessions.COOKIE, copied)
        assert thief.get("/console/").status_code == 200
        out = operator.post("/console/logout", data={"csrf": csrf})
        assert (out.status_code, out.headers["location"]) == (303, "/console/login")
        for path in ("/console/", "/console/calls", "/console/overview.json"):
            replay = thief.get(path)
            assert replay.status_code == 303, path
            assert replay.headers["location"].startswith("/console/login")
        cancel = thief.post(
            f"/console/calls/{job_id}/cancel", data={"csrf": csrf, "confirm": "yes"}
        )
        assert (cancel.status_code, cancel.headers["location"]) == (303, "/console/login")
        assert _state(api_server, job_id) == "scheduled"
        again = thief.post("/console/logout", data={"csrf": csrf})  # no session to end
        assert again.headers["location"] == "/console/login"


def test_a_validly_signed_cookie_the_server_never_opened_is_refused(
    api_server: ApiServer,
) -> None:
    """A cookie signed with the right key (as after a leak of it, or for a session whose
    Redis entry is gone) but never opened by a login is no session."""
    key = sessions.signing_key([api_server.token.encode(), api_server.other_token.encode()])
    value, _ = sessions.issue(key, api_server.token.encode(), now=time.time())
    with httpx.Client(base_url=api_server.base_url, timeout=10) as client:
        client.cookies.set(sessions.COOKIE, value)
        answer = client.get("/console/")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")


def test_a_session_ends_at_its_max_age_on_both_sides(api_server: ApiServer, redis_url: str) -> None:
    """The cookie's Max-Age and its signed expiry are MAX_AGE_S; Redis holds the session
    until that expiry and no longer (the key's TTL), and calls it ended from then on."""
    before = time.time()
    answer = _login_by_hand(api_server.base_url, api_server.token)
    assert f"max-age={sessions.MAX_AGE_S}" in _set_cookies(answer)[sessions.COOKIE]
    key = sessions.signing_key([api_server.token.encode(), api_server.other_token.encode()])
    session = sessions.read(
        answer.cookies[sessions.COOKIE], key, [api_server.token.encode()], now=time.time()
    )
    assert session is not None
    assert before + sessions.MAX_AGE_S <= session.expires_at <= time.time() + sessions.MAX_AGE_S
    with closing(JobStore.from_url(redis_url)) as store:
        assert store.console_session_open(session.tid, session.sid, now=time.time())
        assert not store.console_session_open(session.tid, session.sid, now=session.expires_at)
    ttl = redis.Redis.from_url(redis_url).ttl(keys.console_sessions(session.tid))
    assert 0 < int(ttl) <= sessions.MAX_AGE_S + 2


def test_each_token_keeps_a_bounded_number_of_sessions(redis_url: str) -> None:
    """Past CONSOLE_SESSIONS_PER_TOKEN logins of one token, the oldest sessions end; ended
    ones leave at the next login."""
    with closing(JobStore.from_url(redis_url)) as store:
        now = time.time()
        extra = 5
        for n in range(keys.CONSOLE_SESSIONS_PER_TOKEN + extra):
            store.open_console_session("t" * 32, f"sid-{n}", ends_at=now + 100 + n, now=now)
        key = keys.console_sessions("t" * 32)
        observer = redis.Redis.from_url(redis_url)
        assert observer.zcard(key) == keys.CONSOLE_SESSIONS_PER_TOKEN
        assert not store.console_session_open("t" * 32, "sid-0", now=now)
        assert store.console_session_open("t" * 32, f"sid-{extra}", now=now)
        # Later, the sessions sid-5 ... sid-9 have ended: the next login takes them off.
        later = now + 100 + 2 * extra - 1
        store.open_console_session("t" * 32, "late", ends_at=later + 1000, now=later)
        assert observer.zcard(key) == keys.CONSOLE_SESSIONS_PER_TOKEN - extra + 1
        assert store.console_session_open("t" * 32, "late", now=later)


# --- finding 9: the cancel reason refuses control characters as the API does --------------

HOSTILE_REASONS = {
    "ESC": "\x1b[2J\x1b[31mfake prompt",
    "CR/LF": "first line\r\nsecond line",
    "LF at the end": "looks fine\n",
    "NUL": "cut\x00here",
    "unit separator": "\x1f",
    "DEL": "a\x7fb",
    "C1 CSI": "\x9b31m",
    "bidi override": "gnp.\u202eexe",
    "bidi isolate": "\u2066hidden",
    "201 characters": "x" * 201,
}


@pytest.mark.parametrize("name", list(HOSTILE_REASONS))
def test_the_console_refuses_a_reason_the_api_refuses(api_server: ApiServer, name: str) -> None:
    """The same reason is refused by DELETE /v1/calls/{id} (422 naming reason) and by the
    console's cancel (422, the confirmation page again naming the rule); the job stays
    scheduled and its history holds no such text."""
    reason = HOSTILE_REASONS[name]
    job_id = _scheduled(api_server)
    with api_server.client() as api:
        refused = api.delete(f"/v1/calls/{job_id}", params={"reason": reason})
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["reason"]
    client, csrf = login(api_server)
    with closing(client):
        answer = client.post(
            f"/console/calls/{job_id}/cancel",
            data={"csrf": csrf, "confirm": "yes", "reason": reason},
        )
        assert answer.status_code == 422, answer.text
        assert 'role="alert"' in answer.text and "reason must" in answer.text
        assert "Yes, cancel the job" in answer.text
    assert _state(api_server, job_id) == "scheduled"


def test_a_plain_reason_is_kept_by_both(api_server: ApiServer) -> None:
    """A reason with Vietnamese letters and spaces passes both; the console trims its ends."""
    first, second = _scheduled(api_server), _scheduled(api_server)
    reason = "Khách hàng yêu cầu huỷ"
    with api_server.client() as api:
        kept = api.delete(f"/v1/calls/{first}", params={"reason": reason})
        assert kept.status_code == 200
        assert kept.json()["history"][-1]["note"] == reason
    client, csrf = login(api_server)
    with closing(client):
        done = client.post(
            f"/console/calls/{second}/cancel",
            data={"csrf": csrf, "confirm": "yes", "reason": f"  {reason} "},
        )
        assert done.status_code == 303
    with api_server.client() as api:
        assert api.get(f"/v1/calls/{second}").json()["history"][-1]["note"] == reason


# --- finding 10: the CSV export masks phones unless asked, and is audited -----------------


def _export(
    client: httpx.Client, csrf: str, query: str, **form: str
) -> tuple[httpx.Response, list[dict[str, str]]]:
    answer = client.post(f"/console/calls/export?{query}", data={"csrf": csrf, **form})
    rows = list(csv.DictReader(io.StringIO(answer.text))) if answer.status_code == 200 else []
    return answer, rows


def test_the_export_masks_phones_unless_full_ones_are_asked_for_and_is_audited(
    api_server: ApiServer,
) -> None:
    """The campaign page offers the choice (masked checked); masked by default, full only
    with phones=full; each export writes console_export naming the operator, the filters,
    the choice and the rows sent, and no log line holds a full number."""
    since = len(api_server.logs())
    ids = [_scheduled(api_server, labels={"campaign": "audit-me"}) for _ in range(3)]
    _scheduled(api_server, labels={"campaign": "other"})
    client, csrf = login(api_server)
    with closing(client):
        page = client.get("/console/campaign", params={"name": "audit-me"}).text
        assert 'name="phones" value="masked" checked' in page
        assert 'name="phones" value="full"' in page
        query = "label=campaign%3Aaudit-me"
        masked, rows = _export(client, csrf, query)
        assert masked.status_code == 200 and masked.headers["cache-control"] == "no-store"
        assert sorted(r["id"] for r in rows) == sorted(ids)
        assert {r["phone"] for r in rows} == {MASKED} and FULL not in masked.text
        _, rows = _export(client, csrf, query, phones="full")
        assert {r["phone"] for r in rows} == {FULL}
        _, rows = _export(client, csrf, f"phone={PHONE}&state=scheduled")
        assert len(rows) == 4
        bogus, _ = _export(client, csrf, query, phones="everything")
        assert bogus.status_code == 422 and "phones" in bogus.json()["message"]
        bad_filter, _ = _export(client, csrf, "state=sleeping")
        assert bad_filter.status_code == 422 and "state" in bad_filter.text
        forged = client.post(f"/console/calls/export?{query}", data={"phones": "full"})
        assert (forged.status_code, forged.json()["error"]) == (403, "csrf_failed")
    key = sessions.signing_key([api_server.token.encode(), api_server.other_token.encode()])
    operator = sessions.token_id(key, api_server.token.encode())[:8]
    audits = _wait_for(lambda: _log_events(api_server, "console_export", since), 3)
    assert [
        (a["operator"], a["filters"], a["phones"], a["rows"], a["complete"]) for a in audits
    ] == [
        (operator, {"label": ["campaign:audit-me"]}, "masked", 3, True),
        (operator, {"label": ["campaign:audit-me"]}, "full", 3, True),
        (operator, {"phone": ["0901***4567"], "state": ["scheduled"]}, "masked", 4, True),
    ]
    written = api_server.logs()[since:]
    assert FULL not in written and PHONE not in written


def test_the_reveal_is_audited_the_same_way(api_server: ApiServer) -> None:
    """A reveal writes console_phone_revealed with the same operator id as an export."""
    since = len(api_server.logs())
    job_id = _scheduled(api_server)
    client, csrf = login(api_server)
    with closing(client):
        assert FULL in client.post(f"/console/calls/{job_id}/reveal", data={"csrf": csrf}).text
    key = sessions.signing_key([api_server.token.encode(), api_server.other_token.encode()])
    [line] = _wait_for(lambda: _log_events(api_server, "console_phone_revealed", since), 1)
    assert line["operator"] == sessions.token_id(key, api_server.token.encode())[:8]
    assert (line["job_id"], line["phone"]) == (job_id, MASKED)


# --- finding 11: the banner shows only known codes ----------------------------------------

PHISHING = "Session expired. Log in again at https://evil.example/console"


def test_the_banner_never_shows_the_urls_words(api_server: ApiServer) -> None:
    """?notice= with any text shows no banner on any page; a known code shows its own text."""
    job_id = _scheduled(api_server)
    client, _ = login(api_server)
    pages = ["/console/", "/console/calls", "/console/dead", "/console/scheduled",
             f"/console/calls/{job_id}", "/console/campaigns"]  # fmt: skip
    with closing(client):
        for path in pages:
            for notice in (PHISHING, "<b>Cancelled.</b>", "Cancelled."):
                answer = client.get(path, params={"notice": notice})
                assert answer.status_code == 200, path
                assert 'class="notice"' not in answer.text, (path, notice)
                assert "evil.example" not in answer.text
            known = client.get(path, params={"notice": "cancelled"})
            assert '<p class="notice" role="status">Cancelled.</p>' in known.text, path


# --- finding 12: names reach their own pages ----------------------------------------------

HOSTILE_CAMPAIGNS = ["../../docs", "a/b", "..", ".", "q?x=1#frag%41&y", "sp ace+plus", "%2F"]


def _links(page: str) -> dict[str, str]:
    """Each campaign link's text (the name) → its href, as a browser reads them."""
    return {
        html.unescape(text): html.unescape(href)
        for href, text in re.findall(r'<td><a href="([^"]+)">([^<]*)</a></td>', page)
    }


def test_every_campaign_name_links_to_its_own_page(api_server: ApiServer) -> None:
    """Campaigns named with /, .., ?, #, % and + are each linked from the list to their own
    page (the href resolved as RFC 3986 says, dot segments and all), and that page shows them."""
    for name in HOSTILE_CAMPAIGNS:
        _scheduled(api_server, labels={"campaign": name})
    client, _ = login(api_server)
    with closing(client):
        links = _links(client.get("/console/campaigns").text)
        assert sorted(links) == sorted(HOSTILE_CAMPAIGNS)
        for name, href in links.items():
            url = urljoin(f"{api_server.base_url}/console/campaigns", href)
            assert urlsplit(url).path == "/console/campaign", (name, url)
            answer = client.get(url)
            assert answer.status_code == 200, (name, url)
            assert f"<h1>Campaign {html.escape(name)}</h1>" in answer.text, name
            export = re.search(r'action="/console/calls/export\?([^"]+)"', answer.text)
            assert export, name
            assert parse_qs(html.unescape(export.group(1))) == {"label": [f"campaign:{name}"]}


def test_job_ids_and_queues_are_single_path_segments() -> None:
    """The segment filter encodes every reserved character, / included."""
    assert segment("a/b?c#d%e f:g") == "a%2Fb%3Fc%23d%25e%20f%3Ag"
    assert segment("voicecall-bulk") == "voicecall-bulk"


# --- finding 15: the Secure flag, and whom proxy headers are believed from ----------------


def _set_cookies(answer: httpx.Response) -> dict[str, set[str]]:
    out = {}
    for header in answer.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        out[name] = {part.strip().lower() for part in header.split(";")[1:]}
    return out


def _login_by_hand(base_url: str, token: str, **headers: str) -> httpx.Response:
    """Log in sending the login form's cookie by hand (a Secure cookie over plain http is
    not sent back by httpx's jar, as a browser would not either)."""
    with httpx.Client(base_url=base_url, timeout=10, headers=headers) as client:
        form = client.get("/console/login")
        nonce = form.cookies["vc_console_login"]
        client.cookies.clear()
        return client.post(
            "/console/login",
            data={"token": token, "csrf": nonce},
            headers={"Cookie": f"vc_console_login={nonce}"},
        )


@pytest.fixture()
def https_api(start_api: Callable[..., ApiServer], redis_url: str) -> Iterator[ApiServer]:
    yield start_api(redis_url, env={"PUBLIC_BASE_URL": "https://voicecall.example"})


def test_an_https_public_base_url_makes_every_console_cookie_secure(https_api: ApiServer) -> None:
    """PUBLIC_BASE_URL https://: the login form's and the session's cookies carry Secure
    even when the request reaches the API over plain http (a TLS proxy that sends no
    X-Forwarded-Proto, or one whose headers are not trusted), and when a trusted proxy says
    http."""
    for headers in ({}, {"X-Forwarded-Proto": "http"}):
        answer = _login_by_hand(https_api.base_url, https_api.token, **headers)
        assert answer.status_code == 303
        cookies = _set_cookies(answer)
        assert "secure" in cookies[sessions.COOKIE]
        assert "secure" in cookies["vc_console_login"]  # its deletion


def test_console_cookie_secure_false_wins(
    start_api: Callable[..., ApiServer], redis_url: str
) -> None:
    """CONSOLE_COOKIE_SECURE=false with an https PUBLIC_BASE_URL: no Secure flag."""
    server = start_api(
        redis_url,
        env={"PUBLIC_BASE_URL": "https://voicecall.example", "CONSOLE_COOKIE_SECURE": "false"},
    )
    cookies = _set_cookies(_login_by_hand(server.base_url, server.token))
    assert "secure" not in cookies[sessions.COOKIE]


def test_an_http_public_base_url_leaves_secure_off(api_server: ApiServer) -> None:
    """The test servers' PUBLIC_BASE_URL is http://127.0.0.1:PORT: the cookie works there."""
    cookies = _set_cookies(_login_by_hand(api_server.base_url, api_server.token))
    assert "secure" not in cookies[sessions.COOKIE]
    assert {"httponly", "samesite=strict"} <= cookies[sessions.COOKIE]


def _access_clients(server: ApiServer, path: str) -> list[str]:
    return [
        str(line["client"]) for line in _log_events(server, "request") if line.get("path") == path
    ]


def test_forwarded_headers_count_only_from_forwarded_allow_ips(
    api_server: ApiServer, start_api: Callable[..., ApiServer], redis_url: str
) -> None:
    """From an address in FORWARDED_ALLOW_IPS (the default: loopback) X-Forwarded-For names
    the client; from any other address it is ignored."""
    spoofed = {"X-Forwarded-For": "203.0.113.7"}
    httpx.get(f"{api_server.base_url}/console/login?trusted", headers=spoofed)
    seen = _wait_for(lambda: _access_clients(api_server, "/console/login?trusted"), 1)
    assert seen == ["203.0.113.7"]
    elsewhere = start_api(redis_url, env={"FORWARDED_ALLOW_IPS": "192.0.2.1"})
    httpx.get(f"{elsewhere.base_url}/console/login?untrusted", headers=spoofed)
    seen = _wait_for(lambda: _access_clients(elsewhere, "/console/login?untrusted"), 1)
    assert seen == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("public_base_url", "setting", "secure"),
    [
        ("", None, True),
        ("https://voicecall.example", None, True),
        ("http://127.0.0.1:8000", None, False),
        ("http://127.0.0.1:8000", "auto", False),
        ("https://voicecall.example", "false", False),
        ("http://api:8000", "true", True),
    ],
)
def test_console_cookie_secure_defaults_from_public_base_url(
    public_base_url: str, setting: str | None, secure: bool
) -> None:
    """On unless PUBLIC_BASE_URL is http://; an explicit true or false wins."""
    given = {"public_base_url": public_base_url}
    if setting is not None:
        given["console_cookie_secure"] = setting
    assert load_settings(_env_file=None, **given).console_cookie_is_secure is secure


@pytest.mark.parametrize(
    ("name", "value"),
    [("console_cookie_secure", "sometimes"), ("forwarded_allow_ips", "proxy.internal")],
)
def test_a_bad_cookie_or_proxy_setting_is_one_line(name: str, value: str) -> None:
    """A value outside the rule stops start-up with one line naming the setting."""
    with pytest.raises(SettingsError, match=f"^{name.upper()}: "):
        load_settings(_env_file=None, **{name: value})


def test_forwarded_allow_ips_takes_addresses_networks_or_star() -> None:
    """Addresses and networks of either family, or *; spaces are dropped."""
    settings = load_settings(_env_file=None, forwarded_allow_ips=" 10.0.0.0/8, ::1 ,192.0.2.7")
    assert settings.forwarded_allow_ips == "10.0.0.0/8,::1,192.0.2.7"
    assert load_settings(_env_file=None, forwarded_allow_ips="*").forwarded_allow_ips == "*"

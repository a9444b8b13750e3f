"""The console's boundaries, attacked from outside over real HTTP (a real uvicorn API process
on a real Redis), one block per finding of issue 18:

- 8: logout ends the session on the server: a copied cookie opens nothing afterwards; a
  validly signed cookie the server never opened is refused; sessions end at their max age
  and each token keeps a bounded number;
- 9: the cancel reason refuses control characters exactly as the API does;
- 15: the cookie's Secure flag follows CONSOLE_COOKIE_SECURE, not the request's scheme, and
  proxy headers count only from FORWARDED_ALLOW_IPS.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis

from producer.console import session as sessions
from tests.fixtures.api import ApiServer
from voicecall import keys
from voicecall.errors import SettingsError
from voicecall.settings import load_settings
from voicecall.store import JobStore

PHONE = "0901234567"
FULL = "84901234567"
MASKED = "8490***4567"
TOMORROW = datetime.fromtimestamp(time.time() + 86400, UTC).isoformat()
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def _login(server: ApiServer) -> tuple[httpx.Client, str]:
    """A logged-in browser-like client and its session's CSRF token."""
    client = httpx.Client(base_url=server.base_url, timeout=10)
    form = CSRF_FIELD.search(client.get("/console/login").text)
    assert form
    answer = client.post("/console/login", data={"token": server.token, "csrf": form.group(1)})
    assert answer.status_code == 303, answer.text
    found = CSRF_FIELD.search(client.get("/console/").text)
    assert found
    return client, found.group(1)


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


def _log_events(server: ApiServer, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def _wait_for(what: Callable[[], list[Any]], count: int) -> list[Any]:
    """``what()`` once it has ``count`` entries (log lines land a moment after the answer)."""
    deadline = time.monotonic() + 10
    while len(found := what()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _log_events(server: ApiServer, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
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
    operator, csrf = _login(api_server)
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
    client, csrf = _login(api_server)
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
    client, csrf = _login(api_server)
    with closing(client):
        done = client.post(
            f"/console/calls/{second}/cancel",
            data={"csrf": csrf, "confirm": "yes", "reason": f"  {reason} "},
        )
        assert done.status_code == 303
    with api_server.client() as api:
        assert api.get(f"/v1/calls/{second}").json()["history"][-1]["note"] == reason


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

"""The console's boundaries, attacked from outside over real HTTP (a real uvicorn API process
on a real Redis), one block per finding of issue 18:

- 9: the cancel reason refuses control characters exactly as the API does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.fixtures.api import ApiServer

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

"""Who can read metrics (issue 10 §10): the API's /metrics behind an optional METRICS_TOKEN,
and the worker's metrics port bound to METRICS_HOST (loopback unless set), against real
processes."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fixtures.api import ApiServer
from tests.fixtures.stack import Stack, wait_until
from voicecall.config.settings import load_settings
from voicecall.errors import SettingsError

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def test_metrics_token_guards_the_api_metrics(
    redis_url: str, start_api: Callable[..., ApiServer]
) -> None:
    """With METRICS_TOKEN set: no token, a wrong one or an API token gets a JSON 401; the
    metrics token gets the exposition. Health probes stay open."""
    server = start_api(redis_url, env={"METRICS_TOKEN": METRICS_TOKEN})
    url = f"{server.base_url}/metrics"
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {server.token}"},
    ):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"] == "unauthorized"
        assert "voicecall_build_info" not in refused.text
    allowed = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert allowed.status_code == 200
    assert "voicecall_build_info" in allowed.text
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    assert METRICS_TOKEN not in server.logs()


def test_the_metrics_token_cannot_enqueue_calls(
    redis_url: str, start_api: Callable[..., ApiServer]
) -> None:
    """The metrics token is not an API token: Prometheus can read, never call."""
    server = start_api(redis_url, env={"METRICS_TOKEN": METRICS_TOKEN})
    with server.client(token=METRICS_TOKEN) as client:
        response = client.post(
            "/v1/calls", json={"kind": "voice_otp", "phone": "0901234567", "content": "1234"}
        )
    assert response.status_code == 401


def test_without_a_metrics_token_metrics_stay_open(api_server: ApiServer) -> None:
    """The default (no METRICS_TOKEN) keeps Prometheus' plain scrape working."""
    assert httpx.get(f"{api_server.base_url}/metrics").status_code == 200


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ({"metrics_host": "localhost"}, "METRICS_HOST: must be an IP address"),
        ({"metrics_host": "10.0.0.1; rm"}, "METRICS_HOST: must be an IP address"),
        ({"metrics_token": "short"}, "METRICS_TOKEN: must be at least 16 characters"),
    ],
)
def test_bad_metrics_settings_are_refused_naming_them(value: dict[str, str], rule: str) -> None:
    """A METRICS_HOST that is not an IP address or a short METRICS_TOKEN stops start-up naming it."""
    with pytest.raises(SettingsError, match=rule):
        load_settings(**value)


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.parametrize(
    ("settings", "expected"), [({}, "127.0.0.1"), ({"metrics_host": "0.0.0.0"}, "0.0.0.0")]
)
def test_the_worker_metrics_port_binds_to_metrics_host(
    stack_factory: Callable[..., Stack], settings: dict[str, str], expected: str
) -> None:
    """A worker's metrics port listens on loopback by default, on METRICS_HOST when set."""
    stack = stack_factory(api=False, **settings)
    worker = stack.start_worker(processes=1, threads=1)
    port = int(worker.env["METRICS_PORT"])
    addresses = wait_until(lambda: _listening_addresses(port), 20, what="metrics port")
    assert addresses == {expected}
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200

"""Redis stopped under a running API: 503 with Retry-After, then recovery without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fixtures.api import ApiServer
from tests.fixtures.redis import RedisServer

OTP = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}


@pytest.fixture()
def outage(redis_server: RedisServer, redis_url: str) -> Iterator[RedisServer]:
    """Hands the test the session Redis to stop; it is running again when the test ends."""
    yield redis_server
    if redis_server.process is None:
        redis_server.start()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"] == "redis_unavailable"
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_api_answers_503_while_redis_is_down_and_recovers(
    api_server: ApiServer, outage: RedisServer
) -> None:
    """With Redis stopped every Redis-backed route is 503 + Retry-After; after it restarts the
    same API process serves again and the job stored before the outage is still there."""
    with api_server.client() as client:
        before = client.post("/v1/calls", json={**OTP, "idempotency_key": "pre"}).json()
        outage.stop()

        _assert_unavailable(client.post("/v1/calls", json=OTP))
        _assert_unavailable(client.post("/v1/calls/batch", json={"calls": [OTP]}))
        _assert_unavailable(client.get(f"/v1/calls/{before['id']}"))
        _assert_unavailable(client.delete(f"/v1/calls/{before['id']}"))
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert (ready.status_code, ready.headers["retry-after"]) == (503, "2")
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "voicecall_exporter_redis_up 0.0" in metrics.text

        outage.start()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        after = client.post("/v1/calls", json=OTP)
        assert after.status_code == 202, after.text
        replay = client.post("/v1/calls", json={**OTP, "idempotency_key": "pre"}).json()
        assert (replay["id"], replay["replay"]) == (before["id"], True)
        assert client.get(f"/v1/calls/{before['id']}").status_code == 200
        assert "voicecall_exporter_redis_up 1.0" in client.get("/metrics").text

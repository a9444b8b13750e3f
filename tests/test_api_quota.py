"""Per-token quotas (issue 10 §9): API_TOKEN_QUOTA=CALLS/SECONDS holds per token, across API
processes, exactly at window edges; a refused request gets 429 with Retry-After and the
problem body, and takes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.api import ApiServer
from voicecall import keys
from voicecall.errors import SettingsError
from voicecall.settings import load_settings
from voicecall.store import JobStore

OTP: dict[str, Any] = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}


def _post(server: ApiServer, token: str | None = None, **kwargs: Any) -> Any:
    with server.client(token=token) as client:
        return client.post("/v1/calls", json=OTP, **kwargs)


def test_a_token_over_its_quota_gets_429_and_others_do_not(
    redis_url: str, start_api: Callable[..., ApiServer]
) -> None:
    """3 calls per minute: the 4th of one token is refused (429, Retry-After, problem body,
    nothing stored); the other token still has its own 3."""
    server = start_api(redis_url, env={"API_TOKEN_QUOTA": "3/60"})
    store = JobStore.from_url(redis_url)
    assert [_post(server).status_code for _ in range(3)] == [202, 202, 202]
    refused = _post(server)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    body = refused.json()
    assert body["error"] == "quota_exceeded"
    assert "3 calls per 60 s" in body["message"]
    assert body["request_id"] == refused.headers["x-request-id"]
    assert sum(store.state_counts().values()) == 3
    assert _post(server, token=server.other_token).status_code == 202
    store.close()


def test_invalid_requests_take_nothing_and_a_batch_counts_each_call(
    redis_url: str, start_api: Callable[..., ApiServer]
) -> None:
    """A refused body costs nothing; a batch costs one per call and is refused whole."""
    server = start_api(redis_url, env={"API_TOKEN_QUOTA": "3/60"})
    with server.client() as client:
        for _ in range(5):
            bad = client.post("/v1/calls", json={**OTP, "phone": "x"})
            assert bad.status_code == 422
        assert client.post("/v1/calls/batch", json={"calls": [OTP, OTP]}).status_code == 200
        over = client.post("/v1/calls/batch", json={"calls": [OTP, OTP]})
        assert (over.status_code, over.json()["error"]) == (429, "quota_exceeded")
        assert client.post("/v1/calls", json=OTP).status_code == 202
        assert client.post("/v1/calls", json=OTP).status_code == 429


def test_the_quota_is_shared_by_every_api_process(
    redis_url: str, start_api: Callable[..., ApiServer]
) -> None:
    """Two API processes on one Redis: one token's quota is one count."""
    first = start_api(redis_url, env={"API_TOKEN_QUOTA": "3/60"})
    second = start_api(
        redis_url, env={"API_TOKEN_QUOTA": "3/60", "API_TOKENS": first.env["API_TOKENS"]}
    )
    second.token = first.token  # the token its client() sends
    assert [_post(first).status_code, _post(second).status_code, _post(first).status_code] == [
        202,
        202,
        202,
    ]
    assert _post(second).status_code == 429


def test_the_quota_is_exact_at_any_window_edge(redis_url: str) -> None:
    """5 per 2 s: 5 at once, then one more every 400 ms, never 10 around an edge."""
    store = JobStore.from_url(redis_url)
    key, quota, t0 = keys.token_quota("t" * 16), (5, 2), 1_000_000.0
    assert [store.take_quota(key, 1, quota, now=t0) for _ in range(5)] == [0.0] * 5
    assert store.take_quota(key, 1, quota, now=t0) == pytest.approx(0.4)
    assert store.take_quota(key, 1, quota, now=t0 + 0.399) > 0
    assert store.take_quota(key, 1, quota, now=t0 + 0.4) == 0.0
    taken = sum(store.take_quota(key, 1, quota, now=t0 + 1.999) == 0.0 for _ in range(10))
    assert taken == 3  # 1,999 ms replenish 4 calls; one was taken at 400 ms
    assert store.take_quota(key, 3, quota, now=t0 + 10) == 0.0
    assert store.take_quota(key, 6, quota, now=t0 + 20) > 0  # more than the whole quota
    store.close()


@pytest.mark.parametrize("value", ["10", "0/60", "10/0", "ten/60", "10/100000"])
def test_a_bad_quota_setting_is_refused_naming_it(value: str) -> None:
    with pytest.raises(SettingsError, match="API_TOKEN_QUOTA: must be CALLS/SECONDS"):
        load_settings(api_token_quota=value)


def test_quota_settings_read() -> None:
    assert load_settings(api_token_quota="600/60").api_token_quota == (600, 60)
    assert load_settings(api_token_quota="off").api_token_quota is None
    assert load_settings().api_token_quota is None

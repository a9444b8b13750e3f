"""Every answer of the API carries ``X-Content-Type-Options: nosniff`` (issue 18, finding 16).

The routes are walked from the app itself (so a route added later is walked too) against a
real ``voicecall api`` process: each with and without a token, plus the answers no route
gives (404, 405, 413, 415, 422), the static files of the docs and the console, and 503 from an
API whose Redis is unreachable. A 500 cannot be provoked from outside (that is the point of
it), so the middleware's last-resort answer is checked around an app that raises.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from producer.api import create_app
from producer.middleware import RequestMiddleware
from tests.fixtures.api import ApiServer
from tests.fixtures.redis import free_port
from voicecall.config.settings import load_settings

NOSNIFF = ("x-content-type-options", "nosniff")
OTP = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}
_PARAM = re.compile(r"\{(\w+)(:path)?\}")


def walk(routes: list[Any]) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, through included routers."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            yield from walk(list(candidates()))
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            yield method, route.path


def app_routes() -> list[tuple[str, str]]:
    settings = load_settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        api_tokens="route-walker-token-0123456789",
        callback_secret="route-walker-callback-secret",
    )
    return sorted(set(walk(create_app(settings).routes)))


ROUTES = app_routes()


def concrete(path: str) -> str:
    """The template with every parameter filled in with a value no job has."""
    return _PARAM.sub(lambda m: f"no-such-{m.group(1)}", path)


def missing_nosniff(client: httpx.Client, method: str, path: str, **kwargs: Any) -> str | None:
    response = client.request(method, path, **kwargs)
    if response.headers.get(NOSNIFF[0]) == NOSNIFF[1]:
        return None
    return f"{method} {path} -> {response.status_code}: {response.headers.get(NOSNIFF[0])!r}"


def test_the_walk_finds_every_kind_of_route() -> None:
    """The walk reaches the API, callback, operations, docs and console routes."""
    paths = {path for _, path in ROUTES}
    for expected in ("/v1/calls", "/v1/esms/callback/{job_id}/{nonce}/{signature}", "/readyz"):
        assert expected in paths
    assert {"/metrics", "/openapi.json", "/docs", "/redoc", "/console/login"} <= paths
    assert len(ROUTES) >= 30


@pytest.mark.parametrize("token", ["valid", "none"])
def test_every_route_answers_nosniff(api_server: ApiServer, token: str) -> None:
    """Every method of every route, with the token and without: 2xx, 3xx, 401, 403, 404 and
    422 answers alike carry nosniff."""
    client = (
        api_server.client()
        if token == "valid"
        else httpx.Client(base_url=api_server.base_url, timeout=10)
    )
    with client:
        missing = [
            missing_nosniff(
                client, method, concrete(path), json={} if method in ("POST", "PUT") else None
            )
            for method, path in ROUTES
        ]
    assert [m for m in missing if m] == []


def static_file(client: httpx.Client, page: str, prefix: str) -> str:
    found = re.search(rf'(?:src|href)="({re.escape(prefix)}/[^"]+)"', client.get(page).text)
    assert found, f"no {prefix} file linked from {page}"
    return found.group(1)


def test_answers_no_route_gives_carry_nosniff(api_server: ApiServer) -> None:
    """404, 405, 413, 415, 422 and the static files of /docs and the console carry nosniff."""
    with api_server.client() as client:
        docs_file = static_file(client, "/docs", "/docs-static")
        console_file = static_file(client, "/console/login", "/console/static")
        requests: list[tuple[str, str, dict[str, Any], int]] = [
            ("GET", "/no-such-route", {}, 404),
            ("PUT", "/v1/calls", {"json": {}}, 405),
            ("POST", "/v1/calls", {"json": {"kind": "voice_otp"}}, 422),
            (
                "POST",
                "/v1/calls",
                {"content": b"x", "headers": {"content-type": "text/plain"}},
                415,
            ),
            ("POST", "/v1/calls", {"content": b"x" * (2 << 20)}, 413),
            ("GET", docs_file, {}, 200),
            ("GET", console_file, {}, 200),
            ("GET", "/console/static/no-such-file.js", {}, 404),
        ]
        for method, path, kwargs, status in requests:
            response = client.request(method, path, **kwargs)
            assert response.status_code == status, (method, path, response.status_code)
            assert response.headers.get(NOSNIFF[0]) == NOSNIFF[1], (method, path)


def test_503_while_redis_is_unreachable_carries_nosniff(
    start_api: Callable[..., ApiServer],
) -> None:
    """An API whose Redis does not answer: its 503s carry nosniff."""
    server = start_api(f"redis://127.0.0.1:{free_port()}/0")
    with server.client() as client:
        for method, path in (("GET", "/readyz"), ("GET", "/v1/calls/x"), ("POST", "/v1/calls")):
            response = client.request(method, path, json=OTP if method == "POST" else None)
            assert response.status_code == 503, (path, response.status_code)
            assert response.headers.get(NOSNIFF[0]) == NOSNIFF[1], path


def test_the_last_resort_500_carries_nosniff() -> None:
    """An exception no handler caught: the middleware's JSON 500 carries nosniff."""

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/calls",
        "headers": [],
        "query_string": b"",
    }
    asyncio.run(RequestMiddleware(broken, max_body_bytes=1024)(scope, receive, send))
    start = sent[0]
    assert start["status"] == 500
    assert (NOSNIFF[0].encode(), NOSNIFF[1].encode()) in start["headers"]

"""The API's own request metrics, read from a real uvicorn's ``/metrics``.

Requests are counted once each by route template, method and status, across every uvicorn
process of the server, and timed in a histogram; the raw path (job ids, callback signatures,
whatever a scanner tries) never becomes a label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.api import ApiServer
from tests.fixtures.redis import free_port

OTP = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}
CALLS = 24
SCANNED = ("/wp-login.php", "/v1/calls-x/0901234567", "/v1/esms/callback")


def _scrape(server: ApiServer) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of the ``voicecall_api_*`` families, by sample name."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("voicecall_api_"):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _requests(
    samples: dict[str, list[tuple[dict[str, str], float]]],
) -> Counter[tuple[str, str, str]]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for labels, value in samples["voicecall_api_requests_total"]:
        if labels["route"] != "/healthz":  # the fixture polls it until the server is up
            counts[(labels["route"], labels["method"], labels["status"])] += int(value)
    return counts


def test_requests_are_counted_by_route_template_across_uvicorn_processes(
    start_api: Callable[..., ApiServer], redis_url: str
) -> None:
    """Two uvicorn processes, concurrent requests of every kind: each is counted once under its route template, method and status."""
    server = start_api(redis_url, "--workers", "2", env={"API_MAX_BODY_BYTES": "1024"})
    with server.client() as http, ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda _: http.post("/v1/calls", json=OTP), range(CALLS)))
        ids = [response.json()["id"] for response in created]
        looked_up = list(pool.map(lambda job_id: http.get(f"/v1/calls/{job_id}"), ids))
        assert {r.status_code for r in created} | {r.status_code for r in looked_up} == {202, 200}
        assert http.get("/v1/calls/no-such-job").status_code == 404
        assert http.post("/v1/calls", content=b"x" * 2048).status_code == 413
        assert http.request("PURGE", "/v1/calls").status_code == 405
        for path in SCANNED:
            assert http.get(path).status_code == 404
    assert httpx.post(f"{server.base_url}/v1/calls", json=OTP).status_code == 401
    forged = f"{server.base_url}/v1/esms/callback/{ids[0]}/nonce/{'0' * 32}"
    assert httpx.get(forged).status_code == 403

    samples = _scrape(server)
    assert _requests(samples) == {
        ("/v1/calls", "POST", "202"): CALLS,
        ("/v1/calls/{id}", "GET", "200"): CALLS,
        ("/v1/calls/{id}", "GET", "404"): 1,
        ("/v1/calls", "POST", "413"): 1,  # refused by its Content-Length before routing
        ("/v1/calls", "other", "405"): 1,
        ("unmatched", "GET", "404"): len(SCANNED),
        ("/v1/calls", "POST", "401"): 1,
        ("/v1/esms/callback/{job_id}/{nonce}/{signature}", "GET", "403"): 1,
    }
    counts = {
        (labels["route"], labels["method"], labels["status_class"]): value
        for labels, value in samples["voicecall_api_request_duration_seconds_count"]
    }
    assert counts[("/v1/calls", "POST", "2xx")] == CALLS
    assert counts[("/v1/calls", "POST", "4xx")] == 2  # the 413 and the 401
    label_values = {
        value for name in samples for labels, _ in samples[name] for value in labels.values()
    }
    assert not [value for value in label_values if any(i in value for i in ids)]
    assert not label_values & {*SCANNED, "0901234567", "0" * 32}


def test_server_errors_are_counted_as_5xx(start_api: Callable[..., ApiServer]) -> None:
    """An API whose Redis does not answer counts its 503s under the route, and times them as 5xx."""
    server = start_api(f"redis://127.0.0.1:{free_port()}/0")
    with server.client() as http:
        assert http.post("/v1/calls", json=OTP).status_code == 503
        assert http.get("/readyz").status_code == 503

    samples = _scrape(server)
    requests = _requests(samples)
    assert requests[("/v1/calls", "POST", "503")] == 1
    assert requests[("/readyz", "GET", "503")] == 1
    counts = {
        (labels["route"], labels["status_class"]): value
        for labels, value in samples["voicecall_api_request_duration_seconds_count"]
    }
    assert counts[("/v1/calls", "5xx")] == 1

"""The OpenAPI document tells the truth (issue 10 §11, issue 18 finding 17): schemathesis fuzzes
every operation against the real API server with every check it has (a 5xx, status codes,
content types, headers and bodies against the document, schema-violating requests accepted
(ST201), schema-valid ones refused (ST202, told in tests/schemathesis.toml which 422s the
document names), missing headers, undeclared methods and their Allow header, auth ignored,
use after DELETE) and must find nothing; and the document itself uses the project's error
body, readable operationIds, and describes the batch as it behaves."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from producer.openapi import ItemError
from tests.fixtures.api import ApiServer

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
CONFIG = Path(__file__).parent / "schemathesis.toml"
OTP: dict[str, Any] = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}


@pytest.mark.skipif(
    SCHEMATHESIS is None, reason="schemathesis is not installed (make test installs it)"
)
def test_every_answer_conforms_to_the_openapi_document(api_server: ApiServer) -> None:
    """Generated valid and invalid requests to every operation, every check: no failure (a
    fixed seed and 25 examples per operation keep it under half a minute)."""
    assert SCHEMATHESIS is not None
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(CONFIG),
            "run",
            f"{api_server.base_url}/openapi.json",
            "-H",
            f"Authorization: Bearer {api_server.token}",
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, summary
    assert "Failures:" not in result.stdout and re.search(r"\d+ passed", result.stdout), summary


@pytest.mark.parametrize("path", ["/v1/calls", "/v1/calls/export"])
def test_an_over_long_idempotency_key_filter_is_refused_as_documented(
    http_client: httpx.Client, path: str
) -> None:
    """Finding 17: the document says 1-200 characters; 201 gets 422 naming the filter."""
    assert http_client.get(path, params={"idempotency_key": "k" * 200}).status_code == 200
    answer = http_client.get(path, params={"idempotency_key": "k" * 201})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["idempotency_key"]


@pytest.mark.parametrize(
    ("calls", "fields"),
    [
        ([1, 2], ["calls.0", "calls.1"]),
        ([OTP, "x", None, [OTP]], ["calls.1", "calls.2", "calls.3"]),
    ],
)
def test_a_batch_whose_items_are_not_objects_is_refused_whole(
    http_client: httpx.Client, calls: list[Any], fields: list[str]
) -> None:
    """Finding 17: items are objects in the schema; a number (or any non-object) makes the
    batch malformed: 422 naming each such item, and nothing is stored (not even the good
    call beside it)."""
    answer = http_client.post("/v1/calls/batch", json={"calls": calls})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == fields
    assert http_client.get("/v1/calls").json()["data"] == []


def test_a_batch_campaign_of_null_or_with_control_characters_is_refused(
    http_client: httpx.Client,
) -> None:
    """`campaign` is a string without control characters, or absent: null and a CR get 422."""
    for campaign in (None, "spring\r\n2030", 5):
        answer = http_client.post("/v1/calls/batch", json={"calls": [OTP], "campaign": campaign})
        assert answer.status_code == 422, campaign
        assert [e["field"] for e in answer.json()["errors"]] == ["campaign"]


def test_the_batch_refuses_an_idempotency_key_header_it_does_not_list(
    http_client: httpx.Client, document: dict[str, Any]
) -> None:
    """The batch takes no Idempotency-Key header, so its operation lists none; one sent is
    refused (422 naming it), never silently ignored."""
    operation = document["paths"]["/v1/calls/batch"]["post"]
    assert "Idempotency-Key" not in str(operation.get("parameters", []))
    answer = http_client.post(
        "/v1/calls/batch", json={"calls": [OTP]}, headers={"Idempotency-Key": "k-1"}
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["Idempotency-Key"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/calls", "GET, POST"),
        ("PATCH", "/v1/calls/abc", "DELETE, GET"),
        ("PUT", "/v1/calls/batch", "POST"),  # a concrete path, not /v1/calls/{id}
        ("GET", "/v1/calls/batch", "POST"),
        ("DELETE", "/v1/calls/export", "GET"),
    ],
)
def test_a_405_names_every_method_of_its_path(
    http_client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    """`Allow` lists every method the path answers (GET /v1/calls hid POST /v1/calls)."""
    answer = http_client.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allowed


def test_metrics_documents_its_token_as_optional(document: dict[str, Any]) -> None:
    """/metrics is open until METRICS_TOKEN is set: its security lists no credentials too."""
    assert document["paths"]["/metrics"]["get"]["security"] == [{"MetricsToken": []}, {}]


@pytest.fixture()
def document(api_server: ApiServer) -> dict[str, Any]:
    response = httpx.get(f"{api_server.base_url}/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_no_operation_promises_fastapis_validation_body(document: dict[str, Any]) -> None:
    """Every 422 is the project's ErrorBody; HTTPValidationError appears nowhere."""
    assert "HTTPValidationError" not in str(document)
    for method, path, operation in _operations(document):
        answer = operation["responses"].get("422")
        if answer is not None:
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


def test_operation_ids_are_readable_and_unique(document: dict[str, Any]) -> None:
    """operationIds are the routes' names (create_call, get_call, ...), not path soup."""
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", i) and "_v1_" not in i for i in ids), ids
    assert {"create_call", "create_batch", "get_call", "cancel_call", "esms_callback"} <= set(ids)


@pytest.mark.parametrize(
    ("method", "path", "codes"),
    [
        ("POST", "/v1/calls", {"202", "401", "409", "413", "415", "422", "429", "503"}),
        ("POST", "/v1/calls/batch", {"200", "401", "413", "415", "422", "429", "503"}),
        ("GET", "/v1/calls/{id}", {"200", "401", "404", "422", "503"}),
        ("DELETE", "/v1/calls/{id}", {"200", "401", "404", "409", "422", "503"}),
        (
            "GET",
            "/v1/esms/callback/{job_id}/{nonce}/{signature}",
            {"200", "400", "403", "422", "429", "503"},
        ),
        ("GET", "/metrics", {"200", "401"}),
        ("GET", "/readyz", {"200", "503"}),
    ],
)
def test_each_route_documents_every_status_it_answers(
    document: dict[str, Any], method: str, path: str, codes: set[str]
) -> None:
    """Each route's OpenAPI responses are exactly the status codes it can answer, no more, no fewer."""
    operation = document["paths"][path][method.lower()]
    assert set(operation["responses"]) == codes


def test_batch_item_errors_match_their_schema(http_client: httpx.Client) -> None:
    """A batch answer's item errors (422 and 409) are ItemError bodies, nothing more."""
    http_client.post("/v1/calls", json={**OTP, "idempotency_key": "k"})
    response = http_client.post(
        "/v1/calls/batch",
        json={
            "calls": [{**OTP, "phone": "x"}, {**OTP, "idempotency_key": "k", "content": "1"}, OTP]
        },
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [422, 409, 202]
    for item in results[:2]:
        assert set(item["error"]) <= set(ItemError.model_fields)
        ItemError.model_validate(item["error"])


@pytest.fixture()
def http_client(api_server: ApiServer) -> Any:
    with api_server.client() as client:
        yield client


@pytest.mark.parametrize("job_id", ["batch", "export"])
def test_a_job_cannot_take_the_name_of_a_route(http_client: httpx.Client, job_id: str) -> None:
    """/v1/calls/batch and /v1/calls/export are routes: a job with such an id could never be
    read or cancelled, so intake refuses it (422 naming id), and GET/DELETE there get 405."""
    answer = http_client.post("/v1/calls", json={**OTP, "id": job_id})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["id"]
    assert http_client.post("/v1/calls", json={**OTP, "id": f"{job_id}-1"}).status_code == 202

"""The OpenAPI document tells the truth (issue 10 §11): schemathesis fuzzes every operation
against the real API server and checks that no answer is a 5xx and that every status code,
content type and body is the one the document promises; and the document itself uses the
project's error body, readable operationIds, and describes the batch as it behaves."""

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
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
OTP: dict[str, Any] = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}


@pytest.mark.skipif(
    SCHEMATHESIS is None, reason="schemathesis is not installed (make test installs it)"
)
def test_every_answer_conforms_to_the_openapi_document(api_server: ApiServer) -> None:
    """Generated valid and invalid requests to every operation: never a 5xx, and every status,
    content type and body is documented for its operation."""
    assert SCHEMATHESIS is not None
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{api_server.base_url}/openapi.json",
            "-H",
            f"Authorization: Bearer {api_server.token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


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

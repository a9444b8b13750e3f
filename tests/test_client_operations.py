"""The client covers the API as its OpenAPI document states it: every operation has a method in
both clients, the answer models the client writes itself are the document's schemas, and the
keyword options are the server models' fields. Also: what the package exports, and that
importing the client loads no Redis client, FastAPI or Dramatiq.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import voicecall
import voicecall.client
from producer.search.query import FILTER_PARAMS
from tests.fixtures.api import ApiServer
from voicecall.client import (
    AsyncClient,
    BatchItem,
    BatchResult,
    BulkOperation,
    CallPage,
    CampaignSummary,
    Client,
    ItemError,
)
from voicecall.client._operations import (
    NOT_FOR_CLIENTS,
    OPERATIONS,
    Filters,
    OtpOptions,
    RecordOptions,
    Route,
    TemplateOptions,
    get_call,
    show_campaign,
)
from voicecall.client.models import FieldError
from voicecall.errors import SettingsError
from voicecall.job.contract import RecordCall, TemplateCall, VoiceOtpCall

ROOT = Path(__file__).resolve().parents[1]
SERVER_SIDE = ("redis", "hiredis", "fastapi", "starlette", "uvicorn", "dramatiq")


@pytest.fixture()
def document(api_server: ApiServer) -> dict[str, Any]:
    """The OpenAPI document as the running API serves it."""
    served: dict[str, Any] = httpx.get(f"{api_server.base_url}/openapi.json", timeout=10).json()
    return served


def test_every_operation_of_the_document_has_a_method_in_both_clients(
    document: dict[str, Any],
) -> None:
    """Walking /openapi.json: each operation is in the client's table with its method and path, and each of its methods exists in Client (blocking) and AsyncClient (awaited); only eSMS's callback and /metrics are left out, on purpose."""
    served = {
        operation["operationId"]: Route(method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert sorted(set(served) - set(OPERATIONS) - NOT_FOR_CLIENTS) == [], "add a client method"
    assert set(served) >= NOT_FOR_CLIENTS
    for operation_id, (route, methods) in OPERATIONS.items():
        assert served.get(operation_id) == route, operation_id
        for name in methods:
            blocking, awaited = getattr(Client, name), getattr(AsyncClient, name)
            assert not inspect.iscoroutinefunction(blocking), name
            assert inspect.iscoroutinefunction(awaited) or inspect.isasyncgenfunction(awaited)
            parameters = inspect.signature(blocking).parameters
            assert parameters == inspect.signature(awaited).parameters, name


def test_both_clients_have_the_same_public_methods() -> None:
    """Method for method, AsyncClient is Client (aclose for close), and every one calls some operation."""
    public = {
        kind: {name for name in dir(kind) if not name.startswith("_")}
        for kind in (Client, AsyncClient)
    }
    assert public[Client] - {"close"} == public[AsyncClient] - {"aclose"}
    used = {name for _, methods in OPERATIONS.values() for name in methods}
    assert public[Client] - {"close", "base_url", "retries"} == used


def _shape(schema: Any) -> Any:
    """A schema without its words (titles, descriptions), which the client words its own way,
    and the defaults of optional fields, which FastAPI leaves out of answers' schemas."""
    if isinstance(schema, dict):
        return {
            key: _shape(value)
            for key, value in schema.items()
            if key not in ("title", "description", "default", "$defs")
        }
    if isinstance(schema, list):
        return [_shape(value) for value in schema]
    return schema


@pytest.mark.parametrize(
    "model",
    [CallPage, BatchResult, BatchItem, ItemError, FieldError, CampaignSummary, BulkOperation],
)
def test_the_clients_own_models_are_the_documents_schemas(
    document: dict[str, Any], model: type[BaseModel]
) -> None:
    """Each answer model the client defines itself has the fields, types and required set of the schema the API serves under its name."""
    ours = model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    theirs = document["components"]["schemas"][model.__name__]
    assert _shape(ours) == _shape(theirs)


@pytest.mark.parametrize(
    ("options", "model", "positional"),
    [
        (OtpOptions, VoiceOtpCall, {"phone", "content"}),
        (RecordOptions, RecordCall, {"phone", "record_id"}),
        (TemplateOptions, TemplateCall, {"phone", "template_id", "variables"}),
    ],
)
def test_the_keyword_options_are_the_server_models_fields(
    options: Any, model: type[BaseModel], positional: set[str]
) -> None:
    """create_*_call's positional arguments and keywords are exactly the fields of voicecall.job.contract' model of that kind (kind aside)."""
    keywords = options.__required_keys__ | options.__optional_keys__
    assert not keywords & positional
    assert keywords | positional | {"kind"} == set(model.model_fields)


def test_the_filters_are_the_apis() -> None:
    """The Filters keywords are GET /v1/calls's filters (labels a mapping for the repeated label)."""
    keywords = Filters.__required_keys__ | Filters.__optional_keys__
    assert keywords - {"labels"} | {"label"} == set(FILTER_PARAMS)


def test_the_public_names() -> None:
    """voicecall exports Client and AsyncClient; voicecall.client its clients, models, errors and verify_webhook (a change here is a deliberate diff)."""
    assert voicecall.__all__ == ["AsyncClient", "Client", "__version__"]
    assert (voicecall.Client, voicecall.AsyncClient) == (Client, AsyncClient)
    assert voicecall.client.__all__ == [
        "ApiError", "AsyncClient", "BatchItem", "BatchResult", "BulkOperation", "CallOptions",
        "CallPage",
        "CampaignSummary", "Client", "ClientError", "Conflict", "ConnectionFailed", "Filters",
        "InvalidWebhook", "ItemError", "JobView", "NotFound", "OtpOptions", "RateLimited",
        "RecordOptions", "RequestRefused", "RetryPolicy", "ServerError", "TemplateOptions",
        "Unauthorized", "Unavailable", "ValidationFailed", "WebhookEvent", "verify_webhook",
    ]  # fmt: skip
    with pytest.raises(AttributeError):
        _ = voicecall.Clients  # type: ignore[attr-defined]


def test_importing_the_client_loads_no_server_side_module() -> None:
    """`import voicecall` loads no httpx; the client, its errors and verify_webhook load no Redis client, FastAPI, Starlette, uvicorn or Dramatiq."""
    code = (
        "import sys, voicecall; before = 'httpx' in sys.modules; "
        "voicecall.Client, voicecall.AsyncClient; "
        "from voicecall.client import verify_webhook, ValidationFailed; "
        f"print(before, sorted({{m.split('.')[0] for m in sys.modules}} & {set(SERVER_SIDE)!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, "False []\n"), result.stderr


@pytest.mark.parametrize("kind", [Client, AsyncClient])
def test_configuration_comes_from_the_arguments_or_the_environment(
    kind: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No arguments: VOICECALL_URL and VOICECALL_TOKEN; a missing or malformed one is a SettingsError naming it and never showing the token."""
    token = "secret token with spaces"
    monkeypatch.delenv("VOICECALL_URL", raising=False)
    monkeypatch.setenv("VOICECALL_TOKEN", "t0k3n-0123456789")
    with pytest.raises(SettingsError, match=r"^VOICECALL_URL: not set"):
        kind()
    for url in ("localhost:8000", "ftp://host/", "http://"):
        with pytest.raises(SettingsError, match=r"^VOICECALL_URL: must be an http"):
            kind(url)
    with pytest.raises(SettingsError, match=r"^VOICECALL_TOKEN: must be printable") as caught:
        kind("http://127.0.0.1:1", token)
    assert token not in str(caught.value)
    with pytest.raises(SettingsError, match="timeout_s"):
        kind("http://127.0.0.1:1", timeout_s=float("nan"))
    monkeypatch.setenv("VOICECALL_URL", "https://voicecall.example/base/")
    client = kind()
    assert client.base_url == "https://voicecall.example/base"
    assert "t0k3n" not in repr(client)


def test_path_parameters_stay_one_segment() -> None:
    """Ids and names are encoded as one path segment ("/", "?", "#", "." and ".." too); an empty one is refused before any request."""
    assert get_call("a/b?c#d").path == "/v1/calls/a%2Fb%3Fc%23d"
    assert show_campaign("..").path == "/v1/campaigns/%2E%2E"
    assert show_campaign(".").path == "/v1/campaigns/%2E"
    assert show_campaign("a.b").path == "/v1/campaigns/a.b"
    with pytest.raises(ValueError, match="must not be empty"):
        _ = get_call("").path

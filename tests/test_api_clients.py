"""API clients named and kept apart (issue 18, finding 4), on real processes: ``API_TOKENS``
entries ``name=token`` (a bare token named by a digest of itself), refused when a name or
token is bad or repeated; every job records its client (job JSON, OpenAPI, Python client,
CLI, console); idempotency keys are each client's own; reading and cancelling stay open to
every client."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from producer.client import VoiceCallClient
from tests.fixtures.api import CALLBACK_SECRET, REPO_ROOT, ApiServer, running
from tests.fixtures.console import login
from tests.fixtures.redis import RedisServer
from voicecall.cli import main
from voicecall.config.clients import bare_token_name, parse_api_tokens
from voicecall.config.settings import load_settings
from voicecall.errors import SettingsError
from voicecall.store.job_store import JobStore

BILLING = "billing-secret-token-0123"
CRM = "crm-secret-token-0123456789"
OTP: dict[str, Any] = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}


# --- API_TOKENS ---------------------------------------------------------------------------


def test_named_and_bare_tokens_are_read_with_their_names() -> None:
    """``name=token`` keeps its name (a token may hold '=' after the first); a bare token is
    named ``token-`` and 8 hex digits of a digest, which holds no part of it."""
    bare = "bare-token-0123456789abcdef"
    parsed = parse_api_tokens([f"billing={BILLING}", bare, "crm.v2=abc=def=0123456789abcdef"])
    assert [(t.name, t.token) for t in parsed] == [
        ("billing", BILLING),
        (bare_token_name(bare), bare),
        ("crm.v2", "abc=def=0123456789abcdef"),
    ]
    assert parsed[1].name.startswith("token-") and len(parsed[1].name) == 14
    assert not any(part in parsed[1].name for part in ("bare", "0123", "cdef"))
    settings = load_settings(api_tokens=f" billing={BILLING} , {bare}")
    assert [t.name for t in settings.api_tokens] == ["billing", bare_token_name(bare)]


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (f"Billing={BILLING}", "entry 1: a name (before '=') must be 1-40 characters"),
        (f"bill:ing={BILLING}", "entry 1: a name"),
        (f"{'b' * 41}={BILLING}", "entry 1: a name"),
        (f"={BILLING}", "entry 1: a name"),
        (f"bill ing={BILLING}", "entry 1: a name"),
        (f"b\u00e9={BILLING}", "entry 1: a name"),
        ("Zm9vYmFyYmF6cXV4cXV1eA==", "entry 1: a name"),  # a bare base64 token holding '='
        (f"billing={BILLING},billing={CRM}", "entry 2 has the name of entry 1"),
        (f"billing={BILLING},crm={BILLING}", "entry 2 repeats the token of entry 1"),
        (f"{BILLING},{BILLING}", "entry 2 has the name of entry 1"),
        (f"crm={CRM},billing=short", "entry 2: each token must be at least 16 characters"),
        ("tooshort", "entry 1: each token must be at least 16"),
        (f"python={BILLING}", "entry 1: the names cli, console, python are reserved"),
        (f"console={BILLING}", "are reserved"),
    ],
)
def test_a_bad_api_tokens_entry_is_refused_by_position_never_by_its_text(
    value: str, rule: str
) -> None:
    """A bad, reserved or repeated name, a repeated or short token: one line naming
    API_TOKENS and the entry's position; no token (nor what may be one) in it."""
    with pytest.raises(SettingsError) as caught:
        load_settings(api_tokens=value)
    line = str(caught.value)
    assert line.startswith("API_TOKENS: ") and rule in line and "\n" not in line
    for secret in (BILLING, CRM, "Zm9vYmFy", "tooshort", "short"):
        assert secret not in line


@pytest.mark.parametrize("command", [["check-settings", "api"], ["api", "--port", "1"]])
def test_a_bad_entry_stops_start_up_and_check_settings_with_exit_2(command: list[str]) -> None:
    """`voicecall api` and `voicecall check-settings api` exit 2 with one line naming
    API_TOKENS (and not the token)."""
    env = {
        **os.environ,
        "API_TOKENS": f"billing={BILLING},billing={CRM}",
        "CALLBACK_SECRET": CALLBACK_SECRET,
    }
    result = subprocess.run(
        [sys.executable, "-m", "voicecall.cli", *command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "API_TOKENS: entry 2 has the name of entry 1" in lines[0]
    assert BILLING not in result.stderr and CRM not in result.stderr


# --- over the API -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _named_process(redis_server: RedisServer) -> Iterator[ApiServer]:
    with running(redis_server.url, {"API_TOKENS": f"billing={BILLING},crm={CRM},{BARE}"}) as server:
        server.token = BILLING
        yield server


@pytest.fixture()
def named(_named_process: ApiServer, redis_url: str) -> ApiServer:
    """An API server with two named clients and one bare token, on an emptied database."""
    return _named_process


BARE = "bare-token-abcdefghijklmnop"


@pytest.fixture()
def billing(named: ApiServer) -> Iterator[httpx.Client]:
    with named.client(BILLING) as client:
        yield client


@pytest.fixture()
def crm(named: ApiServer) -> Iterator[httpx.Client]:
    with named.client(CRM) as client:
        yield client


def test_every_job_records_the_client_that_made_it(named: ApiServer) -> None:
    """One call, a batch and a bare token's call: each job's JSON names its client (GET,
    POST, the batch's items and the list), never a token."""
    answers = {}
    for token in (BILLING, CRM, BARE):
        with named.client(token) as client:
            one = client.post("/v1/calls", json=OTP)
            batch = client.post("/v1/calls/batch", json={"calls": [OTP]})
            assert one.status_code == 202 and batch.status_code == 200, batch.text
            got = client.get(f"/v1/calls/{one.json()['id']}").json()
            answers[token] = {
                one.json()["client"],
                batch.json()["results"][0]["job"]["client"],
                got["client"],
            }
    assert answers == {BILLING: {"billing"}, CRM: {"crm"}, BARE: {bare_token_name(BARE)}}
    assert BARE not in str(answers[BARE])


def test_the_same_idempotency_key_from_two_clients_makes_two_jobs(
    billing: httpx.Client, crm: httpx.Client
) -> None:
    """Finding 4: two systems using order numbers as keys each get their own call; a repeat
    from one client replays its own job, and another body from it is its own 409."""
    key = {"idempotency_key": "order-1001"}
    first = billing.post("/v1/calls", json={**OTP, **key})
    second = crm.post("/v1/calls", json={**OTP, **key, "content": "Ma 999999"})
    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["replay"] is False and second.json()["replay"] is False
    again = crm.post("/v1/calls", json={**OTP, **key, "content": "Ma 999999"})
    assert again.status_code == 202 and again.json()["id"] == second.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    conflict = billing.post("/v1/calls", json={**OTP, **key, "content": "Ma 000000"})
    assert conflict.status_code == 409 and conflict.json()["job_id"] == first.json()["id"]
    header = crm.post("/v1/calls", json=OTP, headers={"Idempotency-Key": "order-1002"})
    batch = billing.post(
        "/v1/calls/batch", json={"calls": [{**OTP, "idempotency_key": "order-1002"}]}
    )
    assert batch.json()["results"][0]["status"] == 202
    assert batch.json()["results"][0]["job"]["id"] != header.json()["id"]


def test_a_key_search_is_the_searching_clients_unless_it_names_another(
    billing: httpx.Client, crm: httpx.Client
) -> None:
    """`idempotency_key` finds the caller's own job; with `client` it finds that client's."""
    mine = billing.post("/v1/calls", json={**OTP, "idempotency_key": "k-7"}).json()["id"]
    theirs = crm.post("/v1/calls", json={**OTP, "idempotency_key": "k-7"}).json()["id"]

    def ids(who: httpx.Client, **params: str) -> list[str]:
        answer = who.get("/v1/calls", params={"idempotency_key": "k-7", **params})
        assert answer.status_code == 200, answer.text
        return [job["id"] for job in answer.json()["data"]]

    assert ids(billing) == [mine] and ids(crm) == [theirs]
    assert ids(billing, client="crm") == [theirs]
    assert ids(crm, client="nobody") == []


def test_client_filter_on_list_and_export(billing: httpx.Client, crm: httpx.Client) -> None:
    """`client` finds the jobs one client made, in the list and the CSV export; a name
    that breaks the rule gets 422 naming `client`."""
    made = {name: [] for name in ("billing", "crm")}
    for name, client in (("billing", billing), ("crm", crm)):
        for _ in range(2):
            made[name].append(client.post("/v1/calls", json=OTP).json()["id"])
    for name in made:
        listed = billing.get("/v1/calls", params={"client": name}).json()["data"]
        assert sorted(job["id"] for job in listed) == sorted(made[name])
        csv = crm.get("/v1/calls/export", params={"client": name}).text.splitlines()[1:]
        assert sorted(row.split(",")[0] for row in csv) == sorted(made[name])
    for bad in ("Billing", "a:b", "x" * 41, ""):
        for path in ("/v1/calls", "/v1/calls/export"):
            answer = billing.get(path, params={"client": bad})
            assert answer.status_code == 422, (path, bad)
            assert [e["field"] for e in answer.json()["errors"]] == ["client"]


def test_reading_and_cancelling_stay_open_to_every_client(
    billing: httpx.Client, crm: httpx.Client
) -> None:
    """No tenants: a client reads and cancels a job another client made."""
    job = billing.post("/v1/calls", json=OTP).json()
    assert crm.get(f"/v1/calls/{job['id']}").json()["client"] == "billing"
    cancelled = crm.delete(f"/v1/calls/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["client"] == "billing"


def test_the_openapi_document_names_the_client(api_server: ApiServer) -> None:
    """JobView has `client`; the list and the export take a `client` filter with its rule,
    and `idempotency_key` its length."""
    document = httpx.get(f"{api_server.base_url}/openapi.json").json()
    view = document["components"]["schemas"]["JobView"]
    assert "client" in view["properties"] and "client" in view["required"]
    for path in ("/v1/calls", "/v1/calls/export"):
        params = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        assert params["client"]["schema"]["pattern"] == "^[a-z0-9][a-z0-9._-]{0,39}$"
        assert params["idempotency_key"]["schema"]["maxLength"] == 200


# --- the Redis-direct producers and the console -------------------------------------------


@pytest.fixture()
def store(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobStore]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    job_store = JobStore.from_url(redis_url)
    yield job_store
    job_store.close()


def test_the_python_client_is_python_unless_it_names_a_client(
    store: JobStore, billing: httpx.Client
) -> None:
    """Jobs made with the Python API record `python`; given `client_name`, it acts as that
    client: its key replays the job the API client made with it, and its cursors are its."""
    python = VoiceCallClient(load_settings(), store)
    assert python.enqueue({**OTP, "idempotency_key": "same"}).client == "python"
    over_http = billing.post("/v1/calls", json={**OTP, "idempotency_key": "same"}).json()
    as_billing = python.for_client("billing")
    replay = as_billing.enqueue({**OTP, "idempotency_key": "same"})
    assert replay.replay and replay.id == over_http["id"]
    assert as_billing.find(idempotency_key="same").id == over_http["id"]
    assert python.find(idempotency_key="same").client == "python"
    assert python.find(idempotency_key="same", client="billing").id == over_http["id"]
    assert [job.id for job in python.list_calls(client="billing").data] == [over_http["id"]]
    with pytest.raises(ValueError, match="1-40 characters"):
        VoiceCallClient(load_settings(), store, client_name="Not A Name")


def test_the_cli_enqueues_as_cli_and_filters_by_client(
    store: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """`voicecall enqueue` records `cli`; `jobs list --client` and `status --client` find
    the jobs and keys of a named client."""
    python = VoiceCallClient(load_settings(), store).for_client("billing")
    python.enqueue({**OTP, "idempotency_key": "k-1"})
    assert main(["enqueue", "otp", "--phone", "0901234567", "--content", "Ma 1",
                 "--idempotency-key", "k-1"]) == 0  # fmt: skip
    made = json.loads(capsys.readouterr().out)
    assert made["client"] == "cli"
    assert main(["jobs", "list", "--client", "billing", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["data"]
    assert [job["client"] for job in listed] == ["billing"]
    assert main(["status", "--idempotency-key", "k-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == made["id"]
    assert main(["status", "--idempotency-key", "k-1", "--client", "billing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["client"] == "billing"
    assert main(["jobs", "list", "--client", "Bad Name"]) == 1
    assert "--client must be 1-40 characters" in capsys.readouterr().err


def test_the_console_shows_the_client_and_filters_by_it(named: ApiServer) -> None:
    """The job page names the client; the calls list takes a client filter."""
    with named.client(CRM) as crm:
        job = crm.post("/v1/calls", json=OTP).json()
    with named.client(BILLING) as billing:
        other = billing.post("/v1/calls", json=OTP).json()
    console, _ = login(named)
    try:
        page = console.get(f"/console/calls/{job['id']}")
        assert '<dd id="job-client">crm</dd>' in page.text
        listed = console.get("/console/calls", params={"client": "crm"}).text
        assert job["id"] in listed and other["id"] not in listed
        refused = console.get("/console/calls", params={"client": "a:b"})
        assert refused.status_code == 422 and "client: must be 1-40 characters" in refused.text
    finally:
        console.close()


def test_redis_direct_keys_and_api_keys_do_not_meet(store: JobStore, crm: httpx.Client) -> None:
    """A key used over the API and by the Python API (as `python`) names two jobs."""
    python = VoiceCallClient(load_settings(), store)
    local = python.enqueue({**OTP, "idempotency_key": "shared"})
    remote = crm.post("/v1/calls", json={**OTP, "idempotency_key": "shared"}).json()
    assert local.id != remote["id"] and not remote["replay"]
    out = io.StringIO()
    assert python.export(out, idempotency_key="shared") == 1
    assert local.id in out.getvalue() and remote["id"] not in out.getvalue()

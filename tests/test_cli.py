"""The `voicecall` dispatcher: every command documents itself, and `check-settings` checks a role."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.fixtures import steps
from voicecall.cli import commands
from voicecall.config.settings import REQUIRED_BY_ROLE


def _voicecall(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicecall.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _no_settings() -> dict[str, str]:
    """The environment without any voicecall setting."""
    prefixes = ("ESMS_", "REDIS_", "API_", "CALLBACK_", "PUBLIC_", "BROKER_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


# What `voicecall` offers; each package registers its own under the voicecall.commands group.
EVERY_COMMAND = {
    "api", "worker", "scheduler", "esms-sim", "enqueue", "status", "cancel", "import", "jobs",
    "campaign", "export", "dlq", "demo", "check-settings", "redis-failover",
}  # fmt: skip


def test_every_command_is_registered_and_listed_by_help() -> None:
    """The entry points name every command, and `voicecall --help` lists each one."""
    assert set(commands()) == EVERY_COMMAND
    result = _voicecall("--help", env=_no_settings())
    assert result.returncode == 0
    listed = {
        line.split()[0]
        for line in result.stdout.split("commands:", 1)[1].splitlines()
        if line.strip()
    }
    assert listed == EVERY_COMMAND


def test_a_command_loads_only_its_own_package() -> None:
    """`voicecall enqueue --help` imports neither the worker, the simulator nor a web server."""
    code = (
        "import sys\n"
        "from voicecall.cli import main\n"
        "try:\n    main(['enqueue', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('worker', 'simulator', 'fastapi', 'uvicorn', 'httpx')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_no_settings()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", sorted(EVERY_COMMAND))
def test_every_command_answers_help(command: str) -> None:
    """`voicecall COMMAND --help` prints its usage and exits 0, needing no settings and starting nothing."""
    result = _voicecall(command, "--help", env=_no_settings())
    assert (result.returncode, result.stderr) == (0, "")
    first = result.stdout.splitlines()[0]
    assert first.startswith("usage: ") and command in first, first


def test_check_settings_help_lists_each_role_and_what_it_requires() -> None:
    """`check-settings --help` names every role and the settings each cannot start without."""
    result = _voicecall("check-settings", "--help", env=_no_settings())
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for role, names in REQUIRED_BY_ROLE.items():
        assert role in text
        for name in names:
            assert name in text, name


def test_check_settings_checks_the_role_given() -> None:
    """Without settings the producer role passes and the api role fails with one line naming API_TOKENS."""
    producer = _voicecall("check-settings", "producer", env=_no_settings())
    assert (producer.returncode, producer.stdout) == (0, "settings for producer: ok\n")
    api = _voicecall("check-settings", "api", env=_no_settings())
    assert api.returncode == 2
    assert api.stderr.splitlines() == [
        "voicecall: invalid setting: API_TOKENS is required by `voicecall api` and is not set"
    ]


def test_check_settings_refuses_an_unknown_role() -> None:
    """An unknown role is a usage error (exit 2) that lists the roles."""
    result = _voicecall("check-settings", "bogus", env=_no_settings())
    assert result.returncode == 2
    assert "invalid choice: 'bogus'" in result.stderr
    assert all(role in result.stderr for role in REQUIRED_BY_ROLE)


# --- stored text is printed escaped; a cancel reason is checked (issue 18, finding 9) ------

STORED_HOSTILE = "\x1b[2J\x1b[1;31mPWNED\r\n\x00\x7f\x9b31m \u202eevil\u2069 ok"


def test_status_prints_a_stored_reason_with_its_control_characters_escaped(
    redis_url: str,
) -> None:
    """A job stored before the rule, its cancel note full of terminal controls: `voicecall
    status` prints each as an escape (never raw), `--json` is valid JSON with the same text."""
    from voicecall.job import lifecycle
    from voicecall.store.job_store import JobStore

    store = JobStore.from_url(redis_url)
    steps.create(store, "hostile-note", "record_call")
    assert store.apply(lifecycle.cancel("hostile-note", note=STORED_HOSTILE)).verdict == "ended"
    store.close()
    env = {**_no_settings(), "REDIS_URL": redis_url}
    plain = _voicecall("status", "hostile-note", env=env)
    assert plain.returncode == 0, plain.stderr
    raw = [c for c in plain.stdout if c not in "\n" and (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F)]
    assert raw == [] and "\u202e" not in plain.stdout and "\u2069" not in plain.stdout
    assert (
        "\\x1b[2J\\x1b[1;31mPWNED\\x0d\\x0a\\x00\\x7f\\x9b31m \\u202eevil\\u2069 ok" in plain.stdout
    )
    as_json = _voicecall("status", "hostile-note", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    assert not any(0x7F <= ord(c) <= 0x9F or c in "\u202e\u2069" for c in as_json.stdout)
    assert json.loads(as_json.stdout)["history"][-1]["note"] == STORED_HOSTILE


@pytest.mark.parametrize("reason", ["\x1b[31m", "two\nlines", "\u202eevil", "x" * 201])
def test_cancel_refuses_the_reasons_the_api_refuses(redis_url: str, reason: str) -> None:
    """`voicecall cancel --reason` takes the API's rule: exit 1 naming reason, job unchanged."""
    from voicecall.store.job_store import JobStore

    store = JobStore.from_url(redis_url)
    steps.create(store, "cli-cancel", "record_call")
    result = _voicecall(
        "cancel", "cli-cancel", "--reason", reason, env={**_no_settings(), "REDIS_URL": redis_url}
    )
    assert result.returncode == 1
    assert result.stderr.startswith("voicecall: invalid reason: must")
    job = store.get("cli-cancel")
    store.close()
    assert job is not None and job.state.value == "queued"


def test_status_prints_the_opentelemetry_trace_id_on_its_own_line(redis_url: str) -> None:
    """A job enqueued with a W3C trace context: `voicecall status` prints its trace id on an
    `otel trace` line; a job without one prints no such line."""
    import secrets

    from producer.client import VoiceCallClient
    from voicecall.config.settings import load_settings
    from voicecall.store.job_store import JobStore

    trace_id = secrets.token_hex(16)
    store = JobStore.from_url(redis_url)
    producer = VoiceCallClient(load_settings(redis_url=redis_url), store)
    call = {"kind": "record_call", "phone": "0901234567", "record_id": "r1"}
    context = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    traced = producer.enqueue(call, trace_context=context).id
    untraced = producer.enqueue(call).id
    store.close()
    env = {**_no_settings(), "REDIS_URL": redis_url}
    shown = _voicecall("status", traced, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"\notel trace {trace_id}\n" in shown.stdout
    plain = _voicecall("status", untraced, env=env)
    assert plain.returncode == 0, plain.stderr
    assert "otel trace" not in plain.stdout

"""One secret in two settings is refused (issue 18, finding 13): by `voicecall check-settings`
for the worker and the api, and at start-up, with one line naming the two settings (never the
values) and exit code 2. Equal values, ``whsec_`` + base64 of another (either alphabet, with
or without padding) and the reverse are all caught."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from voicecall.config.secret_reuse import reused_secrets
from voicecall.config.settings import load_settings
from voicecall.errors import SettingsError

CALLBACK = "callback-secret-0123456789abcdef"
WEBHOOK = "whsec_" + base64.b64encode(b"an-unrelated-webhook-key-of-32-b").decode()
TOKEN = "api-token-0123456789abcdef"
METRICS = "metrics-token-0123456789abcdef"
WHSEC_OF_CALLBACK = "whsec_" + base64.b64encode(CALLBACK.encode()).decode()
# A worker's settings with every secret its own.
WORKER = {
    "ESMS_API_KEY": "esms-api-key",
    "ESMS_SECRET_KEY": "esms-secret-key",
    "CALLBACK_SECRET": CALLBACK,
    "PUBLIC_BASE_URL": "https://voicecall.example",
    "WEBHOOK_SECRET": WEBHOOK,
    "API_TOKENS": TOKEN,
}

REUSES = {
    "webhook is the callback secret": ({"WEBHOOK_SECRET": CALLBACK}, "CALLBACK_SECRET", "WEBHOOK_SECRET"),
    "webhook is whsec_ + base64 of it": ({"WEBHOOK_SECRET": WHSEC_OF_CALLBACK}, "CALLBACK_SECRET", "WEBHOOK_SECRET"),
    "... without padding": ({"WEBHOOK_SECRET": WHSEC_OF_CALLBACK.rstrip("=")}, "CALLBACK_SECRET", "WEBHOOK_SECRET"),
    "callback is the webhook's key": ({"CALLBACK_SECRET": "an-unrelated-webhook-key-of-32-b"}, "CALLBACK_SECRET", "WEBHOOK_SECRET"),
    "callback is the webhook's base64": ({"CALLBACK_SECRET": WEBHOOK.removeprefix("whsec_")}, "CALLBACK_SECRET", "WEBHOOK_SECRET"),
    "callback is the whole webhook secret": ({"CALLBACK_SECRET": WEBHOOK}, "CALLBACK_SECRET", "WEBHOOK_SECRET"),
    "callback is URL-safe base64 of the key": (
        {"CALLBACK_SECRET": base64.urlsafe_b64encode(b"\xfb\xff" * 12).decode(),
         "WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"\xfb\xff" * 12).decode()},
        "CALLBACK_SECRET", "WEBHOOK_SECRET",
    ),
    "an API token is the callback secret": ({"API_TOKENS": f"{TOKEN},{CALLBACK}"}, "CALLBACK_SECRET", "API_TOKENS"),
    "an API token is the webhook's key": ({"API_TOKENS": "an-unrelated-webhook-key-of-32-b"}, "WEBHOOK_SECRET", "API_TOKENS"),
    "the metrics token is an API token": ({"METRICS_TOKEN": TOKEN}, "METRICS_TOKEN", "API_TOKENS"),
    "the metrics token is the callback secret": ({"METRICS_TOKEN": CALLBACK}, "CALLBACK_SECRET", "METRICS_TOKEN"),
    "an API token is the eSMS secret key": ({"ESMS_SECRET_KEY": TOKEN}, "API_TOKENS", "ESMS_SECRET_KEY"),
    "a named API token is the callback secret": ({"API_TOKENS": f"billing={CALLBACK}"}, "CALLBACK_SECRET", "API_TOKENS"),
    "the metrics token is a named API token": ({"API_TOKENS": f"crm={TOKEN}", "METRICS_TOKEN": TOKEN}, "METRICS_TOKEN", "API_TOKENS"),
}  # fmt: skip


def _env(**values: str) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ESMS_", "REDIS_", "API_", "CALLBACK_", "PUBLIC_", "WEBHOOK_", "METRICS_"))
    }  # fmt: skip
    return {**clean, **values}


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicecall.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("case", list(REUSES))
def test_a_secret_in_two_settings_is_refused_naming_both(case: str) -> None:
    """load_settings refuses the reuse with one line naming both settings, no value."""
    change, first, second = REUSES[case]
    settings = {k.lower(): v for k, v in {**WORKER, **change}.items()}
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, **settings)
    message = str(refused.value)
    assert message.startswith(f"{first} and {second} hold the same secret"), message
    assert "\n" not in message
    assert not any(value in message for value in {**WORKER, **change}.values())


def test_secrets_of_their_own_pass() -> None:
    """Distinct secrets, and the eSMS keys even if alike each other, are accepted."""
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in WORKER.items()})
    assert settings.require("worker") is settings
    assert reused_secrets([("ESMS_API_KEY", ["same-value-123"]), ("ESMS_SECRET_KEY", ["same-value-123"])]) is None  # fmt: skip
    assert reused_secrets([("API_TOKENS", [TOKEN, TOKEN])]) is None  # one setting, not two


@pytest.mark.parametrize("role", ["worker", "api"])
@pytest.mark.parametrize(
    "case", ["webhook is whsec_ + base64 of it", "the metrics token is an API token"]
)
def test_check_settings_refuses_reuse_with_exit_2(role: str, case: str) -> None:
    """`voicecall check-settings worker|api`: exit 2, one line naming both settings."""
    change, first, second = REUSES[case]
    result = _run("check-settings", role, env=_env(**{**WORKER, **change}))
    assert result.returncode == 2, result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith(f"voicecall: invalid setting: {first} and {second} hold the same")


@pytest.mark.parametrize("command", [["api", "--port", "1"], ["worker"]])
def test_start_up_refuses_reuse_with_exit_2(command: list[str]) -> None:
    """`voicecall api` and `voicecall worker` stop before starting anything: exit 2, one
    line naming WEBHOOK_SECRET and CALLBACK_SECRET."""
    result = _run(*command, env=_env(**{**WORKER, "WEBHOOK_SECRET": WHSEC_OF_CALLBACK}))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "voicecall: invalid setting: CALLBACK_SECRET and WEBHOOK_SECRET hold the same secret "
        "(equal, or one is whsec_ or base64 of the other): give each its own random value"
    ]

"""The `voicecall` dispatcher: every command documents itself, and `check-settings` checks a role."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from voicecall.cli import COMMANDS
from voicecall.settings import REQUIRED_BY_ROLE


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


@pytest.mark.parametrize("command", list(COMMANDS))
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

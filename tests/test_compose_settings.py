"""deploy/docker-compose.yml starts as written: each voicecall service's environment, with the
file's own defaults, passes `voicecall check-settings` for the role the service runs.

The environment is built as Docker Compose builds it: YAML anchors and merge keys resolved
(PyYAML's safe loader does both), ``${VAR:-default}`` interpolated with no variable set, on top
of the image's own ``ENV``. The check is the real command, in a subprocess given exactly that
environment, in an empty directory (so no ``.env`` file is read).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.deploy import COMPOSE, image_environment, interpolate, service_environment

# Roles whose settings `check-settings` knows; the simulator reads none of voicecall's settings.
ROLES_WITH_SETTINGS = {"api", "worker", "scheduler"}


def voicecall_services() -> dict[str, dict[str, Any]]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {name: s for name, s in services.items() if s.get("image") == "voicecall:local"}


def test_interpolation_follows_compose() -> None:
    """The interpolation used below gives Compose's results for each form the syntax allows."""
    variables = {"SET": "value", "EMPTY": ""}
    cases = {
        "${SET:-d}": "value", "${EMPTY:-d}": "d", "${UNSET:-d}": "d",
        "${SET-d}": "value", "${EMPTY-d}": "", "${UNSET-d}": "d",
        "${SET}": "value", "${UNSET}": "", "$SET/x": "value/x", "$$SET": "$SET",
        "a ${UNSET:-b c} d": "a b c d",
    }  # fmt: skip
    assert {text: interpolate(text, variables) for text in cases} == cases
    with pytest.raises(ValueError, match="UNSET"):
        interpolate("${UNSET:?set it}", variables)


def test_the_voicecall_services_are_the_ones_checked() -> None:
    """api, worker and scheduler run roles with settings; esms-sim needs none, and has no voicecall environment."""
    roles = {name: service["command"][0] for name, service in voicecall_services().items()}
    assert roles == {
        "api": "api",
        "worker": "worker",
        "scheduler": "scheduler",
        "esms-sim": "esms-sim",
    }
    assert "environment" not in voicecall_services()["esms-sim"]


@pytest.mark.parametrize("name", sorted(ROLES_WITH_SETTINGS))
def test_compose_defaults_pass_check_settings(name: str, tmp_path: Path) -> None:
    """`voicecall check-settings ROLE` accepts the service's environment exactly as Compose gives it with no variable set."""
    service = voicecall_services()[name]
    role = service["command"][0]
    environment = {**image_environment(), **service_environment(service, variables={})}
    assert not [v for v in environment.values() if "$" in v], environment
    result = subprocess.run(
        [str(Path(sys.executable).parent / "voicecall"), "check-settings", role],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"settings for {role}: ok\n",
        "",
    )


@pytest.mark.parametrize(
    ("variables", "secure", "forwarded"),
    [
        ({}, False, "127.0.0.1,::1"),
        ({"PUBLIC_BASE_URL": "https://calls.example"}, True, "127.0.0.1,::1"),
        ({"PUBLIC_BASE_URL": "https://calls.example", "CONSOLE_COOKIE_SECURE": "false"}, False,
         "127.0.0.1,::1"),
        ({"FORWARDED_ALLOW_IPS": "172.18.0.0/16"}, False, "172.18.0.0/16"),
    ],
)  # fmt: skip
def test_compose_api_cookie_and_proxy_settings_follow_the_variables(
    variables: dict[str, str], secure: bool, forwarded: str, tmp_path: Path
) -> None:
    """The api's console cookie is Secure exactly when deploy/.env makes PUBLIC_BASE_URL
    https:// (CONSOLE_COOKIE_SECURE overrides), FORWARDED_ALLOW_IPS comes through, and
    `voicecall check-settings api` accepts each."""
    from voicecall.config.settings import load_settings

    service = voicecall_services()["api"]
    environment = {**image_environment(), **service_environment(service, variables)}
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in environment.items()})
    assert (settings.console_cookie_is_secure, settings.forwarded_allow_ips) == (secure, forwarded)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "voicecall"), "check-settings", "api"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")

"""Packaging: the lock files, the extras, and what each command needs installed.

The core (``pip install voicecall``) serves a system that only enqueues; ``[api]``, ``[worker]``
and ``[sim]`` add what the servers need (Dramatiq only with the worker), ``[client]`` what the
HTTP API's client needs. ``make lock`` (scripts/lock.sh) writes requirements/dev.txt (CI and
.venv), image.txt (the Dockerfile), core.txt and client.txt.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.fixtures.api import ApiServer

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ("dev.txt", "image.txt", "core.txt", "client.txt")
# tenacity is core: the store rides through a Redis failover with it (loaded with sentinels only).
SERVER_AND_CLIENT = {"fastapi", "starlette", "uvicorn", "httpx", "httpcore"}
SERVERS = {"fastapi", "starlette", "uvicorn", "dramatiq", "aiohttp"}
UV = str(Path(sys.executable).parent / "uv")  # a dev dependency: the venvs here are uv's
DEV_TOOLS = {"pytest", "ruff", "mypy", "hypothesis", "schemathesis", "matplotlib", "uv"}
# Each command that needs an extra, and the one line it answers without it.
NEEDS_EXTRAS = {
    "api": "voicecall[api]",
    "worker": "voicecall[worker]",
    "scheduler": "voicecall[worker]",
    "esms-sim": "voicecall[sim]",
    "demo": "voicecall[api,worker,sim]",
}


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(lock: Path) -> dict[str, Version]:
    """name → pinned version of a lock file (the first pin where markers fork a package)."""
    pins: dict[str, Version] = {}
    for match in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", lock.read_text(), re.M):
        pins.setdefault(match[1].lower().replace("_", "-"), Version(match[2]))
    return pins


def _direct_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    listed = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        listed += extra
    return [Requirement(text) for text in listed if not text.startswith("voicecall[")]


def test_the_locks_are_what_make_lock_generates(tmp_path: Path) -> None:
    """Regenerating the lock files from pyproject.toml (keeping their pins) changes nothing: they are current."""
    for name in LOCKS:
        shutil.copy(ROOT / "requirements" / name, tmp_path / name)
    result = subprocess.run(
        [str(ROOT / "scripts" / "lock.sh"), str(tmp_path)],
        env={**os.environ, "UV": UV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for name in LOCKS:
        regenerated = (tmp_path / name).read_text().replace(str(tmp_path), "requirements")
        assert regenerated == (ROOT / "requirements" / name).read_text(), f"run `make lock`: {name}"


def test_each_lock_holds_only_what_it_serves() -> None:
    """core.txt has no web server, HTTP client or Dramatiq, client.txt httpx and no server, image.txt no dev tool, none RabbitMQ's pika; shared packages have one version."""
    dev, image, core, client = (_pins(ROOT / "requirements" / name) for name in LOCKS)
    assert not (SERVER_AND_CLIENT | {"dramatiq"}) & set(core)
    assert set(client) >= set(core) | {"httpx", "standardwebhooks"}
    assert not (SERVERS | DEV_TOOLS) & set(client)
    assert set(image) >= SERVER_AND_CLIENT | {"dramatiq"}
    assert not DEV_TOOLS & set(image)
    assert set(dev) >= DEV_TOOLS
    assert "pika" not in dev
    for lock in (image, core, client):
        assert lock == {name: dev[name] for name in lock}
    for lock in LOCKS:
        for block in (ROOT / "requirements" / lock).read_text().split("\n\n"):
            assert "==" not in block or "--hash=sha256:" in block, f"{lock}: a pin without hashes"


def test_zero_major_dependencies_are_capped_below_their_next_minor() -> None:
    """Every direct dependency locked at 0.x (FastAPI, uvicorn, httpx, ...) excludes the next 0.x minor release, which may break."""
    dev = _pins(ROOT / "requirements" / "dev.txt")
    capped = []
    for requirement in _direct_requirements():
        locked = dev.get(requirement.name.lower())
        if locked is None or locked.major != 0:
            continue
        assert requirement.specifier.contains(locked), requirement
        assert not requirement.specifier.contains(f"0.{locked.minor + 1}.0"), requirement
        capped.append(requirement.name)
    assert {"fastapi", "uvicorn", "httpx", "prometheus-client"} <= set(capped)


def test_license_is_an_spdx_expression() -> None:
    """project.license is an SPDX string (PEP 639), with a setuptools that understands it."""
    project, build = _pyproject()["project"], _pyproject()["build-system"]
    assert isinstance(project, dict) and isinstance(build, dict)
    assert project["license"] == "MIT"
    assert "setuptools>=77" in build["requires"]


def test_producer_side_imports_no_web_server_or_http_client() -> None:
    """Importing the producer library and the operator CLIs loads neither FastAPI, uvicorn, httpx nor tenacity."""
    code = (
        "import sys, voicecall, producer, producer.cli, voicecall.cli, worker.dlq, producer.exporter; "
        f"print(sorted(m for m in {sorted(SERVER_AND_CLIENT)!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only requirements/core.txt and voicecall (no extra) installed
    (uv and its cache: pip took 24 s of the suite for the same install)."""
    root = tmp_path_factory.mktemp("core")
    venv = root / "venv"
    _uv_venv(venv, "core.txt", _copy_source(root / "src"))
    return venv


def _uv_venv(venv: Path, lock: str, source: Path) -> None:
    """A fresh virtualenv at ``venv`` with requirements/``lock`` and voicecall from
    ``source`` (no deps), made by uv with its cache."""
    python = str(venv / "bin" / "python")
    for args in (
        ["venv", "--quiet", "--python", sys.executable, str(venv)],
        ["pip", "install", "--quiet", "--python", python, "--require-hashes",
         "-r", str(ROOT / "requirements" / lock)],
        ["pip", "install", "--quiet", "--python", python, "--no-deps", str(source)],
    ):  # fmt: skip
        result = subprocess.run([UV, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]


def _core_voicecall(
    venv: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "voicecall"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=venv,
    )


def _env(**values: str) -> dict[str, str]:
    prefixes = ("ESMS_", "REDIS_", "API_", "CALLBACK_", "PUBLIC_", "BROKER_", "VIRTUAL_ENV")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **values}


@pytest.mark.slow
def test_core_install_enqueues_and_refuses_server_commands_in_one_line(
    core_venv: Path, redis_url: str
) -> None:
    """With only the core installed, enqueue/status/dlq work against Redis; each server command exits 2 with one line naming its extra."""
    python = str(core_venv / "bin" / "python")
    listed = subprocess.run(
        [UV, "pip", "list", "--python", python, "--format", "json"], capture_output=True, text=True
    )
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "redis" in installed and not (SERVER_AND_CLIENT | {"pika"}) & installed
    license_ = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.metadata('voicecall')['License-Expression'])"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert license_.stdout == "MIT\n"

    env = _env(REDIS_URL=redis_url)
    enqueued = _core_voicecall(
        core_venv, "enqueue", "otp", "--phone", "0901234567", "--content", "Ma 1", env=env
    )
    assert enqueued.returncode == 0, enqueued.stderr
    job_id = json.loads(enqueued.stdout)["id"]
    status = _core_voicecall(core_venv, "status", job_id, "--json", env=env)
    assert json.loads(status.stdout)["state"] == "queued"
    dead_letters = _core_voicecall(core_venv, "dlq", "list", env=env)
    assert dead_letters.returncode == 0, dead_letters.stderr
    assert _core_voicecall(core_venv, "check-settings", "producer", env=env).returncode == 0
    listed = _core_voicecall(core_venv, "--help", env=env)  # every package's entry points
    assert listed.returncode == 0, listed.stderr
    assert all(f"  {command} " in listed.stdout for command in (*NEEDS_EXTRAS, "enqueue", "dlq"))

    for command, extra in NEEDS_EXTRAS.items():
        for args in ([command], [command, "--help"]):
            result = _core_voicecall(core_venv, *args, env=env)
            assert result.returncode == 2, (args, result.stderr)
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith(
                f"voicecall {command}: needs the optional dependencies of {extra} ("
            )
            assert line.endswith(f"pip install '{extra}'")


def test_a_client_only_install_calls_the_api_without_any_server_side_package(
    tmp_path: Path, api_server: ApiServer
) -> None:
    """A fresh venv with only requirements/client.txt and voicecall (uv, its cache): no FastAPI, Starlette, uvicorn or Dramatiq installed; `import voicecall; voicecall.Client` loads no Redis client, FastAPI or Dramatiq module; both clients call the real API."""
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    _uv_venv(venv, "client.txt", _copy_source(tmp_path / "src"))
    listed = subprocess.run([UV, "pip", "list", "--python", python], capture_output=True, text=True)
    installed = {line.split()[0].lower() for line in listed.stdout.splitlines()[2:]}
    assert "httpx" in installed and not SERVERS & installed

    code = """
import asyncio, json, sys
import voicecall
client_class = voicecall.Client
from voicecall.client import verify_webhook
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"redis", "fastapi", "starlette", "dramatiq"})
url, token = sys.argv[1], sys.argv[2]
with voicecall.Client(url, token) as client:
    job = client.create_otp_call("0901234567", "Ma 1")
async def read() -> str:
    async with voicecall.AsyncClient(url, token) as client:
        return (await client.get_call(job.id)).state.value
print(json.dumps({"loaded": loaded, "state": asyncio.run(read())}))
"""
    result = subprocess.run(
        [python, "-c", code, api_server.base_url, api_server.token],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"loaded": [], "state": "queued"}


def _copy_source(source: Path) -> Path:
    """The packages and metadata of this checkout, as pip would take them from a clone."""
    for name in ("voicecall", "producer", "worker", "simulator"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    return source

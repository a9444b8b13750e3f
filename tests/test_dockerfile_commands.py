"""Every command the Dockerfile runs, run here the way the image runs it (no Docker engine here).

The build stage's RUN is run with the image's paths moved under a temporary directory
(``/opt/venv`` and ``/src``), on a copy of exactly what the COPY lines copy; the ENTRYPOINT,
CMD and HEALTHCHECK then run from that virtualenv, for every role the image serves.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.fixtures.deploy import dockerfile_stages
from tests.fixtures.redis import free_port
from tests.fixtures.sim import EsmsSim
from tests.fixtures.stack import API_TOKEN, CALLBACK_SECRET, WEBHOOK_SECRET, wait_until

ROOT = Path(__file__).resolve().parents[1]
HEALTHCHECK_SCRIPT = ROOT / "deploy" / "docker" / "healthcheck.py"

# The commands this file exercises, verbatim from the Dockerfile. A new or changed RUN, CMD,
# ENTRYPOINT or HEALTHCHECK fails test_every_dockerfile_command_is_exercised until a test
# here runs it.
EXERCISED = {
    "RUN": [
        "python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --no-compile"
        " --require-hashes -r /src/requirements/image.txt",
        "/opt/venv/bin/pip install --no-cache-dir --no-compile --no-deps /src",
    ],
    "ENTRYPOINT": [["voicecall"]],
    "CMD": [["api", "--host", "0.0.0.0", "--port", "8000"]],
    "HEALTHCHECK": [["python", "/usr/local/bin/voicecall-healthcheck"]],
}


def dockerfile_commands() -> dict[str, list[object]]:
    commands: dict[str, list[object]] = {}
    for stage in dockerfile_stages():
        for keyword, arguments in stage.instructions:
            if keyword == "RUN":
                commands.setdefault(keyword, []).append(arguments)
            elif keyword in ("CMD", "ENTRYPOINT"):
                commands.setdefault(keyword, []).append(json.loads(arguments))
            elif keyword == "HEALTHCHECK":
                _options, _, command = arguments.partition("CMD ")
                commands.setdefault(keyword, []).append(json.loads(command))
    return commands


@dataclass
class Image:
    """The image's filesystem paths, moved under a temporary root."""

    root: Path
    env: dict[str, str]  # the runtime stage's environment (PATH with the virtualenv first)

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "venv"

    @property
    def healthcheck(self) -> Path:
        return self.root / "usr" / "local" / "bin" / "voicecall-healthcheck"

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as the image runs it: ``python`` and ``voicecall`` from the virtualenv, paths moved."""
        moved = [arg.replace("/usr/local/bin/", f"{self.root}/usr/local/bin/") for arg in argv]
        if moved and moved[0] in ("python", "voicecall"):
            moved[0] = str(self.venv / "bin" / moved[0])
        return moved


def _move_paths(command: str, root: Path) -> str:
    return command.replace("/opt/venv", str(root / "opt" / "venv")).replace(
        " /src", f" {root / 'src'}"
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The build stage run for real: COPY sources copied, the RUN executed, the runtime COPYs done."""
    root = tmp_path_factory.mktemp("image")
    build, runtime = dockerfile_stages()
    for keyword, arguments in build.instructions:
        if keyword == "COPY":
            source, dest = arguments.split()
            target = root / "src" / dest.removeprefix("./")  # WORKDIR /src
            if dest.endswith("/") and not (ROOT / source).is_dir():
                target = target / Path(source).name
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)
    python_dir = root / "bin"
    python_dir.mkdir()
    (python_dir / "python").symlink_to(sys.executable)  # the base image's `python`
    build_env = {**os.environ, **build.env, "PATH": f"{python_dir}:{os.environ['PATH']}"}
    for keyword, arguments in build.instructions:
        if keyword == "RUN":
            result = subprocess.run(
                ["sh", "-c", _move_paths(arguments, root)],
                env=build_env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for keyword, arguments in runtime.instructions:
        if keyword == "COPY" and not arguments.startswith("--from"):
            source, dest = arguments.split()
            (root / dest.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, root / dest.lstrip("/"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("ESMS_", "REDIS_", "API_", "PROMETHEUS_", "dramatiq_", "VIRTUAL_ENV")
        )
    }
    env.update(runtime.env)
    env["PATH"] = f"{root / 'opt' / 'venv' / 'bin'}:{os.environ['PATH']}"
    return Image(root, env)


def _settings(redis_url: str, sim: EsmsSim | None = None) -> dict[str, str]:
    settings = {
        "REDIS_URL": redis_url,
        "API_TOKENS": API_TOKEN,
        "CALLBACK_SECRET": CALLBACK_SECRET,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ESMS_API_KEY": "k",
        "ESMS_SECRET_KEY": "s",
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "QUIET_HOURS": "off",
    }
    if sim is not None:
        settings.update(
            ESMS_API_KEY=sim.api_key,
            ESMS_SECRET_KEY=sim.secret_key,
            ESMS_REST_URL=sim.rest_url,
            ESMS_VOICE_URL=sim.voice_url,
        )
    return settings


@pytest.fixture()
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _start(
    image: Image,
    argv: Sequence[str],
    env: dict[str, str],
    started: list[subprocess.Popen[bytes]],
    log: Path,
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            image.command(argv),
            env={**image.env, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
        )
    started.append(process)
    return process


def _healthcheck(
    image: Image, pid: int, *role: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """The image's HEALTHCHECK command, pointed at process ``pid`` instead of PID 1."""
    (command,) = EXERCISED["HEALTHCHECK"]
    result = subprocess.run(
        [*image.command(command), *role],
        env={**image.env, **(env or {}), "VOICECALL_HEALTHCHECK_PID": str(pid)},
        capture_output=True,
        text=True,
        timeout=20,
    )
    return result.returncode, result.stdout.strip()


def test_every_dockerfile_command_is_exercised() -> None:
    """The Dockerfile's RUN, ENTRYPOINT, CMD and HEALTHCHECK commands are exactly the ones this file runs."""
    assert dockerfile_commands() == EXERCISED


def test_build_installs_voicecall_into_the_virtualenv(image: Image) -> None:
    """The RUN installs voicecall from /src into /opt/venv: the ENTRYPOINT answers --help and --version, imports come from the venv."""
    (entrypoint,) = EXERCISED["ENTRYPOINT"]
    help_ = subprocess.run(
        image.command([*entrypoint, "--help"]), env=image.env, capture_output=True, text=True
    )
    assert help_.returncode == 0
    for command in ("api", "worker", "scheduler", "esms-sim", "check-settings"):
        assert f"  {command} " in help_.stdout
    version = subprocess.run(
        image.command([*entrypoint, "--version"]), env=image.env, capture_output=True, text=True
    )
    assert re.fullmatch(r"voicecall \d+\.\d+\.\d+\S*\n", version.stdout)
    where = subprocess.run(
        image.command(
            ["python", "-c", "import voicecall, worker, simulator; print(voicecall.__file__)"]
        ),
        env=image.env,
        capture_output=True,
        text=True,
        cwd=image.root,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(image.venv)), where.stdout


def test_check_settings_validates_each_role(image: Image, redis_url: str) -> None:
    """`voicecall check-settings ROLE` from the image: 0 with the role's settings, 2 with one line naming a missing one."""
    settings = _settings(redis_url)
    for role in ("api", "worker", "scheduler"):
        result = subprocess.run(
            image.command(["voicecall", "check-settings", role]),
            env={**image.env, **settings},
            capture_output=True,
            text=True,
        )
        assert (result.returncode, result.stdout.strip()) == (0, f"settings for {role}: ok")
    missing = {k: v for k, v in settings.items() if k != "API_TOKENS"}
    result = subprocess.run(
        image.command(["voicecall", "check-settings", "api"]),
        env={**image.env, **missing},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "API_TOKENS" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_default_command_serves_the_api_and_the_healthcheck_follows_it(
    image: Image, redis_url: str, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """ENTRYPOINT + CMD serve the API (/healthz, /readyz, /metrics); the HEALTHCHECK finds the role itself and fails when it hangs."""
    (entrypoint,) = EXERCISED["ENTRYPOINT"]
    (cmd,) = EXERCISED["CMD"]
    port = free_port()
    argv = [
        *entrypoint,
        *["--port" if a == "--port" else (str(port) if a == "8000" else a) for a in cmd],
    ]
    api = _start(image, argv, _settings(redis_url), processes, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 30, what="API up")
    assert httpx.get(f"{base}/readyz").status_code == 200
    assert "voicecall_build_info" in httpx.get(f"{base}/metrics").text
    assert _healthcheck(image, api.pid) == (0, "healthy: api")
    os.killpg(api.pid, signal.SIGSTOP)  # a hung API: the check times out and fails
    try:
        code, output = _healthcheck(image, api.pid)
    finally:
        os.killpg(api.pid, signal.SIGCONT)
    assert code == 1 and output.startswith("unhealthy: api: timed out"), output


def test_healthcheck_covers_worker_scheduler_and_simulator(
    image: Image,
    redis_url: str,
    esms_sim: EsmsSim,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """The image's commands for worker, scheduler and simulator start, and the HEALTHCHECK (role found or given) passes for each."""
    settings = _settings(redis_url, esms_sim)
    metrics_port, sim_port = free_port(), free_port()
    worker = _start(
        image,
        ["voicecall", "worker", "--processes", "1", "--threads", "2"],
        {**settings, "METRICS_PORT": str(metrics_port), "dramatiq_prom_db": str(tmp_path / "prom")},
        processes,
        tmp_path / "worker.log",
    )
    scheduler = _start(
        image, ["voicecall", "scheduler"], settings, processes, tmp_path / "scheduler.log"
    )
    sim = _start(
        image,
        ["voicecall", "esms-sim", "--host", "0.0.0.0", "--port", str(sim_port)],
        {},
        processes,
        tmp_path / "sim.log",
    )
    wait_until(
        lambda: _healthcheck(image, worker.pid)[0] == 0, 30, interval=0.5, what="worker healthy"
    )
    assert _healthcheck(image, worker.pid) == (0, "healthy: worker")
    assert _healthcheck(image, worker.pid, "worker") == (0, "healthy: worker")
    wait_until(
        lambda: _healthcheck(image, sim.pid)[0] == 0, 30, interval=0.5, what="simulator healthy"
    )
    assert _healthcheck(image, sim.pid, "esms-sim") == (0, "healthy: esms-sim")
    assert _healthcheck(image, scheduler.pid, env=settings) == (0, "healthy: scheduler")
    assert scheduler.poll() is None
    dead_redis = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    code, output = _healthcheck(image, scheduler.pid, "scheduler", env=dead_redis)
    assert code == 1 and output.startswith("unhealthy: scheduler: redis")


def _healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("voicecall_healthcheck", HEALTHCHECK_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "role"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/voicecall", "api", "--port", "8000"], "api"),
        (["/opt/venv/bin/python", "-m", "dramatiq", "worker.main", "--processes", "2"], "worker"),
        (["/opt/venv/bin/python", "/opt/venv/bin/voicecall", "scheduler"], "scheduler"),
        (["python", "-m", "voicecall.cli", "esms-sim", "--port", "8081"], "esms-sim"),
        (["python", "-m", "simulator", "--port", "8081"], "esms-sim"),
        (["/opt/venv/bin/python", "/opt/venv/bin/voicecall", "enqueue", "otp"], None),
        (["/bin/sh"], None),
    ],
)
def test_healthcheck_tells_the_role_from_the_command_line(
    argv: list[str], role: str | None
) -> None:
    """The healthcheck reads the role from the main process's command line, and refuses what it does not know."""
    assert _healthcheck_module().role_of(argv) == role

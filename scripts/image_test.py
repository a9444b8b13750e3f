#!/usr/bin/env python3
"""``make image-test``: build the Dockerfile, run the image, drive one call of each kind.

Steps, each printed as it runs; a failure names its step and exits 1:

1. engine       a Docker engine when ``docker info`` answers; else buildah and podman
                (installed with apt-get when missing, with runc and debootstrap).
2. base image   podman only: ``localhost/pybase:bookworm``, a debootstrap of Debian bookworm
                with python3 and python3-venv from the apt mirror this machine uses, imported
                once and reused on later runs (podman's image store persists).
3. build        the Dockerfile, unchanged. buildah gets ``--format docker`` (or the HEALTHCHECK
                is dropped) and, for pip, this machine's CA bundle and pip settings as read-only
                ``-v`` mounts: they are used at build time and never written into the image.
4. image        the image declares the HEALTHCHECK and user 10001.
5. redis        the host's redis-server on a free port (the containers use the host network).
6. containers   esms-sim, api and worker from the image, each on free ports.
7. healthy      the image's HEALTHCHECK passes in each container (``podman healthcheck run``;
                with Docker the engine's own health status).
8. uid          every process in each container runs as uid 10001.
9. calls        one voice_otp, record_call and template_call through the API, each to
                ``completed``.

Every container it started (and the Redis) is removed at the end, on success, failure,
Ctrl-C or SIGTERM; a container left behind fails the run. With ``--network host`` no pod or
network is created. Exit 0 passed, 1 failed, 130 interrupted. Standard library only. (The
Docker branch follows Docker's CLI; the machine this was written on has no Docker engine.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "localhost/voicecall:image-test"
# buildah keeps the build stage's layers as a cache; tagged, they are replaced like the image
# on the next build instead of piling up untagged.
BUILD_STAGE = "localhost/voicecall:image-test-build-stage"
BASE_IMAGE = "localhost/pybase:bookworm"
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PODMAN_TOOLS = ("buildah", "podman", "runc", "debootstrap")
# Podman on this kind of host: runc (crun fails on mixed cgroups), explicit ulimits, the host
# network (bridge networking leaves iptables chains behind).
PODMAN_RUN = ["--runtime", "runc", "--network", "host"]
PODMAN_RUN += ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
UID = "10001"
TOKEN = "image-test-token-0123456789"
TIME_SCALE = "0.05"  # the simulator's clock 20x faster: a call lasts seconds
HEALTHY_TIMEOUT_S = 90
CALLS_TIMEOUT_S = 150
FINAL = {"completed", "failed", "rejected", "expired", "cancelled"}
CALLS: dict[str, dict[str, Any]] = {
    "voice_otp": {"kind": "voice_otp", "phone": "0901234567", "content": "Ma xac thuc 482913"},
    "record_call": {"kind": "record_call", "phone": "0912345678", "record_id": "rec-welcome"},
    "template_call": {
        "kind": "template_call",
        "phone": "0987654324",
        "template_id": "tpl-due",
        "variables": ["Trung", "20000"],
    },
}
# Every process in a container, as {pid: [real, effective, saved, filesystem uid]}.
UIDS_SCRIPT = """
import json, os
uids = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        status = open(f"/proc/{pid}/status").read().splitlines()
    except OSError:
        continue
    uids[pid] = next(line.split()[1:] for line in status if line.startswith("Uid:"))
print(json.dumps(uids))
"""


class StepFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


class Failure(Exception):
    """A check failed; the step it happened in is added by :func:`step`."""


def say(text: str) -> None:
    print(f"image-test: {text}", flush=True)


@contextlib.contextmanager
def step(name: str, timings: dict[str, float]) -> Iterator[None]:
    say(f"[{name}] ...")
    started = time.monotonic()
    try:
        yield
    except (Failure, subprocess.SubprocessError, OSError) as exc:
        raise StepFailed(name, str(exc) or type(exc).__name__) from exc
    timings[name] = time.monotonic() - started
    say(f"[{name}] ok ({timings[name]:.1f} s)")


def run(
    command: Sequence[str], *, check: bool = True, timeout: float = 120, stdin: Any = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command``; with ``check`` a non-zero exit is a :class:`Failure` with its stderr."""
    result = subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, stdin=stdin
    )
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise Failure(f"`{shlex.join(command)}` exited {result.returncode}: {' | '.join(output)}")
    return result


def stream(command: Sequence[str], log: Path, shown: Sequence[str], timeout: float) -> None:
    """Run ``command`` in the repository with its output in ``log``, echoing the lines that
    contain one of ``shown``."""
    say(f"  $ {shlex.join(command)}")
    with log.open("w") as out:
        process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        try:
            for line in process.stdout:
                out.write(line)
                if any(marker in line for marker in shown):
                    print(f"    {line.rstrip()[:150]}", flush=True)
                if time.monotonic() > deadline:
                    process.kill()
        except BaseException:  # interrupted: the build must not run on unattended
            process.kill()
            raise
    if process.wait() != 0:
        tail = log.read_text().strip().splitlines()[-8:]
        raise Failure(
            f"exit {process.returncode} (full log {log}):\n      " + "\n      ".join(tail)
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sudo() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo"]


def which(tool: str) -> str | None:
    return shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


# --- engines ----------------------------------------------------------------------------


class Engine:
    """What the test needs from a container engine."""

    name = ""
    cli: tuple[str, ...] = ()
    rm_args: tuple[str, ...] = ()

    def build(self, work: Path) -> None:
        raise NotImplementedError

    def run_args(self) -> list[str]:
        return ["--network", "host"]

    def healthy(self, container: str) -> tuple[bool, str]:
        raise NotImplementedError

    def image_config(self) -> dict[str, Any]:
        """The image's config; Healthcheck is in it with Docker, beside it with podman."""
        (inspected,) = json.loads(run([*self.cli, "image", "inspect", IMAGE]).stdout)
        config: dict[str, Any] = inspected.get("Config") or {}
        return {"Healthcheck": inspected.get("Healthcheck"), **config}

    def tags(self) -> tuple[str, ...]:
        """The images a build makes (removed when the next build replaces them)."""
        return (IMAGE,)

    def image_ids(self) -> dict[str, str]:
        ids = {}
        for tag in self.tags():
            inspect = [*self.cli, "image", "inspect", "--format", "{{.Id}}", tag]
            result = run(inspect, check=False)
            if result.returncode == 0 and result.stdout.strip():
                ids[tag] = result.stdout.strip()
        return ids


class Docker(Engine):
    name = "docker"
    cli = ("docker",)

    def build(self, work: Path) -> None:
        command = ["docker", "build", "--network", "host", "-t", IMAGE, "-f", "Dockerfile", "."]
        stream(command, work / "build.log", ("Step ", "DONE", "Successfully"), 1800)

    def run_args(self) -> list[str]:
        return [*super().run_args(), "--health-interval", "2s"]

    def healthy(self, container: str) -> tuple[bool, str]:
        state = run(["docker", "inspect", "--format", "{{json .State.Health}}", container])
        health = json.loads(state.stdout) or {}
        log = health.get("Log") or [{}]
        return health.get("Status") == "healthy", str(log[-1].get("Output", "")).strip()


class Podman(Engine):
    name = "podman (buildah build)"
    rm_args = ("-t", "5")  # seconds of SIGTERM grace before the kill

    def __init__(self) -> None:
        self.cli = (*sudo(), "podman")

    def run_args(self) -> list[str]:
        return PODMAN_RUN

    def build(self, work: Path) -> None:
        mounts = pip_mounts(work)
        command = [*sudo(), "buildah", "bud", "--isolation", "chroot", "--network", "host"]
        # --format docker keeps the HEALTHCHECK; --layers lets a warm run reuse every unchanged
        # step (the locked dependencies above all); --force-rm leaves no container on failure.
        command += ["--format", "docker", "--layers", "--force-rm"]
        command += ["--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}"]
        for host_path, container_path in mounts:
            command += ["-v", f"{host_path}:{container_path}:ro"]
        command += ["-f", "Dockerfile"]
        stream([*command, "-t", IMAGE, "."], work / "build.log", ("STEP ", "COMMIT"), 1800)
        stage = [*command, "--target", "build", "-t", BUILD_STAGE, "."]  # all from the cache
        stream(stage, work / "build-stage.log", ("COMMIT",), 600)

    def tags(self) -> tuple[str, ...]:
        return (IMAGE, BUILD_STAGE)

    def healthy(self, container: str) -> tuple[bool, str]:
        result = run([*self.cli, "healthcheck", "run", container], check=False, timeout=30)
        return result.returncode == 0, (result.stdout + result.stderr).strip()


def choose_engine() -> Engine:
    if which("docker") and run(["docker", "info"], check=False, timeout=30).returncode == 0:
        return Docker()
    missing = [tool for tool in PODMAN_TOOLS if which(tool) is None]
    if missing:
        if which("apt-get") is None:
            raise Failure(f"no Docker engine, and {', '.join(missing)} missing (no apt-get)")
        say(f"  installing {' '.join(missing)} (apt-get)")
        run([*sudo(), "apt-get", "update", "-qq"], timeout=600)
        env_apt = ["env", "DEBIAN_FRONTEND=noninteractive"]
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
        run([*sudo(), *env_apt, *install], timeout=1200)
    return Podman()


def apt_mirror() -> str:
    """The Debian mirror apt uses here (``apt-get indextargets``), for debootstrap."""
    result = run(["apt-get", "indextargets"], check=False)
    records = [
        dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        for block in result.stdout.split("\n\n")
    ]
    for record in records:
        if record.get("Codename") == "bookworm" and record.get("Repo-URI"):
            return record["Repo-URI"]
    for record in records:
        uri = record.get("Repo-URI", "")
        if "debian" in uri and "security" not in uri:
            return uri
    return "http://deb.debian.org/debian/"


def ensure_base_image(engine: Engine, work: Path) -> str:
    """``localhost/pybase:bookworm``, made with debootstrap unless it exists already."""
    if run([*engine.cli, "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return "reused"
    rootfs = work / "rootfs"
    mirror = apt_mirror()
    command = [*sudo(), "debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}"]
    stream(
        [*command, "bookworm", str(rootfs), mirror], work / "debootstrap.log", ("I: Base",), 1800
    )
    tar = subprocess.Popen([*sudo(), "tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    try:
        run([*engine.cli, "import", "-", BASE_IMAGE], stdin=tar.stdout, timeout=600)
    finally:
        tar.wait()
    run([*sudo(), "rm", "-rf", str(rootfs)], timeout=300)
    return f"built from {mirror}"


def pip_mounts(work: Path) -> list[tuple[str, str]]:
    """(host, container) read-only mounts giving pip in the build this machine's settings.

    A ``pip.conf`` written from ``pip config list`` (files and PIP_* variables) goes to
    /etc/pip.conf; each local path it names (certificate, constraints, find-links) is mounted
    at the same path, and for a file:// index (``.../simple``) the directory holding it, since
    its pages link to files beside it; the CA bundle too.
    """
    listed = run([sys.executable, "-m", "pip", "config", "list"], check=False).stdout
    sections: dict[str, dict[str, str]] = {}
    # PIP_* variables (listed as ":env:.name") win over the files, as they do for pip.
    for line in sorted(listed.splitlines(), key=lambda line: line.startswith(":env:")):
        key, sep, value = line.partition("=")
        if not sep:
            continue
        section, _, name = key.rpartition(".")
        section = "global" if section == ":env:" else section
        sections.setdefault(section, {})[name] = value.strip().strip("'\"")
    conf = work / "pip.conf"
    conf.write_text(
        "".join(
            f"[{section}]\n" + "".join(f"{name} = {value}\n" for name, value in items.items())
            for section, items in sections.items()
        )
    )
    mounts = {str(conf): "/etc/pip.conf"}
    if Path(CA_BUNDLE).exists():
        mounts[CA_BUNDLE] = CA_BUNDLE
    for items in sections.values():
        for value in items.values():
            for token in value.split():
                path = token
                if token.startswith("file:"):
                    path = str(Path(urlparse(token).path).parent)
                if path.startswith("/") and Path(path).exists():
                    mounts[path] = path
    return list(mounts.items())


# --- the stack ----------------------------------------------------------------------------


class Stack:
    """Everything started: the Redis process and the containers; :meth:`remove` ends them."""

    def __init__(self, engine: Engine, work: Path) -> None:
        self.engine, self.work = engine, work
        self.run_id = uuid.uuid4().hex[:8]
        self.label = f"voicecall.image-test={self.run_id}"
        self.containers: list[str] = []
        self.redis: subprocess.Popen[bytes] | None = None

    def start_redis(self) -> str:
        redis_server = which("redis-server")
        if redis_server is None:
            raise Failure("redis-server is missing (make system-deps)")
        port = free_port()
        options = f"--port {port} --bind 127.0.0.1 --appendonly no --dir {self.work}".split()
        self.redis = subprocess.Popen(
            [redis_server, *options, "--save", ""],
            stdout=(self.work / "redis.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: _connects(port), 20, "redis-server to listen")
        return f"redis://127.0.0.1:{port}/0"

    def start(self, role: str, args: Sequence[str], env: dict[str, str]) -> str:
        name = f"voicecall-image-test-{self.run_id}-{role}"
        command = [*self.engine.cli, "run", "-d", "--name", name, "--label", self.label]
        command += self.engine.run_args()
        for key, value in env.items():
            command += ["-e", f"{key}={value}"]
        self.containers.append(name)
        run([*command, IMAGE, role, *args], timeout=120)
        return name

    def logs(self, container: str, lines: int = 25) -> str:
        result = run([*self.engine.cli, "logs", "--tail", str(lines), container], check=False)
        return (result.stdout + result.stderr).strip()

    def remove(self) -> list[str]:
        """Remove every container this run made, stop the Redis; the containers left, if any."""
        ps = [*self.engine.cli, "ps", "-a", "-q", "--filter", f"label={self.label}"]
        containers = [*self.containers, *run(ps, check=False).stdout.split()]
        if containers:
            rm = [*self.engine.cli, "rm", "-f", *self.engine.rm_args]
            run([*rm, *dict.fromkeys(containers)], check=False, timeout=120)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(timeout=15)
        left = run(ps, check=False).stdout.split()
        say(f"removed {len(self.containers)} containers" + (f"; LEFT: {left}" if left else ""))
        return left


def _connects(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def check_image(engine: Engine) -> None:
    config = engine.image_config()
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if "/usr/local/bin/voicecall-healthcheck" not in test:
        raise Failure(f"the image has no voicecall HEALTHCHECK (Config.Healthcheck: {test})")
    if str(config.get("User", "")).split(":")[0] != UID:
        raise Failure(f"the image's user is {config.get('User')!r}, not {UID}")
    say(f"  HEALTHCHECK {test[1:]}; USER {config['User']}")


def check_uids(stack: Stack, container: str) -> None:
    result = run([*stack.engine.cli, "exec", container, "python", "-c", UIDS_SCRIPT])
    uids: dict[str, list[str]] = json.loads(result.stdout)
    wrong = {pid: ids for pid, ids in uids.items() if set(ids) != {UID}}
    if not uids or wrong:
        raise Failure(f"{container}: processes not all uid {UID}: {wrong or 'none found'}")
    say(f"  {container}: {len(uids)} process(es), all uid {UID}")


def drive_calls(api: str) -> None:
    jobs: dict[str, str] = {}
    seen: dict[str, str] = {}
    for kind, body in CALLS.items():
        status, job = http("POST", f"{api}/v1/calls", body)
        if status != 202:  # accepted: a new job
            raise Failure(f"POST {kind}: HTTP {status}: {str(job)[:300]}")
        jobs[kind], seen[kind] = job["id"], job["state"]
        say(f"  {kind:<14} {job['state']} (id {job['id']})")
    final: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + CALLS_TIMEOUT_S
    while len(final) < len(jobs) and time.monotonic() < deadline:
        for kind, job_id in jobs.items():
            if kind in final:
                continue
            _, job = http("GET", f"{api}/v1/calls/{job_id}")
            if job["state"] != seen[kind]:
                seen[kind] = job["state"]
                say(f"  {kind:<14} {job['state']} {job.get('outcome') or ''}")
            if job["state"] in FINAL:
                final[kind] = job
        time.sleep(0.5)
    states = {kind: (final.get(kind) or {}).get("state", seen[kind]) for kind in jobs}
    if states != dict.fromkeys(jobs, "completed"):
        raise Failure(f"not every call completed within {CALLS_TIMEOUT_S} s: {states}")


class ImageTest:
    """The steps, in order; :meth:`clean_up` removes what they started, whatever happened."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.timings: dict[str, float] = {}
        self.stack: Stack | None = None

    def run(self) -> None:
        with step("engine", self.timings):
            engine = choose_engine()
            say(f"  {engine.name}")
        if isinstance(engine, Podman):
            with step("base image", self.timings):
                say(f"  {BASE_IMAGE}: {ensure_base_image(engine, self.work)}")
        with step("build", self.timings):
            before = engine.image_ids()
            engine.build(self.work)
            after = engine.image_ids()
            replaced = [old for tag, old in before.items() if after.get(tag) != old]
            if replaced:  # else they pile up, untagged
                run([*engine.cli, "rmi", *replaced], check=False)
        with step("image", self.timings):
            check_image(engine)
        self.stack = stack = Stack(engine, self.work)
        with step("redis", self.timings):
            redis_url = stack.start_redis()
            say(f"  {redis_url}")
        api_port, sim_port, metrics_port = free_port(), free_port(), free_port()
        api, sim = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
        env = {
            "REDIS_URL": redis_url,
            "API_TOKENS": TOKEN,
            "CALLBACK_SECRET": "image-test-callback-secret-0123",
            "WEBHOOK_SECRET": "whsec_aW1hZ2UtdGVzdC13ZWJob29rLXNlY3JldC0wMTIz",
            "PUBLIC_BASE_URL": api,
            "ESMS_API_KEY": "sim-api-key",
            "ESMS_SECRET_KEY": "sim-secret-key",
            "ESMS_REST_URL": f"{sim}/rest/MainService.svc/json",
            "ESMS_VOICE_URL": f"{sim}/voice/MainService.svc/json",
            "QUIET_HOURS": "off",
            "POLL_TIME_SCALE": TIME_SCALE,
            "POLL_MARGIN_S": "2",
        }
        sim_args = ["--host", "127.0.0.1", "--port", str(sim_port), "--time-scale", TIME_SCALE]
        with step("containers", self.timings):
            containers = {
                "esms-sim": stack.start(
                    "esms-sim", [*sim_args, "--callback-retry-delay-s", "5"], {}
                ),
                "api": stack.start("api", ["--host", "127.0.0.1", "--port", str(api_port)], env),
                "worker": stack.start(
                    "worker",
                    ["--processes", "1", "--threads", "4"],
                    {**env, "METRICS_PORT": str(metrics_port)},
                ),
            }
        with step("healthy", self.timings):
            for role, name in containers.items():
                wait_healthy(engine, role, name)
        with step("uid", self.timings):
            for name in containers.values():
                check_uids(stack, name)
        with step("calls", self.timings):
            drive_calls(api)

    def show_logs(self) -> None:
        for container in self.stack.containers if self.stack else []:
            say(f"--- last lines of {container} ---")
            print(self.stack.logs(container) if self.stack else "", flush=True)

    def clean_up(self) -> bool:
        """Remove what the run started; False when a container could not be removed."""
        return self.stack is None or not self.stack.remove()


def wait_healthy(engine: Engine, role: str, container: str) -> None:
    """Until the image's HEALTHCHECK passes in ``container``."""
    last = ""

    def passes() -> bool:
        nonlocal last
        ok, last = engine.healthy(container)
        return ok

    try:
        wait_for(passes, HEALTHY_TIMEOUT_S, f"{role} healthy", interval=1)
    except Failure as exc:
        raise Failure(f"{exc} (last check: {last!r})") from None
    say(f"  {role}: {last or 'healthy'}")


def interrupted(signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/image_test.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted)
    work = Path(tempfile.mkdtemp(prefix="voicecall-image-test-"))
    image_test = ImageTest(work)
    started = time.monotonic()
    code = 1
    try:
        image_test.run()
        code = 0
    except StepFailed as exc:
        say(f"FAILED at step [{exc.step}]: {exc.reason}")
        image_test.show_logs()
    except KeyboardInterrupt:
        say("interrupted")
        code = 130
    finally:
        if not image_test.clean_up() and code == 0:
            say("FAILED at step [clean up]: containers left behind")
            code = 1
        if code == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"logs kept in {work}")
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in image_test.timings.items())
    outcome = "passed" if code == 0 else "FAILED"
    say(f"{outcome} in {time.monotonic() - started:.1f} s ({steps})")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

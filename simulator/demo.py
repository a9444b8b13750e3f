"""``make run``: the whole pipeline on this machine, with no eSMS account.

Starts a private redis-server, the eSMS simulator (time compressed 20x), the API and one
worker; submits a few jobs of each kind through the HTTP API (one scheduled 20 s ahead, one
not answered, one rejected for an unknown recording, one cancelled before its time); prints
each job's journey as it happens; stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from voicecall.config.env_files import DEMO_ENV_FILE

TIME_SCALE = 0.05  # the simulator's clock runs 20x faster: a 30 s ring lasts 1.5 s
TOKEN = "demo-token-0123456789abcdef"
FINAL = {"completed", "failed", "rejected", "expired", "cancelled"}
DEADLINE_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start (see the logs in the demo directory)")


class Processes:
    """Children started by the demo; all stopped at the end, whatever happens."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: Sequence[str], env: dict[str, str]) -> None:
        log = (self.directory / f"{name}.log").open("wb")
        self.children.append(
            subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def stop_all(self) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


@contextlib.contextmanager
def _stack(directory: Path) -> Iterator[tuple[str, str, str]]:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is missing: apt-get install redis-server (see README)")
    redis_port, sim_port, api_port, metrics_port = (_free_port() for _ in range(4))
    api_url = f"http://127.0.0.1:{api_port}"
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ESMS_API_KEY": "sim-api-key",
        "ESMS_SECRET_KEY": "sim-secret-key",
        "ESMS_REST_URL": f"{sim_url}/rest/MainService.svc/json",
        "ESMS_VOICE_URL": f"{sim_url}/voice/MainService.svc/json",
        "PUBLIC_BASE_URL": api_url,
        "CALLBACK_SECRET": "demo-callback-secret-0123456789",
        "WEBHOOK_SECRET": "whsec_dm9pY2VjYWxsLWRlbW8td2ViaG9vay1zZWNyZXQtMDE=",
        "API_TOKENS": TOKEN,
        "POLL_TIME_SCALE": str(TIME_SCALE),
        "POLL_MARGIN_S": "2",
        "QUIET_HOURS": "off",  # the demo may run at night
        "METRICS_PORT": str(metrics_port),
        "dramatiq_prom_db": str(directory / "prometheus"),
        "LOG_FORMAT": "json",
    }
    processes = Processes(directory)
    try:
        processes.start(
            "redis",
            [
                redis_server,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
            ],
            env,
        )
        processes.start(
            "esms-sim",
            [
                sys.executable,
                "-m",
                "simulator",
                "--port",
                str(sim_port),
                "--time-scale",
                str(TIME_SCALE),
                "--recordings",
                "rec-welcome,rec-reminder",
                "--callback-retry-delay-s",
                "5",
            ],
            env,
        )
        _wait(f"{sim_url}/_sim/health", "the eSMS simulator")
        processes.start(
            "api", [sys.executable, "-m", "voicecall.cli", "api", "--port", str(api_port)], env
        )
        _wait(f"{api_url}/readyz", "the API")
        processes.start(
            "worker",
            [sys.executable, "-m", "voicecall.cli", "worker", "--processes", "1", "--threads", "4"],
            env,
        )
        yield api_url, sim_url, env["REDIS_URL"]
    finally:
        processes.stop_all()


def _jobs() -> list[tuple[str, dict[str, Any]]]:
    soon = (datetime.now(UTC) + timedelta(seconds=20)).isoformat()
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    return [
        (
            "Voice OTP",
            {"kind": "voice_otp", "phone": "0901234567", "content": "Ma xac thuc 482913"},
        ),
        (
            "recording, answered",
            {
                "kind": "record_call",
                "phone": "0912345678",
                "record_id": "rec-welcome",
                "max_repeat": 2,
            },
        ),
        (
            "template, answered",
            {
                "kind": "template_call",
                "phone": "0987654324",
                "template_id": "tpl-due",
                "variables": ["Trung", "20000"],
                "voice": "female",
            },
        ),
        (
            "recording, not answered",
            {
                "kind": "record_call",
                "phone": "0933333331",
                "record_id": "rec-reminder",
                "max_retry": 1,
                "wait_retry": 30,
            },
        ),
        (
            # The carrier never delivers it (SentResult 0): undelivered, not "not answered".
            "recording, carrier failure",
            {"kind": "record_call", "phone": "0977777772", "record_id": "rec-reminder"},
        ),
        (
            "unknown recording",
            {"kind": "record_call", "phone": "0944444445", "record_id": "rec-missing"},
        ),
        (
            "scheduled 20 s ahead",
            {
                "kind": "template_call",
                "phone": "0955555556",
                "template_id": "tpl-due",
                "send_at": soon,
            },
        ),
        (
            "cancelled before its time",
            {
                "kind": "record_call",
                "phone": "0966666667",
                "record_id": "rec-welcome",
                "send_at": later,
            },
        ),
    ]


def _describe(entry: dict[str, Any]) -> str:
    text = str(entry["state"])
    if entry.get("outcome"):
        text += f" ({entry['outcome']})"
    if entry.get("note"):
        text += f" — {entry['note']}"
    return text


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="voicecall demo",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Needs redis-server on PATH; no eSMS account and no settings. "
        "Exit 0 when every job reached a final state.",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="after the jobs, keep the stack running until Ctrl-C (the console and /docs stay up)",
    )
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="voicecall-demo-"))
    print(f"voicecall demo: logs in {directory}")
    with _stack(directory) as (api_url, sim_url, redis_url), _settings_file(api_url, redis_url):
        client = httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        _print_urls(api_url)
        labels: dict[str, str] = {}
        for label, body in _jobs():
            job = client.post("/v1/calls", json=body).json()
            labels[job["id"]] = label
            print(f"  submitted {label:<26} id={job['id'][:8]}  state={job['state']}")
        cancel_id = next(i for i, name in labels.items() if name.startswith("cancelled"))
        print(
            f"  cancel    {'cancelled before its time':<26} → HTTP {client.delete(f'/v1/calls/{cancel_id}').status_code}"
        )
        seen: dict[str, int] = dict.fromkeys(labels, 0)
        start = time.monotonic()
        final: dict[str, dict[str, Any]] = {}
        while len(final) < len(labels) and time.monotonic() - start < DEADLINE_S:
            for job_id, label in labels.items():
                if job_id in final:
                    continue
                job = client.get(f"/v1/calls/{job_id}").json()
                for entry in job["history"][seen[job_id] :]:
                    print(f"  {time.monotonic() - start:6.1f}s  {label:<26} {_describe(entry)}")
                seen[job_id] = len(job["history"])
                if job["state"] in FINAL:
                    final[job_id] = job
            time.sleep(0.5)
        print("\nresult:")
        for job_id, label in labels.items():
            job = final.get(job_id) or client.get(f"/v1/calls/{job_id}").json()
            error = f"  eSMS {job['error']['code']}" if job.get("error") else ""
            print(f"  {label:<26} {job['state']:<10} {job.get('outcome') or '':<13}{error}")
        ledger = httpx.get(f"{sim_url}/_sim/calls").json()
        print(
            f"\nthe simulator accepted {len(ledger)} calls for {len(labels)} jobs (one per placed call)"
        )
        client.close()
        code = 0 if len(final) == len(labels) else 1
        if args.serve:
            _print_urls(api_url)
            print("running until Ctrl-C", flush=True)
            stop = {signal.SIGINT, signal.SIGTERM}
            with contextlib.suppress(KeyboardInterrupt):
                signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # taken by sigwait, not Python
                signal.sigwait(stop)
            print("\nstopping")
        return code


@contextlib.contextmanager
def _settings_file(api_url: str, redis_url: str) -> Iterator[None]:
    """.env.demo in the current directory while the stack runs: the CLI, the Python clients
    and a shell (``. ./.env.demo``) started here reach the demo (voicecall.config.env_files)."""
    path = Path(DEMO_ENV_FILE)
    path.write_text(
        "# Written by `voicecall demo` (make run) while it runs, removed when it stops.\n"
        f"REDIS_URL={redis_url}\nVOICECALL_URL={api_url}\nVOICECALL_TOKEN={TOKEN}\n"
    )
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _print_urls(api_url: str) -> None:
    print(
        f"\n  console:  {api_url}/console/\n  API docs: {api_url}/docs\n"
        f"  token:    {TOKEN}   (log in to the console with it; Authorization: Bearer for the API)\n"
        f"  settings: {DEMO_ENV_FILE} (REDIS_URL, VOICECALL_URL, VOICECALL_TOKEN) until the demo"
        " stops: voicecall, voicecall.Client() and VoiceCallClient.from_env() run here use them;"
        f" `. ./{DEMO_ENV_FILE}` in a shell\n",
        flush=True,
    )

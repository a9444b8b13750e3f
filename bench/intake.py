"""Intake benchmark: POST /v1/calls against one uvicorn process, and the Python API's cost.

    .venv/bin/python bench/intake.py [--rate 200] [--duration 10] [--enqueue-n 3000]

It starts its own redis-server (AOF on, as in production) and one ``voicecall api`` process
(INFO logging to /dev/null), then measures from SEPARATE load processes:

1. fixed offered rate: a Python open-loop generator sends ``--rate`` POSTs a second for
   ``--duration`` seconds; latency counts from each request's planned send time, so a slow
   server cannot hide its queueing (no coordinated omission);
2. saturation: ``wrk`` (if installed; closed loop, ``--connections`` connections) for the
   most the process serves.

Then, in this process, the Python API's ``VoiceCallClient.enqueue`` rate against a bare
``broker.enqueue`` of the same message, and prints a small table. Not a test: numbers depend
on the machine (the load generator shares its CPUs with the server).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import queue
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: import voicecall from this checkout
    sys.path.insert(0, str(REPO_ROOT))
BODY = {"kind": "record_call", "phone": "0901234567", "record_id": "rec-bench", "max_retry": 1}
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the load process ----------------------------------------------------------------------


def load_main(argv: list[str]) -> int:
    """``bench/intake.py _load URL TOKEN RATE DURATION THREADS [WARMUP_S]``: prints one JSON
    line. The first ``WARMUP_S`` seconds are sent at the same rate and not counted (the
    server's and this process's connections, caches and thread pools are warm by then)."""
    url, token, rate, duration, threads = (
        argv[0],
        argv[1],
        float(argv[2]),
        float(argv[3]),
        int(argv[4]),
    )
    warmup = float(argv[5]) if len(argv) > 5 else 0.0
    planned: queue.Queue[float | None] = queue.Queue()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(threads + 1)

    target = urllib.parse.urlsplit(url)
    payload = json.dumps(BODY).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker() -> None:
        # A bare keep-alive connection per thread: a full HTTP client costs this process
        # several times the server's CPU per request, which on a small machine is taken from
        # the server under test. Connected before the clock starts.
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        connection.connect()
        ready.wait()
        while (when := planned.get()) is not None:
            delay = when - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status = 0
            try:
                connection.request("POST", target.path, body=payload, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                errors.append(type(exc).__name__)
                connection.close()
                connection = http.client.HTTPConnection(
                    target.hostname or "", target.port, timeout=30
                )
            ok = status == 202
            done = time.perf_counter()
            if when < measured_from:
                continue
            with lock:
                if ok:
                    latencies.append(done - when)
                elif status:
                    errors.append(str(status))
        connection.close()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    ready.wait()
    # The generator's own garbage collection stopped every sender thread for 13-29 ms every
    # few seconds, which showed as the server's p99: everything built so far is frozen out
    # of collection, and collection is off while the clock runs (the run is short).
    gc.collect()
    gc.freeze()
    gc.disable()
    begin = time.perf_counter() + 0.2
    measured_from = begin + warmup
    warm = int(rate * warmup)
    count = int(rate * duration)
    for i in range(warm + count):
        planned.put(begin + i / rate)
    for _ in pool:
        planned.put(None)
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - measured_from
    gc.enable()
    print(
        json.dumps(
            {
                "offered_rps": rate,
                "sent": count,
                "ok": len(latencies),
                "errors": len(errors),
                "achieved_rps": len(latencies) / elapsed,
                "p50_ms": percentile(latencies, 0.50) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000,
                "max_ms": max(latencies, default=float("nan")) * 1000,
            }
        )
    )
    return 0


# --- servers -------------------------------------------------------------------------------


class Servers:
    """A private redis-server and one ``voicecall api`` process."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="voicecall-bench-"))
        self.redis_port, self.api_port = free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.token = secrets.token_urlsafe(24)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise SystemExit("redis-server is not installed")
        self.processes.append(
            subprocess.Popen(
                [redis_server, "--port", str(self.redis_port), "--dir", str(self.directory),
                 "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
                stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "API_TOKENS": self.token,
            "CALLBACK_SECRET": secrets.token_urlsafe(24),
            "PUBLIC_BASE_URL": self.base_url,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "voicecall.cli", "api", "--port", str(self.api_port)],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit("the API did not become ready")

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.redis_url).flushall()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


# --- measurements --------------------------------------------------------------------------


def fixed_rate(
    servers: Servers, rate: float, duration: float, threads: int, warmup_s: float = 0.0
) -> dict[str, Any]:
    """Offer ``rate`` POSTs a second for ``warmup_s`` (not counted), then ``duration`` s."""
    done = subprocess.run(
        [sys.executable, __file__, "_load", f"{servers.base_url}/v1/calls", servers.token,
         str(rate), str(duration), str(threads), str(warmup_s)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def saturation(servers: Servers, connections: int, duration: float) -> dict[str, Any] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = servers.directory / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(BODY), token=servers.token))
    done = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{int(duration)}s", "--latency", "-s", str(script),
         f"{servers.base_url}/v1/calls"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def enqueue_rates(servers: Servers, n: int) -> tuple[float, float]:
    """(VoiceCallClient.enqueue per second, bare broker.enqueue per second), one thread."""
    import dramatiq

    from producer.client import VoiceCallClient
    from voicecall.config.settings import load_settings
    from voicecall.store.job_store import JobStore
    from worker.broker import make_broker

    settings = load_settings(redis_url=servers.redis_url)
    broker = make_broker(settings)
    client = VoiceCallClient(settings, JobStore.from_url(servers.redis_url))
    rates = []
    for run in ("client", "broker"):
        servers.flush()
        started = time.perf_counter()
        for i in range(n):
            if run == "client":
                client.enqueue({**BODY, "phone": f"09{i:08d}"})
            else:
                message: dramatiq.Message[None] = dramatiq.Message(
                    queue_name="voicecall-bulk",
                    actor_name="send_bulk_call",
                    args=(f"job-{i}",),
                    kwargs={},
                    options={},
                )
                broker.enqueue(message)
        rates.append(n / (time.perf_counter() - started))
    broker.close()
    return rates[0], rates[1]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        return load_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="offered POSTs per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds per load run")
    parser.add_argument("--threads", type=int, default=32, help="load generator threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--enqueue-n", type=int, default=3000, help="enqueues per Python run")
    args = parser.parse_args()

    servers = Servers()
    servers.start()
    try:
        fixed_rate(servers, min(args.rate, 50), 2, 8)  # warm up
        servers.flush()
        fixed = fixed_rate(servers, args.rate, args.duration, args.threads)
        servers.flush()
        saturated = saturation(servers, args.connections, args.duration)
        client_rate, broker_rate = enqueue_rates(servers, args.enqueue_n)
    finally:
        servers.stop()

    cpus = os.cpu_count()
    print(f"\nvoicecall intake benchmark ({cpus} CPUs; load generator on the same machine)\n")
    print(f"{'measurement':<46} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(
        f"{'POST /v1/calls, offered ' + format(args.rate, 'g') + '/s (Python, open loop)':<46} "
        f"{fixed['achieved_rps']:>9.0f} {fixed['p50_ms']:>8.1f} {fixed['p99_ms']:>8.1f} "
        f"{fixed['errors']:>7}"
    )
    if saturated:
        print(
            f"{'POST /v1/calls, saturated (wrk, ' + str(args.connections) + ' conns)':<46} "
            f"{saturated['rps']:>9.0f} {saturated['p50_ms']:>8.1f} {saturated['p99_ms']:>8.1f} "
            f"{saturated['non_2xx']:>7}"
        )
    else:
        print("POST /v1/calls, saturated: skipped (wrk is not installed)")
    print(f"{'VoiceCallClient.enqueue (one thread)':<46} {client_rate:>9.0f}")
    print(f"{'raw broker.enqueue (one thread)':<46} {broker_rate:>9.0f}")
    print(f"\nPython API rate / raw enqueue rate: {client_rate / broker_rate:.2f}")
    print(
        f"median of offered-rate latencies is from planned send time; max {fixed['max_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

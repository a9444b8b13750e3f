"""What EsmsClient adds per request over raw httpx (validation, retries wrapper, parsing, metrics).

Starts the eSMS simulator (0 ms latency, no faults) in its own process, then times N
requests through :class:`worker.esms.EsmsClient` and N equivalent raw ``httpx.Client``
requests to the same endpoints, in alternating rounds, and prints the per-request overhead
in microseconds. Not a test: numbers depend on the machine.

    .venv/bin/python bench/client_overhead.py            # N=2000 per endpoint and side
    .venv/bin/python bench/client_overhead.py -n 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicecall.config.settings import Settings  # noqa: E402
from voicecall.telemetry.logs import configure_logging  # noqa: E402
from worker.esms import EsmsClient  # noqa: E402

API_KEY, SECRET_KEY = "bench-api-key", "bench-secret-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def simulator() -> Iterator[str]:
    """A simulator process on a free port; yields its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port),
        "--api-key", API_KEY, "--secret-key", SECRET_KEY, "--log-level", "warning",
        "--balance", "1000000000", "--time-scale", "0.001", "--seed", "1",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_sim/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the simulator did not start")
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def timed(action: Callable[[int], object], n: int, offset: int) -> float:
    """Mean seconds per call of ``action(i)`` over ``n`` calls."""
    started = time.perf_counter()
    for i in range(offset, offset + n):
        action(i)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per endpoint, side, round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (median kept)")
    args = parser.parse_args()
    configure_logging(level="INFO", fmt="json", stream=io.StringIO())  # as in production

    with simulator() as base:
        rest, voice = f"{base}/rest/MainService.svc/json", f"{base}/voice/MainService.svc/json"
        settings = Settings(
            esms_api_key=API_KEY, esms_secret_key=SECRET_KEY, esms_rest_url=rest,
            esms_voice_url=voice,
        )  # fmt: skip
        auth = {"ApiKey": API_KEY, "SecretKey": SECRET_KEY}
        limits = httpx.Limits(max_connections=settings.esms_max_connections)
        with EsmsClient(settings) as client, httpx.Client(limits=limits, timeout=15) as raw:

            def raw_balance(_: int) -> object:
                return raw.post(f"{rest}/GetBalance_json", json=auth).json()

            # Calls are placed by the worker's asyncio client only: the blocking client's GET
            # is the status lookup, timed on one finished call.
            query = {**auth, "TemplateId": "R1", "Phone": "0901234567", "RequestID": "status"}
            smsid = raw.get(f"{voice}/MakeCallRecord_V2", params=query).json()["SMSID"]
            status_query = {**auth, "ReferenceId": smsid}
            while (
                raw.get(f"{voice}/GetSendStatus", params=status_query).json().get("CodeResponse")
                != "100"
            ):  # 105 until the call has ended
                time.sleep(0.01)

            def raw_status(_: int) -> object:
                return raw.get(f"{voice}/GetSendStatus", params=status_query).json()

            pairs = {
                "balance (POST JSON)": (lambda _: client.balance(), raw_balance),
                "GetSendStatus (GET)": (lambda _: client.call_status(smsid), raw_status),
            }
            for ours, theirs in pairs.values():  # warm up connections and code paths
                timed(ours, 200, 10**8)
                timed(theirs, 200, 10**8)
            print(f"{args.n} requests per side and round, {args.rounds} rounds, 0 ms latency")
            for name, (ours, theirs) in pairs.items():
                client_s, raw_s = [], []
                for r in range(args.rounds):  # alternate who goes first
                    first, second = (ours, theirs) if r % 2 == 0 else (theirs, ours)
                    a, b = timed(first, args.n, r * args.n), timed(second, args.n, r * args.n)
                    client_s.append(a if first is ours else b)
                    raw_s.append(b if first is ours else a)
                c_us, r_us = statistics.median(client_s) * 1e6, statistics.median(raw_s) * 1e6
                print(
                    f"{name:26} client {c_us:7.1f} µs/req   raw httpx {r_us:7.1f} µs/req   "
                    f"overhead {c_us - r_us:+6.1f} µs/req ({(c_us / r_us - 1) * 100:+.0f}%)"
                )


if __name__ == "__main__":
    main()

"""``voicecall worker`` and ``voicecall scheduler``.

``voicecall worker`` checks the settings (one line and exit 2 if one is missing), empties the
Prometheus multiprocess directory, then runs Dramatiq's own CLI on :mod:`worker.main`, which
is the same as running ``dramatiq worker.main`` yourself. The scheduler runs inside every worker
process unless ``SCHEDULER_IN_WORKER=false``; ``voicecall scheduler`` runs it alone (eSMS
credentials are optional there: with them it also refreshes the balance).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence

from voicecall.config.settings import Settings, get_settings
from voicecall.job import keys

QUEUE_PREFETCH = 64  # messages a worker process fetches ahead, per queue
MIN_REDIS = (6, 2)  # LPOP with a count (voicecall/store/lua/dramatiq_fetch.lua)


def redis_too_old(version: str) -> bool:
    """True for a Redis version below :data:`MIN_REDIS` (``"6.0.16"``, ``"5.0.7"``)."""
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return numbers < MIN_REDIS


def _refuse_old_redis(settings: Settings) -> str | None:
    """One line when REDIS_URL's server is too old for the worker; None otherwise (also when
    it cannot be reached now: the worker waits for it as usual)."""
    from voicecall.store.job_store import JobStore

    store = JobStore.from_settings(
        settings, socket_connect_timeout=2, socket_timeout=2, ride_out_s=0
    )
    try:
        version = store.server_version()
    finally:
        store.close()
    if version is not None and redis_too_old(version):
        wanted = ".".join(map(str, MIN_REDIS))
        return (
            f"voicecall worker: Redis at REDIS_URL is {version}; the worker needs Redis ≥ {wanted}"
        )
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicecall worker", description=__doc__)
    parser.add_argument(
        "--processes", "-p", type=int, default=2, help="worker processes (default 2)"
    )
    parser.add_argument(
        "--threads", "-t", type=int, default=8, help="threads per process (default 8)"
    )
    parser.add_argument(
        "--queues",
        "-Q",
        nargs="*",
        default=None,
        choices=keys.ALL_QUEUES,
        help="listen to these queues only (default: all)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings().require("worker")
    refused = _refuse_old_redis(settings)
    if refused is not None:
        print(refused, file=sys.stderr)
        return 2
    prom_dir = os.environ.get("dramatiq_prom_db") or os.path.join(  # noqa: SIM112 (Dramatiq's name)
        tempfile.gettempdir(), "dramatiq-prometheus"
    )
    shutil.rmtree(prom_dir, ignore_errors=True)  # stale files from an earlier run skew counters
    os.makedirs(prom_dir, exist_ok=True)
    env = dict(os.environ)
    env["dramatiq_prom_db"] = prom_dir
    env["PROMETHEUS_MULTIPROC_DIR"] = prom_dir
    env["dramatiq_prom_port"] = str(settings.metrics_port)
    env["dramatiq_prom_host"] = settings.metrics_host  # Dramatiq's own default is 0.0.0.0
    env["dramatiq_worker_timeout"] = str(settings.worker_idle_poll_ms)
    # Actors only hand their job to the engine, so messages leave a worker thread at once:
    # fetching more per round trip costs fewer Redis commands per message. A dead worker's
    # prefetched messages go back on their queues within WORKER_LIVENESS_S.
    env.setdefault("dramatiq_queue_prefetch", str(QUEUE_PREFETCH))
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "worker.main",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--worker-shutdown-timeout",
        str(settings.shutdown_timeout_s * 1000),
        "--skip-logging",
    ]
    if args.queues:
        command += ["--queues", *args.queues]
    os.execvpe(sys.executable, command, env)
    return 0  # not reached


def scheduler_main(argv: Sequence[str]) -> int:
    """Run only the scheduler and sweeper loop, until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="voicecall scheduler", description="Run the scheduler and sweeper."
    )
    parser.parse_args(argv)
    from voicecall.store.job_store import JobStore
    from voicecall.telemetry.logs import configure_logging, get_logger
    from worker.esms import EsmsClient
    from worker.scheduler import Scheduler

    settings = get_settings().require("scheduler")
    configure_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=(settings.esms_api_key, settings.esms_secret_key),
    )
    scheduler = Scheduler(settings, JobStore.from_settings(settings))
    # With eSMS credentials it also keeps the balance gauge fresh; without, it only schedules.
    has_credentials = bool(settings.esms_api_key and settings.esms_secret_key)
    client = EsmsClient(settings) if has_credentials else None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: scheduler.stop())
    get_logger(__name__).info("scheduler_started", interval_s=settings.scheduler_interval_s)
    scheduler.run(None if client is None else lambda: client)
    return 0

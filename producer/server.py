"""``voicecall api``: serve the HTTP API (and the eSMS callback receiver) with uvicorn.

Settings come from the environment (role ``api``: ``API_TOKENS`` and ``CALLBACK_SECRET`` are
required). ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are honoured only from the addresses
in ``FORWARDED_ALLOW_IPS`` (uvicorn's proxy headers). With ``--workers`` above 1, uvicorn runs
that many processes, each building its own app from ``producer.api:create_app``; their
metrics add up through prometheus-client's multiprocess mode, in ``PROMETHEUS_MULTIPROC_DIR``
(a fresh temporary directory when unset; emptied at start either way, since stale files from
a previous run would be counted).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from voicecall.config.settings import load_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="voicecall api",
        description="Serve the voicecall HTTP API and the eSMS callback receiver.",
        epilog="Settings: REDIS_URL, API_TOKENS, CALLBACK_SECRET, PUBLIC_BASE_URL, ... "
        "(environment or .env).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (default 1)"
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=None,
        help="overrides LOG_LEVEL (default INFO)",
    )
    args = parser.parse_args(list(argv))
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def prepare_multiprocess_dir() -> Path | None:
    """Make ``PROMETHEUS_MULTIPROC_DIR`` an existing, empty directory.

    Returns the directory when this function created it (the caller removes it at exit).
    """
    configured = os.environ.get(MULTIPROC_ENV)
    directory = Path(configured or tempfile.mkdtemp(prefix="voicecall-api-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return None if configured else directory


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.log_level:
        os.environ["LOG_LEVEL"] = args.log_level  # read by create_app in every worker process
    settings = load_settings().require("api")  # fail here, with one line, not in each worker
    created = None
    if args.workers > 1 or os.environ.get(MULTIPROC_ENV):
        created = prepare_multiprocess_dir()  # before prometheus_client is imported anywhere

    import uvicorn

    from voicecall.telemetry.logs import configure_logging

    configure_logging(level=settings.log_level, fmt=settings.log_format)
    try:
        uvicorn.run(
            "producer.api:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,  # keep voicecall's logging (JSON, redacted) in every process
            access_log=False,  # the app writes its own access lines, phone numbers masked
            log_level=settings.log_level.lower(),
            # X-Forwarded-Proto/-For are believed only from FORWARDED_ALLOW_IPS (the TLS proxy).
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            server_header=False,
        )
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
    return 0

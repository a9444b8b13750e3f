"""The module Dramatiq's own CLI runs: ``dramatiq worker.main`` (or ``voicecall worker``).

It sets up logging and the broker with voicecall's middleware, then declares the actors.
PROMETHEUS_MULTIPROC_DIR is pointed at Dramatiq's metrics directory before anything imports
prometheus_client, so voicecall's metrics from every worker process are exported together
by Dramatiq's exposition server (port ``dramatiq_prom_port``, default 9191).
"""

from __future__ import annotations

import os
import tempfile

_PROM_DIR = os.environ.setdefault(
    "dramatiq_prom_db", os.path.join(tempfile.gettempdir(), "dramatiq-prometheus")
)
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _PROM_DIR)
os.makedirs(_PROM_DIR, exist_ok=True)

from voicecall.config.settings import get_settings  # noqa: E402
from voicecall.telemetry import tracing  # noqa: E402
from voicecall.telemetry.logs import configure_logging  # noqa: E402
from voicecall.telemetry.metrics import mark_build  # noqa: E402
from worker.setup import build_broker  # noqa: E402

settings = get_settings().require("worker")
configure_logging(
    level=settings.log_level,
    fmt=settings.log_format,
    secrets=(settings.esms_api_key, settings.esms_secret_key),
)
tracing.setup("worker")
broker = build_broker(settings)
mark_build()

import worker.actors  # noqa: E402,F401  (declares the actors on `broker`)

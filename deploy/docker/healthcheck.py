#!/usr/bin/env python3
"""The image's HEALTHCHECK, one for every role: ``voicecall-healthcheck [ROLE]``.

Without ROLE it reads the command of the container's main process (``/proc/1/cmdline``), so
the same HEALTHCHECK fits whichever command the container runs:

- ``voicecall api``: ``GET /healthz`` on its ``--port`` (default 8000) answers 200;
- ``voicecall esms-sim``: ``GET /_sim/health`` on its ``--port`` (default 8081) answers 200;
- ``voicecall worker`` (which becomes ``python -m dramatiq worker.main``): Dramatiq's metrics
  server, forked by the worker's main process, answers on ``dramatiq_prom_port`` (read from
  the process's environment; else ``METRICS_PORT``; else 9191) at ``dramatiq_prom_host``
  (else ``METRICS_HOST``; a wildcard address is asked on 127.0.0.1);
- ``voicecall scheduler``: its Redis answers PING: the primary the sentinels name when
  ``REDIS_SENTINELS`` is set (as the scheduler itself finds it), else ``REDIS_URL``.

Exit 0 when healthy, 1 when not, with one line saying why. Standard library only, except
voicecall's own Redis client factory for the scheduler (installed in the image).
``VOICECALL_HEALTHCHECK_PID`` names another process than 1 (the tests use it).
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Sequence

TIMEOUT_S = 3.0
DEFAULT_PORTS = {"api": 8000, "esms-sim": 8081, "worker": 9191}
PATHS = {"api": "/healthz", "esms-sim": "/_sim/health", "worker": "/"}
ROLES = ("api", "worker", "scheduler", "esms-sim")


def role_of(argv: Sequence[str]) -> str | None:
    """The voicecall role a command line runs, or None."""
    names = [os.path.basename(arg) for arg in argv]
    if "worker.main" in argv and ("dramatiq" in names or "dramatiq" in argv):
        return "worker"
    if "simulator" in argv and "-m" in argv:
        return "esms-sim"
    for index, name in enumerate(names):
        if name == "voicecall" or (name == "voicecall.cli" and argv[index - 1] == "-m"):
            rest = argv[index + 1 : index + 2]
            return rest[0] if rest and rest[0] in ROLES else None
    return None


def option(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag V`` or ``--flag=V`` in ``argv``."""
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _read_proc(pid: str, name: str) -> list[str]:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _get(url: str) -> str | None:
    """None when ``url`` answers 200, else the reason."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except OSError as exc:  # URLError and HTTPError are OSErrors
        return str(exc)


# The settings that say where Redis is (voicecall.config.redis_settings).
REDIS_SETTINGS = (
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_USERNAME",
    "REDIS_SENTINEL_PASSWORD",
)


def _redis_problem(environ: dict[str, str]) -> str | None:
    """None when the scheduler's Redis answers PING, else the reason."""
    import redis

    from voicecall.config.redis_settings import RedisSettings
    from voicecall.store.connection import redis_client

    found = {name: os.environ.get(name) or environ.get(name) for name in REDIS_SETTINGS}
    given = {name.lower(): value for name, value in found.items() if value}
    try:
        settings = RedisSettings.model_validate(given)  # these values only: reads no .env
    except ValueError as exc:  # pydantic's ValidationError is one
        return f"redis settings: {str(exc).splitlines()[0]}"
    try:
        client = redis_client(
            settings, ride_out_s=0, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
        )
        client.ping()
        client.close()
    except redis.RedisError as exc:  # MasterNotFoundError too: no sentinel names a primary
        return f"redis: {type(exc).__name__}"
    return None


def check(role: str, argv: Sequence[str], environ: dict[str, str]) -> str | None:
    """None when the process of ``role`` (started with ``argv``) is healthy, else the reason."""
    if role == "scheduler":
        return _redis_problem(environ)
    if role == "worker":
        port = environ.get("dramatiq_prom_port") or os.environ.get("METRICS_PORT") or "9191"
        host = environ.get("dramatiq_prom_host") or os.environ.get("METRICS_HOST") or ""
    else:
        port = option(argv, "--port") or str(DEFAULT_PORTS[role])
        host = option(argv, "--host") or ""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return _get(f"http://{host}:{port}{PATHS[role]}")


def main(args: Sequence[str]) -> int:
    pid = os.environ.get("VOICECALL_HEALTHCHECK_PID", "1")
    argv = _read_proc(pid, "cmdline")
    environ = dict(item.split("=", 1) for item in _read_proc(pid, "environ") if "=" in item)
    role = args[0] if args else role_of(argv)
    if role not in ROLES:
        print(f"unhealthy: cannot tell the role of process {pid}: {' '.join(argv)!r}")
        return 1
    problem = check(role, argv, environ)
    if problem is not None:
        print(f"unhealthy: {role}: {problem}")
        return 1
    print(f"healthy: {role}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

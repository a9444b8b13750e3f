"""The machine and the versions a run was measured on, for every report."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("voicecall", "dramatiq", "redis", "httpx", "fastapi", "uvicorn", "pydantic")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    """Total memory in GiB (0 if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def redis_server_version() -> str:
    """``redis-server --version``'s version field."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def describe() -> dict[str, str]:
    """Machine and versions as short strings."""
    cores = os.cpu_count() or 0
    versions = {name: _version(name) for name in PACKAGES}
    return {
        "machine": (
            f"{cores} cores ({cpu_model()}), {memory_gib():.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}"
        ),
        "cores": str(cores),
        "versions": ", ".join(
            [f"Python {platform.python_version()}", f"redis-server {redis_server_version()}"]
            + [f"{name} {version}" for name, version in versions.items()]
        ),
    }

"""`make run` works as the README says: the demo runs the whole pipeline and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

from simulator.demo import TOKEN

pytestmark = pytest.mark.slow


def test_demo_places_each_kind_and_ends_every_job() -> None:
    """`voicecall demo --serve` (what `make run` runs) ends each job in its expected final
    state, then keeps the console and /docs up with their URLs and the token printed, and
    on Ctrl-C exits 0 with nothing left running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESMS_", "REDIS_", "API_"))}
    demo = subprocess.Popen(
        [sys.executable, "-m", "voicecall.cli", "demo", "--serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert demo.stdout is not None
    lines: list[str] = []
    try:
        for line in demo.stdout:
            lines.append(line)
            if "running until Ctrl-C" in line:
                break
        shown = "".join(lines)
        console = re.findall(r"console:\s+(\S+)", shown)[-1]
        docs = re.findall(r"API docs:\s+(\S+)", shown)[-1]
        assert f"token:    {TOKEN}" in shown
        assert httpx.get(console, timeout=5).status_code in (200, 303)
        assert httpx.get(docs, timeout=5).status_code == 200
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
    result = subprocess.CompletedProcess(demo.args, demo.returncode, "".join(lines) + rest, "")
    summary = result.stdout.split("result:", 1)[1]
    expected = {
        "Voice OTP": ["completed", "delivered"],
        "recording, answered": ["completed", "answered"],
        "template, answered": ["completed", "answered"],
        "recording, not answered": ["completed", "not_answered"],
        "recording, carrier failure": ["completed", "undelivered"],
        "unknown recording": ["rejected", "eSMS", "106"],
        "scheduled 20 s ahead": ["completed", "answered"],
        "cancelled before its time": ["cancelled"],
    }
    rows = {
        label: line.strip()[len(label) :].split()
        for line in summary.splitlines()
        for label in expected
        if line.strip().startswith(label)
    }
    assert rows == expected
    assert "the simulator accepted 6 calls for 8 jobs" in result.stdout
    assert "released by scheduler" in result.stdout

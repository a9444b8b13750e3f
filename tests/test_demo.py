"""`make run` works as the README says: the demo runs the whole pipeline and stops cleanly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_places_each_kind_and_ends_every_job() -> None:
    """`voicecall demo` exits 0 with each job in its expected final state and nothing left running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESMS_", "REDIS_", "API_"))}
    result = subprocess.run(
        [sys.executable, "-m", "voicecall.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
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

"""`make run` works as the README says: the demo runs the whole pipeline and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simulator.demo import TOKEN

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# A README code block that runs as printed against `make run`'s demo follows this marker.
EXAMPLE = re.compile(r"<!-- demo-example -->\n```(\w+)\n(.*?)```", re.DOTALL)


def readme_examples() -> list[tuple[str, str]]:
    """The README's demo examples, (language, code), in their order."""
    return EXAMPLE.findall((ROOT / "README.md").read_text())


def run_readme_examples(checkout: Path, env: dict[str, str]) -> None:
    """Run the README's demo examples in ``checkout`` as a newcomer would paste them: the shell
    blocks in one bash session (the first sources .venv and .env.demo), each Python block on
    its own; settings reach them only through .env.demo, never the test's environment."""
    examples = readme_examples()
    assert {language for language, _ in examples} == {"sh", "python"}
    shell = "set -eo pipefail\n" + "\n".join(code for lang, code in examples if lang == "sh")
    ran = subprocess.run(
        ["bash", "-c", shell], cwd=checkout, env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert '"history"' in ran.stdout  # curl's GET of the job
    assert "spring-promo" in ran.stdout  # the campaign of the CLI's import
    assert "Traceback" not in ran.stderr
    for _, code in (example for example in examples if example[0] == "python"):
        ran = subprocess.run(
            [sys.executable, "-c", code], cwd=checkout, env=env, capture_output=True, text=True
        )
        assert ran.returncode == 0, code + ran.stdout + ran.stderr


def test_demo_places_each_kind_and_ends_every_job(tmp_path: Path) -> None:
    """`voicecall demo --serve` (what `make run` runs) ends each job in its expected final
    state, then keeps the console and /docs up with their URLs and the token printed and its
    settings in .env.demo, where the README's demo examples run as printed; on Ctrl-C it
    exits 0 with nothing left running and .env.demo gone."""
    prefixes = ("ESMS_", "REDIS_", "API_", "VOICECALL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    for part in (".venv", "examples"):  # a checkout: the demo runs in it, its examples too
        (tmp_path / part).symlink_to(ROOT / part)
    demo = subprocess.Popen(
        [sys.executable, "-m", "voicecall.cli", "demo", "--serve"],
        cwd=tmp_path,
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
        settings = (tmp_path / ".env.demo").read_text()
        assert f"VOICECALL_URL={docs.removesuffix('/docs')}\n" in settings
        run_readme_examples(tmp_path, env)
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
    assert demo.returncode == 0
    assert not (tmp_path / ".env.demo").exists()

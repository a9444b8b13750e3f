"""The CLI's edges, on real Redis and real processes: one label form (``key=value``), a closed
pipe ends a command quietly, and progress bars only on a terminal."""

from __future__ import annotations

import csv
import json
import os
import pty
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from voicecall.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
VOICECALL = [sys.executable, "-m", "voicecall.cli"]


@pytest.fixture()
def env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    return {**os.environ, "REDIS_URL": redis_url}


def _csv(path: Path, rows: int, labels: str = "campaign=pipe;wave=1") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "phone", "record_id", "labels"])
        writer.writerows(["record", f"09{i:08d}", "rec-1", labels] for i in range(rows))
    return path


# --- one label form -----------------------------------------------------------------------


def test_enqueue_takes_key_value_and_refuses_key_colon_value_with_a_hint(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`enqueue --label campaign:tet` exits 2 naming the right form; `campaign=tet` goes in,
    and `jobs list --label campaign=tet` and `export --label campaign=tet` find it."""
    base = ["enqueue", "record", "--phone", "0901234567", "--record-id", "rec-1"]
    with pytest.raises(SystemExit) as refused:
        main([*base, "--label", "campaign:tet"])
    assert refused.value.code == 2
    assert "'campaign:tet' is not key=value: write campaign=tet" in capsys.readouterr().err
    assert main([*base, "--label", "campaign=tet", "--label", "note=a=b:c"]) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["labels"] == {"campaign": "tet", "note": "a=b:c"}
    assert main(["jobs", "list", "--label", "campaign=tet", "--json"]) == 0
    assert [found["id"] for found in json.loads(capsys.readouterr().out)["data"]] == [job["id"]]
    assert main(["export", "--label", "campaign=tet", "--no-progress"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [row["id"] for row in rows] == [job["id"]]


@pytest.mark.parametrize("command", ["jobs list", "export"])
def test_search_filters_refuse_key_colon_value_with_a_hint(
    env: dict[str, str], capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """`jobs list` and `export` take `--label key=value`; `key:value` (the HTTP query's form)
    or a bare word exits 1 with the form to write, before touching anything."""
    assert main([*command.split(), "--label", "campaign:tet"]) == 1
    assert capsys.readouterr().err == (
        "voicecall: --label 'campaign:tet' is not key=value: write campaign=tet\n"
    )
    assert main([*command.split(), "--label", "tet"]) == 1
    assert "'tet' is not key=value" in capsys.readouterr().err


def test_csv_labels_are_key_value_pairs_separated_by_semicolons(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The labels column keeps `k=v;k=v`; a `k:v` label is reported on its line with the hint
    and that row alone is refused."""
    path = tmp_path / "labels.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "phone", "record_id", "labels"])
        writer.writerow(["record", "0901234561", "rec-1", "campaign=tet; wave=1"])
        writer.writerow(["record", "0901234562", "rec-1", "campaign:tet;wave=1"])
    assert main(["import", str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"{path}:3: labels: 'campaign:tet' is not key=value: write campaign=tet"
        " (several: k=v;k=v)\n"
    )
    assert main(["jobs", "list", "--label", "wave=1", "--json"]) == 0
    (job,) = json.loads(capsys.readouterr().out)["data"]
    assert job["labels"] == {"campaign": "tet", "wave": "1"}


# --- a closed pipe ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["jobs list --json --limit 500", "export"])
def test_a_closed_pipe_ends_the_command_quietly(
    tmp_path: Path, env: dict[str, str], command: str
) -> None:
    """`voicecall jobs list --json | head -1` through a real shell pipe: more output than the
    pipe holds (64 KiB: 500 jobs as JSON, 1,000 as CSV; so a write itself fails), head prints its line, the command exits 141 (as
    a tool killed by SIGPIPE) with nothing on stderr: no traceback, no "Exception ignored"."""
    imported = subprocess.run(
        [*VOICECALL, "import", str(_csv(tmp_path / "many.csv", 1000))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert imported.stdout.startswith("rows read: 1000, valid: 1000, enqueued: 1000")
    voicecall = shlex.join(VOICECALL)
    err = tmp_path / "stderr.txt"
    script = f'{voicecall} {command} 2>{err} | head -1; echo "status=${{PIPESTATUS[0]}}"'
    ran = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    first, status = ran.stdout.splitlines()
    assert first == "{" if "--json" in command else first.startswith("id,")
    assert status == "status=141"
    assert err.read_text() == ""


# --- progress only on a terminal -----------------------------------------------------------


def _import_with_stderr(path: Path, env: dict[str, str], *, terminal: bool) -> tuple[str, str]:
    """Run `voicecall import` with stderr on a pseudo-terminal or a pipe: (stdout, stderr)."""
    if not terminal:
        ran = subprocess.run(
            [*VOICECALL, "import", str(path)], env=env, capture_output=True, text=True, check=True
        )
        return ran.stdout, ran.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(
        [*VOICECALL, "import", str(path)], env=env, stdout=subprocess.PIPE, stderr=follower
    ) as child:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        out = child.stdout.read() if child.stdout else b""
        assert child.wait(timeout=60) == 0
    os.close(leader)
    return out.decode(), seen.decode()


def test_progress_bar_on_a_terminal(tmp_path: Path, env: dict[str, str]) -> None:
    """With stderr on a terminal, `voicecall import` redraws one bar line (\\r) per phase,
    ending at 100 %, with no absurd first rate."""
    out, err = _import_with_stderr(_csv(tmp_path / "tty.csv", 300), env, terminal=True)
    assert out.startswith("rows read: 300, valid: 300, enqueued: 300")
    assert "\r" in err and "100% 300/300" in err
    assert "1,000,000 rows/s" not in err


def test_no_terminal_no_bar_one_summary_line(tmp_path: Path, env: dict[str, str]) -> None:
    """Without a terminal (a pipe, a log file), `voicecall import` draws nothing and writes its
    one summary line."""
    out, err = _import_with_stderr(_csv(tmp_path / "pipe.csv", 300), env, terminal=False)
    assert err == ""
    assert len(out.splitlines()) == 1
    assert out.startswith("rows read: 300, valid: 300, enqueued: 300")

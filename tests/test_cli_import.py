"""The producer's CLI: `voicecall import` (CSV), and `enqueue`, `status`, `cancel`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from producer.csv_import import COLUMNS
from voicecall.cli import main
from voicecall.job import keys
from voicecall.store.job_store import JobStore

REPO_ROOT = Path(__file__).resolve().parents[1]


def _counts(redis_url: str) -> dict[str, int]:
    return {k: v for k, v in JobStore.from_url(redis_url).state_counts().items() if v}


def _write(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _row(i: int) -> dict[str, Any]:
    phone = f"09{i:08d}"
    match i % 3:
        case 0:
            return {
                "kind": "voice_otp",
                "phone": phone,
                "content": f"Ma {i}",
                "ttl_s": 300,
                "idempotency_key": f"otp-{i}",
            }
        case 1:
            return {
                "kind": "record_call",
                "phone": phone,
                "record_id": "rec-1",
                "max_retry": 2,
                "wait_retry": 60,
                "labels": "campaign=tet;wave=1",
            }
        case _:
            return {
                "kind": "template_call",
                "phone": phone,
                "template_id": "tpl-1",
                "variables": "Trung|20000",
                "voice": "female",
                "speed": 1,
            }


@pytest.fixture()
def env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REDIS_URL", redis_url)
    return redis_url


# --- import --------------------------------------------------------------------------------


def test_import_10000_rows_through_the_cli(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    """`voicecall import` of 10,000 good rows enqueues them all in well under a minute."""
    path = _write(tmp_path / "calls.csv", [_row(i) for i in range(10_000)])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "voicecall.cli", "import", str(path)],
        cwd=REPO_ROOT,
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "rows read: 10000, valid: 10000, enqueued: 10000, replays: 0, bad: 0"
    )
    assert done.stderr == ""  # no terminal, no progress bar: the summary line is stdout's
    assert _counts(redis_url) == {"queued": 10_000}
    assert redis_client.hlen(keys.dramatiq_messages(keys.QUEUE_OTP)) == 3334
    assert redis_client.hlen(keys.dramatiq_messages(keys.QUEUE_BULK)) == 6666
    assert elapsed < 45


def test_bad_rows_are_reported_by_line_and_good_rows_go_in(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad rows are listed with their line numbers and reasons; the good rows are enqueued."""
    rows = [
        _row(0),  # line 2
        {**_row(1), "phone": "12345"},  # line 3
        _row(2),  # line 4
        {**_row(4), "max_retry": 6, "ivr": 10, "number_forward": "0901234567"},  # line 5
        {**_row(5), "variables": "a||b"},  # line 6
        {**_row(7), "labels": "campaign"},  # line 7
        {"kind": "fax", "phone": "0901234567"},  # line 8
        {**_row(3), "content": "x" * 161},  # line 9
    ]
    path = _write(tmp_path / "mixed.csv", rows)
    assert main(["import", str(path), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    reported = {
        int(line.split(":")[1]): line.split(":", 2)[2].strip()
        for line in err.splitlines()
        if line.startswith(str(path))
    }
    assert sorted(reported) == [3, 5, 6, 7, 8, 9]
    assert reported[3].startswith("phone: is not a valid Vietnamese number")
    assert "max_retry:" in reported[5] and "ivr:" in reported[5]
    assert reported[6].startswith("variables: contains '||'")
    assert reported[7].startswith("labels: 'campaign' is not key=value")
    assert reported[8].startswith("kind:")
    assert reported[9].startswith("content:")
    assert out.startswith("rows read: 8, valid: 2, enqueued: 2, replays: 0, bad: 6")
    assert _counts(env) == {"queued": 2}


def test_strict_enqueues_nothing_when_a_row_is_bad(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--strict refuses the whole file when any row is bad."""
    path = _write(tmp_path / "strict.csv", [_row(0), {**_row(1), "phone": "x"}, _row(2)])
    assert main(["import", str(path), "--strict", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert f"{path}:3: phone:" in err
    assert "strict: 1 bad row(s), nothing enqueued" in out
    assert _counts(env) == {}


def test_dry_run_validates_only(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run checks every row and enqueues nothing; a clean file exits 0."""
    path = _write(tmp_path / "dry.csv", [_row(i) for i in range(6)])
    assert main(["import", str(path), "--dry-run", "--no-progress"]) == 0
    assert "valid: 6, enqueued: 0" in capsys.readouterr().out
    assert _counts(env) == {}


def test_reimport_replays_rows_with_idempotency_keys(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Importing the same file twice replays rows with an idempotency key instead of duplicating."""
    path = _write(tmp_path / "again.csv", [_row(0), _row(3)])
    assert main(["import", str(path), "--no-progress"]) == 0
    assert main(["import", str(path), "--no-progress"]) == 0
    assert "enqueued: 0, replays: 2" in capsys.readouterr().out.splitlines()[-1]
    assert _counts(env) == {"queued": 2}


def test_a_conflicting_key_in_the_file_is_reported(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key reused with another body in the file is refused at enqueue time, by line."""
    path = _write(tmp_path / "conflict.csv", [_row(0), {**_row(0), "content": "other"}])
    assert main(["import", str(path), "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert f"{path}:3: idempotency_key:" in err
    assert "refused: 1" in out


def test_optional_columns_and_kind_aliases(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only kind and phone are required columns; short kinds and id/is_unicode are accepted."""
    path = _write(
        tmp_path / "short.csv",
        [
            {
                "kind": "otp",
                "phone": "0901234567",
                "content": "Mã 1",
                "is_unicode": "true",
                "id": "csv-1",
            }
        ],
        columns=("kind", "phone", "content", "is_unicode", "id"),
    )
    assert main(["import", str(path), "--no-progress"]) == 0
    assert _counts(env) == {"queued": 1}
    assert JobStore.from_url(env).get("csv-1") is not None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("kind,phone,colour\n", "unknown column(s) 'colour'"),
        ("kind,content\n", "missing column(s) phone"),
        ("kind,phone,phone\n", "column(s) phone appear more than once"),
        ("", "is empty"),
    ],
    ids=["unknown", "missing", "duplicate", "empty"],
)
def test_a_bad_header_is_a_usage_error(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str], header: str, message: str
) -> None:
    """A file whose header cannot be used exits 2 with one line saying why."""
    path = tmp_path / "bad.csv"
    path.write_text(header + "otp,0901234567\n" if header else "")
    assert main(["import", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that cannot be read exits 2."""
    assert main(["import", str(tmp_path / "none.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_import_help_documents_the_columns(capsys: pytest.CaptureFixture[str]) -> None:
    """`voicecall import --help` lists every column."""
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = capsys.readouterr().out
    assert [name for name in COLUMNS if name not in text] == []


def test_invalid_settings_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad REDIS_URL stops the command with exit 2 and one line naming it."""
    monkeypatch.setenv("REDIS_URL", "http://nope")
    assert main(["import", "x.csv"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err


# --- enqueue, status, cancel ---------------------------------------------------------------


def test_enqueue_prints_the_job(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`voicecall enqueue template ...` prints the job as JSON."""
    code = main([
        "enqueue", "template", "--phone", "0901234567", "--template-id", "tpl-1",
        "--var", "Trung", "--var", "20000", "--label", "campaign=tet", "--idempotency-key", "cli-1",
    ])  # fmt: skip
    job = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (job["state"], job["request"]["variables"], job["labels"]) == (
        "queued",
        ["Trung", "20000"],
        {"campaign": "tet"},
    )


def test_enqueue_refuses_invalid_input(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Invalid options exit 1 naming each bad field; nothing is stored."""
    code = main(["enqueue", "record", "--phone", "123", "--record-id", "r", "--max-retry", "6"])
    err = capsys.readouterr().err
    assert code == 1
    assert "invalid phone:" in err and "invalid max_retry:" in err
    assert _counts(env) == {}


def test_status_shows_job_and_history(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`voicecall status ID` is human readable; --json prints the job with its history."""
    main(
        ["enqueue", "otp", "--phone", "0901234567", "--content", "Ma 1", "--idempotency-key", "s-1"]
    )
    job_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["status", job_id]) == 0
    text = capsys.readouterr().out
    assert f"id         {job_id}" in text and "history:" in text and "queued" in text
    assert main(["status", "--idempotency-key", "s-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["history"][0]["state"] == "queued"
    assert main(["status", "nope"]) == 1


def test_cancel_then_refused(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`voicecall cancel ID` exits 0 when done and 1 with the reason when refused."""
    main(["enqueue", "otp", "--phone", "0901234567", "--content", "Ma 1"])
    job_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["cancel", job_id]) == 0
    assert f"cancelled {job_id}" in capsys.readouterr().out
    assert main(["cancel", job_id]) == 1
    assert (
        "is cancelled: only a scheduled or queued job never yet handed" in capsys.readouterr().err
    )

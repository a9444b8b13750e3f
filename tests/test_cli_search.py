"""The search commands on real Redis: a campaign from `voicecall import --campaign` to
`voicecall campaign show`, `voicecall jobs list` (masked phones, or --json) and
`voicecall export` (the API's CSV, with a progress bar)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from producer.search import export
from tests.fixtures import steps
from voicecall.cli import main
from voicecall.job import lifecycle
from voicecall.job.states import Outcome
from voicecall.store.job_store import JobStore


@pytest.fixture()
def store(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> JobStore:
    monkeypatch.setenv("REDIS_URL", redis_url)
    return JobStore.from_url(redis_url)


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["kind", "phone", "record_id", "labels"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _import(tmp_path: Path, n: int, campaign: str) -> None:
    rows = [
        {"kind": "record", "phone": f"09012{i:05d}", "record_id": "r1", "labels": ""}
        for i in range(n)
    ]
    path = _csv(tmp_path / f"{campaign}.csv", rows)
    assert main(["import", str(path), "--campaign", campaign, "--no-progress"]) == 0


def _answer(store: JobStore, job_id: str, duration: int) -> None:
    steps.submit(store, job_id, f"sms-{job_id}")
    call = {"status": "ANSWERED", "duration_s": duration, "price_vnd": 880.0}
    op = lifecycle.complete(
        job_id, outcome=Outcome.ANSWERED, call=call, source="callback", smsid=f"sms-{job_id}"
    )
    assert store.apply(op).verdict == "accepted"


def test_a_campaign_from_import_to_export(
    tmp_path: Path, store: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """A campaign imported from CSV: `jobs list` finds it by label (JSON, or a table with masked
    phones and a --cursor hint), `campaign show` sums its answered calls' figures, and `export`
    writes the API's CSV columns for each of its jobs."""
    _import(tmp_path, 5, "tet")
    capsys.readouterr()
    assert main(["jobs", "list", "--label", "campaign:tet", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    ids = [job["id"] for job in listed["data"]]
    assert len(ids) == 5 and listed["next_cursor"] is None
    _answer(store, ids[0], 20)
    _answer(store, ids[1], 40)

    assert main(["campaign", "show", "tet"]) == 0
    shown = capsys.readouterr().out
    assert "5 (2 finished, 40.0%)" in shown
    assert "answered   2 (100.0% of completed calls)" in shown
    assert "60 s in all, 30.0 s per answered call" in shown
    assert "1,760 VND" in shown

    assert main(["jobs", "list", "--state", "queued", "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "CLIENT", "KIND", "STATE", "OUTCOME", "PHONE", "CREATED",
                                "LABELS"]  # fmt: skip
    assert all(" UTC+07 " in line for line in lines[1:])  # the console's format, in TIMEZONE
    assert len(lines) == 3 and all("8490***" in line for line in lines[1:])
    assert all(line.split()[1] == "cli" for line in lines[1:])  # `voicecall import` made them
    assert "090120" not in out and "8490120" not in out  # masked
    assert "more: add --cursor " in err

    target = tmp_path / "tet-results.csv"
    assert main(["export", "--label", "campaign:tet", "-o", str(target)]) == 0
    out, err = capsys.readouterr()
    assert "exported 5 jobs" in err
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == export.COLUMNS
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert sorted(row["duration_s"] for row in rows if row["outcome"] == "answered") == [
        "20",
        "40",
    ]


def test_export_shows_progress_against_the_count(
    tmp_path: Path, store: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """`voicecall export` reports its progress against the count of matching jobs, up to 100%."""
    _import(tmp_path, 30, "wave")
    capsys.readouterr()
    assert main(["export", "--state", "queued", "-o", str(tmp_path / "q.csv")]) == 0
    err = capsys.readouterr().err
    assert "100% 30/30" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["jobs", "list", "--state", "lost"], "--state must be one of"),
        (["jobs", "list", "--limit", "0"], "--limit must be between 1 and 500"),
        (["jobs", "list", "--created-from", "tomorrow"], "--created-from must be a time"),
        (["jobs", "list", "--cursor", "junk"], "--cursor is not a cursor"),
        (["export", "--phone", "123"], "--phone "),
        (["campaign", "show", "never"], "no campaign 'never'"),
    ],
)
def test_bad_options_exit_1_naming_them(
    store: JobStore, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A bad search option (state, limit, naive time, cursor, phone, unknown campaign) exits 1
    with a message naming the option."""
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_import_refuses_a_row_of_another_campaign(
    tmp_path: Path, store: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """`import --campaign a` stops at a row labelled for campaign b, naming its line and field;
    the rows before it stay imported."""
    rows = [
        {"kind": "record", "phone": "0901200001", "record_id": "r1", "labels": ""},
        {"kind": "record", "phone": "0901200002", "record_id": "r1", "labels": "campaign=b"},
    ]
    path = _csv(tmp_path / "mixed.csv", rows)
    assert main(["import", str(path), "--campaign", "a", "--no-progress"]) == 1
    assert "mixed.csv:3: labels.campaign: is 'b'" in capsys.readouterr().err
    assert main(["campaign", "show", "a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1

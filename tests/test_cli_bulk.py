"""``voicecall jobs cancel``: the CLI's bulk cancel on real Redis (voicecall.store.bulk, as
``POST /v1/bulk/cancel-calls`` and the console run it): it states the count, needs ``--yes``
without a terminal, cancels only the scheduled calls the filters match, in chunks, with one
summary line; times in tables are in TIMEZONE."""

from __future__ import annotations

import time

import pytest

from producer.client import VoiceCallClient
from voicecall.cli import main
from voicecall.job.states import State


@pytest.fixture()
def client(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> VoiceCallClient:
    monkeypatch.setenv("REDIS_URL", redis_url)
    return VoiceCallClient.from_env()


def _scheduled(client: VoiceCallClient, n: int, campaign: str) -> list[str]:
    send_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 86400)) + "+07:00"
    return [
        client.enqueue_record(
            f"09013{i:05d}", "r1", send_at=send_at, labels={"campaign": campaign}
        ).id
        for i in range(n)
    ]


def test_jobs_cancel_cancels_a_campaigns_scheduled_calls(
    client: VoiceCallClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """`voicecall jobs cancel --label campaign... --yes` cancels every scheduled call of the campaign, more than one chunk of 100, and no other."""
    doomed = _scheduled(client, 130, "cli-bulk")  # more than one chunk of 100
    kept = _scheduled(client, 2, "cli-other")
    capsys.readouterr()
    assert main(["jobs", "cancel", "--label", "campaign:cli-bulk"]) == 2  # no terminal, no --yes
    assert "give --yes" in capsys.readouterr().err
    assert client.get(doomed[0]).state is State.SCHEDULED
    argv = ["jobs", "cancel", "--label", "campaign:cli-bulk", "--yes", "--reason", "moved"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "cancelled 130 of 130 (0 had left scheduled)" in out
    assert "100% 130/130" in err
    assert {client.get(i).state for i in doomed} == {State.CANCELLED}
    assert client.get(doomed[0]).history[-1].note == "moved"
    assert {client.get(i).state for i in kept} == {State.SCHEDULED}
    assert main(["jobs", "cancel", "--label", "campaign:cli-bulk", "--yes"]) == 0
    assert "no scheduled calls with label=campaign:cli-bulk to cancel" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:  # not an option here: it cancels scheduled calls
        main(["jobs", "cancel", "--state", "queued", "--yes"])
    assert usage.value.code == 2


def test_jobs_list_shows_times_in_the_zone(
    client: VoiceCallClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """`voicecall jobs list` prints times in TIMEZONE in the console's short format, with the zone."""
    _scheduled(client, 1, "cli-times")
    capsys.readouterr()
    assert main(["jobs", "list", "--label", "campaign:cli-times"]) == 0
    out = capsys.readouterr().out
    assert "UTC+07" in out and "CREATED" in out

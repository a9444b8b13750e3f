"""A step's verdict is a :class:`~voicecall.job.steps.Verdict`: every verdict a Lua script
answers is a member (read from the scripts' sources), every member is answered by some
script, and a reply with an unknown verdict is refused loudly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicecall.job.steps import Step, Verdict
from voicecall.store.scripts import LUA_DIR

# Where a script's verdict stands: first in a returned table, returned by a helper
# (lib.lua's refusal and hold), or handed to a helper that returns it (submit.lua's settle).
_VERDICT_AT = (
    re.compile(r"return\s*\{\s*'(\w+)'"),
    re.compile(r"return\s+'(\w+)'"),
    re.compile(r"\bverdict\s*=\s*'(\w+)'"),
    re.compile(r"\bsettle\(\w+,\s*'(\w+)'\)"),
    re.compile(r"\bP\.result\s*==\s*'(\w+)'"),  # delivery.lua answers the result it is given
)
# Answered only as given by the Python side (delivery.lua's P.result, from worker.webhook).
GIVEN_BY_PYTHON = {Verdict.GAVE_UP}
# Scripts whose reply is no Step.
NOT_STEPS = {"quota.lua", "dramatiq_fetch.lua"}


def _code(path: Path) -> str:
    return "\n".join(line.split("--", 1)[0] for line in path.read_text().splitlines())


def _answered() -> dict[str, set[str]]:
    """Each verdict string the scripts answer, with the scripts answering it."""
    found: dict[str, set[str]] = {}
    for path in sorted(LUA_DIR.glob("*.lua")):
        if path.name in NOT_STEPS:
            continue
        for pattern in _VERDICT_AT:
            for verdict in pattern.findall(_code(path)):
                found.setdefault(verdict, set()).add(path.name)
    return found


def test_the_scan_finds_the_scripts_verdicts() -> None:
    """The scan reads each way a verdict is answered (a table, a helper, a given result)."""
    answered = _answered()
    assert answered["claimed"] == {"claim.lua"}
    assert answered["forged"] == {"lib.lua"}  # the refusal helper
    assert answered["hold_full"] == {"lib.lua"}  # the hold helper
    assert "submitted" in answered  # settle(job, 'submitted')
    assert "delivered" in answered and "retry" in answered  # P.result == '...'


def test_every_verdict_a_script_answers_is_a_member() -> None:
    """A new verdict in a script without its Verdict member fails here, not in production."""
    members = {verdict.value for verdict in Verdict}
    assert set(_answered()) - members == set()


def test_every_member_is_answered_by_a_script() -> None:
    """No member stands for a verdict no script answers any more."""
    answered = set(_answered()) | {verdict.value for verdict in GIVEN_BY_PYTHON}
    assert {verdict.value for verdict in Verdict} - answered == set()


def test_a_reply_maps_to_its_member() -> None:
    """Redis's bytes become the member, still equal to the literal string."""
    step = Step.of([b"claimed", b"sending", b"{}"])
    assert step.verdict is Verdict.CLAIMED
    assert step.verdict == "claimed"


def test_an_unknown_verdict_is_refused_with_its_name() -> None:
    """A verdict the code does not know (scripts of another version) raises, naming it."""
    with pytest.raises(RuntimeError, match="'vanished'"):
        Step.of([b"vanished", b"", b""])

"""Who answers: deterministic rules on the phone number, then random chances.

An outcome is written ``answer`` (answered on the first dial), ``answer-on-N`` (answered on
dial N; unanswered if MaxRetry allows fewer dials), ``noanswer`` (never answered, every
redial made) or ``fail`` (the call fails on the first dial, no redial).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

OutcomeKind = Literal["answer", "noanswer", "fail"]


@dataclass(frozen=True)
class Outcome:
    """What the callee does: answer on dial ``answer_on``, never answer, or fail."""

    kind: OutcomeKind
    answer_on: int = 1

    def __str__(self) -> str:
        if self.kind == "answer" and self.answer_on > 1:
            return f"answer-on-{self.answer_on}"
        return self.kind


_SIMPLE = {"answer": Outcome("answer"), "noanswer": Outcome("noanswer"), "fail": Outcome("fail")}


def parse_outcome(text: str) -> Outcome:
    """Read ``answer``, ``answer-on-N``, ``noanswer`` or ``fail``; ValueError otherwise."""
    word = text.strip().lower()
    if word in _SIMPLE:
        return _SIMPLE[word]
    prefix = "answer-on-"
    if word.startswith(prefix) and word[len(prefix) :].isdigit() and int(word[len(prefix) :]):
        return Outcome("answer", int(word[len(prefix) :]))
    raise ValueError(f"outcome {text!r} must be answer, noanswer, fail or answer-on-N (N >= 1)")


def decide(
    national: str,
    rules: Mapping[str, str],
    *,
    p_noanswer: float,
    p_fail: float,
    rng: random.Random,
) -> Outcome:
    """The outcome for ``national`` (``0...``): the longest matching suffix rule, else chance."""
    matches = [suffix for suffix in rules if national.endswith(suffix)]
    if matches:
        return parse_outcome(rules[max(matches, key=len)])
    draw = rng.random()
    if draw < p_fail:
        return Outcome("fail")
    if draw < p_fail + p_noanswer:
        return Outcome("noanswer")
    return Outcome("answer")

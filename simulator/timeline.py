"""A call's life, planned once when it is accepted, and its phase at any later moment.

The life: wait until SendDate (or start now), then dial. Each dial rings ``ring``; an
unanswered dial is followed by ``gap`` (WaitRetry) and a redial, up to 1 + MaxRetry dials.
An answered call plays the recording MaxRepeat times. A failing call ends after its first
dial. All times here are real (``time.time()``), already multiplied by the time scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.outcomes import Outcome

WAITING = "waiting"
RINGING = "ringing"
RETRY_WAIT = "retry_wait"
PLAYING = "playing"
FINISHED = "finished"

SEND_STATUS_WAITING = 2  # eSMS SendStatus: waiting to send
SEND_STATUS_SENT = 7  # sent, awaiting the carrier's report
SEND_STATUS_DONE = 5  # finished: read SentResult / SendSuccess


@dataclass(frozen=True)
class Plan:
    """When a call starts, how many dials it makes, whether and when it ends answered."""

    starts_at: float
    ring: float
    gap: float
    dials: int
    answered: bool
    failed: bool
    ends_at: float
    call_duration_s: int  # simulated seconds the callee listened (CallDuration)

    @property
    def answered_at(self) -> float | None:
        """Real time the callee picked up, None if never."""
        if not self.answered:
            return None
        return self.starts_at + self.dials * self.ring + (self.dials - 1) * self.gap


@dataclass(frozen=True)
class Phase:
    """Where a call is at one moment: a state name, eSMS SendStatus, dials made so far."""

    state: str
    send_status: int
    dials_made: int


def plan_call(
    outcome: Outcome,
    *,
    starts_at: float,
    max_retry: int,
    ring: float,
    gap: float,
    play: float,
    play_simulated_s: float,
) -> Plan:
    """Plan the life of a call; ``ring``, ``gap`` and ``play`` are real seconds."""
    allowed = 1 + max_retry
    if outcome.kind == "fail":
        return Plan(starts_at, ring, gap, 1, False, True, starts_at + ring, 0)
    if outcome.kind == "answer" and outcome.answer_on <= allowed:
        dials = outcome.answer_on
        answered_at = starts_at + dials * ring + (dials - 1) * gap
        duration = round(play_simulated_s)
        return Plan(starts_at, ring, gap, dials, True, False, answered_at + play, duration)
    ends_at = starts_at + allowed * ring + (allowed - 1) * gap
    return Plan(starts_at, ring, gap, allowed, False, False, ends_at, 0)


def phase_at(plan: Plan, now: float) -> Phase:
    """The phase of ``plan`` at real time ``now``."""
    if now < plan.starts_at:
        return Phase(WAITING, SEND_STATUS_WAITING, 0)
    if now >= plan.ends_at:
        return Phase(FINISHED, SEND_STATUS_DONE, plan.dials)
    answered_at = plan.answered_at
    if answered_at is not None and now >= answered_at:
        return Phase(PLAYING, SEND_STATUS_SENT, plan.dials)
    period = plan.ring + plan.gap
    if period <= 0:
        return Phase(RINGING, SEND_STATUS_SENT, 1)
    offset = now - plan.starts_at
    dial = min(int(offset // period), plan.dials - 1)
    within = offset - dial * period
    state = RINGING if within < plan.ring else RETRY_WAIT
    return Phase(state, SEND_STATUS_SENT, dial + 1)

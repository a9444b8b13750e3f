"""The simulator's memory: the ledger of accepted calls, RequestIds, balance and counters.

Everything lives in one process and one event loop; handlers change it synchronously, so no
locks are needed. :meth:`SimState.reset` empties it all and restores the balance.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from simulator.outcomes import Outcome
from simulator.timeline import FINISHED, Plan, phase_at

CallKind = Literal["otp", "record", "template"]


def iso(timestamp: float) -> str:
    """A real time as ISO 8601 in UTC."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


@dataclass
class CallbackAttempt:
    """One GET to a CallbackUrl: when, which delivery (1, or 2 for a duplicate), the result."""

    at: float
    delivery: int
    status_code: int | None
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """The attempt as JSON for the ledger."""
        return {
            "at": iso(self.at),
            "delivery": self.delivery,
            "status_code": self.status_code,
            "error": self.error,
        }


@dataclass
class CallRecord:
    """One accepted call, as the ledger shows it."""

    smsid: str
    kind: CallKind
    endpoint: str
    request_id: str
    phone: str
    national: str
    params: dict[str, str]
    accepted_at: float
    send_date: datetime | None
    sandbox: bool
    outcome: Outcome
    plan: Plan
    max_retry: int
    wait_retry_s: float
    max_repeat: int
    price: int
    callback_url: str
    callbacks: list[CallbackAttempt] = field(default_factory=list)
    callback_fate: str = ""  # "", "dropped", "duplicated"
    status_requests: int = 0

    @property
    def sent_ok(self) -> bool:
        """Whether the call ends answered."""
        return self.plan.answered

    @property
    def sent_result(self) -> int:
        """eSMS SentResult: 0 only when the carrier did not deliver the call (a failed call);
        a call that rang unanswered was delivered (1)."""
        return 0 if self.plan.failed else 1

    def call_status(self, no_answer: str = "NOANSWERED") -> str:
        """eSMS CallStatus: ANSWERED, the unanswered spelling, or empty for a failed call
        (as in eSMS's own callback example)."""
        if self.plan.failed:
            return ""
        return "ANSWERED" if self.sent_ok else no_answer

    def to_json(self, now: float) -> dict[str, object]:
        """The record as JSON, with its phase at ``now``."""
        phase = phase_at(self.plan, now)
        done = phase.state == FINISHED
        return {
            "smsid": self.smsid,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "phone": self.phone,
            "phone_national": self.national,
            "params": self.params,
            "accepted_at": iso(self.accepted_at),
            "send_date": self.send_date.isoformat() if self.send_date else None,
            "sandbox": self.sandbox,
            "outcome": str(self.outcome),
            "max_retry": self.max_retry,
            "wait_retry_s": self.wait_retry_s,
            "max_repeat": self.max_repeat,
            "starts_at": iso(self.plan.starts_at),
            "ends_at": iso(self.plan.ends_at),
            "dials_planned": self.plan.dials,
            "state": "sandbox" if self.sandbox else phase.state,
            "send_status": phase.send_status,
            "dials_made": phase.dials_made,
            "sent_result": self.sent_result if done else None,
            "call_status": self.call_status() if done else None,
            "call_duration_s": self.plan.call_duration_s if done else 0,
            "price": self.price,
            "callback_url": self.callback_url,
            "callback_fate": self.callback_fate,
            "callbacks": [attempt.to_json() for attempt in self.callbacks],
            "status_requests": self.status_requests,
        }


@dataclass
class Stats:
    """Counters served by ``GET /_sim/stats``."""

    requests: Counter[str] = field(default_factory=Counter)
    results: dict[str, Counter[str]] = field(default_factory=dict)
    status_requests: Counter[str] = field(default_factory=Counter)
    callbacks: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def result(self, endpoint: str, code: str) -> None:
        """Count one answer ``code`` (CodeResult/CodeResponse, or HTTP:NNN) of ``endpoint``."""
        self.results.setdefault(endpoint, Counter())[code] += 1

    def to_json(self) -> dict[str, object]:
        """The counters as JSON."""
        callbacks = {key: self.callbacks[key] for key in CALLBACK_COUNTERS}
        return {
            "requests": dict(self.requests),
            "results": {name: dict(counts) for name, counts in self.results.items()},
            "status_requests": dict(self.status_requests),
            "callbacks": callbacks,
            "faults": {key: self.faults[key] for key in FAULT_COUNTERS},
        }


CALLBACK_COUNTERS = (
    "due",
    "sent",
    "attempted",
    "delivered",
    "failed_attempts",
    "gave_up",
    "dropped",
    "duplicated",
)
FAULT_COUNTERS = (
    "http_500",
    "timeout",
    "accept_then_drop",
    "accept_then_hang",
    "callback_before_answer",
    "tps_rejected",
    "delayed",
)


class SimState:
    """The ledger, the RequestIds seen, the balance, the TPS window and the counters."""

    def __init__(self, balance: int) -> None:
        self.ledger: dict[str, CallRecord] = {}
        self.request_ids: dict[str, float] = {}
        self.stats = Stats()
        self.balance = balance
        self.recent_sends: deque[float] = deque()

    def reset(self, balance: int) -> None:
        """Forget every call, RequestId and counter; set the balance back to ``balance``."""
        self.ledger.clear()
        self.request_ids.clear()
        self.stats = Stats()
        self.balance = balance
        self.recent_sends.clear()

    def request_id_taken(self, request_id: str, now: float, window: float) -> bool:
        """Whether ``request_id`` was accepted less than ``window`` real seconds ago."""
        seen = self.request_ids.get(request_id)
        return seen is not None and now - seen < window

    def over_tps(self, now: float, limit: int) -> bool:
        """Count one send at ``now``; True if it is beyond ``limit`` in the last second."""
        if limit <= 0:
            return False
        while self.recent_sends and now - self.recent_sends[0] >= 1.0:
            self.recent_sends.popleft()
        if len(self.recent_sends) >= limit:
            return True
        self.recent_sends.append(now)
        return False

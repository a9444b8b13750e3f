"""Sends and endings per minute, for the console's overview (the last hour) and its charts
(the last day).

The lifecycle steps count them as they happen, in the same Lua step as the job's change
(``count_activity`` in voicecall/store/lua/lib.lua): ``sent`` when eSMS accepts a call (submit),
and when a job ends, its final state or, for a completed job, ``outcome:{outcome}``. Each
minute is one small hash (``vc:activity:{minute}``, voicecall.job.keys) that expires after 26
hours, so reading the last hour is 60 HGETALLs in one round trip (the last day 1,440), never a
scan of jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voicecall.store.connection import now_s
from voicecall.store.job_store import JobStore

SENT = "sent"


@dataclass(frozen=True)
class Minute:
    start_s: int  # epoch seconds of the minute's start
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return self.counts.get(SENT, 0)


@dataclass(frozen=True)
class Activity:
    minutes: list[Minute]  # oldest first, the current (partial) minute last

    @property
    def sent(self) -> int:
        return sum(minute.sent for minute in self.minutes)

    def endings(self) -> dict[str, int]:
        """Every final state and outcome over the window, with how many jobs ended so."""
        total: dict[str, int] = {}
        for minute in self.minutes:
            for name, count in minute.counts.items():
                if name != SENT:
                    total[name] = total.get(name, 0) + count
        return dict(sorted(total.items()))


def recent(store: JobStore, minutes: int = 60, *, now: float | None = None) -> Activity:
    """The last ``minutes`` minutes of activity, the current one included."""
    current = int((now_s() if now is None else now) // 60)
    wanted = list(range(current - minutes + 1, current + 1))
    rows = store.activity(wanted)
    return Activity([Minute(m * 60, row) for m, row in zip(wanted, rows, strict=True)])

"""Sends and endings per minute, for the console's overview (the last hour) and its charts
(the last day); and per hour for one campaign, over its life.

The lifecycle steps count them as they happen, in the same Lua step as the job's change
(``count_activity`` in voicecall/store/lua/lib.lua): ``sent`` when eSMS accepts a call (submit),
and when a job ends, its final state or, for a completed job, ``outcome:{outcome}``. Each
minute is one small hash (``vc:activity:{minute}``, voicecall.job.keys) that expires after 26
hours, so reading the last hour is 60 HGETALLs in one round trip (the last day 1,440), never a
scan of jobs. A campaign's jobs are also counted per hour in its counters (fields
``{cid}:h{hour}:{name}`` of ``vc:campaigns:stats``): its chart reads the hours from its first
send, at most ``CAMPAIGN_HOURS`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from voicecall.store.connection import now_s
from voicecall.store.job_store import JobStore

SENT = "sent"
CAMPAIGN_HOURS = 72  # the hours a campaign's chart shows, its latest
# After its last send, a campaign's calls can still end this long (POLL_DEADLINE_S's default).
ENDINGS_AFTER_LAST_SEND_H = 6


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


def campaign_hours(
    store: JobStore,
    cid: int,
    first_sent_at: float | None,
    last_sent_at: float | None,
    names: Sequence[str],
    *,
    finished: bool,
    now: float | None = None,
) -> list[Minute]:
    """A campaign's activity per hour (as :class:`Minute` rows an hour apart, oldest first):
    from the hour of its first send to now while it runs, or to the last hour with activity
    once every job has ended; at most the latest ``CAMPAIGN_HOURS``. None before a send."""
    if first_sent_at is None:
        return []
    current = int((now_s() if now is None else now) // 3600)
    last = current
    if finished and last_sent_at is not None:
        last = min(current, int(last_sent_at // 3600) + ENDINGS_AFTER_LAST_SEND_H)
    first = max(int(first_sent_at // 3600), last - CAMPAIGN_HOURS + 1)
    wanted = list(range(first, last + 1))
    rows = [Minute(h * 3600, counts) for h, counts in
            zip(wanted, store.campaign_hours(cid, wanted, [SENT, *names]), strict=True)]  # fmt: skip
    while finished and len(rows) > 1 and not rows[-1].counts:
        rows.pop()  # a finished campaign's chart ends at its last activity
    return rows

"""Where a job sits in the indexes: its band of the state index and its entry in the phone
index, as the Lua steps write them (voicecall/store/lua/lib.lua reads the same numbers, from
voicecall.store.scripts) and as the store, the search and the retention scan read them.

The state index (``vc:idx:state``) scores a job ``band × BAND_WIDTH + created ms``; a band is
one (status, kind), and a completed job's status also names its outcome.
"""

from __future__ import annotations

from voicecall.job.records import JobRecord
from voicecall.job.states import FINAL_STATES, Kind, Outcome, State

BAND_WIDTH = 2**42  # ms since the epoch stay below it until the year 2109
# A job that ends within this long of its creation needs no retention timer in the due set:
# the sweeper finds it by its place in the state index (worker.retention).
RETENTION_SLACK_S = 3600
# Bands of the state index, in order: a completed job's band also says its outcome.
STATUSES: tuple[str, ...] = (
    *(s.value for s in State if s is not State.COMPLETED),
    *(f"completed/{o.value}" for o in Outcome),
)
KINDS: tuple[Kind, ...] = tuple(Kind)


def band(status: str, kind: Kind) -> int:
    """The state index band of (status, kind); ``status`` is a state, or completed/outcome."""
    return STATUSES.index(status) * len(KINDS) + KINDS.index(kind)


def final_bands() -> list[int]:
    """Every band of the state index that holds final jobs."""
    final = {s.value for s in FINAL_STATES}
    return [
        band(status, kind)
        for status in STATUSES
        if status.split("/", 1)[0] in final
        for kind in KINDS
    ]


def band_range(status: str) -> tuple[int, int]:
    """Scores (inclusive) of every job in ``status``, whatever its kind."""
    low = band(status, KINDS[0]) * BAND_WIDTH
    return low, low + len(KINDS) * BAND_WIDTH - 1


def phone_entry(job: JobRecord) -> str:
    """The job's member of the phone index: phone, then newest first, then id. The phone
    (digits) and the newness (13 digits) hold no ``:``, so the id is all after the second
    one, whatever it holds (:func:`phone_entry_id`)."""
    newness = MAX_MS - round(job.created_at * 1000)
    return f"{job.phone}:{newness:013d}:{job.id}"


def phone_entry_id(entry: str) -> str:
    """The job id of a phone-index member (:func:`phone_entry`): after its second ``:``;
    an id may hold ``:`` too (``attacker:victim-id`` is one id, not ``victim-id``)."""
    return entry.split(":", 2)[2]


MAX_MS = 10**13 - 1  # creation times in ms stay below it until the year 2286

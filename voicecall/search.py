"""Finding jobs: filters, newest first, cursor pages, and the campaigns' figures.

Three indexes, each kept by the store's Lua steps in the same step as the change they follow
(voicecall.lifecycle), drive a search; the rest of the filters are checked on the jobs read:

- **phone** (``vc:idx:p:*``): a phone's jobs, newest first. Used whenever ``phone`` is given.
- **campaign** (``vc:idx:c:{cid}:*``): a campaign's jobs in the order they joined it, newest
  first. Used when a ``campaign`` label is asked for.
- **state** (``vc:idx:state``): every job by (state, outcome, kind) and creation time. Used
  otherwise: the bands that the state, outcome and kind filters allow are merged by creation
  time (all of them when none is given), and a ``created`` range narrows every band.

A cursor is opaque (base64 of a small JSON): the index, the last position returned, and a
digest of the filters, so it is refused (422) with other filters, when malformed, or after
``CURSOR_TTL_S``. Positions never move while a job changes state: its creation time and its
place in a campaign or in the phone index are fixed, so a page never repeats or skips a job
that stays in what the filters ask for.

Other labels, ``due`` and ``finished`` ranges are checked on the jobs themselves; a page reads
at most ``SCAN_LIMIT`` candidates, and then ends early with a cursor to go on from.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from voicecall import keys, lifecycle
from voicecall.errors import CampaignNotFound, SearchError
from voicecall.jobs import FINAL_STATES, Kind, Outcome, State
from voicecall.records import JobRecord, Time
from voicecall.store import JobStore

MAX_LIMIT = 500
CURSOR_TTL_S = 24 * 3600
SCAN_LIMIT = 20_000  # candidates read for one page at most
_BATCH = 200  # candidates read per round trip


@dataclass(frozen=True)
class Filters:
    """What to find (every field ANDed; a tuple means any of its values)."""

    states: tuple[State, ...] = ()
    kinds: tuple[Kind, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    phone: str | None = None  # normalised: 84...
    idempotency_key: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    due_from: float | None = None
    due_to: float | None = None
    finished_from: float | None = None
    finished_to: float | None = None

    def __post_init__(self) -> None:
        for start, end in (("created", "created"), ("due", "due"), ("finished", "finished")):
            low, high = getattr(self, f"{start}_from"), getattr(self, f"{end}_to")
            if low is not None and high is not None and low > high:
                raise SearchError(f"{start}_from", f"is after {end}_to")

    @property
    def campaign(self) -> str | None:
        return next((value for key, value in self.labels if key == "campaign"), None)

    def digest(self) -> str:
        text = json.dumps(
            {k: v for k, v in vars(self).items()}, sort_keys=True, default=str
        ).encode()
        return hashlib.blake2b(text, digest_size=6).hexdigest()

    def matches(self, doc: dict[str, Any]) -> bool:
        """Every filter, checked on the job's stored document (voicecall.records)."""
        return self.matcher()(doc)

    def matcher(self) -> Callable[[dict[str, Any]], bool]:
        """:meth:`matches` with its sets built once, for checking many documents."""
        states, kinds, outcomes = self._states, self._kinds, self._outcomes

        def matches(doc: dict[str, Any]) -> bool:
            labels = doc.get("labels") or {}
            return (
                (not states or doc.get("state") in states)
                and (not kinds or doc.get("kind") in kinds)
                and (not outcomes or doc.get("outcome") in outcomes)
                and all(labels.get(key) == value for key, value in self.labels)
                and (self.phone is None or doc.get("phone") == self.phone)
                and (
                    self.idempotency_key is None
                    or doc.get("idempotency_key") == self.idempotency_key
                )
                and _within(doc.get("created_at"), self.created_from, self.created_to)
                and _within(doc.get("due_at"), self.due_from, self.due_to)
                and _within(doc.get("finished_at"), self.finished_from, self.finished_to)
            )

        return matches

    @property
    def _states(self) -> set[str]:
        return {state.value for state in self.states}

    @property
    def _kinds(self) -> set[str]:
        return {kind.value for kind in self.kinds}

    @property
    def _outcomes(self) -> set[str]:
        return {outcome.value for outcome in self.outcomes}


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


@dataclass
class Page:
    jobs: list[JobRecord]
    cursor: str | None  # None: nothing more


@dataclass(order=True)
class _Candidate:
    """A job found by an index, ordered newest first by ``key`` (descending)."""

    key: tuple[Any, ...]
    job_id: str = field(compare=False)


# --- cursors ---------------------------------------------------------------------------


def encode_cursor(index: str, position: Sequence[Any], filters: Filters) -> str:
    data = {"v": 1, "i": index, "p": list(position), "f": filters.digest(), "t": int(time.time())}
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, index: str, filters: Filters) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        valid = (
            isinstance(data, dict)
            and data.get("v") == 1
            and isinstance(data.get("p"), list)
            and isinstance(data.get("t"), int)
        )
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise SearchError("cursor", "is not a cursor this API gave")
    if data["f"] != filters.digest() or data["i"] != index:
        raise SearchError("cursor", "belongs to a search with other filters")
    if time.time() - data["t"] > CURSOR_TTL_S:
        raise SearchError("cursor", f"has expired (cursors last {CURSOR_TTL_S // 3600} h)")
    position: list[Any] = data["p"]
    return position


# --- the search ------------------------------------------------------------------------


def search(
    store: JobStore, filters: Filters, *, limit: int = 50, cursor: str | None = None
) -> Page:
    """One page of jobs matching ``filters``, newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError("limit", f"must be between 1 and {MAX_LIMIT}")
    index, source = _plan(filters)
    after = decode_cursor(cursor, index, filters) if cursor else None
    found: list[JobRecord] = []
    last: list[Any] | None = None
    candidates = _candidates(store, source(store, filters, after))
    matches = filters.matcher()
    for scanned, (position, doc) in enumerate(candidates, start=1):
        last = position
        if doc is not None and matches(doc):
            found.append(JobRecord.model_validate(doc))
            if len(found) == limit:
                break
        if scanned >= SCAN_LIMIT:
            break
    else:
        return Page(found, None)
    return Page(found, encode_cursor(index, last, filters) if last is not None else None)


def scan(store: JobStore, filters: Filters) -> Iterator[dict[str, Any]]:
    """Every job matching ``filters``, newest first, as stored documents; read a batch at a
    time, so the whole result is never held."""
    _, source = _plan(filters)
    matches = filters.matcher()
    for _, doc in _candidates(store, source(store, filters, None)):
        if doc is not None and matches(doc):
            yield doc


_Source = Callable[[JobStore, Filters, "list[Any] | None"], Iterator[tuple[list[Any], str]]]


def count(store: JobStore, filters: Filters) -> int | None:
    """How many jobs match, when the state index alone answers (filters on state, kind,
    outcome and creation time only); else None."""
    if filters != Filters(
        states=filters.states,
        kinds=filters.kinds,
        outcomes=filters.outcomes,
        created_from=filters.created_from,
        created_to=filters.created_to,
    ):
        return None
    low_ms, high_ms = _created_ms(filters)
    ranges = [
        (band * lifecycle.BAND_WIDTH + low_ms, band * lifecycle.BAND_WIDTH + high_ms)
        for band in _bands(filters)
    ]
    return sum(store.index_counts(keys.STATE_INDEX, ranges))


def _created_ms(filters: Filters) -> tuple[int, int]:
    low_ms = 0 if filters.created_from is None else int(filters.created_from * 1000)
    high_ms = lifecycle.BAND_WIDTH - 1
    if filters.created_to is not None:
        high_ms = min(high_ms, int(filters.created_to * 1000))
    return low_ms, high_ms


def _plan(filters: Filters) -> tuple[str, _Source]:
    """The index a search walks: the narrowest one its filters name."""
    if filters.idempotency_key is not None:
        return "key", _by_idempotency_key
    if filters.phone is not None:
        return "phone", _by_phone
    if filters.campaign is not None:
        return "campaign", _by_campaign
    return "state", _by_state


def _candidates(
    store: JobStore, positions: Iterator[tuple[list[Any], str]]
) -> Iterator[tuple[list[Any], dict[str, Any] | None]]:
    """(position, document) of each candidate, documents read ``_BATCH`` at a time (None for
    a job gone since its index entry was read)."""
    while batch := [c for _, c in zip(range(_BATCH), positions, strict=False)]:
        docs = store.get_docs([job_id for _, job_id in batch])
        yield from zip([position for position, _ in batch], docs, strict=True)


def _by_idempotency_key(
    store: JobStore, filters: Filters, after: list[Any] | None
) -> Iterator[tuple[list[Any], str]]:
    """The one job an idempotency key names, if any."""
    assert filters.idempotency_key is not None
    job_id = store.id_for_idempotency_key(filters.idempotency_key)
    if job_id is not None and after is None:
        yield [job_id], job_id


def _by_state(
    store: JobStore, filters: Filters, after: list[Any] | None
) -> Iterator[tuple[list[Any], str]]:
    """Candidates from every band the filters allow, merged newest first by (ms, id)."""
    bands = _bands(filters)
    low_ms, high_ms = _created_ms(filters)
    if after:
        high_ms = min(high_ms, int(after[0]))
    streams = [_band_stream(store, band, low_ms, high_ms, after) for band in bands]
    merged = heapq.merge(*streams, key=lambda item: (item[0], item[1]), reverse=True)
    for created_ms, job_id in merged:
        yield [created_ms, job_id], job_id


def _bands(filters: Filters) -> list[int]:
    statuses: list[str] = []
    for state in filters.states or list(State):
        if state is State.COMPLETED:
            outcomes = filters.outcomes or tuple(Outcome)
            statuses += [f"completed/{o.value}" for o in outcomes]
        elif not filters.outcomes:
            statuses.append(state.value)
    kinds = filters.kinds or tuple(Kind)
    return [lifecycle.band(status, kind) for status in statuses for kind in kinds]


def _band_stream(
    store: JobStore, band: int, low_ms: int, high_ms: int, after: list[Any] | None
) -> Iterator[tuple[int, str]]:
    """(created ms, id) of one band, newest first, from ``high_ms`` down to ``low_ms``; after
    a cursor, those at its time with an id not below its id were returned already. Equal
    times come in descending id order, so paging on with an offset among them is exact."""
    base = band * lifecycle.BAND_WIDTH
    bottom, top = base + low_ms, base + high_ms
    skip_score, skip_from = (base + int(after[0]), str(after[1])) if after else (None, "")
    offset = 0
    while True:
        rows = store.index_range(keys.STATE_INDEX, bottom, top, _BATCH, offset=offset)
        for job_id, score in rows:
            if score == skip_score and job_id >= skip_from:
                continue
            yield score - base, job_id
        if len(rows) < _BATCH:
            return
        last = rows[-1][1]
        same = sum(1 for _, score in rows if score == last)
        offset = offset + same if last == top else same
        top = last


def _by_campaign(
    store: JobStore, filters: Filters, after: list[Any] | None
) -> Iterator[tuple[list[Any], str]]:
    """Candidates in the campaign's index, newest first by their place in it."""
    name = filters.campaign
    assert name is not None
    found = store.campaign_number(name)
    if found is None:
        return
    cid, last_seq = found
    seq = int(after[0]) - 1 if after else last_seq
    while seq >= 1:
        chunk = keys.campaign_chunk(cid, seq)
        low = seq - seq % keys.CAMPAIGN_CHUNK
        for job_id, place in store.index_range(chunk, low, seq, keys.CAMPAIGN_CHUNK):
            yield [int(place)], job_id
        seq = low - 1


def _by_phone(
    store: JobStore, filters: Filters, after: list[Any] | None
) -> Iterator[tuple[list[Any], str]]:
    """Candidates of one phone, newest first."""
    phone = filters.phone
    assert phone is not None
    bucket = keys.phone_bucket(phone)
    start = f"({after[0]}" if after else f"[{phone}:"
    while True:
        members = store.lex_range(bucket, start, f"[{phone};", _BATCH)
        for member in members:
            yield [member], lifecycle.phone_entry_id(member)
        if len(members) < _BATCH:
            return
        start = f"({members[-1]}"


# --- campaigns ---------------------------------------------------------------------------


class CampaignSummary(BaseModel):
    """A campaign's figures, from its counters."""

    name: str
    total: int = Field(description="Jobs that joined the campaign.")
    by_state: dict[str, int] = Field(description="Jobs in each state now.")
    by_outcome: dict[str, int] = Field(description="Completed calls by outcome.")
    answered: int
    finished: int = Field(description="Jobs in a final state.")
    answer_rate: float | None = Field(description="answered ÷ completed; null before any.")
    duration_s: int = Field(description="Total call duration eSMS reported.")
    average_duration_s: float | None = Field(description="duration_s ÷ answered.")
    cost_vnd: float = Field(description="Total of eSMS's Price for the campaign's calls.")
    first_sent_at: Time | None = Field(description="First call handed to eSMS.")
    last_sent_at: Time | None = Field(description="Latest call handed to eSMS.")
    progress: float = Field(description="finished ÷ total, from 0 to 1.")


def campaign(store: JobStore, name: str) -> CampaignSummary:
    """The campaign's figures (counters, never a scan); raises :class:`CampaignNotFound`
    when no job ever named it."""
    found = store.campaign_number(name)
    if found is None:
        raise CampaignNotFound(name)
    figures = store.campaign_figures(found[0])
    return summarize(name, figures)


def campaigns(store: JobStore) -> list[CampaignSummary]:
    """Every campaign with its figures, newest first."""
    names = store.campaign_names()
    figures = store.campaign_figures_many([cid for cid, _ in names])
    return [summarize(name, f) for (_, name), f in zip(names, figures, strict=True)]


def summarize(name: str, figures: dict[str, float]) -> CampaignSummary:
    by_state = {s.value: int(figures.get(s.value, 0)) for s in State}
    by_outcome = {o.value: int(figures.get(f"outcome:{o.value}", 0)) for o in Outcome}
    total = int(figures.get("total", 0))
    finished = sum(by_state[s.value] for s in FINAL_STATES)
    completed = by_state[State.COMPLETED.value]
    answered = by_outcome[Outcome.ANSWERED.value]
    duration = int(figures.get("duration_s", 0))
    return CampaignSummary(
        name=name,
        total=total,
        by_state=by_state,
        by_outcome=by_outcome,
        answered=answered,
        finished=finished,
        answer_rate=round(answered / completed, 4) if completed else None,
        duration_s=duration,
        average_duration_s=round(duration / answered, 1) if answered else None,
        cost_vnd=round(float(figures.get("price_vnd", 0.0)), 4),
        first_sent_at=_moment(figures.get("first_sent_at")),
        last_sent_at=_moment(figures.get("last_sent_at")),
        progress=round(finished / total, 4) if total else 0.0,
    )


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)

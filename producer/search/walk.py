"""Finding jobs: the indexes a search walks, newest first, a page at a time within a budget.

Three indexes, each kept by the store's Lua steps in the same step as the change they follow
(voicecall.job.lifecycle), drive a search; the rest of the filters are checked on the jobs read:

- **phone** (``vc:idx:p:*``): a phone's jobs, newest first. Used whenever ``phone`` is given.
- **campaign** (``vc:idx:c:{cid}:*``): a campaign's jobs in the order they joined it, newest
  first. Used when a ``campaign`` label is asked for.
- **state** (``vc:idx:state``): every job by (state, outcome, kind) and creation time. Used
  otherwise: the bands that the state, outcome and kind filters allow are merged by creation
  time (all of them when none is given), and a ``created`` range narrows every band.

An ``idempotency_key`` names one job through its client's key (``client``, by default the
client who searches: keys are scoped per client).

**Cursors** are signed and made for one client (producer.search.cursors: a :class:`Caller` makes and
reads them); the position a cursor holds is checked here against what its index gives (a time
and an id, a member of this phone's index, a place in a campaign, clamped to its last) before
it is used. Positions never move while a job changes state: its creation time and its place in a
campaign or in the phone index are fixed, so a page never repeats or skips a job that stays in
what the filters ask for.

**Bounded work.** A page does at most ``WORK_BUDGET`` units of Redis work (:class:`Budget`):
``CALL_COST`` per round trip, plus one per index entry or document it may read (or skip past).
When the next round trip does not fit, the page ends early, with a cursor from the last
position looked at (an empty campaign chunk is a position too), so any cursor, any filters and
any data cost one page a bounded amount; the client goes on with the cursor. Other labels,
``client``, ``due`` and ``finished`` ranges are checked on the jobs read.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from producer.search.cursors import NOT_OURS, Caller, is_of
from producer.search.filters import Filters
from voicecall.errors import SearchError
from voicecall.job import keys, layout
from voicecall.job.contract import JOB_ID_PATTERN
from voicecall.job.esms_limits import REQUEST_ID_MAX_LEN
from voicecall.job.records import JobRecord
from voicecall.job.states import Kind, Outcome, State
from voicecall.store.job_store import JobStore

MAX_LIMIT = 500
WORK_BUDGET = 50_000  # units of Redis work one page may do (about 22,000 jobs looked at)
CALL_COST = 20  # units per round trip; an entry or a document read costs 1
_BATCH = 200  # candidates read per round trip
_MAX_PLACE = 2**53  # a campaign place, as Lua's doubles keep it exactly
_NEWNESS = re.compile(r"[0-9]{13}")  # a phone-index member's middle (layout.phone_entry)
_JOB_ID = re.compile(JOB_ID_PATTERN)


@dataclass
class Page:
    jobs: list[JobRecord]
    cursor: str | None  # None: nothing more


class Budget:
    """The Redis work one page may still do, in units: ``CALL_COST`` per round trip plus one
    per entry or document it reads (or skips past). A round trip is made only when the most
    it can cost fits; what it did not read is given back after."""

    def __init__(self, units: float) -> None:
        self.left = units
        self.spent = False  # True once a round trip did not fit: the page ends there

    def take(self, entries: int, *, calls: int = 1) -> bool:
        """Take ``calls`` round trips reading up to ``entries`` in all; False when they do
        not fit (nothing is taken, and the page ends)."""
        cost = calls * CALL_COST + entries
        if cost > self.left:
            self.spent = True
            return False
        self.left -= cost
        return True

    def give_back(self, entries: int) -> None:
        """Entries taken for a round trip that read fewer."""
        self.left += entries


def unbounded() -> Budget:
    """No limit: an export walks every job it finds (it takes no cursor)."""
    return Budget(math.inf)


# --- cursor positions ------------------------------------------------------------------


def _position(index: str, position: list[Any], filters: Filters) -> list[Any]:
    """``position`` when it is one the index ``index`` gives, else SearchError."""
    if index == "state":
        valid = (
            len(position) == 2
            and is_of(position[0], int)
            and 0 <= position[0] < layout.BAND_WIDTH
            and is_of(position[1], str)
            and (position[1] == "" or _is_job_id(position[1]))
        )
    elif index == "campaign":
        valid = len(position) == 1 and is_of(position[0], int) and 1 <= position[0] <= _MAX_PLACE
    elif index == "phone":  # it goes to Redis as a bound: a member of this phone's index
        valid = (
            len(position) == 1
            and is_of(position[0], str)
            and _is_phone_member(position[0], str(filters.phone))
        )
    else:  # "key": the one job of an idempotency key, returned already
        valid = len(position) == 1 and is_of(position[0], str)
    if not valid:
        raise SearchError("cursor", NOT_OURS)
    return position


def _is_job_id(text: str) -> bool:
    """An id as intake takes it (voicecall.job.contract.JobId)."""
    return len(text) <= REQUEST_ID_MAX_LEN and _JOB_ID.fullmatch(text) is not None


def _is_phone_member(member: str, phone: str) -> bool:
    """One of ``phone``'s index members (layout.phone_entry), or the top of them."""
    if member == f"{phone}:":
        return True
    head, newness, job_id = [*member.split(":", 2), "", ""][:3]
    return head == phone and _NEWNESS.fullmatch(newness) is not None and _is_job_id(job_id)


# --- the search ------------------------------------------------------------------------


def search(
    store: JobStore,
    filters: Filters,
    caller: Caller,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """One page of jobs matching ``filters``, newest first, as ``caller`` asks them; at most
    ``WORK_BUDGET`` of Redis work (then it ends early, with a cursor)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError("limit", f"must be between 1 and {MAX_LIMIT}")
    filters = filters.scoped(caller.client)
    index, source = _plan(filters)
    after = (
        _position(index, caller.decode(cursor, index, filters.digest()), filters)
        if cursor
        else None
    )
    budget = Budget(WORK_BUDGET)
    found: list[JobRecord] = []
    last: list[Any] | None = None
    matches = filters.matcher()
    for position, doc in _candidates(store, source(store, filters, after, budget), budget):
        last = position
        if doc is not None and matches(doc):
            found.append(JobRecord.model_validate(doc))
            if len(found) == limit:
                break
    else:
        if not budget.spent:
            return Page(found, None)
    if last is None:  # the budget ended the page before any position: go on from its start
        return Page(found, cursor or caller.encode(index, _top(index, filters), filters.digest()))
    return Page(found, caller.encode(index, last, filters.digest()))


def _top(index: str, filters: Filters) -> list[Any]:
    """A position above every other of ``index`` (a cursor that starts from the top)."""
    tops: dict[str, list[Any]] = {
        "state": [layout.BAND_WIDTH - 1, ""],  # no job is made in the year 2109
        "campaign": [_MAX_PLACE],
        "phone": [f"{filters.phone}:"],
    }
    return tops.get(index, [""])


def scan(store: JobStore, filters: Filters, *, client: str) -> Iterator[dict[str, Any]]:
    """Every job matching ``filters`` as ``client`` asks them, newest first, as stored
    documents; read a batch at a time, so the whole result is never held."""
    filters = filters.scoped(client)
    _, source = _plan(filters)
    matches = filters.matcher()
    budget = unbounded()
    for _, doc in _candidates(store, source(store, filters, None, budget), budget):
        if doc is not None and matches(doc):
            yield doc


def tally(store: JobStore, filters: Filters, *, client: str, units: float) -> tuple[int, bool]:
    """How many jobs match: (count, exact). From the state index alone when it answers
    (:func:`count`), else by reading candidates within ``units`` of Redis work; ``exact`` is
    False when that work ran out first (the count is then a lower bound)."""
    exact = count(store, filters)
    if exact is not None:
        return exact, True
    filters = filters.scoped(client)
    _, source = _plan(filters)
    matches, budget, found = filters.matcher(), Budget(units), 0
    for _, doc in _candidates(store, source(store, filters, None, budget), budget):
        found += doc is not None and matches(doc)
    return found, not budget.spent


# A source yields (position, job id) newest first, or (position, None): everything from this
# position up has been looked at (a walk over empty index chunks records its progress so).
_Step = tuple[list[Any], str | None]
_Source = Callable[[JobStore, Filters, "list[Any] | None", Budget], Iterator[_Step]]


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
        (band * layout.BAND_WIDTH + low_ms, band * layout.BAND_WIDTH + high_ms)
        for band in _bands(filters)
    ]
    return sum(store.index_counts(keys.STATE_INDEX, ranges))


def _created_ms(filters: Filters) -> tuple[int, int]:
    low_ms = 0 if filters.created_from is None else int(filters.created_from * 1000)
    high_ms = layout.BAND_WIDTH - 1
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
    store: JobStore, steps: Iterator[_Step], budget: Budget
) -> Iterator[tuple[list[Any], dict[str, Any] | None]]:
    """(position, document) of each step, documents read ``_BATCH`` at a time (None for a
    job gone since its index entry was read, and for a step that names no job). Stops when
    the budget cannot pay for a batch's documents: the page ends before that batch."""
    while batch := [step for _, step in zip(range(_BATCH), steps, strict=False)]:
        ids = [job_id for _, job_id in batch if job_id is not None]
        if ids and not budget.take(len(ids)):
            return
        docs = iter(store.get_docs(ids))
        for position, job_id in batch:
            yield position, (next(docs) if job_id is not None else None)


def _by_idempotency_key(
    store: JobStore, filters: Filters, after: list[Any] | None, budget: Budget
) -> Iterator[_Step]:
    """The one job the client's idempotency key names, if any."""
    assert filters.idempotency_key is not None and filters.client is not None
    if after is not None or not budget.take(0):
        return
    job_id = store.id_for_idempotency_key(filters.client, filters.idempotency_key)
    if job_id is not None:
        yield [job_id], job_id


def _by_state(
    store: JobStore, filters: Filters, after: list[Any] | None, budget: Budget
) -> Iterator[_Step]:
    """Candidates from every band the filters allow, merged newest first by (ms, id)."""
    bands = _bands(filters)
    low_ms, high_ms = _created_ms(filters)
    if after:
        high_ms = min(high_ms, int(after[0]))
    streams = [_band_stream(store, band, low_ms, high_ms, after, budget) for band in bands]
    merged = heapq.merge(*streams, key=lambda item: (item[0], item[1]), reverse=True)
    for created_ms, job_id in merged:
        if budget.spent:  # a band stopped short: what the others hold may be older than its rest
            return
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
    return [layout.band(status, kind) for status in statuses for kind in kinds]


def _band_stream(
    store: JobStore,
    band: int,
    low_ms: int,
    high_ms: int,
    after: list[Any] | None,
    budget: Budget,
) -> Iterator[tuple[int, str]]:
    """(created ms, id) of one band, newest first, from ``high_ms`` down to ``low_ms``; after
    a cursor, those at its time with an id not below its id were returned already. Equal
    times come in descending id order, so paging on with an offset among them is exact (the
    entries an offset skips are Redis work too: they are paid for)."""
    base = band * layout.BAND_WIDTH
    bottom, top = base + low_ms, base + high_ms
    skip_score, skip_from = (base + int(after[0]), str(after[1])) if after else (None, "")
    offset = 0
    while budget.take(_BATCH + offset):
        rows = store.index_range(keys.STATE_INDEX, bottom, top, _BATCH, offset=offset)
        budget.give_back(_BATCH - len(rows))
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
    store: JobStore, filters: Filters, after: list[Any] | None, budget: Budget
) -> Iterator[_Step]:
    """Candidates in the campaign's index, newest first by their place in it; each chunk read
    is a step (a chunk may be empty: places are reserved before their job is stored)."""
    name = filters.campaign
    assert name is not None
    if not budget.take(0, calls=2):
        return
    found = store.campaign_number(name)
    if found is None:
        return
    cid, last_seq = found
    seq = min(int(after[0]) - 1, last_seq) if after else last_seq
    while seq >= 1 and budget.take(keys.CAMPAIGN_CHUNK):
        chunk = keys.campaign_chunk(cid, seq)
        low = seq - seq % keys.CAMPAIGN_CHUNK
        rows = store.index_range(chunk, low, seq, keys.CAMPAIGN_CHUNK)
        budget.give_back(keys.CAMPAIGN_CHUNK - len(rows))
        for job_id, place in rows:
            yield [int(place)], job_id
        yield [max(low, 1)], None
        seq = low - 1


def _by_phone(
    store: JobStore, filters: Filters, after: list[Any] | None, budget: Budget
) -> Iterator[_Step]:
    """Candidates of one phone, newest first."""
    phone = filters.phone
    assert phone is not None
    bucket = keys.phone_bucket(phone)
    start = f"({after[0]}" if after else f"[{phone}:"
    while budget.take(_BATCH):
        members = store.lex_range(bucket, start, f"[{phone};", _BATCH)
        budget.give_back(_BATCH - len(members))
        for member in members:
            yield [member], layout.phone_entry_id(member)
        if len(members) < _BATCH:
            return
        start = f"({members[-1]}"

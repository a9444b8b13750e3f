"""The console's lists of jobs (Calls, Scheduled): the search form's filters read in TIMEZONE,
a true total, and previous/next paging.

Search cursors only go forward, so a page's address carries the cursors of the pages before
it (``back``, oldest first, at most ``MAX_BACK``): "Previous" pops one. The total comes from the
state index when it alone answers, else from counting within ``COUNT_UNITS`` of Redis work;
past that the page says "at least N", never a number that looks exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import Request

from producer.search import cursors, walk
from producer.search.query import FILTER_PARAMS, parse_filters
from voicecall.config.clients import CLI_CLIENT, CONSOLE_CLIENT, PYTHON_CLIENT
from voicecall.job.records import JobRecord
from voicecall.job.states import FINAL_STATES, Kind, Outcome, State

PAGE_SIZE = 50
MAX_BACK = 20  # pages one can go back through ("Previous" past them goes to the first)
COUNT_UNITS = 60_000  # Redis work to count matches when no index holds the number
LIST_PARAMS = ("cursor", "back", "page", "notice")


@dataclass
class Listing:
    """One page of a list of jobs, with what its template needs."""

    jobs: list[JobRecord]
    total: int
    exact: bool
    first: int  # the 1-based rank of the page's first job
    previous: str | None = None  # query strings of the neighbouring pages
    next: str | None = None
    form: dict[str, list[str]] = field(default_factory=dict)

    @property
    def unfinished(self) -> bool:
        return any(job.state not in FINAL_STATES for job in self.jobs)


def caller(request: Request) -> cursors.Caller:
    """The console searches as the client ``console`` (it makes no job of its own)."""
    return cursors.Caller(CONSOLE_CLIENT, request.app.state.cursor_key)


def filter_pairs(request: Request) -> list[tuple[str, str]]:
    """The search form's fields that were filled in (an empty field is no filter)."""
    return [
        (k, v.strip())
        for k, v in request.query_params.multi_items()
        if v.strip() and k not in LIST_PARAMS
    ]


def options(request: Request) -> dict[str, list[str]]:
    """The choices of the multi-select filters."""
    names: list[str] = request.app.state.api_client_names
    return {
        "state": [s.value for s in State],
        "kind": [k.value for k in Kind],
        "outcome": [o.value for o in Outcome],
        "client": sorted({*names, PYTHON_CLIENT, CLI_CLIENT}),
    }


def search(request: Request, pairs: list[tuple[str, str]], size: int = PAGE_SIZE) -> Listing:
    """The page the request's ``cursor`` names of the jobs ``pairs`` asks for (SearchError
    names a bad filter)."""
    store = request.app.state.store
    filters, _ = parse_filters(pairs, allowed=FILTER_PARAMS, zone=request.app.state.settings.zone)
    cursor = request.query_params.get("cursor") or None
    back = request.query_params.getlist("back")[-MAX_BACK:]
    number = _page_number(request.query_params.get("page"), cursor)
    who = caller(request)
    found = walk.search(store, filters, who, limit=size, cursor=cursor)
    total, exact = walk.tally(store, filters, client=CONSOLE_CLIENT, units=COUNT_UNITS)
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    listing = Listing(found.jobs, total, exact, (number - 1) * size + 1, form=form)
    if cursor:  # back[-1] is the previous page's cursor ("" for the first page)
        earlier = [("back", c) for c in back[:-1]]
        to = [("cursor", back[-1]), ("page", str(number - 1))] if back and back[-1] else []
        listing.previous = urlencode(pairs + earlier + to)
    if found.cursor:
        trail = [("back", c) for c in [*back, cursor or ""][-MAX_BACK:]]
        page = [("cursor", found.cursor), ("page", str(number + 1))]
        listing.next = urlencode(pairs + trail + page)
    return listing


def _page_number(raw: str | None, cursor: str | None) -> int:
    """The page's number as its link gave it (1 without a cursor; only for display)."""
    if not cursor:
        return 1
    return int(raw) if raw and raw.isdigit() and 1 < int(raw) < 10**9 else 2

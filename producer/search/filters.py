"""What a search asks for: :class:`Filters`, every field ANDed, checked on stored documents.

The indexes a search walks (producer.search.walk) use some of the filters to pick candidates;
every filter is checked again here on each job read, so a candidate never passes on the
index's word alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from voicecall.errors import SearchError
from voicecall.job.states import Kind, Outcome, State


@dataclass(frozen=True)
class Filters:
    """What to find (every field ANDed; a tuple means any of its values)."""

    states: tuple[State, ...] = ()
    kinds: tuple[Kind, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    phone: str | None = None  # normalised: 84...
    idempotency_key: str | None = None  # in the scope of `client` (see `scoped`)
    client: str | None = None  # the API client that made the job (voicecall.config.clients)
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

    def scoped(self, client: str) -> Filters:
        """These filters as ``client`` asks them: an idempotency key without a ``client``
        filter is ``client``'s own (keys are scoped per client)."""
        if self.idempotency_key is not None and self.client is None:
            return replace(self, client=client)
        return self

    def digest(self) -> str:
        text = json.dumps(
            {k: v for k, v in vars(self).items()}, sort_keys=True, default=str
        ).encode()
        return hashlib.blake2b(text, digest_size=6).hexdigest()

    def matches(self, doc: dict[str, Any]) -> bool:
        """Every filter, checked on the job's stored document (voicecall.job.records)."""
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
                and (self.client is None or doc.get("client") == self.client)
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

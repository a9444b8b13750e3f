"""A search's keyword filters as the query pairs ``GET /v1/calls`` reads, written once for the
Python clients (:mod:`voicecall.client`) and the producer's own client, which both take
``state=["queued", "retrying"]``, ``labels={"campaign": "tet"}``, ``created_from=datetime(...)``.

A name the API does not know is passed on as it is, so the API's 422 names it instead of the
client dropping it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any


def filter_pairs(filters: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``filters`` as (name, value) query pairs: ``None`` left out, a collection repeated,
    ``labels`` as one ``label=key:value`` each."""
    pairs: list[tuple[str, str]] = []
    for name, value in filters.items():
        if value is None:
            continue
        if name == "labels":
            pairs += [("label", f"{key}:{item}") for key, item in dict(value).items()]
            continue
        many = isinstance(value, list | tuple | set | frozenset)
        pairs += [(name, _query_value(item)) for item in (value if many else [value])]
    return pairs


def _query_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # a naive one is read in TIMEZONE, or refused naming the filter
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)

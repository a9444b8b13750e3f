"""A search as query parameters (``GET /v1/calls``, ``/v1/calls/export``, the CLI) read into
:class:`~producer.search.filters.Filters`, each refused value naming its parameter.

- ``state``, ``kind``, ``outcome``: repeat the parameter or separate values with commas;
  any of them matches.
- ``label=key:value``: repeatable; every label given must match.
- ``phone``: normalised as at intake (``0901 234 567`` finds ``84901234567``).
- ``idempotency_key``: the one job created with it (1-200 characters), by ``client`` or, without
  it, by the client who searches (keys are scoped per client).
- ``client``: the API client that made the job (its name: voicecall.config.clients).
- ``created_from``/``created_to``, ``due_from``/``due_to``, ``finished_from``/``finished_to``:
  inclusive bounds, as ISO 8601 (``2030-01-01T00:00:00Z``; one without an offset is read in
  ``TIMEZONE``, as intake reads ``send_at``) or epoch seconds.

Anything else is refused, as is a single-valued parameter given twice: a filter that is
silently ignored would return jobs the caller did not ask for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime, tzinfo
from enum import Enum
from typing import TypeVar

from producer.search.filters import Filters
from voicecall.config.clients import NAME_RULE, is_client_name
from voicecall.errors import SearchError
from voicecall.formats.phones import PhoneError, normalize_phone
from voicecall.job.contract import LABELS_MAX
from voicecall.job.states import Kind, Outcome, State

FILTER_PARAMS = (
    "state",
    "kind",
    "outcome",
    "label",
    "phone",
    "idempotency_key",
    "client",
    "created_from",
    "created_to",
    "due_from",
    "due_to",
    "finished_from",
    "finished_to",
)
PAGE_PARAMS = ("limit", "cursor")
_REPEATABLE = {"state", "kind", "outcome", "label"}
_MAX_VALUE = 1024  # characters in one parameter value
IDEMPOTENCY_KEY_MAX = 200  # as at intake (voicecall.job.contract)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LATEST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z

E = TypeVar("E", bound=Enum)


def parse_filters(
    pairs: Iterable[tuple[str, str]],
    *,
    allowed: Iterable[str] = FILTER_PARAMS,
    zone: tzinfo | None = None,
) -> tuple[Filters, dict[str, str]]:
    """The filters in ``pairs`` (a query string's items, in order) and the other ``allowed``
    parameters (such as ``limit``), each given once; raises :class:`SearchError`. A time
    without an offset is read in ``zone`` (refused without one)."""
    allowed = set(allowed)
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise SearchError(name, f"is not a parameter here (known: {known})")
        if len(value) > _MAX_VALUE:
            raise SearchError(name, f"is longer than {_MAX_VALUE} characters")
        if _CONTROL.search(value):
            raise SearchError(name, "must not contain control characters")
        if name in values and name not in _REPEATABLE:
            raise SearchError(name, "is given more than once")
        values.setdefault(name, []).append(value)
    single = {name: found[0] for name, found in values.items() if name not in _REPEATABLE}
    filters = Filters(
        states=_enums(values.get("state", []), State, "state"),
        kinds=_enums(values.get("kind", []), Kind, "kind"),
        outcomes=_enums(values.get("outcome", []), Outcome, "outcome"),
        labels=_labels(values.get("label", [])),
        phone=_phone(single.pop("phone", None)),
        idempotency_key=_key(single.pop("idempotency_key", None)),
        client=_client(single.pop("client", None)),
        **{name: _time(single.pop(name, None), name, zone) for name in _TIME_PARAMS},
    )
    return filters, single


_TIME_PARAMS = tuple(p for p in FILTER_PARAMS if p.endswith(("_from", "_to")))  # bounds


def _enums(raw: list[str], enum: type[E], param: str) -> tuple[E, ...]:
    found: list[E] = []
    for value in (part.strip() for item in raw for part in item.split(",")):
        try:
            member = enum(value)
        except ValueError:
            choices = ", ".join(str(m.value) for m in enum)
            raise SearchError(param, f"must be one of {choices} (got {value!r})") from None
        if member not in found:
            found.append(member)
    return tuple(found)


def _labels(raw: list[str]) -> tuple[tuple[str, str], ...]:
    if len(raw) > LABELS_MAX:
        raise SearchError("label", f"may be given at most {LABELS_MAX} times")
    labels = []
    for item in raw:
        key, colon, value = item.partition(":")
        if not colon or not key:
            raise SearchError("label", f"must be key:value (got {item!r})")
        labels.append((key, value))
    return tuple(labels)


def _phone(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return normalize_phone(raw)
    except PhoneError as exc:
        raise SearchError("phone", str(exc)) from None


def _key(raw: str | None) -> str | None:
    if raw is not None and not 1 <= len(raw) <= IDEMPOTENCY_KEY_MAX:
        raise SearchError("idempotency_key", f"must be 1-{IDEMPOTENCY_KEY_MAX} characters")
    return raw


def _client(raw: str | None) -> str | None:
    if raw is not None and not is_client_name(raw):
        raise SearchError("client", f"must be {NAME_RULE}")
    return raw


def _time(raw: str | None, param: str, zone: tzinfo | None) -> float | None:
    """Epoch seconds from ISO 8601 (read in ``zone`` without an offset), or from a number of
    epoch seconds."""
    if raw is None:
        return None
    rule = "must be a time: RFC 3339 with an offset (2030-01-01T08:00:00+07:00) or epoch seconds"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = _rfc3339(raw, param, rule, zone)
    if not math.isfinite(seconds) or not 0 <= seconds <= _LATEST_EPOCH:
        raise SearchError(param, f"must be between 0 and {_LATEST_EPOCH} epoch seconds")
    return round(seconds, 3)


def _rfc3339(raw: str, param: str, rule: str, zone: tzinfo | None) -> float:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise SearchError(param, rule) from None
    if moment.tzinfo is None and zone is not None:
        moment = moment.replace(tzinfo=zone)
    if moment.tzinfo is None:
        raise SearchError(param, "has no UTC offset; add one (Z or +07:00)")
    return moment.timestamp()

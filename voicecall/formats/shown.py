"""Times for people to read: one short format everywhere (console and CLI), in the configured
``TIMEZONE`` with the zone shown, e.g. ``09 Dec 09:00:05 UTC+07``; the year appears only when
it is not the current one. Machines get ISO 8601 (:func:`iso`), shown on hover in the console.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

SHORT = "%d %b %H:%M:%S"
SHORT_WITH_YEAR = "%d %b %Y %H:%M:%S"


def moment_of(value: float | datetime | str) -> datetime:
    """An aware datetime from epoch seconds, an aware datetime or an ISO 8601 text (a naive
    one is taken as UTC: the store keeps UTC)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def zone_label(moment: datetime) -> str:
    """The zone's abbreviation, or ``UTC+07`` where the zone database has only a number."""
    name = moment.tzname() or ""
    return f"UTC{name}" if name[:1] in "+-" and name else name


def short(value: float | datetime | str, zone: tzinfo, *, now: datetime | None = None) -> str:
    """``value`` in ``zone``, in the short format with the zone."""
    local = moment_of(value).astimezone(zone)
    this_year = (now or datetime.now(UTC)).astimezone(zone).year
    text = local.strftime(SHORT if local.year == this_year else SHORT_WITH_YEAR)
    return f"{text} {zone_label(local)}"


def iso(value: float | datetime | str, zone: tzinfo) -> str:
    """``value`` as ISO 8601 in ``zone``, to the second (the hover text, machine-readable)."""
    return moment_of(value).astimezone(zone).isoformat(timespec="seconds")

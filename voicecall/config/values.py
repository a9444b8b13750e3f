"""Settings written as text, read: each function takes one value as the environment gives
it and returns it parsed, or raises ValueError stating the rule (the settings then name the
setting, in one line at start-up).
"""

from __future__ import annotations

import ipaddress
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """``QUIET_HOURS``: ``HH:MM-HH:MM`` (local time, TIMEZONE), or off."""
    if value.strip().lower() in ("", "off", "none"):
        return None
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError("must be HH:MM-HH:MM, or 'off'")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def parse_quota(value: str) -> tuple[int, int] | None:
    """``API_TOKEN_QUOTA``: ``CALLS/SECONDS``, or off."""
    if value.strip().lower() in ("", "off", "none"):
        return None
    calls, sep, seconds = value.partition("/")
    try:
        quota = (int(calls), int(seconds.strip().removesuffix("s")))
    except ValueError:
        quota = (0, 0)
    if not sep or quota[0] < 1 or not 1 <= quota[1] <= 86_400:
        raise ValueError("must be CALLS/SECONDS (e.g. 600/60; seconds 1-86400), or 'off'")
    return quota


def ip_networks(value: str) -> str:
    """``FORWARDED_ALLOW_IPS``: comma-separated IP addresses or networks, or ``*``."""
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    try:
        for entry in entries:
            if entry != "*":
                ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            "must be comma-separated IP addresses or networks (10.0.0.0/8), or *"
        ) from None
    return ",".join(entries)


def time_zone(value: str) -> str:
    """``TIMEZONE``: an IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Asia/Ho_Chi_Minh") from None
    return value


def ip_address(value: str) -> str:
    """``METRICS_HOST``: one IP address to bind to."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IP address such as 127.0.0.1 or 0.0.0.0") from None
    return value


def trace_link(value: str) -> str:
    """``TRACE_LINK_TEMPLATE``: empty, or an http(s) URL holding ``{trace_id}`` once."""
    if not value:
        return value
    if not value.startswith(("http://", "https://")) or value.count("{trace_id}") != 1:
        raise ValueError("must be an http:// or https:// URL holding {trace_id} once")
    if any(c in value for c in "<>\"' ") or not value.isprintable():
        raise ValueError("must be a URL without spaces, quotes or control characters")
    return value

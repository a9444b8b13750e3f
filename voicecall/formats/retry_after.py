"""``Retry-After`` from a peer (a webhook receiver, eSMS, the voicecall API), read as hostile input.

RFC 9110 §10.2.3 allows two forms: delta-seconds (one or more ASCII digits, nothing else) or
an HTTP-date. Everything else is unreadable, and unreadable means "no hint" (``None``): the
caller keeps its own backoff. In particular:

- only ASCII ``0-9`` are digits. ``'²'`` passes ``str.isdigit()`` and then makes ``float()``
  raise; Arabic-Indic or full-width digits are read by ``float()`` as numbers. Signs,
  fractions, exponents, ``NaN`` and ``inf`` are not delta-seconds either;
- a digit string of any length is safe (``int()`` refuses more than 4,300 digits);
- a date is printable ASCII, and anything ``email.utils`` cannot place in time (a year of twenty
  digits overflows, an offset of days is refused) is unreadable;
- the result is clamped to [0, ``limit_s``]: a past date means "now", a far-future one or a
  huge number means the maximum.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["MAX_RETRY_AFTER_S", "parse_retry_after"]

# No peer's pause is honoured past a day: eSMS forgets a RequestId after 24 h, and webhook
# retries are capped lower still (WEBHOOK_RETRY_MAX_S, default 6 h).
MAX_RETRY_AFTER_S = 24 * 3600

_DELTA_SECONDS = re.compile(r"[0-9]+")
_OPTIONAL_WHITESPACE = " \t"  # OWS: SP and HTAB, never other Unicode spaces
_MAX_DIGITS = len(str(MAX_RETRY_AFTER_S))
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


def parse_retry_after(
    value: str | None, *, now: float | None = None, limit_s: float = MAX_RETRY_AFTER_S
) -> float | None:
    """Seconds to wait, in [0, ``limit_s``], or ``None`` when absent or unreadable.

    ``now`` (epoch seconds) is the time an HTTP-date counts from; the clock by default.
    Never raises, whatever ``value`` holds.
    """
    if value is None:
        return None
    text = value.strip(_OPTIONAL_WHITESPACE)
    if _DELTA_SECONDS.fullmatch(text):
        digits = text.lstrip("0")
        if len(digits) > _MAX_DIGITS:
            return float(limit_s)
        return float(min(int(digits or "0"), limit_s))
    seconds = _seconds_until(text, time.time() if now is None else now)
    return None if seconds is None else min(max(0.0, seconds), float(limit_s))


def _seconds_until(text: str, now: float) -> float | None:
    """An HTTP-date's distance from ``now``, or None if ``text`` is not one."""
    if not _PRINTABLE_ASCII.fullmatch(text) or not any(c.isalpha() for c in text):
        return None  # a date is printable ASCII and names its month
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # asctime and "-0000" carry no zone: HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        return when.timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None

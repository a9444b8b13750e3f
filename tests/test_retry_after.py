"""``Retry-After`` from a webhook receiver or from eSMS, read defensively (issue 18, finding 2).

Hostile first: Unicode digits that pass ``str.isdigit()`` (``'²'``, Arabic-Indic, Devanagari,
full-width), signs, fractions, exponents, NaN and infinity, digit strings longer than Python
will convert, dates far in the future or the past, offsets out of range and garbage. The
property tests run arbitrary strings through the parser: it never raises and whatever it
returns lies in [0, MAX_RETRY_AFTER_S].
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicecall.formats.retry_after import MAX_RETRY_AFTER_S, parse_retry_after

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(delta: timedelta) -> str:
    return format_datetime(NOW + delta, usegmt=True)


@pytest.mark.parametrize(
    "value",
    [
        "²",  # passes str.isdigit(); float() raises (finding 2 as reported)
        "٣",  # Arabic-Indic three: float() reads it as 3.0
        "۵",  # Extended Arabic-Indic five
        "३",  # Devanagari three
        "１２",  # full-width digits
        "1²",
        "¹⁰",
        "1.5",  # delta-seconds are whole seconds
        "0.25",
        "-5",
        "+5",
        "1e3",
        "1_000",
        "0x10",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        "",
        "   ",
        "5 5",
        "5s",
        "5\x00",
        "\x005",
        "5\r\n",
        "\u20035",  # an em space is not optional whitespace (SP / HTAB)
        "soon",
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",  # OverflowError in parsedate
        "Mon, 01 Jan 2000 00:00:00 +9999",  # an offset of days
        "Mon, 32 Jan 2025 00:00:00 GMT",
        "Mon, 01 Foo 2025 00:00:00 GMT",
        "Mon, 01 Jan 2025 25:61:61 GMT",
        "Mon, ٠١ Jan 2025 00:00:00 GMT",  # Unicode digits inside a date
        "Sat, 01 Mar 2025 12:00:00 GMT\x00",
    ],
)
def test_unreadable_values_give_none(value: str) -> None:
    """Anything but ASCII delta-seconds or an HTTP-date is unreadable: None, never an error."""
    assert parse_retry_after(value, now=NOW.timestamp()) is None


def test_none_gives_none() -> None:
    """No header at all: None."""
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("5", 5.0),
        ("  120\t", 120.0),  # optional whitespace around the value
        ("007", 7.0),
        ("0" * 5000 + "9", 9.0),  # leading zeros cost nothing
        (str(MAX_RETRY_AFTER_S), float(MAX_RETRY_AFTER_S)),
        (str(MAX_RETRY_AFTER_S + 1), float(MAX_RETRY_AFTER_S)),
        ("99999999999999999999", float(MAX_RETRY_AFTER_S)),
        ("9" * 5000, float(MAX_RETRY_AFTER_S)),  # int() refuses over 4,300 digits
    ],
)
def test_delta_seconds_are_read_and_clamped(value: str, seconds: float) -> None:
    """ASCII delta-seconds: their value, at most MAX_RETRY_AFTER_S, however many digits."""
    assert parse_retry_after(value, now=NOW.timestamp()) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (at(timedelta(seconds=90)), 90.0),
        ("Saturday, 01-Mar-25 12:01:30 GMT", 90.0),  # RFC 850, obsolete but valid
        ("Sat Mar  1 12:01:30 2025", 90.0),  # asctime, no zone: UTC
        (at(timedelta(0)), 0.0),
        (at(-timedelta(days=3)), 0.0),  # a past date: retry now
        ("Mon, 01 Jan 1900 00:00:00 GMT", 0.0),
        (at(timedelta(days=2)), float(MAX_RETRY_AFTER_S)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", float(MAX_RETRY_AFTER_S)),
        ("Fri, 31 Dec 9999 23:59:59 -2359", float(MAX_RETRY_AFTER_S)),
    ],
)
def test_http_dates_count_from_now_and_are_clamped(value: str, seconds: float) -> None:
    """An HTTP-date in any of its three forms: seconds from now, 0 when past, clamped."""
    assert parse_retry_after(value, now=NOW.timestamp()) == seconds


def test_a_smaller_limit_clamps_further() -> None:
    """A caller may ask for a tighter maximum than MAX_RETRY_AFTER_S."""
    assert parse_retry_after("3600", limit_s=60) == 60.0
    assert parse_retry_after(at(timedelta(hours=1)), now=NOW.timestamp(), limit_s=60) == 60.0


def in_range(result: float | None) -> bool:
    return result is None or 0.0 <= result <= MAX_RETRY_AFTER_S


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_any_text_never_raises_and_stays_in_range(value: str) -> None:
    """Arbitrary strings (any code point): no exception, None or a value in [0, maximum]."""
    assert in_range(parse_retry_after(value, now=NOW.timestamp()))


@settings(max_examples=1000, deadline=None)
@given(
    st.from_regex(r"\A[ \t]*([0-9+\-.eE_x]{0,30}|[A-Za-z, :\-+0-9]{0,40})[ \t]*\Z", fullmatch=True),
    st.floats(min_value=0, max_value=4e9),
)
def test_header_like_text_never_raises_and_stays_in_range(value: str, now: float) -> None:
    """Strings shaped like numbers and dates, at any current time: None or in range."""
    assert in_range(parse_retry_after(value, now=now))


@given(st.integers(min_value=0, max_value=10**30))
def test_any_ascii_integer_is_its_value_clamped(seconds: int) -> None:
    """Every ASCII integer reads as itself, clamped to the maximum."""
    assert parse_retry_after(str(seconds)) == float(min(seconds, MAX_RETRY_AFTER_S))


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)))
def test_any_imf_fixdate_is_seconds_from_now_clamped(when: datetime) -> None:
    """Every IMF-fixdate reads as its distance from now, clamped to [0, maximum]."""
    when = when.replace(microsecond=0, tzinfo=UTC)
    expected = min(max(0.0, (when - NOW).total_seconds()), MAX_RETRY_AFTER_S)
    got = parse_retry_after(format_datetime(when, usegmt=True), now=NOW.timestamp())
    assert got == pytest.approx(expected)

"""Properties of the eSMS request values: SendDate formats and phone normalisation (hypothesis)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicecall.formats.timefmt import OTP_SEND_DATE_FORMAT, VOICE_SEND_DATE_FORMAT
from worker.esms import InvalidParameter
from worker.esms.params import validate_phone, validate_send_date

ZONES = [
    ZoneInfo(name)
    for name in (
        "Asia/Ho_Chi_Minh",
        "UTC",
        "Asia/Tokyo",
        "Asia/Kathmandu",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
    )
]
VN = ZoneInfo("Asia/Ho_Chi_Minh")
OTP_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
VOICE_SHAPE = re.compile(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}")

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=False,
)


@settings(max_examples=300, deadline=None)
@given(moment=moments, zone=st.sampled_from(ZONES), otp=st.booleans())
def test_send_date_round_trips_to_the_wall_clock_in_the_zone(
    moment: datetime, zone: ZoneInfo, otp: bool
) -> None:
    """Parsing SendDate with its format gives back the moment's wall-clock time in the zone."""
    text = validate_send_date(moment, zone, otp=otp)
    fmt, shape = (OTP_SEND_DATE_FORMAT, OTP_SHAPE) if otp else (VOICE_SEND_DATE_FORMAT, VOICE_SHAPE)
    assert shape.fullmatch(text)
    parsed = datetime.strptime(text, fmt)
    assert parsed == moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


@settings(max_examples=300, deadline=None)
@given(moment=moments, otp=st.booleans())
def test_send_date_in_vietnam_time_is_the_same_instant(moment: datetime, otp: bool) -> None:
    """In Vietnam time (fixed UTC+7) SendDate read back is the same instant, to the second."""
    text = validate_send_date(moment, VN, otp=otp)
    parsed = datetime.strptime(text, OTP_SEND_DATE_FORMAT if otp else VOICE_SEND_DATE_FORMAT)
    # compared in UTC: Python never calls an ambiguous (DST fold) time equal across zones
    assert parsed.replace(tzinfo=VN).astimezone(UTC) == moment.replace(microsecond=0).astimezone(
        UTC
    )


@given(moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_naive_send_date_is_refused(moment: datetime) -> None:
    """A naive datetime has no instant: SendDate refuses it with a reason."""
    with pytest.raises(InvalidParameter) as info:
        validate_send_date(moment, VN, otp=False)
    assert info.value.param == "SendDate" and info.value.rule


def test_both_formats_match_the_documents_examples() -> None:
    """The documents' examples: OTP 2022-08-03 10:00:00, voice 2017/12/12 14:00:00."""
    assert validate_send_date(datetime(2022, 8, 3, 3, tzinfo=UTC), VN, otp=True) == (
        "2022-08-03 10:00:00"
    )
    assert validate_send_date(datetime(2017, 12, 12, 7, tzinfo=UTC), VN, otp=False) == (
        "2017/12/12 14:00:00"
    )


# --- phones ---------------------------------------------------------------------------

# 09 + 8 digits; the 0992 block is unassigned (phonenumbers metadata), so left out
subscriber = st.text(alphabet="0123456789", min_size=8, max_size=8).filter(
    lambda s: not s.startswith("92")
)


def spaced(digits: str, cuts: list[int], sep: str) -> str:
    """``digits`` with ``sep`` inserted at the given cut points."""
    out, last = [], 0
    for cut in sorted(set(cuts)):
        out.append(digits[last:cut])
        last = cut
    out.append(digits[last:])
    return sep.join(part for part in out if part)


@given(
    rest=subscriber,
    form=st.sampled_from(["09", "849", "+84 9", "+849", "84 9"]),
    cuts=st.lists(st.integers(1, 7), max_size=3),
    sep=st.sampled_from([" ", "-", ".", ""]),
)
def test_vietnamese_09_numbers_in_every_spelling_become_national(
    rest: str, form: str, cuts: list[int], sep: str
) -> None:
    """09…, 849… and +84 9… (with spaces, dashes or dots) all become 09… in national form."""
    raw = form + spaced(rest, cuts, sep)
    assert validate_phone(raw) == "09" + rest


@given(rest=subscriber)
def test_phone_validation_is_idempotent(rest: str) -> None:
    """The national form is itself accepted and unchanged."""
    national = validate_phone("+84 9" + rest)
    assert validate_phone(national) == national


def _refused(raw: str) -> str:
    with pytest.raises(InvalidParameter) as info:
        validate_phone(raw)
    assert info.value.param == "Phone"
    assert info.value.rule  # the reason, e.g. "is not a valid Vietnamese number ..."
    return info.value.rule


@given(
    cc=st.sampled_from([1, 7, 33, 44, 49, 61, 65, 66, 81, 82, 85, 86, 855, 856]),
    digits=st.text(alphabet="0123456789", min_size=6, max_size=11),
)
def test_foreign_numbers_are_refused_with_a_reason(cc: int, digits: str) -> None:
    """A number with another country code is refused."""
    _refused(f"+{cc} {digits}")


@given(rest=st.text(alphabet="0123456789", max_size=12).filter(lambda s: len(s) != 8))
def test_wrong_length_09_numbers_are_refused(rest: str) -> None:
    """09 followed by anything but 8 digits is refused."""
    _refused("09" + rest)


@given(
    rest=subscriber,
    junk=st.sampled_from(["abc", "tel:", "*", "#", "x", " ext 5", ";ext=1"]),
    before=st.booleans(),
)
def test_numbers_with_other_characters_are_refused(rest: str, junk: str, before: bool) -> None:
    """Letters, dial codes or extensions around a valid number are refused, not dropped."""
    number = "09" + rest
    _refused(junk + number if before else number + junk)


@given(raw=st.text(max_size=25))
def test_any_text_is_either_refused_with_a_reason_or_a_national_number(raw: str) -> None:
    """Whatever the input, the answer is a reasoned refusal or a valid 0-prefixed number."""
    try:
        national = validate_phone(raw)
    except InvalidParameter as exc:
        assert exc.param == "Phone" and exc.rule
        return
    assert re.fullmatch(r"0\d{9,10}", national)
    assert validate_phone(national) == national


def test_refusals_are_explained() -> None:
    """Each kind of wrong number gets its own reason."""
    assert "country code +1" in _refused("+1 212 555 0100")
    assert "wrong length" in _refused("090123456")
    assert "empty" in _refused("   ")
    assert "only digits" in _refused("0901234567 ext 5")

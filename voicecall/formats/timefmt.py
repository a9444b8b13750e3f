"""Times: reading ``send_at`` and writing each eSMS endpoint's ``SendDate`` format.

The documents never name a zone for ``SendDate``; eSMS is Vietnamese, so it is written in
the configured ``TIMEZONE`` (default Asia/Ho_Chi_Minh, UTC+7).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

# Voice OTP (rest API): yyyy-mm-dd HH:MM:SS; voice calls (voiceapi): yyyy/MM/dd HH:mm:ss.
OTP_SEND_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
VOICE_SEND_DATE_FORMAT = "%Y/%m/%d %H:%M:%S"


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_send_at(value: str | datetime, zone: ZoneInfo) -> datetime:
    """An aware ISO-8601 time as given, a naive one read in ``zone``; returned in UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def format_send_date(moment: datetime, zone: ZoneInfo, *, otp: bool) -> str:
    """``moment`` (aware) in ``zone``, in the endpoint's own ``SendDate`` format."""
    if moment.tzinfo is None:
        raise ValueError("SendDate needs an aware datetime")
    local = moment.astimezone(zone)
    return local.strftime(OTP_SEND_DATE_FORMAT if otp else VOICE_SEND_DATE_FORMAT)


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

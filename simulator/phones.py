"""Vietnamese phone numbers as eSMS accepts them: ``0`` + 9-10 digits, or ``84`` + 9-10 digits.

Everything is compared in the national form (``0...``). ``+84``, spaces inside the number
and other country codes are refused (code 108); several numbers joined by commas give 163.
"""

from __future__ import annotations

from simulator import codes
from simulator.codes import EsmsError

# telcoid of the SMS-style callback: 1 Viettel, 2 Mobi, 3 Vina, 4 Vietnamobile, 5 Gtel,
# 6 Itel, 7 Reddi; by the three first digits of the national form.
_TELCO_PREFIXES: dict[str, tuple[str, ...]] = {
    "1": ("032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098"),
    "2": ("070", "076", "077", "078", "079", "089", "090", "093"),
    "3": ("081", "082", "083", "084", "085", "088", "091", "094"),
    "4": ("052", "056", "058", "092"),
    "5": ("059", "099"),
    "6": ("087",),
    "7": ("055",),
}


def national(raw: str) -> str:
    """``raw`` in the national form ``0...``; :class:`EsmsError` 163 or 108 if unusable."""
    text = raw.strip()
    if not text:
        raise EsmsError(codes.BAD_PHONE, "Phone is required")
    if "," in text or ";" in text:
        raise EsmsError(codes.MANY_PHONES)
    if not text.isdigit() or not text.isascii():
        raise EsmsError(codes.BAD_PHONE)
    if text.startswith("84"):
        rest = text[2:]
    elif text.startswith("0"):
        rest = text[1:]
    else:
        raise EsmsError(codes.BAD_PHONE)
    if len(rest) not in (9, 10) or rest.startswith("0"):
        raise EsmsError(codes.BAD_PHONE)
    return "0" + rest


def national_or_none(raw: str) -> str | None:
    """``raw`` in the national form, or None if it is not a valid number."""
    try:
        return national(raw)
    except EsmsError:
        return None


def telco_id(number: str) -> str:
    """The eSMS ``telcoid`` of a national number; empty if the prefix is not a mobile one."""
    for telco, prefixes in _TELCO_PREFIXES.items():
        if number.startswith(prefixes):
            return telco
    return ""

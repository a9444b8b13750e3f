"""Vietnamese phone numbers: normalisation with ``phonenumbers`` and masking for logs.

eSMS takes numbers in national form (``0901234567``) or with the country code
(``84901234567``); voicecall stores the E.164 digits without ``+`` (``84901234567``).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from voicecall.errors import VoicecallError

_ALLOWED_TYPES = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
}
_DIGITS_ONLY = re.compile(r"\+?[0-9]+")
_PHONE_IN_TEXT = re.compile(r"(?<![\w-])(\+?84|0)(\d{2})[\d ]{2,}?(\d{4})(?!\d)")


class PhoneError(VoicecallError, ValueError):
    """The number is not a Vietnamese mobile or landline number; the message says why."""


def normalize_phone(raw: str) -> str:
    """Return the number as ``84`` followed by the national significant number.

    >>> normalize_phone("0901 234 567")
    '84901234567'
    >>> normalize_phone("+84 90 123 4567")
    '84901234567'
    """
    text = raw.strip()
    if not text:
        raise PhoneError("is empty")
    if len(text) > 20:
        raise PhoneError("is longer than 20 characters")
    digits = re.sub(r"[\s\-.()]", "", text)
    if not _DIGITS_ONLY.fullmatch(digits):  # phonenumbers alone would accept "abc0901234567"
        raise PhoneError("may hold only digits, spaces, '-', '.', '()' and a leading '+'")
    if digits.startswith("84") and not digits.startswith("+"):
        digits = "+" + digits
    try:
        number = phonenumbers.parse(digits, "VN")
    except NumberParseException as exc:
        raise PhoneError(f"is not a phone number ({exc.args[0]})") from None
    if number.country_code != 84:
        raise PhoneError(f"has country code +{number.country_code}; only Vietnamese numbers (+84)")
    # number_type is UNKNOWN exactly when is_valid_number is false (it runs the same pattern
    # matching, which is most of the cost: once, not twice).
    number_type = phonenumbers.number_type(number)
    if number_type == PhoneNumberType.UNKNOWN:
        raise PhoneError("is not a valid Vietnamese number (wrong length or prefix)")
    if number_type not in _ALLOWED_TYPES:
        raise PhoneError("is not a Vietnamese mobile or landline number")
    return f"84{number.national_number}"


def national(phone: str) -> str:
    """``84901234567`` → ``0901234567`` (the form eSMS's own examples use)."""
    return "0" + phone[2:] if phone.startswith("84") else phone


def mask_phone(phone: str) -> str:
    """Keep the first four and last four digits: ``84901234567`` → ``8490***4567``."""
    if len(phone) <= 8:
        return "***"
    return f"{phone[:4]}***{phone[-4:]}"


def mask_phones_in_text(text: str) -> str:
    """Mask anything in free text that looks like a Vietnamese phone number."""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}***{m.group(3)}", text)

"""A label on the command line and in a CSV cell: ``key=value``, the one form everywhere.

``voicecall enqueue --label``, the ``--label`` filter of ``jobs list`` and ``export`` and the
``labels`` column of ``voicecall import`` (several there: ``k=v;k=v``) all read it here. Any
other form (``key:value``, the HTTP API's query form, or a bare word) is refused with a hint
naming the right one, never read as something else.
"""

from __future__ import annotations

from voicecall.errors import VoicecallError

LABEL_FORM = "key=value"


class LabelSyntaxError(VoicecallError, ValueError):
    """Not ``key=value``; ``str()`` says so and shows what was probably meant."""


def parse_label(text: str) -> tuple[str, str]:
    """``("campaign", "tet")`` from ``campaign=tet`` (the value may hold ``=`` and ``:``)."""
    key, equals, value = text.partition("=")
    if equals and key.strip():
        return key.strip(), value.strip()
    shown = text.encode("unicode_escape").decode("ascii")
    colon_key, colon, colon_value = text.partition(":")
    if not equals and colon and colon_key.strip():
        hint = f"{colon_key.strip()}={colon_value.strip()}"
        hint = hint.encode("unicode_escape").decode("ascii")
        return _refuse(f"'{shown}' is not {LABEL_FORM}: write {hint}")
    return _refuse(f"'{shown}' is not {LABEL_FORM}")


def _refuse(message: str) -> tuple[str, str]:
    raise LabelSyntaxError(message)

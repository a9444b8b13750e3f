"""Free text from outside that is kept and shown again (a cancel reason, labels, eSMS's
texts): the control characters refused in it, and how stored text is printed where a terminal
would obey them.

:data:`CONTROL_CHARACTERS` is one regular-expression class that means the same in Python's
``re``, in pydantic's Rust engine and in the OpenAPI document (JSON Schema): the C0 controls,
DEL, the C1 controls, and the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
U+2066-U+2069), which reorder what a reader sees.
"""

from __future__ import annotations

import re

CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
NO_CONTROL_PATTERN = rf"^[^{CONTROL_CHARACTERS}]*$"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def escape_controls(text: str, *, json: bool = False) -> str:
    r"""``text`` with each control character written as an escape, so printing it cannot move
    the cursor, clear the screen or reorder a line: ``\x1b``, ``\u202e``.

    ``json``: ``text`` is a JSON document from ``json.dumps`` (which escapes C0 inside
    strings already; outside them, C0 is its layout): the rest become ``\u009b``-style
    escapes, which keep the document valid and its values unchanged."""

    def escaped(match: re.Match[str]) -> str:
        code = ord(match.group())
        if json:
            return match.group() if code < 0x20 else f"\\u{code:04x}"
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escaped, text)

"""A job's trace as it is stored and carried: a W3C Trace Context carrier,
``{"traceparent": ..., "tracestate": ...}``, checked whenever it is read back."""

from __future__ import annotations

import re

Carrier = dict[str, str]

# W3C Trace Context, version 00: what a carrier we store may hold (checked again on read).
TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
TRACESTATE_MAX = 512  # the spec's list is at most 32 members of 256 bytes; we keep a sane prefix


def checked_carrier(raw: object) -> Carrier | None:
    """A carrier read back from a job or a message, if it is one (anything else: None)."""
    if not isinstance(raw, dict):
        return None
    parent = raw.get("traceparent")
    if not isinstance(parent, str) or not TRACEPARENT.fullmatch(parent):
        return None
    carrier = {"traceparent": parent}
    state = raw.get("tracestate")
    if isinstance(state, str) and state.isprintable() and len(state) <= TRACESTATE_MAX:
        carrier["tracestate"] = state
    return carrier

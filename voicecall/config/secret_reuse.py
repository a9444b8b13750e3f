"""Secrets that must differ. Each secret has one use and one set of holders: a webhook
receiver holds WEBHOOK_SECRET, Prometheus holds METRICS_TOKEN, each client its API token. A
value used twice lets one holder do the other's part (a receiver that can sign callback URLs
forges call results; Prometheus with an API token enqueues calls), so such settings are
refused at start-up, with one line naming the two settings and never their values.

Two settings share a secret when one, in any form it can be written in, is the other in any
form: itself, ``whsec_`` + base64 of it (standard or URL-safe alphabet), or that base64 text
alone; either way round. The eSMS keys are compared with voicecall's own secrets, not with
each other (eSMS issues both).
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Iterable, Mapping, Sequence

from voicecall.config.clients import is_client_name

WEBHOOK_PREFIX = "whsec_"
_ISSUED_TOGETHER = frozenset({"ESMS_API_KEY", "ESMS_SECRET_KEY"})


def _decoded(text: str) -> set[bytes]:
    """What ``text`` decodes to as base64, in either alphabet (strictly: no stray characters)."""
    padded = text + "=" * (-len(text) % 4)
    found: set[bytes] = set()
    for alphabet in (padded, padded.replace("-", "+").replace("_", "/")):
        try:
            found.add(base64.b64decode(alphabet, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def forms(value: str) -> set[bytes]:
    """Every way ``value`` holds a secret: itself, its base64 text after ``whsec_``, and the
    bytes either decodes to."""
    encoded = value.removeprefix(WEBHOOK_PREFIX)
    found = {value.encode(), encoded.encode()} | _decoded(encoded)
    return {form for form in found if form}


def reused_secrets(settings: Iterable[tuple[str, Sequence[str]]]) -> str | None:
    """One line naming the first two settings that share a secret, or None.

    ``settings``: each setting's name and its values (one, or several for API_TOKENS)."""
    named = [(name, forms(value)) for name, values in settings for value in values if value.strip()]
    for (first, first_forms), (second, second_forms) in itertools.combinations(named, 2):
        if first == second or {first, second} == _ISSUED_TOGETHER:
            continue
        if first_forms & second_forms:
            return (
                f"{first} and {second} hold the same secret (equal, or one is whsec_ or "
                "base64 of the other): give each its own random value"
            )
    return None


# Settings holding secrets, each to be used for one thing only.
SECRETS = (
    "CALLBACK_SECRET",
    "WEBHOOK_SECRET",
    "METRICS_TOKEN",
    "API_TOKENS",
    "ESMS_SECRET_KEY",
    "ESMS_API_KEY",
)


def _texts(name: str, value: object) -> list[str]:
    """A secret setting's values as given (API_TOKENS: comma-separated text or a list of
    entries, each compared by its token, not its ``name=``)."""
    if isinstance(value, str):
        parts = value.split(",") if name == "API_TOKENS" else [value]
    elif isinstance(value, list | tuple):
        parts = [str(item) for item in value]
    else:
        return []
    if name != "API_TOKENS":
        return [part.strip() for part in parts]
    return [_token_of(part.strip()) for part in parts]


def _token_of(entry: str) -> str:
    """The token of an ``API_TOKENS`` entry (``name=token`` or a bare token)."""
    client, equals, token = entry.partition("=")
    return token if equals and is_client_name(client) else entry


def reused_settings(values: Mapping[str, object]) -> str | None:
    """One line naming the first two of :data:`SECRETS` that hold the same secret, or None.

    ``values``: the settings as given (before any rule of their own), by lower-case name."""
    return reused_secrets((name, _texts(name, values.get(name.lower()))) for name in SECRETS)

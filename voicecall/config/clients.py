"""API clients and their names: who made a job, whose idempotency keys, cursors and quota.

``API_TOKENS`` is a comma-separated list of entries, each ``name=token`` or a bare ``token``.
A bare token is named ``token-`` and 8 hex characters of a digest of itself, so its name
can be shown to every client (it is in every job the token makes) without showing the token.
A name is 1-40 characters of ``a-z 0-9 . _ -``, starting with a letter or digit; it never holds
``:``, so it can lead a Redis key or a member without ambiguity. Two entries may not share a
name or a token, and the names of the Redis-direct producers are reserved:

- ``python``: the Python API (:class:`producer.client.VoiceCallClient`) unless it is given
  another name (``VoiceCallClient(..., client_name="billing")`` acts as that client);
- ``cli``: the ``voicecall`` commands (``enqueue``, ``import``, ``jobs list``, ...);
- ``console``: the operator console (it searches; it makes no job).

A bad entry stops start-up with one line naming ``API_TOKENS`` and the entry's position,
never its text (it may be a token).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import NamedTuple

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,39}$"
NAME_RULE = "1-40 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)
TOKEN_MIN_LENGTH = 16
PYTHON_CLIENT = "python"
CLI_CLIENT = "cli"
CONSOLE_CLIENT = "console"
RESERVED_NAMES = frozenset({PYTHON_CLIENT, CLI_CLIENT, CONSOLE_CLIENT})


class ApiToken(NamedTuple):
    """One entry of ``API_TOKENS``: the client's name and its bearer token."""

    name: str
    token: str


def is_client_name(value: str) -> bool:
    return bool(_NAME.fullmatch(value))


def check_client_name(value: str) -> str:
    """``value`` when it is a valid client name, else ValueError stating the rule."""
    if not is_client_name(value):
        raise ValueError(f"must be {NAME_RULE}")
    return value


def bare_token_name(token: str) -> str:
    """The name of a token given without one: a short keyed digest, never the token."""
    digest = hashlib.blake2b(token.encode(), digest_size=4, person=b"vc-client").hexdigest()
    return f"token-{digest}"


def parse_api_tokens(entries: Iterable[str]) -> list[ApiToken]:
    """``API_TOKENS`` entries as (name, token); ValueError naming the entry by position."""
    parsed: list[ApiToken] = []
    for position, entry in enumerate(entries, start=1):
        parsed.append(_entry(position, entry.strip(), parsed))
    return parsed


def _entry(position: int, entry: str, before: list[ApiToken]) -> ApiToken:
    where = f"entry {position}"
    name, equals, token = entry.partition("=")
    if not equals:
        name, token = bare_token_name(entry), entry
    elif not is_client_name(name):
        raise ValueError(
            f"{where}: a name (before '=') must be {NAME_RULE}; a bare token holding '=' "
            "needs a name: NAME=TOKEN"
        )
    elif name in RESERVED_NAMES:
        names = ", ".join(sorted(RESERVED_NAMES))
        raise ValueError(f"{where}: the names {names} are reserved for the Redis-direct producers")
    if len(token) < TOKEN_MIN_LENGTH:
        raise ValueError(f"{where}: each token must be at least {TOKEN_MIN_LENGTH} characters")
    for earlier, other in enumerate(before, start=1):
        if other.name == name:
            raise ValueError(f"{where} has the name of entry {earlier}: names must be unique")
        if other.token == token:
            raise ValueError(f"{where} repeats the token of entry {earlier}")
    return ApiToken(name, token)

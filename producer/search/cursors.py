"""Search cursors: signed, made for one client, refused whole when anything about them is off.

A cursor is the base64 of a small JSON document (``v`` its version, ``c`` the client it was
made for, ``i`` the index a search walks, ``p`` the last position it returned, ``f`` a digest
of its filters, ``t`` when it was made) and, after a ``.``, 128 bits of an HMAC-SHA256 of that
document. The key (:func:`cursor_key`) is derived from ``CALLBACK_SECRET`` with a label of its
own, so no other use of the secret makes it and no client can forge a cursor.

:meth:`Caller.decode` refuses with :class:`SearchError` naming ``cursor`` (a 422, never a
500): more than ``MAX_CURSOR_LENGTH`` characters, anything but base64 and a MAC, a MAC that does
not match, a document that is not exactly these fields of these types (no NaN, no Infinity, no
float or bool for an int), another client's cursor, another search's, one older than
``CURSOR_TTL_S``. What the position holds is the search's to check (producer.search.walk), since it
depends on the index: a signed cursor is trusted to be ours, not to be sane.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from voicecall.errors import SearchError

CURSOR_TTL_S = 24 * 3600
MAX_CURSOR_LENGTH = 1024  # characters; the cursors made here are under 300
NOT_OURS = "is not a cursor this API gave"
_VERSION = 2
_LABEL = b"voicecall search cursor v2"
_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,1000}\.[A-Za-z0-9_-]{22}")  # payload . 16-byte MAC
_MAC_BYTES = 16
_FIELDS = {"v": int, "c": str, "i": str, "p": list, "f": str, "t": int}
_LATEST_S = 2**42 // 1000  # a time no cursor is made at (the year 2109)
_CLOCK_SKEW_S = 300  # API processes' clocks may differ this much


def cursor_key(secret: str) -> bytes:
    """The key that signs cursors: HMAC-SHA256 of a label of its own under ``secret``
    (CALLBACK_SECRET). Without a secret (a Redis-direct producer with only REDIS_URL) the key
    is public: such a process holds Redis itself, and its cursors are still checked field by
    field and bounded by the search's budget."""
    return hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()


def is_of(value: Any, kind: type) -> bool:
    """``isinstance``, except that a bool is no int."""
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


@dataclass(frozen=True)
class Caller:
    """Who searches: the client a cursor is made for (and whose idempotency keys a key filter
    names by default: producer.search.filters.Filters.scoped), and the key that signs cursors."""

    client: str
    key: bytes

    def encode(self, index: str, position: list[Any], digest: str) -> str:
        """A cursor that resumes after ``position`` of ``index``, for the search whose
        filters have ``digest``."""
        data = {"v": _VERSION, "c": self.client, "i": index, "p": position, "f": digest}
        payload = json.dumps({**data, "t": int(time.time())}, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, cursor: str, index: str, digest: str) -> list[Any]:
        """The position ``cursor`` holds (a list, its items unchecked), when it is a cursor
        this caller made for this search; SearchError naming ``cursor`` otherwise."""
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise SearchError("cursor", f"is longer than {MAX_CURSOR_LENGTH} characters")
        data = _fields(self._verified(cursor))
        if data["c"] != self.client:
            raise SearchError("cursor", "was made for another API client")
        if data["f"] != digest or data["i"] != index:
            raise SearchError("cursor", "belongs to a search with other filters")
        age = time.time() - data["t"]
        if age > CURSOR_TTL_S:
            raise SearchError("cursor", f"has expired (cursors last {CURSOR_TTL_S // 3600} h)")
        if age < -_CLOCK_SKEW_S:
            raise SearchError("cursor", NOT_OURS)
        position: list[Any] = data["p"]
        return position

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def _verified(self, cursor: str) -> bytes:
        """The signed document, once its MAC matches."""
        if not _SHAPE.fullmatch(cursor):
            raise SearchError("cursor", NOT_OURS)
        text, mac = cursor.split(".")
        try:
            payload, given = _unb64(text), _unb64(mac)
        except (binascii.Error, ValueError):
            raise SearchError("cursor", NOT_OURS) from None
        if not hmac.compare_digest(given, self._mac(payload)):
            raise SearchError("cursor", f"{NOT_OURS} (or was altered)")
        return payload


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _fields(payload: bytes) -> dict[str, Any]:
    """The cursor's fields, exactly these, each of its type."""
    try:
        data = json.loads(payload, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise SearchError("cursor", NOT_OURS) from None
    valid = (
        isinstance(data, dict)
        and set(data) == set(_FIELDS)
        and all(is_of(data[name], kind) for name, kind in _FIELDS.items())
        and data["v"] == _VERSION
        and 0 <= data["t"] < _LATEST_S
    )
    if not valid:
        raise SearchError("cursor", NOT_OURS)
    checked: dict[str, Any] = data
    return checked

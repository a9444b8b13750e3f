"""The console's session: a signed cookie, and the CSRF token it carries.

An operator logs in with one of the API's bearer tokens. The cookie then holds no secret:
``{"tid", "sid", "csrf", "exp"}`` in base64url JSON, then an HMAC-SHA256 of that text. ``tid``
names the token by an HMAC of it, so a token removed from ``API_TOKENS`` ends its sessions at
the next request. The signing key is derived from every configured token (several API
processes derive the same one; changing the tokens ends every session). The cookie is
HttpOnly and SameSite=Strict, and every state-changing form also carries ``csrf``, checked
against the session's own (:func:`check_csrf`), so no other site can post on the operator's
behalf even in a browser that ignores SameSite.

A valid signature is not enough: ``sid`` must also be one of its token's open sessions in
Redis (``JobStore.console_session_open``, written at login). Logout removes it there, so a
copied cookie opens nothing afterwards, and a session ends at ``exp`` on both sides.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

COOKIE = "vc_console"
MAX_AGE_S = 8 * 3600  # a working day; then log in again
_KEY_LABEL = b"voicecall console session v1"


@dataclass(frozen=True)
class Session:
    tid: str  # which token logged in (an HMAC of it, never the token)
    sid: str  # this session's id: its entry among the token's open sessions in Redis
    csrf: str
    expires_at: float


def signing_key(tokens: Sequence[bytes]) -> bytes:
    """The key that signs sessions, from every configured API token."""
    return hmac.new(_KEY_LABEL, b"\x00".join(sorted(tokens)), hashlib.sha256).digest()


def token_id(key: bytes, token: bytes) -> str:
    return hmac.new(key, b"token:" + token, hashlib.sha256).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def issue(key: bytes, token: bytes, *, now: float) -> tuple[str, Session]:
    """A new session for ``token`` (already checked): the cookie value and the session."""
    session = Session(
        token_id(key, token), secrets.token_urlsafe(18), secrets.token_urlsafe(24), now + MAX_AGE_S
    )
    body = {"tid": session.tid, "sid": session.sid, "csrf": session.csrf, "exp": session.expires_at}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_signature(key, payload)}", session


def read(value: str | None, key: bytes, tokens: Sequence[bytes], *, now: float) -> Session | None:
    """The session in a cookie value, or None when it is absent, tampered with, expired, or
    its token is no longer configured. (Whether it is still open is Redis's to say.)"""
    if not value or value.count(".") != 1:
        return None
    payload, signature = value.split(".")
    if not hmac.compare_digest(signature, _signature(key, payload)):
        return None
    try:
        body = json.loads(_unb64(payload))
        session = Session(str(body["tid"]), str(body["sid"]), str(body["csrf"]), float(body["exp"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if session.expires_at <= now:
        return None
    known = False
    for token in tokens:  # every one, as producer.auth does
        known |= hmac.compare_digest(session.tid, token_id(key, token))
    return session if known else None


def check_csrf(session: Session, presented: str | None) -> bool:
    """True when a form's ``csrf`` field is the session's own token."""
    return bool(presented) and hmac.compare_digest(
        session.csrf.encode(), (presented or "").encode()
    )

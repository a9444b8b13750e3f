"""Reading a JSON request body: media type, syntax, depth and duplicate keys, each refused
with the answer a client can act on.

- A body that is not ``application/json`` (``+json`` types too; a charset other than UTF-8
  refused) gets 415: a form post or a text body is a client bug, not a validation failure.
- Invalid JSON, a body nested deeper than :data:`MAX_DEPTH`, a duplicate key (JSON parsers
  disagree about which copy wins, so a proxy and voicecall could read two different calls) and
  anything but an object get 422 naming the field (``body``, or the duplicated key).

The depth is checked by a scan of the raw bytes before parsing, so a hostile body never
reaches the recursive parser (which answered 500 with a RecursionError at 1,000 levels).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request

from producer.errors import ApiError, validation_error
from voicecall.errors import VoicecallError

MAX_DEPTH = 32  # a call is 3 levels deep (body, labels); far more is an attack, not a call
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)  # a string, or a bracket


class DuplicateKey(VoicecallError, ValueError):
    """A JSON object names ``key`` twice (read while parsing, answered 422 naming it)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def require_json(request: Request) -> None:
    """415 unless the request says its body is JSON (UTF-8)."""
    media, _, params = request.headers.get("content-type", "").partition(";")
    media = media.strip().lower()
    charset = params.strip().lower().removeprefix("charset=").strip('"') if params else ""
    is_json = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if not is_json or charset not in ("", "utf-8", "utf8"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "the body must be JSON sent as Content-Type: application/json (UTF-8)",
            headers={"Accept-Post": "application/json"},
        )


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when arrays/objects in ``raw`` nest deeper than ``limit`` (brackets inside
    strings do not count). Most bodies hold too few brackets to need the scan."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for token in _TOKENS.finditer(raw):
        bracket = token.group()
        if bracket in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif bracket in b"]}":
            depth -= 1
    return False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


class _Seen:
    """Marks where a duplicated key was found, so its dotted path can be named."""


_DUPLICATE = _Seen()


def _mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result[key] = _DUPLICATE if key in result else value
    return result


def _path_of_duplicate(node: Any, path: tuple[str, ...] = ()) -> str | None:
    if node is _DUPLICATE:
        return ".".join(path)
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        found = _path_of_duplicate(child, (*path, str(key)))
        if found is not None:
            return found
    return None


def _duplicate_field(raw: bytes, key: str) -> str:
    """The dotted path of the first duplicated key (``labels.app``); a second parse, on the
    error path only."""
    return _path_of_duplicate(json.loads(raw, object_pairs_hook=_mark_duplicates)) or key


def parse_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, else 422 naming ``body`` or the duplicated key."""
    if too_deep(raw):
        raise validation_error(
            [{"field": "body", "message": f"is nested deeper than {MAX_DEPTH} levels"}]
        )
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates)
    except DuplicateKey as exc:
        raise validation_error(
            [
                {
                    "field": _duplicate_field(raw, exc.key),
                    "message": "appears more than once in the same object",
                }
            ]
        ) from None
    except (ValueError, RecursionError) as exc:
        raise validation_error(
            [{"field": "body", "message": f"is not valid JSON ({exc})"}]
        ) from None
    if not isinstance(data, dict):
        raise validation_error([{"field": "body", "message": "must be a JSON object"}])
    return data


async def read_object(request: Request) -> dict[str, Any]:
    """The request's JSON object (the middleware bounds its size); 415 or 422 otherwise."""
    require_json(request)
    return parse_object(await request.body())

"""Pydantic validation errors as field-level messages: ``[{"field": ..., "message": ...}]``.

Shared by the HTTP API (422 bodies), the CLI and the CSV import, so all three name a bad
field the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from voicecall.job.contract import RecordCall, TemplateCall, VoiceOtpCall

_REQUEST_PARTS = frozenset({"body", "path", "query", "header"})  # FastAPI's first loc item
_KINDS = frozenset({"voice_otp", "record_call", "template_call"})
_FIELDS = (
    frozenset(VoiceOtpCall.model_fields)
    | frozenset(RecordCall.model_fields)
    | frozenset(TemplateCall.model_fields)
)


def field_errors(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[str | int] = ()
) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field": "labels.app", "message": "..."}]``.

    The field is the dotted location without the union tag (``voice_otp`` ...) and without
    FastAPI's ``body``/``path``/``query``/``header``. A rule over the whole model (``content has non-ASCII ...``) is reported
    on the field its message starts with; a missing or unknown ``kind`` on ``kind``.
    """
    result = []
    for err in errors:
        loc = [str(part) for part in (*prefix, *err.get("loc", ()))]
        if len(loc) > len(prefix) and loc[len(prefix)] in _REQUEST_PARTS:
            del loc[len(prefix)]
        if len(loc) > len(prefix) and loc[len(prefix)] in _KINDS:
            del loc[len(prefix)]
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if len(loc) == len(prefix):
            loc.append(_field_for_model_error(str(err.get("type", "")), message))
        result.append({"field": ".".join(loc), "message": message})
    return result


def _field_for_model_error(error_type: str, message: str) -> str:
    if error_type.startswith("union_tag"):
        return "kind"
    first = message.split(" ", 1)[0]
    return first if first in _FIELDS else "body"


def one_line(errors: Iterable[Mapping[str, str]]) -> str:
    """``phone: is not ...; ivr: Input should be ...``"""
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)

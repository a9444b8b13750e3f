"""Validation errors in plain words: ``[{"field": "send_at", "message": "must be an ISO 8601
date-time ..."}]``, where ``field message`` reads as one sentence.

The one place that turns pydantic's error types into words a caller understands, shared by
the HTTP API (422 bodies), the CSV import, the CLI and the Python producer API
(:func:`validate_call` raises :class:`~voicecall.errors.IntakeError` with the same list), so
all of them name a bad field and its rule the same way. Every type the job contract's models
can produce has its words in :data:`PLAIN` (tests/test_plain_errors.py checks it); a type
missing there falls back to pydantic's own message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from voicecall.errors import IntakeError
from voicecall.job.contract import (
    CallRequestAdapter,
    RecordCall,
    TemplateCall,
    VoiceOtpCall,
)

AnyCall = VoiceOtpCall | RecordCall | TemplateCall
FieldError = dict[str, str]

_REQUEST_PARTS = frozenset({"body", "path", "query", "header"})  # FastAPI's first loc item
KINDS = ("voice_otp", "record_call", "template_call")
_FIELDS = (
    frozenset(VoiceOtpCall.model_fields)
    | frozenset(RecordCall.model_fields)
    | frozenset(TemplateCall.model_fields)
)
_ONE_OF_KINDS = f"one of {', '.join(KINDS)}"
ISO_DATE_TIME = "must be an ISO 8601 date-time, e.g. 2026-12-09T09:00:00+07:00"
# Rules of a pattern, by field: a regular expression is no answer for a caller.
_PATTERN_RULES = {"id": "must be 1-50 of A-Z a-z 0-9 . _ : - starting with a letter or digit"}


def _ctx(name: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda ctx: str(ctx.get(name, "?"))


def _length(unit: str, bound: str) -> Callable[[Mapping[str, Any]], str]:
    def words(ctx: Mapping[str, Any]) -> str:
        count = ctx.get(f"{bound}_length", "?")
        if bound == "min" and count == 1:
            return "must not be empty"
        return f"must have at {'least' if bound == 'min' else 'most'} {count} {unit}"

    return words


# pydantic error type → the rule in words (the error's ctx gives the bounds).
PLAIN: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda _: "is required",
    "extra_forbidden": lambda _: "is not a field of this kind of call",
    "union_tag_not_found": lambda _: f"is required: {_ONE_OF_KINDS}",
    "union_tag_invalid": lambda _: f"must be {_ONE_OF_KINDS}",
    "model_type": lambda _: "must be a JSON object",
    "model_attributes_type": lambda _: "must be a JSON object",
    "dict_type": lambda _: "must be a JSON object",
    "list_type": lambda _: "must be a list",
    "string_type": lambda _: "must be a string",
    "string_unicode": lambda _: "must be a string",
    "string_too_short": _length("characters", "min"),
    "string_too_long": _length("characters", "max"),
    "too_short": _length("items", "min"),
    "too_long": _length("items", "max"),
    "string_pattern_mismatch": lambda ctx: f"must match {ctx.get('pattern', '?')}",
    "int_type": lambda _: "must be a whole number",
    "int_parsing": lambda _: "must be a whole number",
    "int_from_float": lambda _: "must be a whole number",
    "int_parsing_size": lambda _: "must be a whole number of a sensible size",
    "float_type": lambda _: "must be a number",
    "float_parsing": lambda _: "must be a number",
    "finite_number": lambda _: "must be a finite number, not NaN or infinity",
    "bool_type": lambda _: "must be true or false",
    "bool_parsing": lambda _: "must be true or false",
    "greater_than": lambda ctx: f"must be more than {ctx.get('gt', '?')}",
    "greater_than_equal": lambda ctx: f"must be at least {ctx.get('ge', '?')}",
    "less_than": lambda ctx: f"must be less than {ctx.get('lt', '?')}",
    "less_than_equal": lambda ctx: f"must be at most {ctx.get('le', '?')}",
    "literal_error": lambda ctx: f"must be {ctx.get('expected', '?')}",
    "enum": lambda ctx: f"must be {ctx.get('expected', '?')}",
    "datetime_type": lambda _: ISO_DATE_TIME,
    "datetime_parsing": lambda _: ISO_DATE_TIME,
    "datetime_from_date_parsing": lambda _: ISO_DATE_TIME,
    "datetime_object_invalid": lambda _: ISO_DATE_TIME,
    "json_invalid": lambda ctx: f"is not valid JSON ({ctx.get('error', '?')})",
    "json_type": lambda _: "must be JSON text",
    "value_error": _ctx("error"),
    "assertion_error": _ctx("error"),
}


def plain_message(err: Mapping[str, Any], field: str = "") -> str:
    """The rule ``err`` (one pydantic error) broke, in words: ``must be at most 5``."""
    error_type = str(err.get("type", ""))
    if error_type == "string_pattern_mismatch" and field in _PATTERN_RULES:
        return _PATTERN_RULES[field]
    if error_type in ("value_error", "assertion_error") or error_type not in PLAIN:
        return str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    return PLAIN[error_type](err.get("ctx") or {})


def field_errors(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[str | int] = ()
) -> list[FieldError]:
    """Pydantic errors as ``[{"field": "labels.app", "message": "must be a string"}]``.

    The field is the dotted location without the union tag (``voice_otp`` ...) and without
    FastAPI's ``body``/``path``/``query``/``header``. A rule over the whole model
    (``content has non-ASCII ...``) is reported on the field its message starts with, the
    message then without it; a missing or unknown ``kind`` on ``kind``.
    """
    result = []
    for err in errors:
        loc = [str(part) for part in (*prefix, *err.get("loc", ()))]
        if len(loc) > len(prefix) and loc[len(prefix)] in _REQUEST_PARTS:
            del loc[len(prefix)]
        if len(loc) > len(prefix) and loc[len(prefix)] in KINDS:
            del loc[len(prefix)]
        message = plain_message(err, loc[-1] if len(loc) > len(prefix) else "")
        if len(loc) == len(prefix):
            field = _field_for_model_error(str(err.get("type", "")), message)
            loc.append(field)
            message = message.removeprefix(f"{field} ")
        result.append({"field": ".".join(loc), "message": message})
    return result


def _field_for_model_error(error_type: str, message: str) -> str:
    if error_type.startswith("union_tag"):
        return "kind"
    first = message.split(" ", 1)[0]
    return first if first in _FIELDS else "body"


def one_line(errors: Iterable[Mapping[str, str]]) -> str:
    """``kind is required: one of ...; send_at must be an ISO 8601 date-time ...``"""
    return "; ".join(f"{e['field']} {e['message']}" for e in errors)


def validate_call(data: Any, context: dict[str, Any]) -> AnyCall:
    """``data`` as a call request of the job contract, or :class:`IntakeError` whose
    ``errors`` name each field and rule in plain words (never pydantic's own error)."""
    try:
        return CallRequestAdapter.validate_python(
            dict(data) if isinstance(data, Mapping) else data,
            context=context,  # voicecall.job.contract.validation_context
        )
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        raise IntakeError(one_line(errors[:5]), errors=errors) from None

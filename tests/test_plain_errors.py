"""Validation errors in plain words: every 422, the CSV import and the Python producer API name
the field and the rule as a caller reads them, never pydantic's own jargon."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from producer.client import VoiceCallClient
from producer.csv_import import validate_row
from producer.fields import PLAIN, field_errors, one_line
from tests.fixtures.api import ApiServer
from voicecall.config.settings import load_settings
from voicecall.errors import IntakeError, VoicecallError
from voicecall.job.contract import CallRequestAdapter, validation_context
from voicecall.store.job_store import JobStore

OTP: dict[str, Any] = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}
RECORD: dict[str, Any] = {"kind": "record_call", "phone": "0901234567", "record_id": "rec-1"}
KINDS = "one of voice_otp, record_call, template_call"
ISO = "must be an ISO 8601 date-time, e.g. 2026-12-09T09:00:00+07:00"
# What pydantic says when nobody translated it.
JARGON = (
    "Input should",
    "Unable to extract tag",
    "discriminator",
    "input is too short",
    "tagged-union",
    "function-after",
    "Value error,",
    "Field required",
    "Extra inputs",
    "String should",
    "pydantic",
)

# Hostile bodies, each with the field and the exact rule a caller must read.
CASES: list[tuple[str, Any, str, str]] = [
    ("kind-missing", {k: v for k, v in OTP.items() if k != "kind"}, "kind", f"is required: {KINDS}"),
    ("kind-unknown", {**OTP, "kind": "sms"}, "kind", f"must be {KINDS}"),
    ("kind-number", {**OTP, "kind": 5}, "kind", f"must be {KINDS}"),
    ("kind-null", {**OTP, "kind": None}, "kind", f"must be {KINDS}"),
    ("send-at-words", {**OTP, "send_at": "tomorrow"}, "send_at", ISO),
    ("send-at-month-13", {**OTP, "send_at": "2026-13-01T09:00:00"}, "send_at", ISO),
    ("send-at-list", {**OTP, "send_at": [2026, 12, 9]}, "send_at", ISO),
    ("send-at-empty", {**OTP, "send_at": ""}, "send_at", ISO),
    ("max-retry-nan", {**RECORD, "max_retry": math.nan}, "max_retry", "must be a finite number"),
    ("max-retry-float", {**RECORD, "max_retry": 1.5}, "max_retry", "must be a whole number"),
    ("max-retry-text", {**RECORD, "max_retry": "two"}, "max_retry", "must be a whole number"),
    ("max-retry-high", {**RECORD, "max_retry": 6}, "max_retry", "must be at most 5"),
    ("ivr-true", {**RECORD, "ivr": "maybe"}, "ivr", "must be a whole number"),
    (
        "record-id-control",
        {**RECORD, "record_id": "rec\x1b[31m"},
        "record_id",
        "must not contain control characters",
    ),
    ("record-id-empty", {**RECORD, "record_id": ""}, "record_id", "must not be empty"),
    ("record-id-missing", {k: v for k, v in RECORD.items() if k != "record_id"}, "record_id", "is required"),
    ("content-oversized", {**OTP, "content": "1" * 10_000}, "content", "must have at most"),
    ("unknown-field", {**OTP, "colour": "red"}, "colour", "is not a field of this kind of call"),
    ("label-number", {**OTP, "labels": {"app": 5}}, "labels.app", "must be a string"),
    ("labels-list", {**OTP, "labels": ["a"]}, "labels", "must be a JSON object"),
    ("phone-number", {**OTP, "phone": 901234567}, "phone", "must be a string"),
    ("unicode-flag", {**OTP, "is_unicode": "perhaps"}, "is_unicode", "must be true or false"),
    ("variables-text", {"kind": "template_call", "phone": "0901234567", "template_id": "t",
                        "variables": "a,b"}, "variables", "must be a list"),
    ("schedule-unknown", {**OTP, "schedule": "later"}, "schedule", "must be 'worker' or 'provider'"),
    ("id-pattern", {**OTP, "id": "-bad id"}, "id",
     "must be 1-50 of A-Z a-z 0-9 . _ : - starting with a letter or digit"),
]  # fmt: skip


def _errors(body: Any) -> list[dict[str, str]]:
    try:
        CallRequestAdapter.validate_python(body, context=validation_context())
    except ValidationError as exc:
        return field_errors(exc.errors())
    raise AssertionError(f"accepted: {body!r}")


def _raw_types(body: Any) -> set[str]:
    try:
        CallRequestAdapter.validate_python(body, context=validation_context())
    except ValidationError as exc:
        return {str(err["type"]) for err in exc.errors()}
    return set()


def _assert_plain(errors: list[dict[str, str]]) -> None:
    for error in errors:
        assert not any(word in error["message"] for word in JARGON), error


@pytest.mark.parametrize(
    ("body", "field", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_rule_is_named_in_plain_words(body: Any, field: str, rule: str) -> None:
    """The contract's refusal names the field and its rule as the table says."""
    errors = _errors(body)
    _assert_plain(errors)
    assert any(e["field"] == field and e["message"].startswith(rule) for e in errors), errors


def test_every_error_type_the_contract_produces_has_its_words() -> None:
    """Every pydantic error type the hostile bodies above (and a few shapes more) provoke has
    an entry in producer.fields.PLAIN, so none falls back to pydantic's message."""
    bodies: list[Any] = [case[1] for case in CASES] + [
        [OTP], "voice_otp", 5, None, {**OTP, "ttl_s": 10**30}, {**OTP, "ttl_s": 3.5},
        {**OTP, "ttl_s": 1}, {**RECORD, "wait_retry": -1}, {**OTP, "content": ""},
        {**OTP, "idempotency_key": "k" * 500}, {**OTP, "variables": ["a"]},
        {"kind": "template_call", "phone": "0901234567", "template_id": "t",
         "variables": ["x"] * 1000, "speed": 99, "voice": "robot"},
        {**OTP, "is_unicode": 3}, {**OTP, "brandname": "b" * 100},
        {**RECORD, "max_repeat": math.inf}, {**RECORD, "number_forward": 5},
    ]  # fmt: skip
    produced = set().union(*(_raw_types(body) for body in bodies))
    assert produced - set(PLAIN) == set(), "types without plain words"
    assert {
        "missing",
        "union_tag_not_found",
        "union_tag_invalid",
        "datetime_from_date_parsing",
    } <= produced


def test_one_line_reads_as_sentences() -> None:
    """The 422's ``message``: each field followed by its rule, as a sentence."""
    errors = _errors({k: v for k, v in OTP.items() if k != "kind"})
    assert one_line(errors) == f"kind is required: {KINDS}"
    errors = _errors({**OTP, "send_at": "tomorrow"})
    assert one_line(errors) == f"send_at {ISO}"


@pytest.mark.parametrize("case", CASES[:9], ids=[c[0] for c in CASES[:9]])
def test_the_api_answers_422_in_plain_words(api_server: ApiServer, case: tuple[Any, ...]) -> None:
    """POST /v1/calls answers each hostile body with 422, the field and its rule in words, and
    a ``message`` that reads as a sentence; NaN travels as the JSON extension Python writes."""
    _, body, field, rule = case
    with api_server.client() as client:
        response = client.post(
            "/v1/calls",
            content=json.dumps(body).encode(),  # NaN as the bare token NaN
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 422, response.text
    answer = response.json()
    _assert_plain(answer["errors"])
    assert not any(word in answer["message"] for word in JARGON), answer
    if field == "max_retry" and "NaN" in json.dumps(body):
        assert answer["errors"][0]["field"] in ("body", "max_retry"), answer  # refused as JSON
        return
    assert any(e["field"] == field and e["message"].startswith(rule) for e in answer["errors"])
    assert f"{field} {rule}" in answer["message"]


def test_the_python_producer_raises_the_project_error_with_the_same_list(
    api_server: ApiServer, redis_url: str
) -> None:
    """VoiceCallClient.enqueue raises IntakeError (a VoicecallError, not pydantic's error) whose
    ``errors`` are the API's 422 ``errors`` for the same body; nothing is stored."""
    body = {**RECORD, "kind": "sms", "send_at": "tomorrow"}
    client = VoiceCallClient(load_settings(redis_url=redis_url), JobStore.from_url(redis_url))
    with pytest.raises(IntakeError) as raised:
        client.enqueue(body)
    assert isinstance(raised.value, VoicecallError) and not isinstance(
        raised.value, ValidationError
    )
    assert raised.value.errors == [{"field": "kind", "message": f"must be {KINDS}"}]
    assert str(raised.value) == f"kind must be {KINDS}"
    both = {**RECORD, "send_at": "tomorrow", "max_retry": 9}
    with pytest.raises(IntakeError) as raised:
        client.enqueue_record("0901234567", "rec-1", send_at="tomorrow", max_retry=9)
    with api_server.client() as http:
        answer = http.post("/v1/calls", json=both).json()
    assert raised.value.errors == answer["errors"]
    assert {"field": "send_at", "message": ISO} in answer["errors"]
    assert str(raised.value) == answer["message"]
    assert JobStore.from_url(redis_url).state_counts() == {}


def test_the_csv_import_names_bad_cells_in_plain_words() -> None:
    """A CSV row with an unknown kind or a send_at in words is reported in the same words."""
    context = validation_context()
    _, errors = validate_row({"kind": "sms", "phone": "0901234567"}, context)
    assert errors == [{"field": "kind", "message": f"must be {KINDS}"}]
    cells = {"kind": "record", "phone": "0901234567", "record_id": "r", "send_at": "tomorrow"}
    _, errors = validate_row(cells, context)
    assert errors == [{"field": "send_at", "message": ISO}]

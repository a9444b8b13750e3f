"""Bad requests to POST /v1/calls (and the batch): each gets its status and names its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.api import ApiServer
from voicecall.store.job_store import JobStore

OTP: dict[str, Any] = {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"}
RECORD: dict[str, Any] = {"kind": "record_call", "phone": "0901234567", "record_id": "rec-1"}
TEMPLATE: dict[str, Any] = {"kind": "template_call", "phone": "0901234567", "template_id": "tpl-1"}
CALLS = "/v1/calls"
BATCH = "/v1/calls/batch"


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def _without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != name}


# (id, path, body: dict/list/bytes, expected status, expected error field or None)
CASES: list[tuple[str, str, Any, int, str | None]] = [
    # phones
    ("phone-empty", CALLS, {**OTP, "phone": ""}, 422, "phone"),
    ("phone-letters", CALLS, {**OTP, "phone": "call-me-maybe"}, 422, "phone"),
    ("phone-too-short", CALLS, {**OTP, "phone": "0901234"}, 422, "phone"),
    ("phone-too-long", CALLS, {**OTP, "phone": "0901234567890123456789"}, 422, "phone"),
    ("phone-bad-prefix", CALLS, {**OTP, "phone": "0001234567"}, 422, "phone"),
    ("phone-us", CALLS, {**OTP, "phone": "+1 415 555 2671"}, 422, "phone"),
    ("phone-uk", CALLS, {**OTP, "phone": "+44 20 7946 0958"}, 422, "phone"),
    ("phone-number-type", CALLS, {**OTP, "phone": 901234567}, 422, "phone"),
    ("phone-missing", CALLS, _without(OTP, "phone"), 422, "phone"),
    ("number-forward-bad", CALLS, {**RECORD, "number_forward": "12"}, 422, "number_forward"),
    # eSMS option ranges
    ("ivr-10", CALLS, {**RECORD, "ivr": 10, "number_forward": "0901234568"}, 422, "ivr"),
    ("ivr-without-forward", CALLS, {**RECORD, "ivr": 1}, 422, "ivr"),
    ("max-retry-6", CALLS, {**RECORD, "max_retry": 6}, 422, "max_retry"),
    ("wait-retry-5", CALLS, {**RECORD, "wait_retry": 5}, 422, "wait_retry"),
    ("max-repeat-0", CALLS, {**RECORD, "max_repeat": 0}, 422, "max_repeat"),
    ("time-wait-to-ivr-61", CALLS, {**RECORD, "time_wait_to_ivr": 61}, 422, "time_wait_to_ivr"),
    ("voice-robot", CALLS, {**TEMPLATE, "voice": "robot"}, 422, "voice"),
    ("speed-4", CALLS, {**TEMPLATE, "speed": 4}, 422, "speed"),
    ("speed-minus-4", CALLS, {**TEMPLATE, "speed": -4}, 422, "speed"),
    ("variables-double-pipe", CALLS, {**TEMPLATE, "variables": ["a||b"]}, 422, "variables"),
    ("variables-too-many", CALLS, {**TEMPLATE, "variables": ["v"] * 21}, 422, "variables"),
    ("ttl-5", CALLS, {**OTP, "ttl_s": 5}, 422, "ttl_s"),
    # time
    ("send-at-past", CALLS, {**OTP, "send_at": _iso(timedelta(hours=-1))}, 422, "send_at"),
    (
        "send-at-beyond-horizon",
        CALLS,
        {**RECORD, "send_at": _iso(timedelta(days=40))},
        422,
        "send_at",
    ),
    ("send-at-malformed", CALLS, {**RECORD, "send_at": "tomorrow at noon"}, 422, "send_at"),
    ("send-at-bad-date", CALLS, {**RECORD, "send_at": "2030-02-30T10:00:00"}, 422, "send_at"),
    # ids and kinds
    ("id-51-chars", CALLS, {**OTP, "id": "a" * 51}, 422, "id"),
    ("id-bad-chars", CALLS, {**OTP, "id": "job id/1"}, 422, "id"),
    ("kind-unknown", CALLS, {**OTP, "kind": "sms"}, 422, "kind"),
    ("kind-missing", CALLS, _without(OTP, "kind"), 422, "kind"),
    ("schedule-unknown", CALLS, {**OTP, "schedule": "later"}, 422, "schedule"),
    # content and source ids
    ("content-missing", CALLS, _without(OTP, "content"), 422, "content"),
    ("content-too-long", CALLS, {**OTP, "content": "x" * 161}, 422, "content"),
    ("content-non-ascii", CALLS, {**OTP, "content": "Mã của bạn là 1234"}, 422, "content"),
    ("content-control-char", CALLS, {**OTP, "content": "1234\x07"}, 422, "content"),
    ("record-id-blank", CALLS, {**RECORD, "record_id": "   "}, 422, "record_id"),
    ("template-id-missing", CALLS, _without(TEMPLATE, "template_id"), 422, "template_id"),
    # other fields and types
    ("extra-field", CALLS, {**OTP, "priority": "high"}, 422, "priority"),
    ("field-of-another-kind", CALLS, {**OTP, "record_id": "rec-1"}, 422, "record_id"),
    ("max-retry-wrong-type", CALLS, {**RECORD, "max_retry": "three"}, 422, "max_retry"),
    ("is-unicode-wrong-type", CALLS, {**OTP, "is_unicode": "maybe"}, 422, "is_unicode"),
    ("labels-not-strings", CALLS, {**OTP, "labels": {"app": 1}}, 422, "labels.app"),
    ("webhook-not-http", CALLS, {**OTP, "webhook_url": "ftp://example.com/x"}, 422, "webhook_url"),
    (
        "webhook-azure-wireserver",
        CALLS,
        {**OTP, "webhook_url": "http://168.63.129.16/machine?comp=goalstate"},
        422,
        "webhook_url",
    ),
    (
        "idempotency-key-too-long",
        CALLS,
        {**OTP, "idempotency_key": "k" * 201},
        422,
        "idempotency_key",
    ),
    # bodies
    ("invalid-json", CALLS, b'{"kind": "voice_otp",', 422, "body"),
    ("empty-body", CALLS, b"", 422, "body"),
    ("json-array", CALLS, [OTP], 422, "body"),
    ("json-string", CALLS, "voice_otp", 422, "body"),
    ("not-utf8", CALLS, b'{"kind": "\xff"}', 422, "body"),
    ("body-too-large", CALLS, {**OTP, "labels": {"pad": "x" * 2_000_000}}, 413, None),
    # batches
    ("batch-over-1000", BATCH, {"calls": [OTP] * 1001}, 422, "calls"),
    ("batch-empty", BATCH, {"calls": []}, 422, "calls"),
    ("batch-not-a-list", BATCH, {"calls": OTP}, 422, "calls"),
    ("batch-missing-calls", BATCH, {"items": [OTP]}, 422, "items"),
    ("batch-invalid-json", BATCH, b'{"calls": [', 422, "body"),
]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_with_its_field(
    api_server: ApiServer, redis_url: str, path: str, body: Any, status: int, field: str | None
) -> None:
    """The bad request gets the expected status and names the bad field; nothing is stored."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with api_server.client() as client:
        response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["request_id"] == response.headers["x-request-id"]
    if status == 422:
        assert answer["error"] == "validation_failed"
        assert field in [e["field"] for e in answer["errors"]], answer
        # plain words (producer.fields), never pydantic's
        assert not any(w in answer["message"] for w in ("Input should", "discriminator")), answer
    else:
        assert answer["error"] == "body_too_large"
    assert JobStore.from_url(redis_url).state_counts() == {}


def test_every_field_error_is_reported_at_once(api_server: ApiServer) -> None:
    """A request with several bad fields gets one 422 listing each of them."""
    body = {**RECORD, "phone": "1", "ivr": 10, "max_retry": 6, "wait_retry": 5}
    with api_server.client() as client:
        answer = client.post(CALLS, json=body).json()
    assert sorted(e["field"] for e in answer["errors"]) == [
        "ivr",
        "max_retry",
        "phone",
        "wait_retry",
    ]


def test_a_table_of_at_least_30_cases() -> None:
    """The table above covers at least 30 bad inputs, each with a distinct id."""
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


def test_field_errors_drop_the_union_tag() -> None:
    """Field names never carry the kind tag pydantic puts first in a union error's location."""
    from producer.fields import field_errors

    errors = [
        {
            "loc": ("voice_otp", "labels", "app"),
            "msg": "Input should be a valid string",
            "type": "string_type",
        },
        {
            "loc": ("record_call",),
            "msg": "Value error, ivr needs number_forward",
            "type": "value_error",
        },
        {
            "loc": (),
            "msg": "Unable to extract tag using discriminator 'kind'",
            "type": "union_tag_not_found",
        },
        {"loc": ("body", "template_call", "speed"), "msg": "too fast", "type": "less_than_equal"},
    ]
    assert [e["field"] for e in field_errors(errors)] == ["labels.app", "ivr", "kind", "speed"]
    # a rule over the model is reported on the field it names, the message then the rule alone
    assert field_errors(errors)[1]["message"] == "needs number_forward"
    assert [e["message"] for e in field_errors(errors)][2:] == [
        "is required: one of voice_otp, record_call, template_call",
        "must be at most ?",  # no ctx given: the bound is unknown, the words stay plain
    ]

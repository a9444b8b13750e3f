"""A job's story as the console tells it (producer.console.timeline): every state change with
what eSMS said, the result's source, webhook deliveries, oldest first, no phone number."""

from __future__ import annotations

from producer.console import timeline
from voicecall.job.records import JobRecord


def _job() -> JobRecord:
    return JobRecord.model_validate(
        {
            "id": "j1",
            "kind": "record_call",
            "phone": "84901234568",
            "state": "completed",
            "outcome": "answered",
            "request": {"kind": "record_call", "record_id": "r1"},
            "created_at": 100.0,
            "updated_at": 130.0,
            "due_at": 100.0,
            "history": [
                {"state": "queued", "at": 100.0},
                {"state": "sending", "at": 101.0, "note": "attempt 1"},
                {"state": "retrying", "at": 102.0, "note": "eSMS HTTP 500; call 0901234568 later"},
                {"state": "submitted", "at": 110.0, "code": 100, "smsid": "s-1"},
                {"state": "completed", "at": 120.0, "outcome": "answered", "source": "poll"},
            ],
            "webhook": {
                "state": "delivered",
                "deliveries": [
                    {"at": 125.0, "status": 500, "error": "http_500", "duration_ms": 12.0},
                    {"at": 121.0, "status": None, "error": "timeout"},
                ],
            },
        }
    )


def test_the_story_holds_every_step_and_delivery_in_time_order() -> None:
    """Every state change and webhook delivery appears once, oldest first, with what eSMS said
    (code, SMSID), the result's source and each delivery's status, error and duration."""
    events = timeline.events(_job())
    assert [(e.at, e.title) for e in events] == [
        (100.0, "queued"),
        (101.0, "sending"),
        (102.0, "retrying"),
        (110.0, "submitted"),
        (120.0, "completed"),
        (121.0, "webhook delivery"),
        (125.0, "webhook delivery"),
    ]
    assert events[3].facts == {"eSMS code": "100", "SMSID": "s-1"}
    assert events[4].facts == {"outcome": "answered", "result by": "poll"}
    assert events[5].facts == {"HTTP status": "none", "error": "timeout"}
    assert events[6].facts == {"HTTP status": "500", "error": "http_500", "took": "12 ms"}
    assert timeline.result_source(_job()) == "poll"


def test_a_phone_number_in_a_note_is_masked() -> None:
    """A phone number inside a history note is shown masked, never in full."""
    retrying = timeline.events(_job())[2]
    assert "0901234568" not in retrying.note
    assert "***" in retrying.note

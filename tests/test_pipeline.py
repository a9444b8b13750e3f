"""End to end through real processes: API → Redis → Dramatiq worker → simulator → callback."""

from __future__ import annotations

from collections.abc import Callable

from tests.fixtures.stack import Stack


def test_each_kind_reaches_its_final_state(stack_factory: Callable[..., Stack]) -> None:
    """One job of each kind goes queued → sending → submitted → completed with the right outcome."""
    stack = stack_factory()
    stack.start_worker()
    bodies = [
        {"kind": "voice_otp", "phone": "0901234567", "content": "Ma 123456"},
        {"kind": "record_call", "phone": "0901234568", "record_id": "rec1"},
        {
            "kind": "template_call",
            "phone": "0901234569",
            "template_id": "tpl1",
            "variables": ["a", "b"],
        },
        {"kind": "record_call", "phone": "0901234561", "record_id": "rec1"},
    ]
    ids = [stack.post_call(body)["id"] for body in bodies]
    jobs = stack.wait_final(ids, timeout=30)
    outcomes = [
        (jobs[i].state.value, jobs[i].outcome.value if jobs[i].outcome else None) for i in ids
    ]
    assert outcomes == [
        ("completed", "delivered"),
        ("completed", "answered"),
        ("completed", "answered"),
        ("completed", "not_answered"),
    ]
    for job_id in ids:
        entries = [entry.state.value for entry in stack.job(job_id).history]
        # The states it went through (a submitted job may also note a callback it confirms).
        states = [s for i, s in enumerate(entries) if i == 0 or entries[i - 1] != s]
        assert states == ["queued", "sending", "submitted", "completed"]
    assert sorted(call["request_id"] for call in stack.sim.calls()) == sorted(ids)

"""A job's whole story for the console, oldest first: each state change with its note and
what eSMS said (result code, SMSID), whether the result came by callback or by status poll,
and each webhook delivery, and the OpenTelemetry trace they belong to. Phone numbers never
appear here (the page masks the job's), nor control characters raw (a note's text came from
outside: they are shown as escapes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from voicecall.formats.phones import mask_phone, mask_phones_in_text
from voicecall.formats.text import escape_controls
from voicecall.formats.timefmt import from_epoch
from voicecall.job.records import JobRecord, JobView
from voicecall.job.states import State

# History extras worth showing, with their label (the Lua steps record them).
_EXTRAS = {
    "code": "eSMS code",
    "smsid": "SMSID",
    "outcome": "outcome",
    "source": "result by",
    "attempt": "attempt",
}


@dataclass(frozen=True)
class Event:
    at: float
    title: str
    note: str = ""
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def when(self) -> str:
        return from_epoch(self.at).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Trace:
    """The OpenTelemetry trace a job's steps belong to: its id, and the link to it in the
    tracing backend when TRACE_LINK_TEMPLATE is set."""

    id: str
    url: str | None = None


def trace(view: dict[str, Any], link_template: str) -> Trace | None:
    """The job's trace (None when it has none), from its view's ``otel_trace_id``. Only
    ``{trace_id}`` in the template is filled in, with the id URL-encoded; the template is
    validated at start-up and the page escapes the link as any other attribute."""
    trace_id = view.get("otel_trace_id")
    if not trace_id:
        return None
    if not link_template:
        return Trace(trace_id)
    return Trace(trace_id, link_template.replace("{trace_id}", quote(trace_id, safe="")))


def events(job: JobRecord) -> list[Event]:
    story: list[Event] = []
    for entry in job.history:
        extra: dict[str, Any] = entry.model_extra or {}
        facts = {
            label: escape_controls(str(extra[name]))
            for name, label in _EXTRAS.items()
            if name in extra
        }
        note = escape_controls(mask_phones_in_text(entry.note or ""))
        story.append(Event(entry.at, entry.state.value, note, facts))
    for delivery in job.webhook.deliveries if job.webhook else []:
        facts = {"HTTP status": str(delivery.status) if delivery.status is not None else "none"}
        if delivery.error:
            facts["error"] = escape_controls(delivery.error)
        if delivery.duration_ms is not None:
            facts["took"] = f"{delivery.duration_ms:.0f} ms"
        story.append(Event(delivery.at, "webhook delivery", facts=facts))
    return sorted(story, key=lambda event: event.at)


def raw_view(job: JobRecord, *, revealed: bool) -> dict[str, Any]:
    """The job as GET /v1/calls/{id} answers it (an OTP's content is never in it), its phone
    masked unless the operator revealed it, and phone numbers in its notes masked."""
    view = JobView.of(job).json_body()
    if not revealed:
        view["phone"] = mask_phone(view["phone"])
    for entry in view.get("history") or []:
        if entry.get("note"):
            entry["note"] = mask_phones_in_text(entry["note"])
    return view


def raw_json(view: dict[str, Any]) -> str:
    """The view as indented JSON, control characters escaped."""
    return escape_controls(json.dumps(view, indent=2, ensure_ascii=False), json=True)


def matters(job: JobRecord) -> bool:
    """Whether the last error still says something: while the job may be tried again, or as
    the reason it failed; not once it completed or was cancelled."""
    return job.error is not None and job.state not in (State.COMPLETED, State.CANCELLED)


def result_source(job: JobRecord) -> str | None:
    """``callback`` or ``poll``: how the job's result came, when it has one."""
    for entry in reversed(job.history):
        source = (entry.model_extra or {}).get("source")
        if source:
            return str(source)
    return None

"""Jobs as CSV, one row per job, written a batch at a time (``GET /v1/calls/export`` and
``voicecall export``).

Times are RFC 3339 in UTC, like the job JSON; ``labels`` is a JSON object. Cells a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) get a leading ``'``: labels and eSMS error texts come from outside.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

COLUMNS = (
    "id",
    "phone",
    "kind",
    "state",
    "outcome",
    "created_at",
    "due_at",
    "submitted_at",
    "finished_at",
    "attempts",
    "call_status",
    "duration_s",
    "price_vnd",
    "error_code",
    "error_message",
    "labels",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500


def _time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    whole = int(epoch)
    ms = round((epoch - whole) * 1000)
    if ms == 1000:
        whole, ms = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def row(doc: dict[str, Any]) -> list[Any]:
    """The CSV cells of one stored job document (voicecall.job.records.JobRecord)."""
    call = doc.get("call") or {}
    error = doc.get("error") or {}
    labels = doc.get("labels") or {}
    # Ids, phones, kinds, states and outcomes were validated at intake; only what eSMS, a
    # label or an error text brings can start like a formula.
    return [
        doc["id"],
        doc["phone"],
        doc["kind"],
        doc["state"],
        doc.get("outcome") or "",
        _time(doc.get("created_at")),
        _time(doc.get("due_at")),
        _time(doc.get("submitted_at")),
        _time(doc.get("finished_at")),
        doc.get("attempts", 0),
        _cell(call.get("status")),
        _cell(call.get("duration_s")),
        _cell(call.get("price_vnd")),
        _cell(error.get("code")),
        _cell(error.get("message")),
        _cell(json.dumps(labels, ensure_ascii=False, separators=(",", ":")) if labels else ""),
    ]


def chunks(docs: Iterable[dict[str, Any]], *, header: bool = True) -> Iterator[str]:
    """The CSV text: the header, then ``ROWS_PER_CHUNK`` rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for rows, doc in enumerate(docs, start=1):
        writer.writerow(row(doc))
        if rows % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()

"""Import call jobs from a CSV file: validate every row first, then enqueue the good ones.

A header row is required, columns in any order; only ``kind`` and ``phone`` must be present.
The columns are the job contract's fields (producer.call_fields lists them from its models,
and ``voicecall import --help`` prints them). An empty cell means "not set"; ``variables``
are separated by ``|``, ``labels`` written ``k=v;k=v`` (``--campaign NAME`` sets the campaign
label of every row).

The file is read twice, streaming (never held in memory): pass 1 validates every row with the
job contract and reports bad rows by line number; pass 2 re-validates with the same clock and
enqueues. All jobs of one import share a trace id (``import-...``).
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from producer.call_fields import COLUMNS, KIND_ALIASES, REQUIRED_COLUMNS
from producer.client import VoiceCallClient
from producer.fields import field_errors
from producer.intake import DuplicateJobId, IdempotencyConflict
from voicecall.errors import VoicecallError
from voicecall.job.contract import (
    CallRequestAdapter,
    RecordCall,
    TemplateCall,
    VoiceOtpCall,
    with_campaign,
)

__all__ = [  # COLUMNS: the contract's fields (producer.call_fields)
    "COLUMNS", "BadRow", "CsvFormatError", "Importer", "Summary", "read_rows", "to_request",
    "validate_row",
]  # fmt: skip
VARIABLE_SEPARATOR = "|"
LABEL_SEPARATOR = ";"

AnyCall = VoiceOtpCall | RecordCall | TemplateCall
FieldErrors = list[dict[str, str]]


class CsvFormatError(VoicecallError):
    """The file cannot be imported at all (unreadable, or a bad header)."""


@dataclass(frozen=True)
class BadRow:
    line: int
    errors: FieldErrors


@dataclass
class Summary:
    read: int = 0
    valid: int = 0
    enqueued: int = 0  # new jobs
    replays: int = 0  # rows whose idempotency key matched an earlier job with the same body
    bad: int = 0  # rows that failed validation
    failed: int = 0  # valid rows refused when enqueued (conflicting idempotency key, taken id)
    trace_id: str = field(default_factory=lambda: f"import-{uuid.uuid4().hex[:16]}")

    def line(self) -> str:
        text = (
            f"rows read: {self.read}, valid: {self.valid}, enqueued: {self.enqueued}, "
            f"replays: {self.replays}, bad: {self.bad}"
        )
        return text + (f", refused: {self.failed}" if self.failed else "")


def _header(raw: list[str]) -> list[str]:
    names = [name.strip().lower() for name in raw]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise CsvFormatError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; known: {', '.join(COLUMNS)}"
        )
    missing = [n for n in REQUIRED_COLUMNS if n not in names]
    if missing:
        raise CsvFormatError(f"missing column(s) {', '.join(missing)} in the header row")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise CsvFormatError(f"column(s) {', '.join(duplicated)} appear more than once")
    return names


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str] | BadRow]]:
    """``(line, cells)`` per non-blank data row, streaming; ``line`` is where the row starts."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CsvFormatError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            names = _header(next(reader))
        except StopIteration:
            raise CsvFormatError(f"{path} is empty (a header row is required)") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvFormatError(f"{path}: unreadable header ({exc})") from None
        end = reader.line_num
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise CsvFormatError(f"{path}: line {start}: {exc}") from None
            end = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(names):
                problem = f"has {len(cells)} cells; the header has {len(names)}"
                yield start, BadRow(start, [{"field": "row", "message": problem}])
                continue
            yield start, dict(zip(names, cells, strict=False))


def to_request(cells: dict[str, str]) -> tuple[dict[str, Any], FieldErrors]:
    """A row's cells as a request dict for the job contract, and problems with the cells."""
    request: dict[str, Any] = {}
    problems: FieldErrors = []
    for name, raw in cells.items():
        value = raw.strip()
        if not value:
            continue
        if name == "kind":
            request[name] = KIND_ALIASES.get(value.lower(), value.lower())
        elif name == "variables":
            if VARIABLE_SEPARATOR * 2 in value:
                problems.append(
                    {"field": name, "message": "contains '||'; separate variables with one '|'"}
                )
            else:
                request[name] = value.split(VARIABLE_SEPARATOR)
        elif name == "labels":
            labels, bad = _labels(value)
            if bad:
                problems.append({"field": name, "message": f"{bad!r} is not key=value (k=v;k=v)"})
            else:
                request[name] = labels
        else:
            request[name] = value
    return request, problems


def _labels(value: str) -> tuple[dict[str, str], str | None]:
    labels: dict[str, str] = {}
    for part in value.split(LABEL_SEPARATOR):
        if not part.strip():
            continue
        key, sep, item = part.partition("=")
        if not sep or not key.strip():
            return {}, part
        labels[key.strip()] = item.strip()
    return labels, None


def validate_row(
    cells: dict[str, str], context: dict[str, Any], campaign: str | None = None
) -> tuple[AnyCall | None, FieldErrors]:
    """The validated call (in ``campaign`` when given), or ``None`` and every problem found
    (cells and contract)."""
    request, problems = to_request(cells)
    if campaign is not None:
        try:
            request = with_campaign(request, campaign)
        except ValueError as exc:
            problems.append({"field": "labels.campaign", "message": str(exc)})
    try:
        call = CallRequestAdapter.validate_python(request, context=context)
    except ValidationError as exc:
        return None, problems + field_errors(exc.errors())
    return (None, problems) if problems else (call, [])


class Importer:
    """Runs one import. ``on_bad`` gets each bad row; ``on_progress`` rows done so far."""

    def __init__(
        self,
        client: VoiceCallClient,
        context: dict[str, Any],
        *,
        on_bad: Callable[[BadRow], None],
        on_progress: Callable[[str, int, int | None], None] = lambda *_: None,
        campaign: str | None = None,
    ) -> None:
        self.client = client
        self.campaign = campaign  # every row's `campaign` label
        self.context = context  # one clock for both passes: a row valid in 1 is valid in 2
        self.on_bad = on_bad
        self.on_progress = on_progress

    def validate(self, path: Path, summary: Summary) -> None:
        """Pass 1: count and check every row; report the bad ones."""
        for _line, row in read_rows(path):
            summary.read += 1
            errors = (
                row.errors
                if isinstance(row, BadRow)
                else validate_row(row, self.context, self.campaign)[1]
            )
            if errors:
                summary.bad += 1
                self.on_bad(BadRow(_line, errors))
            else:
                summary.valid += 1
            self.on_progress("validating", summary.read, None)

    def enqueue(self, path: Path, summary: Summary) -> None:
        """Pass 2: enqueue every valid row (Redis errors propagate; re-running is safe for
        rows with an idempotency key)."""
        done = 0
        for line, row in read_rows(path):
            if isinstance(row, BadRow):
                continue
            call, _errors = validate_row(row, self.context, self.campaign)
            if call is None:
                continue
            try:
                submitted = self.client.intake.submit(
                    call, client=self.client.client_name, trace_id=summary.trace_id
                )
            except (IdempotencyConflict, DuplicateJobId) as exc:
                summary.failed += 1
                name = "idempotency_key" if isinstance(exc, IdempotencyConflict) else "id"
                self.on_bad(BadRow(line, [{"field": name, "message": str(exc)}]))
            else:
                if submitted.replay:
                    summary.replays += 1
                else:
                    summary.enqueued += 1
            done += 1
            self.on_progress("enqueuing", done, summary.valid)

"""The CSV export (``GET /v1/calls/export``) as it streams: whole rows a chunk at a time, and
the file it is written to.

A chunk may end anywhere: inside a UTF-8 character, a field, or a quoted field that holds a
line break (an eSMS error text may). A record ends at a line break outside quotes, that is
after an even number of ``"`` since the record began (a quote inside a field is doubled).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
from collections.abc import Iterator
from typing import IO


class CsvRecords:
    """Feed bytes, get the records completed so far; :meth:`end` gives the rest."""

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")().decode
        self._pending = ""  # text after the last whole record

    def feed(self, chunk: bytes) -> list[list[str]]:
        return self._records(self._pending + self._decode(chunk), final=False)

    def end(self) -> list[list[str]]:
        return self._records(self._pending + self._decode(b"", True), final=True)

    def _records(self, text: str, *, final: bool) -> list[list[str]]:
        end = position = quotes = 0
        while (line_end := text.find("\n", position)) != -1:
            quotes += text.count('"', position, line_end)
            position = line_end + 1
            if quotes % 2 == 0:
                end, quotes = position, 0
        if final:
            end = len(text)
        whole, self._pending = text[:end], text[end:]
        return list(csv.reader(io.StringIO(whole, newline=""), strict=True))


class CsvRows:
    """The export's records as dicts keyed by its header (its first record)."""

    def __init__(self) -> None:
        self.records = CsvRecords()
        self.header: list[str] | None = None
        self.count = 0  # rows so far, the header aside

    def feed(self, chunk: bytes) -> list[dict[str, str]]:
        return self._rows(self.records.feed(chunk))

    def end(self) -> list[dict[str, str]]:
        return self._rows(self.records.end())

    def _rows(self, records: list[list[str]]) -> list[dict[str, str]]:
        if records and self.header is None:
            self.header = records.pop(0)
        self.count += len(records)
        header = self.header or []
        return [dict(zip(header, record, strict=True)) for record in records]


@contextlib.contextmanager
def output(out: str | os.PathLike[str] | IO[bytes]) -> Iterator[IO[bytes]]:
    """``out`` to write to: a path is opened (and closed) here, a file is the caller's."""
    if isinstance(out, str | os.PathLike):
        with open(out, "wb") as file:
            yield file
    else:
        yield out

"""The export's rows as they stream (voicecall.client._export): however the CSV is cut into
chunks (inside a UTF-8 character, a field, a quoted line break), the rows are the ones written."""

from __future__ import annotations

import csv
import io
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from producer.search.export import COLUMNS
from voicecall.client._export import CsvRows

CELL = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\",\r\n'=+"),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(CELL, min_size=len(COLUMNS), max_size=len(COLUMNS)), max_size=8),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_rows_survive_any_chunking(rows: list[list[str]], cuts: list[int]) -> None:
    """Rows written as the API writes them (csv, CRLF), split at arbitrary byte offsets, come back equal, keyed by the header, and counted."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    data = text.getvalue().encode()
    offsets = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    parser = CsvRows()
    parsed = []
    for start, end in itertools.pairwise(offsets):
        parsed += parser.feed(data[start:end])
    parsed += parser.end()
    assert parsed == [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    assert parser.count == len(rows)

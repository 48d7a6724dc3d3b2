"""The printers' variable-data CSV: one serial, code and URL per line, streamed in chunks."""
from __future__ import annotations

import csv
import io

import pytest

from labels import CSV_HEADER, LabelError, write_csv
from labels.variable_data import CHUNK_ROWS
from tests.labels.helpers import KEYRING, make_items


def test_csv_has_a_header_and_one_crlf_row_per_label():
    """Is the file UTF-8 CSV with the header serial,code,url and one CRLF-terminated row per label?"""
    items = list(make_items(3))
    out = io.BytesIO()
    rows = ((i.serial, i.url.rsplit("/", 1)[1], i.url) for i in items)
    assert write_csv(rows, out) == 3
    text = out.getvalue().decode("utf-8")
    lines = text.split("\r\n")
    assert lines[0] == ",".join(CSV_HEADER) and lines[-1] == "" and len(lines) == 5
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[1] == [items[0].serial, items[0].url[-30:], items[0].url]
    assert parsed[1][1][0] in KEYRING.key_ids


def test_csv_streams_in_chunks():
    """For a long range, are rows handed to the writer in chunks rather than all at the end?"""
    class Sink:
        def __init__(self):
            self.writes = []

        def write(self, b):
            self.writes.append(len(b))

    sink = Sink()
    n = CHUNK_ROWS * 3 + 5
    write_csv(((f"S{i}", "C", f"https://x/{i}") for i in range(n)), sink, header=False)
    assert len(sink.writes) == 4 and max(sink.writes) < 2 * sum(sink.writes) / 3


def test_csv_quotes_commas_and_refuses_line_breaks():
    """Is a comma quoted per RFC 4180, and a field with a line break (or a short row) refused?"""
    out = io.BytesIO()
    write_csv([("A1", "B", "https://x/?a=1,2")], out, header=False)
    assert out.getvalue() == b'A1,B,"https://x/?a=1,2"\r\n'
    for bad in ([("A", "B\nC", "u")], [("A", "B")]):
        with pytest.raises(LabelError) as err:
            write_csv(bad, io.BytesIO())
        assert err.value.code == "bad_row"

"""The variable-data file for industrial (inkjet, digital) printers: one CSV row per label, streamed."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import BinaryIO

from .errors import LabelError

CSV_HEADER = ("serial", "code", "url")
CHUNK_ROWS = 2000


def write_csv(rows: Iterable[tuple[str, str, str]], out: BinaryIO, *, header: bool = True) -> int:
    """Stream ``serial,code,url`` rows as UTF-8 CSV (RFC 4180: CRLF line ends) to ``out``; returns the row count.

    Rows are written in chunks of bytes, so a range of any length takes constant memory.
    A field with a line break is refused: printers' data readers take one label per line.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_HEADER)
    count = 0
    for row in rows:
        if len(row) != 3:
            raise LabelError("bad_row", f"row {count + 1}: expected (serial, code, url), got {len(row)} fields")
        for value in row:
            if not isinstance(value, str) or "\n" in value or "\r" in value:
                raise LabelError("bad_row", f"row {count + 1}: every field is one line of text, got {value!r}")
        writer.writerow(row)
        count += 1
        if count % CHUNK_ROWS == 0:
            out.write(buf.getvalue().encode("utf-8"))
            buf.seek(0)
            buf.truncate()
    out.write(buf.getvalue().encode("utf-8"))
    return count

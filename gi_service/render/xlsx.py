"""Excel workbooks (.xlsx) of the tables in ``render.tables``: one sheet, typed cells, written in constant memory.

XlsxWriter in ``constant_memory`` mode writes each row to a temporary file as soon as the next one begins,
so a table of any length needs memory for one row (``bench/xlsx.py`` measures it); openpyxl's write-only
mode streams too but keeps every shared string in memory and writes about three times slower.

What the workbook holds:

* a header row of Chinese headers ("中文 (key)"), bold, wrapped, frozen (it stays when scrolling);
* cells typed by their column's kind: integers and decimals as numbers (decimals shown with their places),
  dates as Excel dates, instants as Excel date-times in China Standard Time, flags as 是/否 text;
* column widths from the column's kind, its header and the widest value of the first ``SAMPLE_ROWS`` rows
  (CJK characters count double), between ``MIN_WIDTH`` and ``MAX_WIDTH``;
* an autofilter over the header;
* text is always a string cell, never a formula: text that begins with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return (what a spreadsheet would take for a formula, CWE-1236) is also marked with Excel's
  quote prefix, so editing the cell does not turn it into one.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import tempfile
import unicodedata
from decimal import Decimal
from typing import Any, BinaryIO, Iterator

import xlsxwriter

from .. import clock
from .cells import yes_no
from .tables import Column, Table

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SAMPLE_ROWS = 200
MIN_WIDTH, MAX_WIDTH = 6, 60
HEADER_WIDTH = 24        # a long bilingual header wraps rather than widening its column beyond this
MAX_CELL = 32767         # Excel's limit for the text of one cell
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The width a column of each kind needs whatever its values (a date "2026-04-30", an instant to the minute).
KIND_WIDTH = {"text": 8, "integer": 8, "decimal": 10, "date": 11, "datetime": 17, "flag": 6}
_ILLEGAL_SHEET = str.maketrans({c: " " for c in "[]:*?/\\"})


def display_width(text: str) -> int:
    """How many character cells `text` takes in a spreadsheet's font (East Asian wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _sample_text(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or column.kind == "flag":
        return yes_no(bool(value))
    if column.kind == "decimal" and isinstance(value, (int, float, Decimal)):
        return f"{float(value):,.{column.places}f}"
    if column.kind in ("date", "datetime") and isinstance(value, dt.date):
        return ""  # the kind's width holds it
    return str(value)


def column_widths(columns: list[Column], sample: list[Any]) -> list[float]:
    """Each column's width: its kind's, its header's (up to HEADER_WIDTH) or its widest sampled value's."""
    widths = []
    for i, column in enumerate(columns):
        header = min(HEADER_WIDTH, max(display_width(part) for part in column.header.split(" ")) + 1)
        values = max((display_width(_sample_text(column, row[i])) for row in sample), default=0)
        widths.append(float(min(MAX_WIDTH, max(MIN_WIDTH, KIND_WIDTH[column.kind], header, values + 2))))
    return widths


def _china_naive(value: dt.datetime) -> dt.datetime:
    """The instant as China wall time to the whole second (truncated, as the CSV's minutes are).

    An Excel cell holds a fraction of a day; a reader rounds it, so 08.9997 s would come back as the next
    second (and a minute's last instant as the next minute): truncating first keeps cell and CSV agreeing."""
    if value.tzinfo is None:   # the services keep instants in UTC; SQLite hands them back without a zone
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(clock.CHINA_TZ).replace(tzinfo=None, microsecond=0)


class _Writer:
    def __init__(self, workbook: xlsxwriter.Workbook, columns: list[Column]):
        self.columns = columns
        add = workbook.add_format
        self.header = add({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#E8EEF4",
                           "bottom": 1})
        self.text = add({})
        self.quoted = add({"quote_prefix": True})
        self.date = add({"num_format": "yyyy-mm-dd"})
        self.datetime = add({"num_format": "yyyy-mm-dd hh:mm"})
        self.integer = add({"num_format": "0"})
        self.decimals = {c.places: add({"num_format": "#,##0" + ("." + "0" * c.places if c.places else "")})
                         for c in columns if c.kind == "decimal"}

    def row(self, ws, r: int, values) -> None:
        for c, (column, value) in enumerate(zip(self.columns, values)):
            self.cell(ws, r, c, column, value)

    def cell(self, ws, r: int, c: int, column: Column, value: Any) -> None:
        if value is None or value == "":
            return
        if isinstance(value, bool):
            self.string(ws, r, c, yes_no(value))
        elif isinstance(value, (int, float, Decimal)):
            number = float(value)
            if not math.isfinite(number):
                self.string(ws, r, c, str(value))
            elif column.kind == "decimal":
                ws.write_number(r, c, number, self.decimals[column.places])
            else:
                ws.write_number(r, c, number, self.integer if isinstance(value, int) else None)
        elif isinstance(value, dt.datetime):
            ws.write_datetime(r, c, _china_naive(value), self.datetime)
        elif isinstance(value, dt.date):
            ws.write_datetime(r, c, dt.datetime(value.year, value.month, value.day), self.date)
        else:
            self.string(ws, r, c, str(value))

    def string(self, ws, r: int, c: int, text: str) -> None:
        text = text[:MAX_CELL]
        ws.write_string(r, c, text, self.quoted if text.startswith(FORMULA_START) else self.text)


def sheet_name(title: str) -> str:
    """A title as an Excel sheet name (at most 31 characters, none of []:*?/\\)."""
    name = title.translate(_ILLEGAL_SHEET).strip().strip("'") or "Sheet1"
    return name[:31]


def write_xlsx(table: Table, out: BinaryIO | str) -> int:
    """Write `table` as a one-sheet workbook to `out` (a path or a binary file); return the number of rows."""
    columns = list(table.columns)
    workbook = xlsxwriter.Workbook(out, {
        "constant_memory": True,          # rows go to a temporary file as they are written
        "strings_to_formulas": False,     # text is text: "=1+1" stays the characters =1+1
        "strings_to_numbers": False,      # a USCC or an adcode stays text
        "strings_to_urls": False,
        "tmpdir": tempfile.gettempdir(),
    })
    workbook.set_properties({"title": table.title, "creator": "gi-service"})
    ws = workbook.add_worksheet(sheet_name(table.title))
    writer = _Writer(workbook, columns)
    rows = iter(table.rows)
    sample = list(itertools.islice(rows, SAMPLE_ROWS))
    for c, width in enumerate(column_widths(columns, sample)):
        ws.set_column(c, c, width)
    for c, column in enumerate(columns):
        ws.write_string(0, c, column.header, writer.header)
    ws.freeze_panes(1, 0)
    n = 0
    for n, values in enumerate(itertools.chain(sample, rows), start=1):
        writer.row(ws, n, values)
    if columns:
        ws.autofilter(0, 0, max(n, 1), len(columns) - 1)
    workbook.close()
    return n


def xlsx_file(table: Table) -> tuple[BinaryIO, int]:
    """The workbook in an anonymous temporary file, rewound, and its size (for a streamed answer)."""
    handle = tempfile.TemporaryFile()
    try:
        write_xlsx(table, handle)
        size = handle.tell()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle, size


def xlsx_bytes(table: Table) -> bytes:
    """The workbook as bytes (small tables, tests)."""
    handle, _ = xlsx_file(table)
    with handle:
        return handle.read()


def xlsx_chunks(table: Table, size: int = 64 * 1024) -> Iterator[bytes]:
    """The workbook in chunks, for an answer streamed from inside its request (rows read as they are written,
    into a temporary file deleted at the end)."""
    handle, _ = xlsx_file(table)
    with handle:
        while chunk := handle.read(size):
            yield chunk

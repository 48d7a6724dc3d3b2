"""CSV files of the tables in ``render.sheets``: the statistics and the annual reports (UTF-8 with a byte-order mark,
headers "中文 (key)"), the open data's GI registry (with a byte-order mark, bare keys), the ledger report (台账)
and the serious-violator list.

The byte-order mark makes Excel read the file as UTF-8 (it assumes the local code page otherwise). Text that a
spreadsheet would run as a formula — a producer's name typed as ``=HYPERLINK(…)``, opened by an authority in
Excel — is written inert, with a leading apostrophe (OWASP's advice for CSV injection); numbers, dates and the
open data's registry are written as they are.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Iterator

from ..services import opendata
from . import sheets
from .cells import AUDIT_COLUMNS
from .tables import Table, csv_cell


def csv_text(table: Table) -> str:
    """The table as CSV text (headers as the table asks, cells as ``tables.csv_cell`` prints them)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=table.csv_lineterminator)
    columns = list(table.columns)
    writer.writerow([c.key if table.csv_headers == "key" else c.header for c in columns])
    inert = [table.csv_inert and c.kind == "text" for c in columns]
    writer.writerows([_inert(csv_cell(c, v)) if guard else csv_cell(c, v) for c, v, guard in zip(columns, row, inert)]
                     for row in table.rows)
    return buf.getvalue()


def csv_bytes(table: Table) -> bytes:
    """The table as a CSV file: UTF-8, with a byte-order mark unless the table's format has none."""
    return csv_text(table).encode("utf-8-sig" if table.csv_bom else "utf-8")


def statistics_csv(data: dict[str, Any]) -> bytes:
    """The statistics (``statistics.compute(...).to_dict()``): one row per group (when grouped) and a total row."""
    return csv_bytes(sheets.statistics_table(data))


def annual_listing_csv(data: dict[str, Any]) -> bytes:
    """The listing of who had to report a year (``annual_reports.listing``)."""
    return csv_bytes(sheets.annual_listing_table(data))


def annual_rollup_csv(data: dict[str, Any]) -> bytes:
    """The rollup per GI for the provincial filing (``annual_reports.rollup``), with its total row."""
    return csv_bytes(sheets.annual_rollup_table(data))


def registry_csv(items: list[opendata.Published]) -> bytes:
    """The open data's GI registry (``opendata.records``), with CRLF line ends."""
    return csv_bytes(sheets.registry_table(items))


def ledger_report_csv(report: dict[str, Any], part: str = "rows") -> str:
    """The ledger report (台账, ``reports.ledger_report``): its rows, or its mismatches (`part`)."""
    return csv_text(sheets.ledger_report_table(report, part))


def serious_violators_csv(items: Iterable[dict[str, Any]], *, history: bool = False) -> bytes:
    """The serious-violator list, as ``credit.listing_dict`` gives it with its producers."""
    return csv_bytes(sheets.serious_violators_table(items, history=history))


# --- the audit trail -----------------------------------------------------------------------------------

def _inert(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with =, +, -, @ (or a tab or CR) gets a leading
    apostrophe. Text from anyone reaches these files (a producer's name, a username tried at sign-in, a path)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def audit_csv(records: Iterable[dict[str, Any]], *, chunk_rows: int = 500) -> Iterator[bytes]:
    """The audit trail's records (``audit.record_dict``) as CSV, streamed in chunks (UTF-8 with a BOM)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([header for _key, header, _cell in AUDIT_COLUMNS])
    yield buf.getvalue().encode("utf-8-sig")
    buf.seek(0)
    buf.truncate()
    for n, record in enumerate(records, 1):
        writer.writerow([_inert(cell(record)) for _key, _header, cell in AUDIT_COLUMNS])
        if n % chunk_rows == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")

"""Tables an office hands on, declared once and written as CSV (``render.csv``) or Excel (``render.xlsx``).

A ``Table`` is a title, its columns and an iterable of rows of typed Python values (``int``, ``Decimal`` or
``float``, ``datetime.date``, aware ``datetime.datetime``, ``bool``, ``str``, ``None``). Each column declares
its *kind*; the CSV writer turns a value into the text the CSV has always printed, the Excel writer into a
typed cell (a date cell, a number with its decimals, text that is never a formula). A new table — the audit
trail, say — is one ``Table(...)`` and one call of ``csv_bytes`` or ``xlsx_download``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

from .. import clock
from .cells import yes_no

#: The kinds a column may have: what its cells are in Excel.
KINDS = ("text", "integer", "decimal", "date", "datetime", "flag")


@dataclass(frozen=True)
class Column:
    """One column: its machine key, its Chinese header, its kind and, for decimals, the places shown."""

    key: str
    zh: str
    kind: str = "text"
    places: int = 2
    # How the CSV prints a value of this column, when not the kind's way (a file's format is older than this).
    csv: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.key}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def header(self) -> str:
        """The bilingual header "中文 (key)" (the key lets a program find the column)."""
        return f"{self.zh} ({self.key})" if self.zh and self.zh != self.key else self.key


@dataclass
class Table:
    """A table to download: a title (the Excel sheet's name), its columns and its rows (any iterable, read once)."""

    title: str
    columns: Sequence[Column]
    rows: Iterable[Sequence[Any]]
    # CSV only: headers as "中文 (key)" or the bare keys (the ledger report and the open data keep their keys),
    # a byte-order mark (Excel reads UTF-8 only with it), and the line end.
    csv_headers: str = "bilingual"
    csv_bom: bool = True
    csv_lineterminator: str = "\r\n"
    # CSV only: text cells a spreadsheet would take for a formula (=, +, -, @, a tab or CR first) get a leading
    # apostrophe, as the Excel writer marks them as text. Off for open data, which programs read as published.
    csv_inert: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def csv_cell(column: Column, value: Any) -> Any:
    """A value as the CSV prints it."""
    if column.csv is not None:
        return column.csv(value)
    if value is None:
        return ""
    if column.kind == "flag" or isinstance(value, bool):
        return yes_no(bool(value))
    if column.kind == "datetime" and isinstance(value, dt.datetime):
        return value.astimezone(clock.CHINA_TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def instant(iso: str | dt.datetime | None) -> dt.datetime | None:
    """An ISO instant (as the services' dicts give it) as a datetime, None for none."""
    if iso is None or iso == "":
        return None
    return iso if isinstance(iso, dt.datetime) else dt.datetime.fromisoformat(iso)


def day(iso: str | dt.date | None) -> dt.date | None:
    """An ISO date as a date, None for none."""
    if iso is None or iso == "":
        return None
    return iso if isinstance(iso, dt.date) else dt.date.fromisoformat(iso)

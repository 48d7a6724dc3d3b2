"""Bulk import of producers, authorizations and plots from a spreadsheet (.xlsx) or CSV, for authorities.

An office keeps its registers in Excel; this reads them in through the services the API uses, so every rule
those enforce applies to each row (a USCC's check characters, the jurisdiction, the GI's basis, the plot inside
the production area). The three kinds and their columns are ``SPECS``; ``template(kind)`` is what a clerk fills in.

How a file is read, and what is refused before any row is looked at:

* at most ``Limits.max_bytes`` (GI_IMPORT_MAX_MB) and ``Limits.max_rows`` data rows (GI_IMPORT_MAX_ROWS; plots
  ``max_plot_rows``, GI_IMPORT_MAX_PLOT_ROWS: a plot's checks take far longer than a producer's);
* .xlsx is a zip: its members' declared and actual uncompressed sizes (in total at most ``max_unzipped_bytes``)
  and each large member's compression ratio (at most ``MAX_RATIO``) are checked before openpyxl parses anything,
  and no member may carry a DTD (``<!DOCTYPE``/``<!ENTITY``: a workbook never needs one; entity expansion is the
  "billion laughs"). openpyxl itself parses through defusedxml (a dependency), which refuses entities again;
* openpyxl reads in ``read_only`` mode with ``data_only``: a formula gives its cached value, none is evaluated;
* CSV is UTF-8 (with or without the byte-order mark Excel writes for "CSV UTF-8") or, failing that, GB18030 —
  what Chinese Excel's plain "CSV" saves in (GB18030 is a superset of GBK and GB2312); the report says which.

How rows are taken:

* a row is matched to what is registered by the producer's USCC (producers), the USCC and the GI
  (authorizations), and the USCC and the plot code (plots). A row that matches and says the same is
  *unchanged*; one that matches but differs is refused (``record_differs``, naming each field): an import adds
  what is missing and never overwrites a record — records carry their history (authorization events, plots
  behind past quotas), and a stale spreadsheet must not silently undo a change made since. Change such a
  record on its own page or through the API. So re-importing a file changes nothing.
* each new row is written by the services inside a savepoint: a row the services refuse is reported with its
  row number (as the spreadsheet numbers it: the header is row 1), its column and what to fix, and undone;
  the other rows go on being checked, so one run reports every bad row.
* a dry run, or a run with any bad row, writes nothing: the caller rolls the transaction back. A real run
  without bad rows is committed by the caller as one transaction (all rows or none) with an ``ImportRun``.

Imported authorizations are registered approved (the office's register lists approved users): the GI must be
one the authority manages (``producers.create_authorization``), and the announcement number is required.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import shapely
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..errors import Forbidden, GIError, InvalidUSCC, MalformedRequest, ValidationFailed
from ..models import (Authorization, AuthorizationBasis, ImportRun, OrgKind, Organisation)
from . import accounts, producers
from .accounts import Principal
from .registry import can_manage_gi, get_gi
from .uscc import validate_uscc

KINDS = ("producers", "authorizations", "plots")
MAX_RATIO = 100                      # uncompressed : compressed, for a member of more than RATIO_FLOOR bytes
RATIO_FLOOR = 1024 * 1024
MAX_MEMBERS = 1000
MAX_CELL = 100_000                   # a boundary may be long; nothing else comes near
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"      # the old binary .xls (OLE2)
DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class ImportRefused(GIError):
    """The file as a whole cannot be imported (too large, unsafe, unreadable, columns missing)."""

    status = 422
    code = "import_refused"


class ImportTooLarge(ImportRefused):
    status = 413
    code = "import_too_large"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 * 1024 * 1024
    max_rows: int = 2_000
    max_plot_rows: int = 500
    max_unzipped_bytes: int = 100 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings, *, max_rows: int | None = None) -> "Limits":
        """The settings' limits; `max_rows` (the CLI's --max-rows) replaces both row limits."""
        return cls(max_bytes=settings.import_max_mb * 1024 * 1024,
                   max_rows=max_rows or settings.import_max_rows,
                   max_plot_rows=max_rows or settings.import_max_plot_rows,
                   max_unzipped_bytes=max(100, 10 * settings.import_max_mb) * 1024 * 1024)

    def rows_for(self, kind: str) -> int:
        return self.max_plot_rows if kind == "plots" else self.max_rows


@dataclass(frozen=True)
class ImportColumn:
    key: str
    zh: str
    required: bool
    kind: str = "text"          # text | integer | date | geometry
    max_len: int = 200
    hint: str = ""               # what to put there (English; the Chinese header says what it is)
    example: str = ""

    @property
    def header(self) -> str:
        return f"{self.zh} ({self.key})"


USCC_COL = ImportColumn("uscc", "统一社会信用代码", True, max_len=18,
                        hint="18 characters (GB 32100-2015)", example="91341602MA2TGH8X4F")
SPECS: dict[str, list[ImportColumn]] = {
    "producers": [
        ImportColumn("name", "名称", True, hint="the registered name, 2-200 characters", example="亳州市芍花堂饮片有限公司"),
        USCC_COL,
        ImportColumn("adcode", "行政区划代码", False, max_len=6,
                     hint="6-digit code of the registered place (default: from the USCC)", example="341602"),
        ImportColumn("name_en", "英文名称", False, hint="optional"),
        ImportColumn("address", "地址", False, max_len=300, hint="optional"),
        ImportColumn("contact", "联系人及电话", False, hint="optional"),
    ],
    "authorizations": [
        ImportColumn("uscc", "生产者统一社会信用代码", True, max_len=18,
                     hint="the producer's USCC (import the producers first)", example="91341602MA2TGH8X4F"),
        ImportColumn("gi_id", "地理标志编号", True, "integer", hint="the GI's id in this service", example="1"),
        ImportColumn("announcement_no", "核准公告号", True, max_len=100, hint="the approval's announcement number",
                     example="国家知识产权局公告第354号"),
        ImportColumn("basis", "使用依据", False, max_len=40,
                     hint="approved_producer, collective_member, certification_licensee or foreign_gi_distributor "
                          "(default: the one the GI's kind allows)"),
        ImportColumn("valid_from", "有效期起", False, "date", hint="YYYY-MM-DD (default: today)"),
        ImportColumn("valid_until", "有效期止", False, "date", hint="YYYY-MM-DD, optional"),
    ],
    "plots": [
        ImportColumn("uscc", "生产者统一社会信用代码", True, max_len=18,
                     hint="the producer's USCC (import the producers first)", example="91341602MA2TGH8X4F"),
        ImportColumn("plot_code", "地块编号", True, max_len=40, hint="the producer's code for the plot, unique for "
                     "that producer", example="SH-2025-001"),
        ImportColumn("gi_id", "地理标志编号", True, "integer", hint="the GI whose production area holds the plot",
                     example="1"),
        ImportColumn("name", "地块名称", True, max_len=120, example="十八里镇1号地"),
        ImportColumn("survey_year", "调查年度", True, "integer", hint="the year the plot was surveyed", example="2025"),
        ImportColumn("boundary", "边界", True, "geometry", max_len=MAX_CELL,
                     hint="a Polygon or MultiPolygon in WGS-84 longitude/latitude, as GeoJSON or WKT",
                     example="POLYGON((115.78 33.84, 115.781 33.84, 115.781 33.841, 115.78 33.841, 115.78 33.84))"),
    ],
}
TITLES = {"producers": "生产者 producers", "authorizations": "使用核准 authorizations", "plots": "地块 plots"}


@dataclass
class Problem:
    row: int | None                 # the spreadsheet's row number (the header is row 1); None: the file
    column: str | None              # the column's key
    code: str
    message: str
    details: Any = None

    def to_dict(self) -> dict[str, Any]:
        from ..i18n.texts import ERRORS_ZH

        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message,
                "message_zh": ERRORS_ZH.get(self.code), "details": self.details}


@dataclass
class Outcome:
    row: int
    action: str                     # created | unchanged
    id: int
    key: str                        # how the row was matched: the USCC, "USCC / GI id", "USCC / plot code"


@dataclass
class ImportReport:
    kind: str
    filename: str
    sha256: str
    file_format: str                # xlsx | csv
    encoding: str | None
    dry_run: bool
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    written: bool = False
    run_id: int | None = None
    previous_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "created")

    @property
    def unchanged(self) -> int:
        return sum(1 for o in self.outcomes if o.action == "unchanged")

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "filename": self.filename, "sha256": self.sha256, "format": self.file_format,
                "encoding": self.encoding, "dry_run": self.dry_run, "valid": self.valid, "written": self.written,
                "run_id": self.run_id, "rows": self.rows, "created": self.created, "unchanged": self.unchanged,
                "bad_rows": len({p.row for p in self.problems}),
                "problems": [p.to_dict() for p in self.problems],
                "outcomes": [{"row": o.row, "action": o.action, "id": o.id, "key": o.key} for o in self.outcomes],
                "previous_runs": self.previous_runs}


# --- reading the file ---------------------------------------------------------------------------------

@dataclass
class RawSheet:
    file_format: str
    encoding: str | None
    header: list[Any]
    rows: list[tuple[int, list[Any]]]     # (row number, cells)


def check_zip(data: bytes, limits: Limits) -> None:
    """Refuse a zip that would expand beyond the limits, or whose XML carries a DTD, before anything parses it."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ImportRefused(f"the file is not a readable .xlsx workbook ({exc}); save it again from Excel as "
                            "\"Excel Workbook (*.xlsx)\" or as CSV", code="unreadable_file") from None
    if len(infos) > MAX_MEMBERS:
        raise ImportRefused(f"the workbook has {len(infos)} parts, more than a spreadsheet has ({MAX_MEMBERS})",
                            code="unsafe_file", details={"reason": "too_many_members"})
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_unzipped_bytes:
        raise ImportRefused(f"the workbook would expand to {declared:,} bytes, more than the "
                            f"{limits.max_unzipped_bytes:,} allowed (a zip bomb, or far too much data)",
                            code="unsafe_file", details={"reason": "zip_bomb", "declared_bytes": declared})
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ImportRefused(f"part {info.filename} of the workbook is compressed {info.file_size // max(info.compress_size, 1)}:1, "
                                f"more than the {MAX_RATIO}:1 a spreadsheet has (a zip bomb)", code="unsafe_file",
                                details={"reason": "zip_bomb", "member": info.filename})
    actual = 0
    for info in infos:
        seen = 0
        tail = b""
        try:
            with archive.open(info) as member:
                while chunk := member.read(64 * 1024):
                    seen += len(chunk)
                    actual += len(chunk)
                    if seen > info.file_size or actual > limits.max_unzipped_bytes:
                        raise ImportRefused(f"part {info.filename} of the workbook expands beyond its declared size "
                                            "(a zip bomb)", code="unsafe_file",
                                            details={"reason": "zip_bomb", "member": info.filename})
                    if DTD.search(tail + chunk):
                        raise ImportRefused(f"part {info.filename} of the workbook declares a DTD or XML entities, "
                                            "which no spreadsheet needs (entity expansion is refused)",
                                            code="unsafe_file", details={"reason": "xml_entities",
                                                                         "member": info.filename})
                    tail = chunk[-16:]
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise ImportRefused(f"part {info.filename} of the workbook cannot be read ({exc}); save it again from "
                                "Excel", code="unreadable_file") from None


def _too_many(max_rows: int) -> ImportRefused:
    return ImportRefused(f"the file has more than {max_rows:,} rows; split it into files of at most {max_rows:,} "
                         "rows (or import it with `gi-service import --max-rows`)", code="too_many_rows",
                         details={"max_rows": max_rows})


def _blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _collect(rows: Iterator[tuple[int, list[Any]]], max_rows: int) -> tuple[list[Any], list[tuple[int, list[Any]]]]:
    header: list[Any] | None = None
    out: list[tuple[int, list[Any]]] = []
    for number, cells in rows:
        if header is None:
            if _blank(cells):
                continue
            header = cells
            continue
        if _blank(cells):
            continue
        if len(out) >= max_rows:
            raise _too_many(max_rows)
        out.append((number, cells))
    if header is None:
        raise ImportRefused("the file is empty: the first row must name the columns (download the template)",
                            code="empty_file")
    return header, out


def _defused(exc: BaseException) -> bool:
    """Whether defusedxml refused the XML, anywhere in the exception's chain (openpyxl wraps what it meets)."""
    from defusedxml import DefusedXmlException

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DefusedXmlException):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def read_xlsx(data: bytes, kind: str, limits: Limits) -> RawSheet:
    import openpyxl
    from openpyxl.xml import DEFUSEDXML

    check_zip(data, limits)
    assert DEFUSEDXML, "openpyxl must parse through defusedxml (pip install defusedxml)"
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:    # openpyxl raises many types for a damaged workbook, defusedxml its own
        raise _unreadable(exc, "the file is not a readable .xlsx workbook") from None
    try:
        sheets = workbook.worksheets
        wanted = {kind, TITLES[kind].lower(), TITLES[kind].split()[0]}
        sheet = next((s for s in sheets if s.title.strip().lower() in wanted), sheets[0] if sheets else None)
        if sheet is None:
            raise ImportRefused("the workbook has no sheet", code="empty_file")
        try:
            rows = ((n, list(cells)) for n, cells in enumerate(sheet.iter_rows(values_only=True), start=1))
            header, body = _collect(rows, limits.rows_for(kind))
        except ImportRefused:
            raise
        except Exception as exc:
            raise _unreadable(exc, "the sheet cannot be read") from None
    finally:
        workbook.close()
    return RawSheet("xlsx", None, header, body)


def _unreadable(exc: Exception, what: str) -> ImportRefused:
    """The refusal for what openpyxl could not read: entities defusedxml refused, or a damaged file."""
    if _defused(exc):
        return ImportRefused("the workbook declares XML entities, which are refused", code="unsafe_file",
                             details={"reason": "xml_entities"})
    return ImportRefused(f"{what} ({type(exc).__name__}); save it again from Excel", code="unreadable_file")


def decode_csv(data: bytes) -> tuple[str, str]:
    """CSV text and its encoding: UTF-8 (with or without a byte-order mark), else GB18030."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise ImportRefused(f"the CSV is neither UTF-8 nor GB18030 (byte {exc.start}); save it as \"CSV UTF-8\"",
                            code="unreadable_file") from None


def read_csv(data: bytes, limits: Limits, kind: str = "producers") -> RawSheet:
    text, encoding = decode_csv(data)
    if "\x00" in text:
        raise ImportRefused("the CSV holds NUL characters: it is not a text file", code="unreadable_file")
    # The delimiter from the header line alone (no boundary, no quoted comma there): a comma, else a tab or a
    # semicolon (what Excel writes in locales whose decimal mark is a comma).
    first = text.split("\n", 1)[0]
    delimiter = "," if "," in first else "\t" if "\t" in first else ";" if ";" in first else ","
    csv.field_size_limit(MAX_CELL + 1)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        # Rows numbered as a spreadsheet shows the file (a quoted line break stays inside its row).
        header, body = _collect(enumerate(reader, start=1), limits.rows_for(kind))
    except csv.Error as exc:
        raise ImportRefused(f"the CSV cannot be read: {exc}", code="unreadable_file") from None
    return RawSheet("csv", encoding, header, body)


def read_file(filename: str, data: bytes, kind: str, limits: Limits) -> RawSheet:
    if len(data) > limits.max_bytes:
        raise ImportTooLarge(f"the file is {len(data):,} bytes, more than the {limits.max_bytes:,} allowed; split it",
                             details={"max_bytes": limits.max_bytes})
    if not data:
        raise ImportRefused("the file is empty", code="empty_file")
    if data.startswith(XLS_MAGIC) or filename.lower().endswith(".xls"):
        raise ImportRefused("the old .xls format (or a password-protected workbook) is not read: save the workbook "
                            "as .xlsx without a password, or as CSV", code="unreadable_file")
    if data.startswith(XLSX_MAGIC):
        return read_xlsx(data, kind, limits)
    if filename.lower().endswith(".xlsx"):
        raise ImportRefused("the file is named .xlsx but is not a workbook; save it again from Excel",
                            code="unreadable_file")
    return read_csv(data, limits, kind)


# --- the header and the cells ---------------------------------------------------------------------------

def _header_key(text: str) -> str:
    return re.sub(r"\s+", "", text).replace("（", "(").replace("）", ")").lower()


# Columns a clerk's sheet often has besides the data, read past: a running number and remarks.
IGNORED_COLUMNS = {"序号", "no", "no.", "#", "备注", "remarks", "notes"}


def map_header(kind: str, header: list[Any]) -> tuple[dict[str, int], list[Problem]]:
    """Where each column is: a header cell may be the key, the Chinese name, or both as the template has them.
    序号 (a running number) and 备注 (remarks) are read past; any other unknown column is a problem on row 1."""
    spec = SPECS[kind]
    names: dict[str, str] = {}
    for c in spec:
        for name in (c.key, c.zh, c.header):
            names[_header_key(name)] = c.key
    where: dict[str, int] = {}
    problems: list[Problem] = []
    for i, cell in enumerate(header):
        if cell is None or not str(cell).strip():
            continue
        key = names.get(_header_key(str(cell)))
        if key is None and _header_key(str(cell)) in IGNORED_COLUMNS:
            continue
        if key is None:
            problems.append(Problem(1, str(cell)[:100], "unknown_column",
                                    f"column {str(cell)[:100]!r} is not one of this import's: "
                                    f"{', '.join(c.header for c in spec)}; rename or remove it"))
        elif key in where:
            problems.append(Problem(1, key, "duplicate_column", f"column {key} appears twice; keep one"))
        else:
            where[key] = i
    missing = [c for c in spec if c.required and c.key not in where]
    if missing:
        raise ImportRefused(f"the first row must name the columns; missing: {', '.join(c.header for c in missing)} "
                            "(download the template)", code="missing_columns",
                            details={"missing": [c.key for c in missing],
                                     "expected": [c.header for c in spec]})
    return where, problems


class CellError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _text(value: Any, column: ImportColumn) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and abs(value) >= 1e15:
        # An all-digit USCC or code typed into a number cell: Excel keeps 15 significant digits only.
        raise CellError("number_lost_digits", f"the cell holds the number {value:.15g}, of which Excel kept only 15 "
                                              "digits; format the column as text (the template does) and type it "
                                              "again")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (dt.datetime, dt.date)):
        value = value.isoformat()
    text = str(value).strip()
    if not text:
        return None
    if "\x00" in text:
        raise CellError("invalid_character", "the cell holds a NUL character (U+0000); remove it")
    if len(text) > column.max_len:
        raise CellError("too_long", f"{len(text)} characters, at most {column.max_len}")
    return text


def cell_value(value: Any, column: ImportColumn) -> Any:
    """A cell as the column wants it, or CellError saying what to fix."""
    if column.kind == "integer":
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            raise CellError("not_an_integer", "give a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = str(value).strip().replace(",", "")
        if re.fullmatch(r"\d{1,12}", text):
            return int(text)
        raise CellError("not_an_integer", f"{str(value)[:40]!r} is not a whole number")
    if column.kind == "date":
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = str(value).strip().replace("/", "-").replace(".", "-")
        try:
            return dt.date.fromisoformat("-".join(p.zfill(2) for p in text.split("-")))
        except ValueError:
            raise CellError("not_a_date", f"{str(value)[:40]!r} is not a date; write YYYY-MM-DD") from None
    text = _text(value, column)
    if column.kind == "geometry" and text is not None:
        return parse_boundary(text)
    return text


def parse_boundary(text: str) -> shapely.Geometry:
    """A boundary written as GeoJSON (a geometry or a Feature) or WKT, in WGS-84 longitude/latitude."""
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise CellError("invalid_geometry", f"the GeoJSON cannot be read: {exc}") from None
        if not isinstance(obj, dict):
            raise CellError("invalid_geometry", "give a GeoJSON Polygon or MultiPolygon object")
        crs = obj.get("crs")
        if crs is not None:
            name = str(((crs or {}).get("properties") or {}).get("name", ""))
            if not re.search(r"(CRS84|EPSG:+4326)$", name):
                raise CellError("not_wgs84", f"the GeoJSON declares the coordinate system {name or crs!r}; give "
                                             "WGS-84 longitude/latitude (convert GCJ-02 or projected data first)")
        if obj.get("type") == "Feature":
            obj = obj.get("geometry") or {}
        if obj.get("type") not in ("Polygon", "MultiPolygon"):
            raise CellError("invalid_geometry", f"a plot is a Polygon or MultiPolygon, not {obj.get('type')!r}")
        try:
            return shape(obj)
        except Exception as exc:  # shapely raises several types for malformed coordinates
            raise CellError("invalid_geometry", f"the GeoJSON's coordinates cannot be read: {exc}") from None
    try:
        geom = shapely.from_wkt(text)
    except Exception as exc:  # shapely.errors.GEOSException and friends
        raise CellError("invalid_geometry", f"neither GeoJSON nor WKT: {str(exc)[:200]}") from None
    if geom is None or geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise CellError("invalid_geometry", "a plot is a POLYGON or MULTIPOLYGON")
    return geom


# --- the rows ------------------------------------------------------------------------------------------

# Which column a service's refusal is about, by its code (else by the field its details name).
CODE_COLUMN = {"invalid_uscc": "uscc", "duplicate_uscc": "uscc", "not_your_producer": "uscc",
               "producer_not_found": "uscc", "unknown_adcode": "adcode", "gi_not_found": "gi_id",
               "duplicate_authorization": "gi_id", "wrong_basis": "basis", "invalid_geometry": "boundary",
               "plot_outside_area": "boundary", "gi_without_area": "gi_id", "duplicate_plot_code": "plot_code"}
JURISDICTION_COLUMN = {"producers": "adcode", "authorizations": "gi_id", "plots": "uscc"}


def _problem_of(exc: GIError, kind: str, row: int) -> Problem:
    column = CODE_COLUMN.get(exc.code)
    if exc.code == "outside_jurisdiction":
        column = JURISDICTION_COLUMN[kind]
    if column is None and isinstance(exc.details, list) and exc.details and isinstance(exc.details[0], dict):
        field_name = exc.details[0].get("field")
        column = {"code": "plot_code", "geometry": "boundary"}.get(field_name, field_name)
    if column is None and isinstance(exc.details, dict) and exc.details.get("field"):
        column = exc.details["field"]
    return Problem(row, column, exc.code, exc.message, exc.details)


def _differs(row: int, key: str, fields: dict[str, tuple[Any, Any]]) -> Problem:
    said = "; ".join(f"{name}: {mine!r} here, {theirs!r} on record" for name, (mine, theirs) in fields.items())
    return Problem(row, next(iter(fields)), "record_differs",
                   f"{key} is registered with other values ({said}); an import never overwrites a record: change "
                   "it on its page or through the API, or correct the row",
                   {"fields": {n: {"file": _plain(a), "record": _plain(b)} for n, (a, b) in fields.items()}})


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v.value if hasattr(v, "value") else v


def _producer_by_uscc(session: Session, uscc: str) -> Organisation:
    info = validate_uscc(uscc)
    org = session.scalar(select(Organisation).where(Organisation.uscc == info.code))
    if org is None or org.kind != OrgKind.producer:
        raise GIError(f"no producer with USCC {info.code} is registered; import the producers first",
                      code="producer_not_found", status=404)
    return org


def _import_producer(session: Session, by: Principal, row: dict[str, Any], number: int) -> Outcome | Problem:
    info = validate_uscc(row["uscc"])
    existing = session.scalar(select(Organisation).where(Organisation.uscc == info.code))
    if existing is None:
        org = accounts.create_organisation(session, kind=OrgKind.producer, name=row["name"], uscc=info.code,
                                           adcode=row.get("adcode"), name_en=row.get("name_en"),
                                           address=row.get("address"), contact=row.get("contact"), by=by)
        return Outcome(number, "created", org.id, info.code)
    if not by.covers(existing.adcode) or (row.get("adcode") and not by.covers(row["adcode"])):
        raise Forbidden(f"the producer with USCC {info.code} is registered outside your jurisdiction ({by.adcode})",
                        code="outside_jurisdiction")
    if existing.kind != OrgKind.producer:
        raise GIError(f"USCC {info.code} belongs to a registered {existing.kind.value}, not a producer",
                      code="duplicate_uscc", status=409)
    diff = {name: (row[name], getattr(existing, name)) for name in ("name", "adcode", "name_en", "address", "contact")
            if row.get(name) is not None and row[name] != getattr(existing, name)}
    if diff:
        return _differs(number, f"producer {existing.id} (USCC {info.code})", diff)
    return Outcome(number, "unchanged", existing.id, info.code)


def _import_authorization(session: Session, by: Principal, row: dict[str, Any], number: int,
                          filename: str) -> Outcome | Problem:
    producer = _producer_by_uscc(session, row["uscc"])
    gi = get_gi(session, row["gi_id"])
    if not can_manage_gi(session, by, gi):
        raise Forbidden(f"GI {gi.id} ({gi.name_zh}) is outside your jurisdiction", code="outside_jurisdiction")
    allowed = producers.BASIS_FOR_KIND[gi.kind]
    if row.get("basis"):
        try:
            basis = AuthorizationBasis(row["basis"])
        except ValueError:
            raise ValidationFailed(f"basis {row['basis']!r} is not one of "
                                   f"{', '.join(b.value for b in AuthorizationBasis)}",
                                   details=[{"field": "basis", "problem": "unknown"}], code="wrong_basis") from None
    else:
        basis = next(iter(allowed))
    key = f"{producer.uscc} / GI {gi.id}"
    existing = session.scalar(select(Authorization).where(Authorization.producer_id == producer.id,
                                                          Authorization.gi_id == gi.id))
    if existing is not None:
        diff = {name: (mine, theirs) for name, mine, theirs in (
            ("basis", basis, existing.basis), ("announcement_no", row["announcement_no"], existing.announcement_no),
            ("valid_from", row.get("valid_from"), existing.valid_from),
            ("valid_until", row.get("valid_until"), existing.valid_until))
            if mine is not None and mine != theirs}
        if diff:
            return _differs(number, f"authorization {existing.id} ({key}, {existing.status.value})", diff)
        return Outcome(number, "unchanged", existing.id, key)
    auth = producers.create_authorization(session, producer_id=producer.id, gi_id=gi.id, basis=basis, by=by,
                                          reason=f"imported from {filename[:100]} (row {number})",
                                          announcement_no=row["announcement_no"], valid_from=row.get("valid_from"),
                                          valid_until=row.get("valid_until"), approve=True)
    return Outcome(number, "created", auth.id, key)


def _same_geometry(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    # Within a centimetre: coordinates go through the database and back as doubles, vertex order may differ.
    return a.geom_type == b.geom_type and shapely.hausdorff_distance(a, b) < 1e-7


def _import_plot(session: Session, by: Principal, row: dict[str, Any], number: int) -> Outcome | Problem:
    producer = _producer_by_uscc(session, row["uscc"])
    producers.require_producer_access(by, producer, write=True)
    key = f"{producer.uscc} / {row['plot_code']}"
    existing = producers.plot_by_code(session, producer.id, row["plot_code"])
    if existing is None:
        plot = producers.create_plot(session, producer.id, gi_id=row["gi_id"], name=row["name"],
                                     geom=row["boundary"], survey_year=row["survey_year"], by=by,
                                     code=row["plot_code"])
        return Outcome(number, "created", plot.id, key)
    geom = producers.plot_geometry(row["boundary"])
    diff = {name: (mine, theirs) for name, mine, theirs in (
        ("gi_id", row["gi_id"], existing.gi_id), ("name", row["name"], existing.name),
        ("survey_year", row["survey_year"], existing.survey_year)) if mine != theirs}
    if not _same_geometry(geom, existing.geom):
        diff["boundary"] = ("the file's boundary", "another boundary")
    if not existing.is_active:
        diff["retired"] = (False, True)
    if diff:
        return _differs(number, f"plot {existing.id} ({key})", diff)
    return Outcome(number, "unchanged", existing.id, key)


def _file_key(kind: str, row: dict[str, Any]) -> str | None:
    uscc = (row.get("uscc") or "").strip().upper()
    if kind == "producers":
        return uscc or None
    if kind == "authorizations":
        return f"{uscc}|{row.get('gi_id')}" if uscc and row.get("gi_id") is not None else None
    return f"{uscc}|{row.get('plot_code')}" if uscc and row.get("plot_code") else None


def run_import(session: Session, kind: str, filename: str, data: bytes, *, by: Principal, dry_run: bool,
               limits: Limits, progress: Callable[[int, int], Any] | None = None) -> ImportReport:
    """Check every row of the file and write the good ones within the session's transaction (savepoints).

    The caller commits only when ``report.written`` (a real run without a bad row) and rolls back otherwise:
    a dry run checks exactly what a real run would, through the same services. Refusals of the file as a whole
    raise (ImportRefused, ImportTooLarge, Forbidden); refusals of rows are in the report. `progress(done, total)`
    is called after each row (the CLI's progress bar).
    """
    if kind not in KINDS:
        raise MalformedRequest(f"nothing to import named {kind!r}: {', '.join(KINDS)}", code="not_found", status=404)
    if by.org_kind != OrgKind.authority:
        raise Forbidden("bulk imports are for authority accounts", code="wrong_role")
    filename = (filename or "upload").replace("\x00", "")[:200]
    raw = read_file(filename, data, kind, limits)
    report = ImportReport(kind, filename, hashlib.sha256(data).hexdigest(), raw.file_format, raw.encoding, dry_run,
                          rows=len(raw.rows))
    report.previous_runs = [
        {"id": r.id, "at": r.at.isoformat(), "created": r.created, "unchanged": r.unchanged}
        for r in session.scalars(select(ImportRun).where(ImportRun.sha256 == report.sha256, ImportRun.kind == kind,
                                                         ImportRun.organisation_id == by.organisation_id)
                                 .order_by(ImportRun.id.desc()).limit(5))]
    where, report.problems = map_header(kind, raw.header)
    spec = SPECS[kind]
    seen: dict[str, int] = {}
    for done, (number, cells) in enumerate(raw.rows, start=1):
        row: dict[str, Any] = {}
        bad = False
        for column in spec:
            i = where.get(column.key)
            value = cells[i] if i is not None and i < len(cells) else None
            try:
                row[column.key] = cell_value(value, column)
            except CellError as exc:
                report.problems.append(Problem(number, column.key, exc.code, f"{column.header}: {exc.message}"))
                bad = True
                continue
            if column.required and row[column.key] is None:
                report.problems.append(Problem(number, column.key, "required",
                                               f"{column.header} is required ({column.hint or 'fill it in'})"))
                bad = True
        if kind == "producers" and row.get("name") is not None and len(row["name"]) < 2:
            report.problems.append(Problem(number, "name", "too_short", "名称 (name): at least 2 characters"))
            bad = True
        key = _file_key(kind, row)
        if key is not None:
            if key in seen:
                column = {"producers": "uscc", "authorizations": "gi_id", "plots": "plot_code"}[kind]
                report.problems.append(Problem(number, column, "duplicate_in_file",
                                               f"the same {'USCC' if kind == 'producers' else 'USCC and ' + column} "
                                               f"as row {seen[key]}; keep one of the two rows",
                                               {"first_row": seen[key]}))
                bad = True
            else:
                seen[key] = number
        if not bad:
            _take_row(session, kind, by, row, number, filename, report)
        if progress is not None:
            progress(done, len(raw.rows))
    if report.valid and not dry_run:
        run = ImportRun(kind=kind, filename=filename, sha256=report.sha256, rows=report.rows,
                        created=report.created, unchanged=report.unchanged, organisation_id=by.organisation_id,
                        user_id=by.user_id, at=clock.now())
        session.add(run)
        session.flush()
        report.run_id, report.written = run.id, True
    return report


def _take_row(session: Session, kind: str, by: Principal, row: dict[str, Any], number: int, filename: str,
              report: ImportReport) -> None:
    savepoint = session.begin_nested()
    try:
        if kind == "producers":
            result = _import_producer(session, by, row, number)
        elif kind == "authorizations":
            result = _import_authorization(session, by, row, number, filename)
        else:
            result = _import_plot(session, by, row, number)
    except InvalidUSCC as exc:
        savepoint.rollback()
        report.problems.append(Problem(number, "uscc", exc.code, exc.message, exc.details))
        return
    except GIError as exc:
        savepoint.rollback()
        report.problems.append(_problem_of(exc, kind, number))
        return
    except IntegrityError:
        # Another request registered the same USCC or plot code between this row's check and its insert.
        savepoint.rollback()
        report.problems.append(Problem(number, {"plots": "plot_code"}.get(kind, "uscc"), "conflict",
                                       "the record was registered by another request meanwhile; import the file "
                                       "again (the row will then be unchanged or differ)"))
        return
    except BaseException:
        savepoint.rollback()
        raise
    if isinstance(result, Problem):
        savepoint.rollback()
        report.problems.append(result)
    else:
        savepoint.commit()
        report.outcomes.append(result)


def template_columns(kind: str) -> list[ImportColumn]:
    if kind not in KINDS:
        raise MalformedRequest(f"no template named {kind!r}: {', '.join(KINDS)}", code="not_found", status=404)
    return SPECS[kind]


def recent_runs(session: Session, by: Principal, limit: int = 10) -> list[ImportRun]:
    """The organisation's latest imports that wrote, newest first."""
    return list(session.scalars(select(ImportRun).where(ImportRun.organisation_id == by.organisation_id)
                                .order_by(ImportRun.id.desc()).limit(limit)))

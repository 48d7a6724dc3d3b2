"""Bulk imports as the API and the import page both answer them: the upload read from a multipart form, the
import run and its transaction (committed only when written), and the templates (Excel or CSV)."""
from __future__ import annotations

import csv
import io
import tempfile
from typing import Literal

import xlsxwriter
from flask import Response, current_app, jsonify, request
from pydantic import Field

from ...db import get_session
from ...errors import MalformedRequest, ValidationFailed
from ...render.xlsx import MEDIA_TYPE as XLSX, column_widths, display_width
from ...render.tables import Column
from ...services import imports
from ..files import download
from ..schemas import Query

FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
UPLOAD_FORM = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary",
             "description": "the filled-in template: .xlsx, or CSV in UTF-8 (with or without BOM) or GB18030"},
    "dry_run": {"type": "string", "enum": sorted(FLAGS),
                "description": "true: check every row and write nothing (default false: write all rows or none)"}}}
UPLOAD_RESPONSES = {201: "written: every row created or unchanged (the report, with run_id)",
                    403: "not an authority (wrong_role)", 404: "no such import",
                    413: "file larger than GI_IMPORT_MAX_MB (import_too_large)",
                    415: "not multipart/form-data",
                    422: "the file refused as a whole (unsafe_file: zip bomb or XML entities; unreadable_file; "
                         "too_many_rows; missing_columns; empty_file), or a real run with bad rows "
                         "(import_rows_invalid: nothing written; details is the report)"}


class TemplateQuery(Query):
    format: Literal["xlsx", "csv"] = Field(default="xlsx", description="xlsx (with a sheet explaining each column) "
                                                                       "or csv (UTF-8 with BOM, the header row)")


def limits() -> imports.Limits:
    return imports.Limits.from_settings(current_app.config["GI_SETTINGS"])


def read_upload(*, extra_fields: tuple[str, ...] = ()) -> tuple[str, bytes, bool]:
    """The uploaded file (name, bytes) and the dry_run flag of a multipart form; unknown fields are refused."""
    if request.mimetype != "multipart/form-data":
        raise MalformedRequest("upload the file as multipart/form-data with a `file` field (and `dry_run`)",
                               code="unsupported_media_type", status=415)
    unknown = sorted(set(request.form) - {"dry_run", *extra_fields}) + sorted(set(request.files) - {"file"})
    problems = [{"field": f, "problem": "unknown field; remove it"} for f in unknown]
    raw_flag = (request.form.get("dry_run") or "false").strip().lower()
    if raw_flag not in FLAGS:
        problems.append({"field": "dry_run", "problem": "true or false"})
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        problems.append({"field": "file", "problem": "required field is missing"})
    if problems:
        raise ValidationFailed(f"invalid upload: {problems[0]['field']}: {problems[0]['problem']}", details=problems)
    return upload.filename, upload.read(limits().max_bytes + 1), FLAGS[raw_flag]


def run(principal, kind: str, filename: str, data: bytes, *, dry_run: bool) -> imports.ImportReport:
    """Run an import and settle its transaction: committed when written, rolled back otherwise (a dry run, or a
    real run with a bad row: nothing is written)."""
    session = get_session()
    if not session.in_transaction():   # SQLite: take the write lock at BEGIN (many rows, one transaction)
        session.connection(execution_options={"gi_write": True})
    try:
        report = imports.run_import(session, kind, filename, data, by=principal, dry_run=dry_run, limits=limits())
    except BaseException:
        session.rollback()
        raise
    if report.written:
        session.commit()
    else:
        session.rollback()
    return report


def upload_answer(principal, kind: str) -> Response:
    """POST /api/v1/imports/{kind}: the report (200 for a dry run, 201 when written), or 422 with the report as
    details when a real run had bad rows."""
    filename, data, dry_run = read_upload()
    report = run(principal, kind, filename, data, dry_run=dry_run)
    if not dry_run and not report.written:
        raise ValidationFailed(f"{len({p.row for p in report.problems})} row(s) of {report.rows} have problems; "
                               "nothing was written: fix them (a dry run lists them) and import the file again",
                               code="import_rows_invalid", details=report.to_dict())
    resp = jsonify(report.to_dict())
    resp.status_code = 201 if report.written else 200
    return resp


def template_answer(kind: str, fmt: str) -> Response:
    """The template of an import: its header row (Excel: with a sheet that says what goes in each column)."""
    columns = imports.template_columns(kind)
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerow([c.header for c in columns])
        return download(buf.getvalue().encode("utf-8-sig"), "text/csv", f"import-{kind}-template.csv")
    return download(template_xlsx(kind, columns), XLSX, f"import-{kind}-template.xlsx")


def template_xlsx(kind: str, columns: list[imports.ImportColumn]) -> bytes:
    """A workbook whose first sheet is the header row to fill in (every column formatted as text, so Excel keeps a
    USCC or a code as typed), and whose second sheet explains each column."""
    with tempfile.TemporaryFile() as handle:
        workbook = xlsxwriter.Workbook(handle, {"strings_to_formulas": False, "strings_to_numbers": False,
                                                "strings_to_urls": False})
        workbook.set_properties({"title": f"gi-service import template: {kind}", "creator": "gi-service"})
        bold = workbook.add_format({"bold": True, "bg_color": "#E8EEF4", "bottom": 1, "text_wrap": True})
        required = workbook.add_format({"bold": True, "bg_color": "#FCE4D6", "bottom": 1, "text_wrap": True})
        text = workbook.add_format({"num_format": "@"})
        data = workbook.add_worksheet(imports.TITLES[kind])
        widths = column_widths([Column(c.key, c.zh) for c in columns], [[c.example for c in columns]])
        for i, (column, width) in enumerate(zip(columns, widths)):
            data.set_column(i, i, min(width, 40), None if column.kind in ("integer", "date") else text)
            data.write_string(0, i, column.header, required if column.required else bold)
        data.freeze_panes(1, 0)
        notes = workbook.add_worksheet("说明 notes")
        heads = ["列 column", "必填 required", "填写说明 what to put", "示例 example"]
        for i, head in enumerate(heads):
            notes.write_string(0, i, head, bold)
        for r, column in enumerate(columns, start=1):
            for i, value in enumerate([column.header, "是 yes" if column.required else "否 no", column.hint,
                                       column.example]):
                notes.write_string(r, i, value)
        for i, head in enumerate(heads):
            longest = max([display_width(head)] + [display_width(str(v)) for v in
                                                   [c.header if i == 0 else c.hint if i == 2 else c.example
                                                    for c in columns]])
            notes.set_column(i, i, min(60, longest + 2))
        notes.write_string(len(columns) + 2, 0, "第一个工作表填写数据，首行为列名；每行一条记录。"
                                                "Fill in the first sheet below its header row, one record a row.")
        workbook.close()
        handle.seek(0)
        return handle.read()

"""The import page for authorities: upload a filled-in template, read the dry run's report row by row, confirm.

The upload is checked at once (a dry run through the same service as POST /api/v1/imports/{kind}) and, when
every row is good, kept in the file store as the user's one pending import (a later check replaces it); the
confirmation names the file's SHA-256, which must be the kept file's, and the import runs again on it — every
row checked again — then writes all rows or none and drops the kept file. Nothing the user typed names a stored
path.
"""
from __future__ import annotations

import hashlib

from flask import current_app, g, request

from ..db import get_session
from ..errors import GIError, NotFound, ValidationFailed
from ..http.answers import imports as answers
from ..http.files import XLSX
from ..i18n import t
from ..services import imports
from .framework import AUTHORITY, F, Field, Form, done, page, problem, render

KIND_FIELD = F.choice(imports.KINDS, description="what the file holds: producers, authorizations or plots")
FILE_FIELD = Field({"type": "string", "format": "binary",
                    "description": "the filled-in template: .xlsx, or CSV (UTF-8 or GB18030)"}, True)
SHA256_FIELD = Field({"type": "string", "pattern": "^[0-9a-f]{64}$",
                      "description": "the checked file's SHA-256, from the report"}, True, "text", (64,))


def _key(principal) -> str:
    return f"imports/{principal.organisation_id}/{principal.user_id}-pending"


def _page(principal, *, report=None, error: str | None = None, kind: str | None = None, status: int = 200):
    if report is not None and not report.valid:
        g.web_error_code = "import_rows_invalid"     # the X-Error-Code of a report with bad rows, as the API's
    runs = imports.recent_runs(get_session(), principal)
    return render("app/imports.html", status=status, kinds=imports.KINDS, specs=imports.SPECS, report=report,
                  error=error, kind=kind or request.args.get("kind") or "producers", runs=runs)


@page("/app/imports", "imports", kinds=(AUTHORITY,),
      summary="Bulk import of producers, authorizations and plots: the templates, the upload, the latest imports")
def imports_page(principal):
    return _page(principal)


@page("/app/imports/template", "import_template", kinds=(AUTHORITY,), content_type=XLSX, alt_content_types=("text/csv",),
      query={"kind": ("producers, authorizations or plots", {"type": "string", "enum": list(imports.KINDS)}, True),
             "format": ("xlsx (default) or csv", {"type": "string", "enum": ["xlsx", "csv"]})},
      responses={404: "no such import", 422: "a format other than xlsx or csv"},
      summary="The template of an import (?kind=&format=xlsx|csv), as GET /api/v1/imports/{kind}/template")
def import_template(principal):
    kind = request.args.get("kind") or ""
    if kind not in imports.KINDS:
        raise NotFound(f"no template named {kind!r}: {', '.join(imports.KINDS)}", code="not_found")
    fmt = request.args.get("format") or "xlsx"
    if fmt not in ("xlsx", "csv"):
        raise ValidationFailed(f"format must be xlsx or csv, not {fmt[:20]!r}",
                               details=[{"field": "format", "problem": "xlsx or csv"}])
    return answers.template_answer(kind, fmt)


@page("/app/imports/check", "import_check", kinds=(AUTHORITY,), methods=("POST",),
      body_content_type="multipart/form-data", status=200,
      form={"kind": KIND_FIELD, "file": FILE_FIELD},
      responses={200: "the dry run's report: every bad row with its column and what to fix, and a confirmation "
                      "when every row is good", 413: "file too large", 422: "the file refused as a whole"},
      summary="Check an upload (a dry run: nothing is written) and show its report")
def import_check(principal):
    kind = request.form.get("kind") or ""
    upload = request.files.get("file")
    try:
        if kind not in imports.KINDS:
            raise ValidationFailed(t("import_pick_kind"), details=[{"field": "kind", "problem": "unknown"}])
        if upload is None or not upload.filename:
            raise ValidationFailed(t("import_pick_file"), details=[{"field": "file", "problem": "required"}])
        data = upload.read(answers.limits().max_bytes + 1)
        report = answers.run(principal, kind, upload.filename, data, dry_run=True)
    except GIError as exc:
        return _page(principal, error=problem(exc), kind=kind if kind in imports.KINDS else None,
                     status=int(exc.status))
    if report.valid:
        current_app.extensions["gi_storage"].put(_key(principal), data)
    return _page(principal, report=report, kind=kind, status=200 if report.valid else 422)


@page("/app/imports/confirm", "import_confirm", kinds=(AUTHORITY,), methods=("POST",),
      form={"kind": KIND_FIELD, "sha256": SHA256_FIELD,
            "filename": F.text(200, description="the checked file's name, from the report")},
      responses={404: "the checked file is no longer kept: upload it again",
                 422: "a row is no longer good (the records changed since the check): nothing written"},
      summary="Import a checked upload: every row is checked again, then all are written or none")
def import_confirm(principal):
    form = Form()
    kind = request.form.get("kind") or ""
    sha256 = form.text("sha256", "sha256", max_len=64)
    filename = form.text("filename", t("import_file"), max_len=200)
    try:
        form.check()
        if kind not in imports.KINDS:
            raise ValidationFailed(t("import_pick_kind"), details=[{"field": "kind", "problem": "unknown"}])
        if len(sha256 or "") != 64 or not all(c in "0123456789abcdef" for c in sha256 or ""):
            raise ValidationFailed("sha256: 64 lowercase hexadecimal digits, as the report gives it",
                                   details=[{"field": "sha256", "problem": "not a SHA-256"}])
        store = current_app.extensions["gi_storage"]
        key = _key(principal)
        data = store.get(key)
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            raise NotFound(t("import_expired"), code="not_found")
        report = answers.run(principal, kind, filename, data, dry_run=False)
    except GIError as exc:
        return _page(principal, error=problem(exc), kind=kind if kind in imports.KINDS else None,
                     status=int(exc.status))
    if not report.written:
        return _page(principal, report=report, kind=kind, status=422)
    store.delete(key)
    return done(t("import_done", created=report.created, unchanged=report.unchanged), "web.imports")

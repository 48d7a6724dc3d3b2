"""Bulk imports from a spreadsheet for authorities: producers with their USCC, authorizations, plots
(services/imports.py says how a file is read and a row is taken)."""
from __future__ import annotations

from ..http.access import signed_in
from ..http.answers import imports as answers
from ..http.answers.imports import UPLOAD_FORM, UPLOAD_RESPONSES, TemplateQuery
from ..http.contract import endpoint
from ..http.files import XLSX
from ..models import OrgKind
from ..services.imports import KINDS
from . import bp

TAG = ["imports"]
WHAT = {"producers": "producers (name, USCC, registered place, contact), matched by USCC",
        "authorizations": "approved authorizations (producer's USCC, GI, announcement number), matched by USCC and GI",
        "plots": "surveyed plots (producer's USCC, plot code, GI, boundary as GeoJSON or WKT in WGS-84), matched by "
                 "USCC and plot code"}


def _register(kind: str) -> None:
    def upload(principal):
        return answers.upload_answer(principal, kind)

    def template(principal, query: TemplateQuery):
        return answers.template_answer(kind, query.format)

    upload.__name__ = f"import_{kind}"
    template.__name__ = f"import_{kind}_template"
    endpoint(bp, f"/imports/{kind}", methods=["POST"], body_content_type="multipart/form-data", tags=TAG,
             form_schema=UPLOAD_FORM, responses=UPLOAD_RESPONSES,
             access=signed_in(OrgKind.authority, note="inside its jurisdiction, through the rules of the single "
                                                      "writes"),
             summary=f"Import {WHAT[kind]} from .xlsx or CSV: dry_run=true reports every bad row (row, column, what "
                     "to fix) and writes nothing; a real run writes all rows or none; rows already registered "
                     "alike change nothing")(upload)
    endpoint(bp, f"/imports/{kind}/template", access=signed_in(OrgKind.authority), query=TemplateQuery, tags=TAG,
             content_type=(XLSX, "text/csv"),
             summary=f"The template of the {kind} import: its columns (Chinese and key), which are required, and "
                     "what goes in each")(template)


for _kind in KINDS:
    _register(_kind)

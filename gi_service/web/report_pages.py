"""Annual usage reports (专用标志使用年度报告) on the web: the producer sees its draft (the figures come from the
ledger), declares the output quantity and value, submits (the report is locked) and downloads the PDF; the
authorities list who had to report and who has not, roll the submitted reports up per GI for the provincial
filing, and download both as CSV or PDF.

The pages call ``services.annual_reports`` like the API does; the declared figures are read with the API's
body model (``DeclareBody``: ≥ 0, at most 3 and 2 decimals), and the downloads are answered by
``http.answers.annual_reports`` from the API's queries with the signed-in user, so the files are the API's byte
for byte.
"""
from __future__ import annotations

from flask import request
from pydantic import BaseModel

from ..db import get_session
from ..errors import GIError, NotFound, ValidationFailed
from ..http.answers import annual_reports as answers
from ..http.answers.annual_reports import DeclareBody, ListingQuery, MineQuery, OneReportQuery, RollupQuery
from ..http.files import XLSX
from ..http.parsing import parse_model
from ..models import GIProduct, Organisation
from ..services import annual_reports as ar
from .framework import AUTHORITY, INSPECTION, MAX_ID, PRODUCER, Field, commit, done, page, problem, render, rollback
from ..i18n import t
from .. import clock

SUPERVISORS = (AUTHORITY, INSPECTION)
YEARS_SHOWN = 5
LISTING_STATUSES = ("submitted", "draft", "missing", "late", "overdue")


def _last_year() -> int:
    return clock.china_year(clock.now()) - 1


def _year() -> int:
    raw = request.values.get("year", "")
    return int(raw) if raw.isdecimal() and 2000 <= int(raw) <= 2099 else _last_year()


def _gi_id() -> int | None:
    raw = request.values.get("gi_id", "")
    return int(raw) if raw.isdecimal() and 0 < int(raw) <= MAX_ID else None


def _report_chosen() -> None:
    """A write names its report exactly: a `year` or `gi_id` given but unreadable is refused (422), not taken
    as the default the pages show."""
    bad = [name for name, ok in (("year", _year), ("gi_id", _gi_id))
           if request.values.get(name, "") != "" and str(ok()) != request.values.get(name)]
    if bad:
        raise ValidationFailed(f"{', '.join(bad)}: give the report's year (2000-2099) and GI id as numbers",
                               details=[{"field": name, "problem": "not a number in range"} for name in bad])


# The query parameters naming the producer's report (in the forms' action addresses).
REPORT_QUERY = {
    "year": ("the report's year (default: last year, China time); a year not over yet has no report",
             {"type": "integer", "minimum": 2000, "maximum": 2099}),
    "gi_id": ("the GI of the report (needed when the producer is authorized for several)",
              {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
}
# The declared figures, as the form sends them (read with the API's DeclareBody: at most 3 and 2 decimals).
DECLARE_FORM = {
    "output_kg": Field({"type": "string", "pattern": "^[0-9]{1,10}(\\.[0-9]{1,3})?$",
                        "description": "declared output quantity in kg (产量), up to 3 decimals; blank: unchanged"},
                       False),
    "output_value_yuan": Field({"type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,2})?$",
                                "description": "declared output value in yuan (产值), up to 2 decimals; blank: "
                                               "unchanged"}, False),
    "notes": Field({"type": "string", "maxLength": ar.MAX_NOTES}, False),
}


def _years() -> list[int]:
    last = _last_year()
    return list(range(last, last - YEARS_SHOWN, -1))


# --- the producer's own report ------------------------------------------------------------------------

def _own_page(principal, *, error: str | None = None, form=None, status: int = 200):
    db = get_session()
    year, gi_id = _year(), _gi_id()
    if not db.in_transaction():
        # Reading the report may generate or refresh it: take SQLite's write lock at BEGIN (as the API does).
        db.connection(execution_options={"gi_write": True})
    report = data = choices = None
    missing = None
    try:
        report = ar.own_report(db, principal, year, gi_id)
        data = ar.serialize(report, db.get(Organisation, report.producer_id), db.get(GIProduct, report.gi_id))
        commit()
    except GIError as exc:
        rollback()
        if exc.code == "gi_id_required":
            choices = exc.details
        elif exc.code in ("no_report_due", "year_not_over"):
            missing = problem(exc)
        else:
            raise
    return render("app/annual_report.html", status=status, year=year, years=_years(), report=report, data=data,
                  choices=choices, missing=missing, error=error, form=form or {})


@page("/app/annual-report", "annual_report", kinds=(PRODUCER,),
      summary="The producer's annual usage report for a past year (?year=&gi_id=): the ledger's figures, the "
              "declared output, submission", note="the producer's own report only")
def annual_report(principal):
    return _own_page(principal)


@page("/app/annual-report/declare", "annual_report_declare", kinds=(PRODUCER,), methods=("POST",),
      summary="Declare the output quantity (kg) and value (yuan) and notes of the draft report",
      query=REPORT_QUERY, form=DECLARE_FORM)
def annual_report_declare(principal):
    fields = {k: request.form.get(k, "").strip() for k in ("output_kg", "output_value_yuan", "notes")}
    values = {k: v for k, v in fields.items() if v != ""}
    try:
        _report_chosen()
        body: BaseModel = parse_model(DeclareBody, values, "form")
        ar.declare(get_session(), principal, _year(), _gi_id(), body.model_dump(exclude_unset=True))
        commit()
    except GIError as exc:
        rollback()
        return _own_page(principal, error=problem(exc), form=request.form, status=int(exc.status))
    return done(t("report_saved"), "web.annual_report", year=_year(), gi_id=_gi_id())


@page("/app/annual-report/submit", "annual_report_submit", kinds=(PRODUCER,), methods=("POST",),
      summary="Submit the report: its figures are locked (late after 31 January, China time)",
      query=REPORT_QUERY, form={})
def annual_report_submit(principal):
    try:
        _report_chosen()
        ar.submit(get_session(), principal, _year(), _gi_id())
        commit()
    except GIError as exc:
        rollback()
        return _own_page(principal, error=problem(exc), status=int(exc.status))
    return done(t("report_submitted_ok"), "web.annual_report", year=_year(), gi_id=_gi_id())


@page("/app/annual-report.pdf", "annual_report_pdf", kinds=(PRODUCER,), content_type="application/pdf",
      summary="The producer's report as PDF (?year=&gi_id=), as the API's ?format=pdf")
def annual_report_pdf(principal):
    query = parse_model(MineQuery, {"format": "pdf", **({"gi_id": _gi_id()} if _gi_id() else {})}, "query")
    return answers.own_report(principal, _year(), query)


# --- the authorities' listing and rollup ------------------------------------------------------------------

def _listing_args() -> dict:
    args = {"year": _year()}
    if _gi_id():
        args["gi_id"] = _gi_id()
    status = request.args.get("status") or ""
    if status in LISTING_STATUSES:
        args["status"] = status
    adcode = (request.args.get("adcode") or "").strip()
    if adcode:
        args["adcode"] = adcode
    return args


@page("/app/annual-reports", "annual_reports", kinds=SUPERVISORS,
      summary="Annual reports of a year: who had to report (submitted on time or late, draft, missing) and the "
              "rollup per GI for the provincial filing, with CSV and PDF downloads")
def annual_reports(principal):
    db = get_session()
    args = _listing_args()
    listing = rollup = None
    error = None
    try:
        listing = ar.listing(db, principal, args["year"], gi_id=args.get("gi_id"), adcode=args.get("adcode"),
                             status=args.get("status"))
        rollup = ar.rollup(db, principal, args["year"], adcode=args.get("adcode"))
    except GIError as exc:
        rollback()
        if not isinstance(exc, ValidationFailed):
            raise
        error = problem(exc)
    return render("app/annual_reports.html", status=422 if error else 200, args=args, listing=listing,
                  rollup=rollup, years=_years(), statuses=LISTING_STATUSES, error=error)


@page("/app/annual-reports/export", "annual_reports_export", kinds=SUPERVISORS, content_type="text/csv",
      alt_content_types=(XLSX,),
      summary="Download the listing or the rollup (?what=listing|rollup&format=csv|xlsx|pdf&year=&gi_id=&status="
              "&adcode=), as the API's ?format=csv|xlsx|pdf")
def annual_reports_export(principal):
    what = request.args.get("what") or "listing"
    fmt = request.args.get("format") or "csv"
    args = {k: str(v) for k, v in _listing_args().items()}
    args["format"] = fmt
    if what == "rollup":
        query = parse_model(RollupQuery, {k: v for k, v in args.items() if k in ("year", "adcode", "format")},
                            "query")
        return answers.rollup(principal, query)
    if what != "listing":
        raise NotFound(f"no download named {what!r}: listing or rollup", code="not_found")
    query = parse_model(ListingQuery, args, "query")
    return answers.listing(principal, query)


@page("/app/annual-reports/<id:report_id>", "annual_report_one", kinds=(AUTHORITY, INSPECTION, PRODUCER),
      summary="One annual report by id (?format=pdf for the PDF)",
      note="its producer, the GI's authority, or an authority or inspection unit covering the producer")
def annual_report_one(principal, report_id: int):
    db = get_session()
    if request.args.get("format") == "pdf":
        query = parse_model(OneReportQuery, {"format": "pdf"}, "query")
        return answers.one_report(principal, report_id, query)
    report = ar.get_report(db, principal, report_id)
    data = ar.serialize(report, db.get(Organisation, report.producer_id), db.get(GIProduct, report.gi_id))
    return render("app/annual_report.html", year=report.year, years=[], report=report, data=data, choices=None,
                  missing=None, error=None, form={}, read_only=True)

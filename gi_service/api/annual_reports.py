"""Annual usage reports (专用标志使用年度报告): the producer's own report, the authorities' listing and rollup."""
from __future__ import annotations

from decimal import Decimal
from typing import Literal, Optional

from flask import Response
from pydantic import Field

from .. import clock
from ..db import get_session
from ..models import GIProduct, OrgKind, Organisation
from ..render.csv import annual_listing_csv, annual_rollup_csv
from ..render.pdf import annual_listing_pdf, annual_report_pdf, annual_rollup_pdf
from ..services import annual_reports as ar
from . import bp
from .framework import endpoint, signed_in
from .schemas import Adcode, Id, Query, Strict, Year

TAG = ["annual-reports"]
PRODUCER = signed_in(OrgKind.producer, note="the producer's own report only")
SUPERVISOR = signed_in(OrgKind.authority, OrgKind.inspection,
                       note="producers inside the caller's jurisdiction, and for an authority the users of the GIs "
                            "it manages")
OWN_ERRORS = {404: "no report is due (not an authorized user of that GI in that year)",
              422: "the year is not over yet, or gi_id is needed to choose among several GIs"}


class MineQuery(Query):
    gi_id: Optional[Id] = Field(default=None, description="the GI (needed when authorized for several)")
    format: Literal["json", "pdf"] = "json"


class MineWriteQuery(Query):
    gi_id: Optional[Id] = Field(default=None, description="the GI (needed when authorized for several)")


class DeclareBody(Strict):
    output_kg: Optional[Decimal] = Field(default=None, ge=0, le=ar.MAX_OUTPUT_KG, decimal_places=3,
                                         description="declared output quantity in kg (产量), up to 3 decimals")
    output_value_yuan: Optional[Decimal] = Field(default=None, ge=0, le=ar.MAX_OUTPUT_VALUE_YUAN, decimal_places=2,
                                                 description="declared output value in yuan (产值), up to 2 decimals")
    notes: Optional[str] = Field(default=None, max_length=ar.MAX_NOTES)


class ListingQuery(Query):
    year: Optional[Year] = Field(default=None, description="the reporting year (default: last year, China time)")
    gi_id: Optional[Id] = None
    adcode: Optional[Adcode] = Field(default=None, description="producers registered inside this division")
    status: Optional[Literal["submitted", "draft", "missing", "late", "overdue"]] = None
    format: Literal["json", "csv", "pdf"] = "json"


class RollupQuery(Query):
    year: Optional[Year] = Field(default=None, description="the reporting year (default: last year, China time)")
    adcode: Optional[Adcode] = Field(default=None, description="the province or city (default: your jurisdiction)")
    format: Literal["json", "csv", "pdf"] = "json"


class OneReportQuery(Query):
    format: Literal["json", "pdf"] = "json"


def _last_year() -> int:
    return clock.china_year(clock.now()) - 1


def _serialize(session, report) -> dict:
    return ar.serialize(report, session.get(Organisation, report.producer_id), session.get(GIProduct, report.gi_id))


def _file(body: bytes, mimetype: str, filename: str) -> Response:
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                      "Cache-Control": "private, no-store"})


def _report_response(session, report, fmt: str):
    data = _serialize(session, report)
    if fmt == "pdf":
        return _file(annual_report_pdf(data), "application/pdf",
                     f"annual-report-{report.year}-producer{report.producer_id}-gi{report.gi_id}.pdf")
    return data


def _write_session():
    # Reading the own report may generate or refresh it: take SQLite's write lock at BEGIN, so a
    # concurrent writer cannot make the upgrade from reader to writer fail.
    session = get_session()
    if not session.in_transaction():
        session.connection(execution_options={"gi_write": True})
    return session


@endpoint(bp, "/annual-reports/<int:year>/mine", access=PRODUCER, query=MineQuery, tags=TAG, responses=OWN_ERRORS,
          summary="The caller's annual usage report for a past year: generated from the ledger on first access and "
                  "refreshed while a draft (JSON, or ?format=pdf)")
def get_own_report(principal, year: int, query: MineQuery):
    session = _write_session()
    report = ar.own_report(session, principal, year, query.gi_id)
    session.commit()
    return _report_response(session, report, query.format)


@endpoint(bp, "/annual-reports/<int:year>/mine", methods=["PATCH"], access=PRODUCER, query=MineWriteQuery,
          body=DeclareBody, tags=TAG,
          responses={**OWN_ERRORS, 409: "locked: the report was submitted",
                     422: "invalid or undeclarable fields (only output_kg, output_value_yuan, notes)"},
          summary="Declare the output quantity and value (and notes) of the caller's draft report")
def declare_own_report(principal, year: int, query: MineWriteQuery, body: DeclareBody):
    session = get_session()
    report = ar.declare(session, principal, year, query.gi_id, body.model_dump(exclude_unset=True))
    session.commit()
    return _serialize(session, report)


@endpoint(bp, "/annual-reports/<int:year>/mine/submit", methods=["POST"], access=PRODUCER, query=MineWriteQuery,
          tags=TAG, responses={**OWN_ERRORS, 409: "locked: already submitted",
                               422: "declared_figures_missing: output_kg and output_value_yuan are required"},
          summary="Submit the caller's report: its figures are locked; after 31 January (China time) it is late")
def submit_own_report(principal, year: int, query: MineWriteQuery):
    session = get_session()
    report = ar.submit(session, principal, year, query.gi_id)
    session.commit()
    return _serialize(session, report)


@endpoint(bp, "/annual-reports", access=SUPERVISOR, query=ListingQuery, tags=TAG,
          responses={403: "not an authority or inspection unit", 422: "year not over, or unknown adcode"},
          summary="Every producer that had to report the year (authorized, approved or suspended, during it) with "
                  "its report's status: submitted (on time or late), draft or missing; JSON, CSV or PDF")
def list_reports(principal, query: ListingQuery):
    session = get_session()
    year = query.year or _last_year()
    data = ar.listing(session, principal, year, gi_id=query.gi_id, adcode=query.adcode, status=query.status)
    if query.format == "csv":
        return _file(annual_listing_csv(data), "text/csv", f"annual-reports-{year}.csv")
    if query.format == "pdf":
        return _file(annual_listing_pdf(data), "application/pdf", f"annual-reports-{year}.pdf")
    return ar.public_listing(data)


@endpoint(bp, "/annual-reports/rollup", access=SUPERVISOR, query=RollupQuery, tags=TAG,
          responses={403: "not an authority or inspection unit", 422: "year not over, or unknown adcode"},
          summary="Submitted reports of a province or city rolled up per GI for the provincial filing (due 31 March), "
                  "with the producers still missing; JSON, CSV or PDF")
def rollup(principal, query: RollupQuery):
    session = get_session()
    year = query.year or _last_year()
    data = ar.rollup(session, principal, year, adcode=query.adcode)
    region = data["region"]["adcode"] if data["region"] else "all"
    if query.format == "csv":
        return _file(annual_rollup_csv(data), "text/csv", f"annual-rollup-{year}-{region}.csv")
    if query.format == "pdf":
        return _file(annual_rollup_pdf(data), "application/pdf", f"annual-rollup-{year}-{region}.pdf")
    return data


@endpoint(bp, "/annual-reports/<id:report_id>", access=signed_in(
              OrgKind.producer, OrgKind.authority, OrgKind.inspection,
              note="its producer, the GI's authority, or an authority or inspection unit covering the producer"),
          query=OneReportQuery, tags=TAG, responses={403: "another producer's report, or outside your jurisdiction",
                                                     404: "no such report"},
          summary="One annual report by id (JSON, or ?format=pdf)")
def get_report(principal, report_id: int, query: OneReportQuery):
    session = get_session()
    return _report_response(session, ar.get_report(session, principal, report_id), query.format)

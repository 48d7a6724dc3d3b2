"""Annual usage reports (专用标志使用年度报告): the producer's own report, the authorities' listing and rollup."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from ..db import get_session
from ..http.access import signed_in
from ..http.answers import annual_reports as answers
from ..http.answers.annual_reports import DeclareBody, ListingQuery, MineQuery, OneReportQuery, RollupQuery
from ..http.contract import endpoint
from ..http.schemas import Id, Query
from ..models import OrgKind
from ..services import annual_reports as ar
from . import bp

TAG = ["annual-reports"]
PRODUCER = signed_in(OrgKind.producer, note="the producer's own report only")
SUPERVISOR = signed_in(OrgKind.authority, OrgKind.inspection,
                       note="producers inside the caller's jurisdiction, and for an authority the users of the GIs "
                            "it manages")
OWN_ERRORS = {404: "no report is due (not an authorized user of that GI in that year)",
              422: "the year is not over yet, or gi_id is needed to choose among several GIs"}


class MineWriteQuery(Query):
    gi_id: Optional[Id] = Field(default=None, description="the GI (needed when authorized for several)")


@endpoint(bp, "/annual-reports/<int:year>/mine", access=PRODUCER, query=MineQuery, tags=TAG, responses=OWN_ERRORS,
          summary="The caller's annual usage report for a past year: generated from the ledger on first access and "
                  "refreshed while a draft (JSON, or ?format=pdf)")
def get_own_report(principal, year: int, query: MineQuery):
    return answers.own_report(principal, year, query)


@endpoint(bp, "/annual-reports/<int:year>/mine", methods=["PATCH"], access=PRODUCER, query=MineWriteQuery,
          body=DeclareBody, tags=TAG,
          responses={**OWN_ERRORS, 409: "locked: the report was submitted",
                     422: "invalid or undeclarable fields (only output_kg, output_value_yuan, notes)"},
          summary="Declare the output quantity and value (and notes) of the caller's draft report")
def declare_own_report(principal, year: int, query: MineWriteQuery, body: DeclareBody):
    session = get_session()
    report = ar.declare(session, principal, year, query.gi_id, body.model_dump(exclude_unset=True))
    session.commit()
    return answers.report_data(session, report)


@endpoint(bp, "/annual-reports/<int:year>/mine/submit", methods=["POST"], access=PRODUCER, query=MineWriteQuery,
          tags=TAG, responses={**OWN_ERRORS, 409: "locked: already submitted",
                               422: "declared_figures_missing: output_kg and output_value_yuan are required"},
          summary="Submit the caller's report: its figures are locked; after 31 January (China time) it is late")
def submit_own_report(principal, year: int, query: MineWriteQuery):
    session = get_session()
    report = ar.submit(session, principal, year, query.gi_id)
    session.commit()
    return answers.report_data(session, report)


@endpoint(bp, "/annual-reports", access=SUPERVISOR, query=ListingQuery, tags=TAG,
          responses={403: "not an authority or inspection unit", 422: "year not over, or unknown adcode"},
          summary="Every producer that had to report the year (authorized, approved or suspended, during it) with "
                  "its report's status: submitted (on time or late), draft or missing; JSON, CSV or PDF")
def list_reports(principal, query: ListingQuery):
    return answers.listing(principal, query)


@endpoint(bp, "/annual-reports/rollup", access=SUPERVISOR, query=RollupQuery, tags=TAG,
          responses={403: "not an authority or inspection unit", 422: "year not over, or unknown adcode"},
          summary="Submitted reports of a province or city rolled up per GI for the provincial filing (due 31 March), "
                  "with the producers still missing; JSON, CSV or PDF")
def rollup(principal, query: RollupQuery):
    return answers.rollup(principal, query)


@endpoint(bp, "/annual-reports/<id:report_id>", access=signed_in(
              OrgKind.producer, OrgKind.authority, OrgKind.inspection,
              note="its producer, the GI's authority, or an authority or inspection unit covering the producer"),
          query=OneReportQuery, tags=TAG, responses={403: "another producer's report, or outside your jurisdiction",
                                                     404: "no such report"},
          summary="One annual report by id (JSON, or ?format=pdf)")
def get_report(principal, report_id: int, query: OneReportQuery):
    return answers.one_report(principal, report_id, query)

"""The annual usage reports as files: a producer's report (JSON or PDF), the authorities' listing and the
rollup for the provincial filing (JSON, CSV, Excel or PDF), and the declared figures' body.

``GET /api/v1/annual-reports…`` and the report pages (``/app/annual-report…``, ``/app/annual-reports…``)
answer them, so a page's file is the API's byte for byte.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Literal, Optional

from pydantic import Field

from ... import clock
from ...db import get_session
from ...models import GIProduct, Organisation
from ...render.csv import annual_listing_csv, annual_rollup_csv
from ...render.pdf import annual_listing_pdf, annual_report_pdf, annual_rollup_pdf
from ...render.sheets import annual_listing_table, annual_rollup_table
from ...services import annual_reports as ar
from ..files import download, spreadsheet
from ..schemas import Adcode, Id, Query, Strict, Year


class MineQuery(Query):
    gi_id: Optional[Id] = Field(default=None, description="the GI (needed when authorized for several)")
    format: Literal["json", "pdf"] = "json"


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
    format: Literal["json", "csv", "xlsx", "pdf"] = "json"


class RollupQuery(Query):
    year: Optional[Year] = Field(default=None, description="the reporting year (default: last year, China time)")
    adcode: Optional[Adcode] = Field(default=None, description="the province or city (default: your jurisdiction)")
    format: Literal["json", "csv", "xlsx", "pdf"] = "json"


class OneReportQuery(Query):
    format: Literal["json", "pdf"] = "json"


def last_year() -> int:
    return clock.china_year(clock.now()) - 1


def report_data(session, report) -> dict:
    """A report as its JSON document."""
    return ar.serialize(report, session.get(Organisation, report.producer_id), session.get(GIProduct, report.gi_id))


def _report_answer(session, report, fmt: str):
    data = report_data(session, report)
    if fmt == "pdf":
        return download(annual_report_pdf(data), "application/pdf",
                        f"annual-report-{report.year}-producer{report.producer_id}-gi{report.gi_id}.pdf")
    return data


def _write_session():
    # Reading the own report may generate or refresh it: take SQLite's write lock at BEGIN, so a
    # concurrent writer cannot make the upgrade from reader to writer fail.
    session = get_session()
    if not session.in_transaction():
        session.connection(execution_options={"gi_write": True})
    return session


def own_report(principal, year: int, query: MineQuery):
    """The producer's own report of a past year, generated on first access and refreshed while a draft
    (committed here), as JSON or PDF."""
    session = _write_session()
    report = ar.own_report(session, principal, year, query.gi_id)
    session.commit()
    return _report_answer(session, report, query.format)


def listing(principal, query: ListingQuery):
    """Who had to report the year and how their reports stand, as JSON, CSV, Excel or PDF."""
    session = get_session()
    year = query.year or last_year()
    data = ar.listing(session, principal, year, gi_id=query.gi_id, adcode=query.adcode, status=query.status)
    if query.format == "csv":
        return download(annual_listing_csv(data), "text/csv", f"annual-reports-{year}.csv")
    if query.format == "xlsx":
        return spreadsheet(annual_listing_table(data), f"annual-reports-{year}.xlsx")
    if query.format == "pdf":
        return download(annual_listing_pdf(data), "application/pdf", f"annual-reports-{year}.pdf")
    return ar.public_listing(data)


def rollup(principal, query: RollupQuery):
    """The submitted reports of a province or city rolled up per GI, as JSON, CSV, Excel or PDF."""
    session = get_session()
    year = query.year or last_year()
    data = ar.rollup(session, principal, year, adcode=query.adcode)
    region = data["region"]["adcode"] if data["region"] else "all"
    if query.format == "csv":
        return download(annual_rollup_csv(data), "text/csv", f"annual-rollup-{year}-{region}.csv")
    if query.format == "xlsx":
        return spreadsheet(annual_rollup_table(data), f"annual-rollup-{year}-{region}.xlsx")
    if query.format == "pdf":
        return download(annual_rollup_pdf(data), "application/pdf", f"annual-rollup-{year}-{region}.pdf")
    return data


def one_report(principal, report_id: int, query: OneReportQuery):
    """One report by id, as JSON or PDF."""
    session = get_session()
    return _report_answer(session, ar.get_report(session, principal, report_id), query.format)

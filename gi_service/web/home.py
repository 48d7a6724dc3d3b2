"""The role home page (/app): each kind of account sees its main work and the counts behind it."""
from __future__ import annotations

from flask import abort
from sqlalchemy import func, select

from .. import clock
from ..db import get_session
from ..models import (AuthorizationStatus, BatchStatus, CaseStatus, ClueStatus, GIProduct, MarkBatch, MarkRange,
                      MarkState, OrgKind, Organisation, RequestStatus)
from ..services import cases, clues, jurisdiction, marks, producers
from ..services.registry import can_manage_gi
from .framework import AUTHORITY, INSPECTION, PRINTER, PRODUCER, page, render


def _producer_ids_in(principal) -> list[int] | None:
    codes = jurisdiction.jurisdiction_codes(principal.adcode)
    stmt = select(Organisation.id).where(Organisation.kind == OrgKind.producer)
    if codes is not None:
        stmt = stmt.where(Organisation.adcode.in_(codes))
    return list(get_session().scalars(stmt))


def marks_in_state(producer_id: int | None, state: MarkState, *, printer_id: int | None = None) -> int:
    """How many marks of a producer's (or a printer's) batches are in `state`: a sum over ranges."""
    stmt = (select(func.coalesce(func.sum(MarkRange.seq_end - MarkRange.seq_start + 1), 0))
            .join(MarkBatch, MarkBatch.id == MarkRange.batch_id).where(MarkRange.state == state))
    if producer_id is not None:
        stmt = stmt.where(MarkBatch.producer_id == producer_id)
    if printer_id is not None:
        stmt = stmt.where(MarkBatch.printer_id == printer_id)
    return int(get_session().scalar(stmt) or 0)


def _authority(principal):
    db = get_session()
    requests = marks.list_requests(db, principal, status=RequestStatus.requested)
    pending_auth = [a for a in producers.list_authorizations(db, status=AuthorizationStatus.pending)
                    if can_manage_gi(db, principal, a.gi)]
    gis = [gi for gi in db.scalars(select(GIProduct).order_by(GIProduct.id)) if can_manage_gi(db, principal, gi)]
    active_cases = _active_cases(db, principal)
    _clues, open_clues = clues.list_clues(db, principal, clues.ClueFilter(status=ClueStatus.open), limit=1, offset=0)
    counts = {
        "pending_requests": len(requests), "pending_authorizations": len(pending_auth), "gis_managed": len(gis),
        "producers_in_jurisdiction": len(_producer_ids_in(principal)),
        "batches_without_printer": len(marks.list_batches(db, principal, status=BatchStatus.approved)),
        "cases_in_queue": len(active_cases), "open_clues": open_clues,
    }
    return render("app/home_authority.html", requests=requests[:10], pending_auth=pending_auth[:10],
                  cases=active_cases[:10], counts=counts)


def _active_cases(db, principal) -> list:
    """Cases in the caller's queue that are not concluded, latest activity first."""
    rows, _total = cases.list_cases(db, principal, cases.CaseFilter(queue="mine"), limit=200, offset=0)
    return [c for c in rows if c.status != CaseStatus.concluded]


def _producer(principal):
    db = get_session()
    year = clock.now().year
    accounts = marks.list_accounts(db, principal)
    requests = marks.list_requests(db, principal, status=RequestStatus.requested)
    return render("app/home_producer.html", accounts=accounts, year=year, counts={
        "quota_available": sum(a.available_g for a in accounts if a.year == year),
        "requests_open": len(requests),
        "marks_in_stock": marks_in_state(principal.organisation_id, MarkState.issued),
        "marks_activated": marks_in_state(principal.organisation_id, MarkState.activated),
    })


def _printer(principal):
    db = get_session()
    to_print = marks.list_batches(db, principal, status=BatchStatus.ordered)
    to_issue = marks.list_batches(db, principal, status=BatchStatus.printed)
    return render("app/home_printer.html", to_print=to_print, to_issue=to_issue, counts={
        "orders_to_print": len(to_print), "orders_to_issue": len(to_issue),
        "marks_at_printer": marks_in_state(None, MarkState.printed, printer_id=principal.organisation_id),
    })


def _inspection(principal):
    db = get_session()
    open_clues, total = clues.list_clues(db, principal, clues.ClueFilter(status=ClueStatus.open), limit=10, offset=0)
    active_cases = _active_cases(db, principal)
    return render("app/home_inspection.html", clues=open_clues, cases=active_cases[:10], counts={
        "open_clues": total, "cases_in_queue": len(active_cases),
        "producers_in_jurisdiction": len(_producer_ids_in(principal))})


HOMES = {AUTHORITY: _authority, PRODUCER: _producer, PRINTER: _printer, INSPECTION: _inspection}


@page("/app", "home", summary="The signed-in home page: the account's main work and its counts")
def home(principal):
    view = HOMES.get(principal.org_kind)
    if view is None:  # pragma: no cover - every kind has a home
        abort(404)
    return view(principal)


@page("/app/<path:anything>", "unknown_page", summary="Any other /app address: the web 404 page")
def unknown_page(principal, anything: str):
    abort(404)

"""Ledger reports (台账) per printer, producer, GI and year, with stock reconciliation.

Two independent sources are compared: what the ledger events declare (the printer's
printed count, the issued counts) and where every serial range stands now. The
identities that must hold:

    approved = allocated + printed
    printed  = issued + spoiled + printer stock
    issued   = activated + voided + lost (incl. stolen) + producer stock

A group that breaks one is listed with the serial ranges that do not agree with the
ledger event that last moved them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..codes import format_serial
from ..db import where_given
from ..models import (GIProduct, LedgerEvent, MarkBatch, MarkRange, MarkRequest, MarkState, OrgKind, Organisation,
                      RequestStatus)
from .accounts import Principal
from .registry import can_manage_gi

GROUP = ("year", "gi_id", "producer_id", "printer_id")
COLUMNS = ("requested", "approved", "printed", "spoiled", "issued", "activated", "voided", "lost",
           "printer_stock", "producer_stock", "not_printed")
# Which event kind gives a range each state (allocated ranges come from approval).
STATE_EVENT = {MarkState.allocated: {"approved"}, MarkState.printed: {"printed"}, MarkState.spoiled: {"spoiled"},
               MarkState.issued: {"issued"}, MarkState.activated: {"activated"}, MarkState.voided: {"voided"},
               MarkState.lost: {"lost"}, MarkState.stolen: {"stolen"}}


@dataclass
class ReportRow:
    key: tuple
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))

    def checks(self) -> dict[str, bool]:
        f = self.figures
        return {
            "approved = not printed + printed": f["approved"] == f["not_printed"] + f["printed"],
            "printed = issued + spoiled + printer stock":
                f["printed"] == f["issued"] + f["spoiled"] + f["printer_stock"],
            "issued = activated + voided + lost + producer stock":
                f["issued"] == f["activated"] + f["voided"] + f["lost"] + f["producer_stock"],
        }

    def to_dict(self) -> dict[str, Any]:
        checks = self.checks()
        return {**dict(zip(GROUP, self.key)), **self.figures, "balanced": all(checks.values()), "checks": checks}


def _batch_filter(stmt, **filters):
    return where_given(stmt, MarkBatch, **filters)


def scope_for(session: Session, by: Principal, **filters: Any) -> dict[str, Any]:
    """Narrow the filters to what the caller may see (producers and printers see their own)."""
    if by.org_kind == OrgKind.producer:
        filters["producer_id"] = by.organisation_id
    elif by.org_kind == OrgKind.printer:
        filters["printer_id"] = by.organisation_id
    return filters


def ledger_report(session: Session, by: Principal, *, year: int | None = None, gi_id: int | None = None,
                  producer_id: int | None = None, printer_id: int | None = None) -> dict[str, Any]:
    filters = scope_for(session, by, year=year, gi_id=gi_id, producer_id=producer_id, printer_id=printer_id)
    rows: dict[tuple, ReportRow] = {}

    def row(key) -> ReportRow:
        if key not in rows:
            rows[key] = ReportRow(key)
        return rows[key]

    dims = (MarkBatch.year, MarkBatch.gi_id, MarkBatch.producer_id, MarkBatch.printer_id)
    size = func.sum(MarkRange.seq_end - MarkRange.seq_start + 1)
    state_counts = session.execute(_batch_filter(select(*dims, MarkRange.state, size)
                                                 .join(MarkBatch, MarkBatch.id == MarkRange.batch_id)
                                                 .group_by(*dims, MarkRange.state), **filters)).all()
    column_of = {MarkState.allocated: "not_printed", MarkState.printed: "printer_stock", MarkState.spoiled: "spoiled",
                 MarkState.issued: "producer_stock", MarkState.activated: "activated", MarkState.voided: "voided",
                 MarkState.lost: "lost", MarkState.stolen: "lost"}
    for *key, state, n in state_counts:
        row(tuple(key)).figures[column_of[MarkState(state)]] += int(n)
    approved = session.execute(_batch_filter(select(*dims, func.sum(MarkBatch.seq_end - MarkBatch.seq_start + 1))
                                             .group_by(*dims), **filters)).all()
    for *key, n in approved:
        row(tuple(key)).figures["approved"] += int(n)
    declared = session.execute(_batch_filter(select(*dims, LedgerEvent.kind, func.sum(LedgerEvent.count))
                                             .join(MarkBatch, MarkBatch.id == LedgerEvent.batch_id)
                                             .where(LedgerEvent.kind.in_(("printed", "issued")))
                                             .group_by(*dims, LedgerEvent.kind), **filters)).all()
    for *key, kind, n in declared:
        row(tuple(key)).figures[kind] += int(n)
    if filters.get("printer_id") is None:
        req = select(MarkRequest.year, MarkRequest.gi_id, MarkRequest.producer_id, func.sum(MarkRequest.quantity)) \
            .where(MarkRequest.status != RequestStatus.cancelled) \
            .group_by(MarkRequest.year, MarkRequest.gi_id, MarkRequest.producer_id)
        req = where_given(req, MarkRequest, **{k: filters.get(k) for k in ("year", "gi_id", "producer_id")})
        printers = defaultdict(list)
        for key in rows:
            printers[key[:3]].append(key)
        for y, g, p, n in session.execute(req).all():
            keys = printers.get((y, g, p)) or [(y, g, p, None)]
            row(keys[0]).figures["requested"] += int(n)
    visible = [r for r in rows.values() if _may_see(session, by, r.key)]
    mismatches = []
    result_rows = []
    for r in sorted(visible, key=lambda r: tuple(-1 if v is None else v for v in r.key)):
        # Ranges are checked against their events even when the totals agree: a range moved from
        # producer stock to activated by hand keeps every total but has no activation behind it.
        found = _mismatched_ranges(session, r.key, totals_ok=all(r.checks().values()))
        mismatches.extend(found)
        row_dict = r.to_dict()
        row_dict["checks"]["every range backed by its ledger event"] = not found
        row_dict["balanced"] = all(row_dict["checks"].values())
        result_rows.append(row_dict)
    return {"filters": filters, "rows": result_rows, "mismatches": mismatches,
            "balanced": all(r["balanced"] for r in result_rows)}


def _may_see(session: Session, by: Principal, key: tuple) -> bool:
    if by.org_kind in (OrgKind.producer, OrgKind.printer):
        return True  # already narrowed to their own
    if by.org_kind != OrgKind.authority:
        return False
    gi = session.get(GIProduct, key[1])
    producer = session.get(Organisation, key[2])
    return can_manage_gi(session, by, gi) or (producer is not None and by.covers(producer.adcode))


def _mismatched_ranges(session: Session, key: tuple, *, totals_ok: bool) -> list[dict[str, Any]]:
    """Ranges of the group whose state is not what the ledger event that last moved them says."""
    year, gi_id, producer_id, printer_id = key
    stmt = (select(MarkRange, MarkBatch, LedgerEvent.kind)
            .join(MarkBatch, MarkBatch.id == MarkRange.batch_id)
            .outerjoin(LedgerEvent, LedgerEvent.seq == MarkRange.event_seq)
            .where(MarkBatch.year == year, MarkBatch.gi_id == gi_id, MarkBatch.producer_id == producer_id)
            .order_by(MarkRange.series, MarkRange.seq_start))
    stmt = stmt.where(MarkBatch.printer_id.is_(None) if printer_id is None else MarkBatch.printer_id == printer_id)
    out = []
    for r, batch, kind in session.execute(stmt):
        problem = None
        if kind is None:
            problem = "no ledger event backs this range"
        elif kind not in STATE_EVENT[r.state] and not (r.state == MarkState.allocated and kind == "ordered"):
            problem = f"state {r.state.value} but its last ledger event is {kind}"
        elif r.state == MarkState.allocated and batch.status.value in ("printed", "issued"):
            problem = "batch reported printed, but these serials were never printed"
        if problem:
            year2 = 2000 + int(r.series[4:])
            out.append({"batch_id": batch.id, "state": r.state.value, "count": r.count, "problem": problem,
                        "first": format_serial(r.series[:4], year2, r.seq_start),
                        "last": format_serial(r.series[:4], year2, r.seq_end)})
    if not out and not totals_ok:
        out.append({"batch_id": None, "state": None, "count": None, "first": None, "last": None,
                    "problem": "the declared counts differ from the ranges, but every range matches its event: "
                               "an event count was altered (run `gi-service ledger verify`)",
                    "group": dict(zip(GROUP, key))})
    return out

"""Annual usage reports of the special mark (专用标志使用年度报告), per producer, GI and year.

Every authorized user reports its use of the special mark for the previous calendar year by
31 January; the authorities roll the reports up for the provincial filing by 31 March. The
mark figures come from the ledger, never from the producer: what the producer received
(issued to it), activated on which lots, voided or reported lost or stolen during the year,
what it held in stock at the start and end of the year, and the year's quota account. The
producer adds only the declared output quantity and value, then submits and the report is
locked. Years, due dates and lateness are reckoned in China Standard Time.

The ledger figures are recomputed by replaying the producer's ledger events for the GI up to
the end of the year (serial ranges, not serials), so they hold whatever the current state of a
range is now: a mark activated in the year and voided in the next still counts as activated in
the year, and the stock at year end is what it was at that instant.
"""
from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geodata.admin import get_registry

from .. import clock
from ..errors import Forbidden, GIError, NotFound, ValidationFailed
from ..models import (AnnualReport, AnnualReportStatus, Authorization, AuthorizationEvent, AuthorizationStatus,
                      GIProduct, LedgerEvent, Lot, MarkBatch, OrgKind, Organisation, QuotaAccount)
from .accounts import Principal
from .registry import can_manage_gi

# Output bounds: one producer's yearly output of one GI never comes near ten million tonnes or
# a trillion yuan; anything above is a typing error (an extra digit, cents as yuan).
MAX_OUTPUT_KG = Decimal(10_000_000_000)
MAX_OUTPUT_VALUE_YUAN = Decimal(1_000_000_000_000)
MAX_NOTES = 4000
DECLARED_FIELDS = ("output_kg", "output_value_yuan")
# Authorization states in which a producer holds the right (a suspended user still reports its year).
REPORTING_STATES = {AuthorizationStatus.approved.value, AuthorizationStatus.suspended.value}
LEDGER_KINDS = ("issued", "activated", "voided", "lost", "stolen", "recalled")
REMOVAL_KINDS = ("voided", "lost", "stolen")


class YearNotOver(GIError):
    status = 422
    code = "year_not_over"


class Locked(GIError):
    status = 409
    code = "locked"


# --- the calendar --------------------------------------------------------------------------------

def due_date(year: int) -> dt.date:
    """Producers report the previous year by 31 January."""
    return dt.date(year + 1, 1, 31)


def filing_deadline(year: int) -> dt.date:
    """Provinces file the rolled-up reports by 31 March."""
    return dt.date(year + 1, 3, 31)


def is_late(report: AnnualReport) -> bool:
    return report.submitted_at is not None and report.submitted_at >= clock.end_of_day(due_date(report.year))


def is_overdue(report: AnnualReport | None, year: int, at: dt.datetime) -> bool:
    """Not submitted, and the due date has passed."""
    submitted = report is not None and report.status == AnnualReportStatus.submitted
    return not submitted and at >= clock.end_of_day(due_date(year))


def require_past_year(year: int, at: dt.datetime) -> None:
    current = clock.china_year(at)
    if year >= current:
        raise YearNotOver(f"annual reports are for a year that is over: {year} is "
                          f"{'the current year' if year == current else 'in the future'}; report {current - 1} "
                          f"(due {due_date(current - 1).isoformat()})",
                          details=[{"field": "year", "problem": f"must be before {current}"}])
    if year < 2000:
        raise ValidationFailed("year must be 2000 or later", details=[{"field": "year", "problem": ">= 2000"}])


# --- ledger figures ------------------------------------------------------------------------------

class _SerialStates:
    """The state of every serial of one producer, kept as disjoint ranges per series."""

    def __init__(self) -> None:
        self._starts: dict[str, list[int]] = defaultdict(list)
        self._ranges: dict[str, list[list[Any]]] = defaultdict(list)   # [start, end, state]

    def assign(self, series: str, first: int, last: int, state: str) -> dict[str | None, int]:
        """Give `state` to first..last; return how many serials were in each previous state (None: unknown)."""
        starts, ranges = self._starts[series], self._ranges[series]
        i = bisect.bisect_right(starts, first) - 1
        if i < 0 or ranges[i][1] < first:
            i += 1
        before: dict[str | None, int] = defaultdict(int)
        pieces: list[list[Any]] = []
        cursor = first
        j = i
        while j < len(ranges) and ranges[j][0] <= last:
            a, b, old = ranges[j]
            if a < first:
                pieces.append([a, first - 1, old])
            if a > cursor:
                before[None] += a - cursor
            lo, hi = max(a, first), min(b, last)
            before[old] += hi - lo + 1
            cursor = hi + 1
            if b > last:
                pieces.append([last + 1, b, old])
            j += 1
        if cursor <= last:
            before[None] += last - cursor + 1
        pieces.append([first, last, state])
        pieces.sort(key=lambda p: p[0])
        ranges[i:j] = pieces
        starts[i:j] = [p[0] for p in pieces]
        return before

    def count(self, state: str) -> int:
        return sum(b - a + 1 for ranges in self._ranges.values() for a, b, s in ranges if s == state)


def ledger_figures(session: Session, *, producer_id: int, gi_id: int, year: int) -> dict[str, Any]:
    """The year's special-mark figures of one producer and GI, replayed from its ledger events."""
    start, end = clock.year_window(year)
    events = list(session.scalars(
        select(LedgerEvent).where(LedgerEvent.producer_id == producer_id, LedgerEvent.gi_id == gi_id,
                                  LedgerEvent.kind.in_(LEDGER_KINDS), LedgerEvent.at < end)
        .order_by(LedgerEvent.at, LedgerEvent.seq)))
    pack_of = dict(session.execute(select(MarkBatch.id, MarkBatch.pack_size_g)
                                   .where(MarkBatch.producer_id == producer_id, MarkBatch.gi_id == gi_id)).all())
    states = _SerialStates()
    opening: int | None = None
    received = activated = activated_g = 0
    removed = dict.fromkeys(REMOVAL_KINDS, 0)
    removed_from_stock = removed_after_activation = 0
    anomalies: list[dict[str, Any]] = []
    lot_marks: dict[int, int] = defaultdict(int)
    recalled_lots: set[int] = set()
    last_seq = None
    for e in events:
        in_year = e.at >= start
        if in_year and opening is None:
            opening = states.count("issued")
        last_seq = e.seq if in_year else last_seq
        if e.kind == "recalled":
            if in_year and e.lot_id is not None:
                recalled_lots.add(e.lot_id)
            continue
        before: dict[str | None, int] = defaultdict(int)
        for first, last in e.ranges or []:
            for state, n in states.assign(e.series, int(first), int(last), e.kind).items():
                before[state] += n
        expected = {"issued": {None}, "activated": {"issued"}}.get(e.kind, {"issued", "activated"})
        odd = {str(s): n for s, n in before.items() if s not in expected and n}
        if odd:
            anomalies.append({"seq": e.seq, "kind": e.kind, "from_states": odd})
        if not in_year:
            continue
        if e.kind == "issued":
            received += e.count
        elif e.kind == "activated":
            activated += e.count
            activated_g += e.count * pack_of.get(e.batch_id, 0)
            if e.lot_id is not None:
                lot_marks[e.lot_id] += e.count
        else:
            removed[e.kind] += e.count
            removed_from_stock += before.get("issued", 0)
            removed_after_activation += before.get("activated", 0)
    if opening is None:
        opening = states.count("issued")
    closing = states.count("issued")

    lots = list(session.scalars(select(Lot).where(Lot.id.in_(lot_marks)).order_by(Lot.production_date, Lot.lot_no))) \
        if lot_marks else []
    by_pack: dict[int, dict[str, int]] = {}
    for lot in lots:
        row = by_pack.setdefault(lot.pack_size_g, {"pack_size_g": lot.pack_size_g, "lots": 0, "packs": 0,
                                                   "marks_activated": 0})
        row["lots"] += 1
        row["packs"] += lot.quantity
        row["marks_activated"] += lot_marks[lot.id]
    lot_packs = sum(lot.quantity for lot in lots)
    lot_g = sum(lot.quantity * lot.pack_size_g for lot in lots)

    account = session.scalar(select(QuotaAccount).where(QuotaAccount.year == year,
                                                        QuotaAccount.producer_id == producer_id,
                                                        QuotaAccount.gi_id == gi_id))
    approved = session.execute(select(func.count(), func.coalesce(func.sum(MarkBatch.seq_end - MarkBatch.seq_start + 1),
                                                                  0))
                               .where(MarkBatch.producer_id == producer_id, MarkBatch.gi_id == gi_id,
                                      MarkBatch.year == year)).one()
    quota = None
    if account is not None:
        quota = {"account_id": account.id, "granted_kg": _kg(account.allocated_g), "base_kg": _kg(account.base_g),
                 "adjusted_kg": _kg(account.adjusted_g), "transferred_in_kg": _kg(account.transferred_in_g),
                 "transferred_out_kg": _kg(account.transferred_out_g), "consumed_kg": _kg(account.consumed_g),
                 "available_kg": _kg(account.available_g)}
    marks = {"opening_stock": opening, "received": received, "activated": activated, **removed,
             "removed_from_stock": removed_from_stock, "removed_after_activation": removed_after_activation,
             "closing_stock": closing, "activated_kg": _kg(activated_g)}
    balanced = opening + received - activated - removed_from_stock == closing and not anomalies
    return {
        "period": {"year": year, "from": start.isoformat(), "until": end.isoformat(), "timezone": "Asia/Shanghai"},
        "marks": marks,
        "lots": {"count": len(lots), "packs": lot_packs, "declared_kg": _kg(lot_g), "recalled": len(recalled_lots),
                 "by_pack_size": [by_pack[k] for k in sorted(by_pack)],
                 "items": [{"id": lot.id, "lot_no": lot.lot_no, "production_date": lot.production_date.isoformat(),
                            "packs": lot.quantity, "pack_size_g": lot.pack_size_g,
                            "marks_activated": lot_marks[lot.id], "test_report_no": lot.test_report_no,
                            "status": lot.status.value} for lot in lots]},
        "quota": quota,
        "batches_for_year": {"count": int(approved[0]), "marks_approved": int(approved[1])},
        "balanced": balanced,
        "anomalies": anomalies[:50],
        "last_event_seq": last_seq,
    }


def _kg(grams: int) -> float:
    return round(grams / 1000, 3)


# --- who had to report ---------------------------------------------------------------------------

@dataclass
class Eligible:
    """An authorization that was approved or suspended at some time during the year."""

    authorization: Authorization
    producer: Organisation
    gi: GIProduct
    states_in_year: list[str]


def _states_during(auth: Authorization, events: list[AuthorizationEvent], start: dt.datetime,
                   end: dt.datetime) -> list[str]:
    """The statuses an authorization had at some instant of [start, end)."""
    if not events:
        return [auth.status.value] if auth.created_at < end else []
    out: list[str] = []
    for i, e in enumerate(events):
        until = events[i + 1].changed_at if i + 1 < len(events) else None
        if e.changed_at < end and (until is None or until > start) and e.to_status not in out:
            out.append(e.to_status)
    return out


def authorized_during(session: Session, year: int, *, producer_id: int | None = None,
                      gi_id: int | None = None) -> list[Eligible]:
    """Producers that held the right to the special mark (approved or suspended) during `year`."""
    start, end = clock.year_window(year)
    stmt = (select(Authorization, Organisation, GIProduct)
            .join(Organisation, Organisation.id == Authorization.producer_id)
            .join(GIProduct, GIProduct.id == Authorization.gi_id)
            .where(Authorization.created_at < end)
            .order_by(GIProduct.id, Organisation.adcode, Organisation.id))
    if producer_id is not None:
        stmt = stmt.where(Authorization.producer_id == producer_id)
    if gi_id is not None:
        stmt = stmt.where(Authorization.gi_id == gi_id)
    rows = session.execute(stmt).all()
    if not rows:
        return []
    history: dict[int, list[AuthorizationEvent]] = defaultdict(list)
    for e in session.scalars(select(AuthorizationEvent)
                             .where(AuthorizationEvent.authorization_id.in_([a.id for a, _, _ in rows]))
                             .order_by(AuthorizationEvent.changed_at, AuthorizationEvent.id)):
        history[e.authorization_id].append(e)
    out = []
    for auth, producer, gi in rows:
        states = _states_during(auth, history[auth.id], start, end)
        if REPORTING_STATES & set(states):
            out.append(Eligible(auth, producer, gi, states))
    return out


# --- the producer's own report -------------------------------------------------------------------

def _find(session: Session, producer_id: int, gi_id: int, year: int, *, lock: bool = False) -> AnnualReport | None:
    stmt = select(AnnualReport).where(AnnualReport.producer_id == producer_id, AnnualReport.gi_id == gi_id,
                                      AnnualReport.year == year)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def _resolve_gi(session: Session, by: Principal, year: int, gi_id: int | None) -> int:
    """The GI of the caller's report: given, or the only one it was authorized for that year."""
    if gi_id is not None:
        return gi_id
    eligible = authorized_during(session, year, producer_id=by.organisation_id)
    if len(eligible) == 1:
        return eligible[0].gi.id
    if not eligible:
        raise NotFound(f"you were not an authorized user of any GI's special mark in {year}: no report is due",
                       code="no_report_due")
    choices = [{"gi_id": e.gi.id, "name_zh": e.gi.name_zh} for e in eligible]
    listed = ", ".join(f"{e.gi.id} {e.gi.name_zh}" for e in eligible)
    raise ValidationFailed(f"you were authorized for {len(eligible)} GIs in {year}; choose one with ?gi_id= ({listed})",
                           code="gi_id_required", details=choices)


def own_report(session: Session, by: Principal, year: int, gi_id: int | None = None, *,
               at: dt.datetime | None = None) -> AnnualReport:
    """The caller's report for `year`: generated on first access, its ledger figures refreshed while a draft."""
    if by.org_kind != OrgKind.producer:
        raise Forbidden("only a producer has its own annual report", code="wrong_role")
    at = at or clock.now()
    require_past_year(year, at)
    gi_id = _resolve_gi(session, by, year, gi_id)
    report = _find(session, by.organisation_id, gi_id, year, lock=True)
    if report is None:
        gi = session.get(GIProduct, gi_id)
        if gi is None:
            raise NotFound(f"GI {gi_id} does not exist", code="gi_not_found")
        if not authorized_during(session, year, producer_id=by.organisation_id, gi_id=gi_id):
            raise NotFound(f"you were not an authorized user of {gi.name_zh}'s special mark in {year}: "
                           "no report is due", code="no_report_due")
        figures = ledger_figures(session, producer_id=by.organisation_id, gi_id=gi_id, year=year)
        report = AnnualReport(producer_id=by.organisation_id, gi_id=gi_id, year=year,
                              status=AnnualReportStatus.draft, figures=figures, generated_at=at)
        try:
            with session.begin_nested():
                session.add(report)
                session.flush()
        except IntegrityError:  # generated by a concurrent first access: use that one
            report = _find(session, by.organisation_id, gi_id, year, lock=True)
    elif report.status == AnnualReportStatus.draft:
        figures = ledger_figures(session, producer_id=by.organisation_id, gi_id=gi_id, year=year)
        if figures != report.figures:
            report.figures, report.generated_at = figures, at
            session.flush()
    return report


def declare(session: Session, by: Principal, year: int, gi_id: int | None, values: dict[str, Any], *,
            at: dt.datetime | None = None) -> AnnualReport:
    """Set the declared figures (output quantity and value, notes) of the caller's draft."""
    report = own_report(session, by, year, gi_id, at=at)
    _require_draft(report)
    unknown = sorted(set(values) - {*DECLARED_FIELDS, "notes"})
    if unknown:
        raise ValidationFailed(f"only output_kg, output_value_yuan and notes can be set; the ledger figures come "
                               f"from the ledger ({', '.join(unknown)})",
                               details=[{"field": f, "problem": "not declarable"} for f in unknown])
    if not values:
        raise ValidationFailed("nothing to change: give output_kg, output_value_yuan or notes", code="no_change")
    problems = []
    for name, limit in (("output_kg", MAX_OUTPUT_KG), ("output_value_yuan", MAX_OUTPUT_VALUE_YUAN)):
        value = values.get(name)
        if value is not None and not (Decimal(0) <= Decimal(value) <= limit):
            problems.append({"field": name, "problem": f"must be between 0 and {limit:,}"})
    notes = values.get("notes")
    if notes is not None and len(notes) > MAX_NOTES:
        problems.append({"field": "notes", "problem": f"at most {MAX_NOTES} characters"})
    if problems:
        raise ValidationFailed(f"invalid declared figures: {problems[0]['field']}: {problems[0]['problem']}",
                               details=problems)
    for name, value in values.items():
        setattr(report, name, (value or None) if name == "notes" else value)
    session.flush()
    return report


def _require_draft(report: AnnualReport) -> None:
    if report.status != AnnualReportStatus.draft:
        raise Locked(f"the {report.year} report was submitted on "
                     f"{report.submitted_at.astimezone(clock.CHINA_TZ):%Y-%m-%d %H:%M} (China time) and is locked",
                     details={"report_id": report.id, "status": report.status.value})


def submit(session: Session, by: Principal, year: int, gi_id: int | None = None, *,
           at: dt.datetime | None = None) -> AnnualReport:
    """Lock the caller's draft with its figures as of now; late after 31 January (China time)."""
    at = at or clock.now()
    report = own_report(session, by, year, gi_id, at=at)
    _require_draft(report)
    missing = [f for f in DECLARED_FIELDS if getattr(report, f) is None]
    if missing:
        raise ValidationFailed(f"declare {' and '.join(missing)} before submitting (PATCH the report)",
                               code="declared_figures_missing",
                               details=[{"field": f, "problem": "required to submit"} for f in missing])
    report.status, report.submitted_at, report.submitted_by_id = AnnualReportStatus.submitted, at, by.user_id
    session.flush()
    return report


# --- reading reports -----------------------------------------------------------------------------

def may_supervise(session: Session, by: Principal, gi: GIProduct, producer: Organisation) -> bool:
    """The GI's authority (and those above it), or an authority or inspection unit covering the producer."""
    if by.org_kind == OrgKind.authority:
        return can_manage_gi(session, by, gi) or by.covers(producer.adcode)
    if by.org_kind == OrgKind.inspection:
        return by.covers(producer.adcode)
    return False


def get_report(session: Session, by: Principal, report_id: int) -> AnnualReport:
    report = session.get(AnnualReport, report_id)
    if report is None:
        raise NotFound(f"annual report {report_id} does not exist", code="report_not_found")
    if by.org_kind == OrgKind.producer:
        if report.producer_id != by.organisation_id:
            raise Forbidden("this is another producer's report", code="not_your_report")
    elif not may_supervise(session, by, session.get(GIProduct, report.gi_id),
                           session.get(Organisation, report.producer_id)):
        raise Forbidden("the report's producer and GI are outside your jurisdiction", code="outside_jurisdiction")
    return report


def warnings(report: AnnualReport) -> list[dict[str, str]]:
    """Plausibility notes on the declared figures (shown, never blocking)."""
    out = []
    marked_kg = Decimal(str((report.figures or {}).get("marks", {}).get("activated_kg", 0)))
    if report.output_kg is not None and report.output_kg < marked_kg:
        out.append({"code": "output_below_marked",
                    "message": f"declared output {report.output_kg} kg is less than the {marked_kg} kg of packs "
                               f"marked in the year (申报产量低于当年贴标数量)"})
    if report.output_kg is not None and report.output_value_yuan is not None:
        if report.output_kg > 0 and report.output_value_yuan == 0:
            out.append({"code": "output_without_value", "message": "output declared with a value of 0 yuan"})
        if report.output_kg == 0 and report.output_value_yuan > 0:
            out.append({"code": "value_without_output", "message": "a value declared for an output of 0 kg"})
    if not (report.figures or {}).get("balanced", True):
        out.append({"code": "ledger_unbalanced",
                    "message": "the ledger figures do not reconcile (opening + received − activated − removed "
                               "≠ closing stock); the authority should run `gi-service ledger verify`"})
    return out


def serialize(report: AnnualReport, producer: Organisation, gi: GIProduct, *,
              at: dt.datetime | None = None) -> dict[str, Any]:
    at = at or clock.now()
    return {
        "id": report.id, "year": report.year, "status": report.status.value,
        "producer": {"id": producer.id, "name": producer.name, "uscc": producer.uscc, "adcode": producer.adcode},
        "gi": {"id": gi.id, "name_zh": gi.name_zh, "name_en": gi.name_en, "registration_no": gi.registration_no},
        "due_date": due_date(report.year).isoformat(), "filing_deadline": filing_deadline(report.year).isoformat(),
        "late": is_late(report), "overdue": is_overdue(report, report.year, at),
        "figures": report.figures, "generated_at": report.generated_at.isoformat(),
        "declared": {"output_kg": _num(report.output_kg), "output_value_yuan": _num(report.output_value_yuan),
                     "notes": report.notes},
        "submitted_at": report.submitted_at.isoformat() if report.submitted_at else None,
        "submitted_by": report.submitted_by_id,
        "warnings": warnings(report),
    }


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


# --- the authorities' view -----------------------------------------------------------------------

def _region(adcode: str | None) -> dict[str, Any] | None:
    if adcode is None:
        return None
    unit = get_registry().get(adcode)
    if unit is None:
        raise ValidationFailed(f"adcode {adcode} is not a known administrative division", code="unknown_adcode",
                               details=[{"field": "adcode", "problem": "unknown"}])
    return {"adcode": unit.adcode, "name": unit.name, "full_name": unit.full_name, "level": unit.level}


def _supervised(session: Session, by: Principal, year: int, *, gi_id: int | None,
                adcode: str | None) -> list[Eligible]:
    if by.org_kind not in (OrgKind.authority, OrgKind.inspection):
        raise Forbidden("annual reports are read by authorities and inspection units", code="wrong_role")
    registry = get_registry()
    manage: dict[int, bool] = {}
    out = []
    for e in authorized_during(session, year, gi_id=gi_id):
        if adcode is not None and not registry.is_within(e.producer.adcode, adcode):
            continue
        if by.org_kind == OrgKind.authority and e.gi.id not in manage:
            manage[e.gi.id] = can_manage_gi(session, by, e.gi)
        if manage.get(e.gi.id) or by.covers(e.producer.adcode):
            out.append(e)
    return out


def listing(session: Session, by: Principal, year: int, *, gi_id: int | None = None, adcode: str | None = None,
            status: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """Every producer that had to report `year` inside the caller's remit, with its report's status."""
    at = at or clock.now()
    require_past_year(year, at)
    region = _region(adcode)
    eligible = _supervised(session, by, year, gi_id=gi_id, adcode=adcode)
    gi_ids = {e.gi.id for e in eligible}
    reports = {(r.producer_id, r.gi_id): r for r in session.scalars(
        select(AnnualReport).where(AnnualReport.year == year, AnnualReport.gi_id.in_(gi_ids)))} if gi_ids else {}
    rows = []
    for e in eligible:
        report = reports.get((e.producer.id, e.gi.id))
        rows.append(_listing_row(e, report, year, at))
    summary = _summary(rows)
    if status is not None:
        rows = [r for r in rows if r["status"] == status or (status in ("late", "overdue") and r[status])]
    return {"year": year, "region": region, "gi_id": gi_id, "status": status,
            "due_date": due_date(year).isoformat(), "filing_deadline": filing_deadline(year).isoformat(),
            "due_passed": at >= clock.end_of_day(due_date(year)), "generated_at": at.isoformat(),
            "summary": summary, "items": rows}


def _listing_row(e: Eligible, report: AnnualReport | None, year: int, at: dt.datetime) -> dict[str, Any]:
    marks = (report.figures or {}).get("marks", {}) if report else {}
    lots = (report.figures or {}).get("lots", {}) if report else {}
    quota = ((report.figures or {}).get("quota") or {}) if report else {}
    return {
        "producer": {"id": e.producer.id, "name": e.producer.name, "uscc": e.producer.uscc,
                     "adcode": e.producer.adcode},
        "gi": {"id": e.gi.id, "name_zh": e.gi.name_zh},
        "authorization": {"id": e.authorization.id, "status": e.authorization.status.value,
                          "states_in_year": e.states_in_year},
        "report_id": report.id if report else None,
        "status": report.status.value if report else "missing",
        "submitted_at": report.submitted_at.isoformat() if report and report.submitted_at else None,
        "late": bool(report and is_late(report)),
        "overdue": is_overdue(report, year, at),
        "marks": {k: marks.get(k) for k in ("received", "activated", "voided", "lost", "stolen", "closing_stock")},
        "lots": {"count": lots.get("count"), "packs": lots.get("packs"), "declared_kg": lots.get("declared_kg")},
        "quota": {"granted_kg": quota.get("granted_kg"), "consumed_kg": quota.get("consumed_kg")},
        "output_kg": _num(report.output_kg) if report else None,
        "output_value_yuan": _num(report.output_value_yuan) if report else None,
        "_report": report,
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    s = {"authorized": len(rows), "submitted": 0, "on_time": 0, "late": 0, "draft": 0, "missing": 0, "overdue": 0}
    for r in rows:
        s[r["status"]] += 1
        if r["status"] == "submitted":
            s["late" if r["late"] else "on_time"] += 1
        s["overdue"] += r["overdue"]
    s["not_submitted"] = s["draft"] + s["missing"]
    return s


ROLLUP_MARKS = ("received", "activated", "voided", "lost", "stolen", "closing_stock")


def rollup(session: Session, by: Principal, year: int, *, adcode: str | None = None,
           at: dt.datetime | None = None) -> dict[str, Any]:
    """Submitted reports aggregated per GI for the provincial filing, with who is still missing."""
    at = at or clock.now()
    adcode = adcode or by.adcode
    data = listing(session, by, year, adcode=adcode, at=at)
    groups: dict[int, dict[str, Any]] = {}
    for row in data["items"]:
        g = groups.setdefault(row["gi"]["id"], _empty_group(row["gi"]))
        _add(g, row)
    total = _empty_group({"id": None, "name_zh": "合计 Total"})
    for g in groups.values():
        for row_key in ("authorized", "submitted", "late", "draft", "missing", "not_submitted"):
            total["producers"][row_key] += g["producers"][row_key]
        for k in ROLLUP_MARKS:
            total["marks"][k] += g["marks"][k]
        for k in ("count", "packs"):
            total["lots"][k] += g["lots"][k]
        total["lots"]["declared_kg"] = round(total["lots"]["declared_kg"] + g["lots"]["declared_kg"], 3)
        total["quota"]["granted_kg"] = round(total["quota"]["granted_kg"] + g["quota"]["granted_kg"], 3)
        total["quota"]["consumed_kg"] = round(total["quota"]["consumed_kg"] + g["quota"]["consumed_kg"], 3)
        total["output_kg"] += g["output_kg"]
        total["output_value_yuan"] += g["output_value_yuan"]
    items = [_finish_group(g) for g in sorted(groups.values(), key=lambda g: g["gi"]["id"])]
    deadline = filing_deadline(year)
    today = clock.china_date(at)
    return {"year": year, "region": data["region"], "due_date": data["due_date"],
            "filing_deadline": deadline.isoformat(), "days_to_filing_deadline": (deadline - today).days,
            "filing_deadline_passed": today > deadline, "generated_at": at.isoformat(),
            "summary": data["summary"], "items": items, "total": _finish_group(total)}


def _empty_group(gi: dict[str, Any]) -> dict[str, Any]:
    return {"gi": {"id": gi["id"], "name_zh": gi["name_zh"]},
            "producers": dict.fromkeys(("authorized", "submitted", "late", "draft", "missing", "not_submitted"), 0),
            "marks": dict.fromkeys(ROLLUP_MARKS, 0), "lots": {"count": 0, "packs": 0, "declared_kg": 0.0},
            "quota": {"granted_kg": 0.0, "consumed_kg": 0.0},
            "output_kg": Decimal(0), "output_value_yuan": Decimal(0)}


def _add(g: dict[str, Any], row: dict[str, Any]) -> None:
    p = g["producers"]
    p["authorized"] += 1
    if row["status"] != "submitted":
        p[row["status"]] += 1
        p["not_submitted"] += 1
        return
    p["submitted"] += 1
    p["late"] += row["late"]
    report: AnnualReport = row["_report"]
    for k in ROLLUP_MARKS:
        g["marks"][k] += row["marks"].get(k) or 0
    g["lots"]["count"] += row["lots"]["count"] or 0
    g["lots"]["packs"] += row["lots"]["packs"] or 0
    g["lots"]["declared_kg"] = round(g["lots"]["declared_kg"] + (row["lots"]["declared_kg"] or 0), 3)
    g["quota"]["granted_kg"] = round(g["quota"]["granted_kg"] + (row["quota"]["granted_kg"] or 0), 3)
    g["quota"]["consumed_kg"] = round(g["quota"]["consumed_kg"] + (row["quota"]["consumed_kg"] or 0), 3)
    g["output_kg"] += report.output_kg or 0
    g["output_value_yuan"] += report.output_value_yuan or 0


def _finish_group(g: dict[str, Any]) -> dict[str, Any]:
    return {**g, "output_kg": float(g["output_kg"]), "output_value_yuan": float(g["output_value_yuan"]),
            "output_kg_exact": str(g["output_kg"]), "output_value_yuan_exact": str(g["output_value_yuan"])}


def public_listing(data: dict[str, Any]) -> dict[str, Any]:
    """The listing without the report objects kept for the rollup."""
    return {**data, "items": [{k: v for k, v in r.items() if k != "_report"} for r in data["items"]]}


# --- CSV -----------------------------------------------------------------------------------------

STATUS_ZH = {"submitted": "已提交", "draft": "草稿", "missing": "未提交"}
LISTING_HEADERS = ["年度 (year)", "生产者 (producer)", "统一社会信用代码 (USCC)", "行政区划 (adcode)",
                   "地理标志 (GI)", "GI编号 (gi_id)", "授权状态 (authorization)", "报告状态 (status)",
                   "提交时间 (submitted_at, China time)", "逾期提交 (late)", "已过期未交 (overdue)",
                   "领取标志 (received)", "使用标志 (activated)", "作废 (voided)", "遗失 (lost)", "被盗 (stolen)",
                   "年末库存 (closing_stock)", "批次数 (lots)", "批次包装数 (lot_packs)", "批次申报量kg (lot_kg)",
                   "配额kg (quota_granted_kg)", "已用配额kg (quota_consumed_kg)", "产量kg (output_kg)",
                   "产值元 (output_value_yuan)"]
ROLLUP_HEADERS = ["年度 (year)", "地理标志 (GI)", "GI编号 (gi_id)", "授权使用人 (authorized)", "已提交 (submitted)",
                  "其中逾期 (late)", "草稿 (draft)", "未提交 (missing)", "领取标志 (received)", "使用标志 (activated)",
                  "作废 (voided)", "遗失 (lost)", "被盗 (stolen)", "年末库存 (closing_stock)", "批次数 (lots)",
                  "批次包装数 (lot_packs)", "批次申报量kg (lot_kg)", "配额kg (quota_granted_kg)",
                  "已用配额kg (quota_consumed_kg)", "产量kg (output_kg)", "产值元 (output_value_yuan)"]


def _cst(iso: str | None) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(clock.CHINA_TZ).strftime("%Y-%m-%d %H:%M") if iso else ""


def _yn(flag: bool) -> str:
    return "是 yes" if flag else "否 no"


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _listing_cells(year: int, r: dict[str, Any]) -> list[Any]:
    report = r.get("_report")
    return [year, r["producer"]["name"], r["producer"]["uscc"] or "", r["producer"]["adcode"], r["gi"]["name_zh"],
            r["gi"]["id"], r["authorization"]["status"], f"{STATUS_ZH[r['status']]} {r['status']}",
            _cst(r["submitted_at"]), _yn(r["late"]), _yn(r["overdue"]),
            *[_blank(r["marks"][k]) for k in ("received", "activated", "voided", "lost", "stolen", "closing_stock")],
            _blank(r["lots"]["count"]), _blank(r["lots"]["packs"]), _blank(r["lots"]["declared_kg"]),
            _blank(r["quota"]["granted_kg"]), _blank(r["quota"]["consumed_kg"]),
            _blank(report.output_kg if report else None), _blank(report.output_value_yuan if report else None)]


def _rollup_cells(year: int, g: dict[str, Any]) -> list[Any]:
    p, m = g["producers"], g["marks"]
    return [year, g["gi"]["name_zh"], _blank(g["gi"]["id"]), p["authorized"], p["submitted"], p["late"], p["draft"],
            p["missing"], *[m[k] for k in ROLLUP_MARKS], g["lots"]["count"], g["lots"]["packs"],
            g["lots"]["declared_kg"], g["quota"]["granted_kg"], g["quota"]["consumed_kg"], g["output_kg_exact"],
            g["output_value_yuan_exact"]]


def _csv(header: list[str], rows: Iterable[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    # The byte-order mark makes Excel read the file as UTF-8 (it assumes the local code page otherwise).
    return buf.getvalue().encode("utf-8-sig")


def listing_csv(data: dict[str, Any]) -> bytes:
    return _csv(LISTING_HEADERS, (_listing_cells(data["year"], r) for r in data["items"]))


def rollup_csv(data: dict[str, Any]) -> bytes:
    return _csv(ROLLUP_HEADERS, [*(_rollup_cells(data["year"], g) for g in data["items"]),
                                 _rollup_cells(data["year"], data["total"])])


# --- PDF -----------------------------------------------------------------------------------------

FONT = "STSong-Light"   # Adobe's CJK CID font: every PDF viewer has it, so nothing is embedded


def _pdf_styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return {
        "title": ParagraphStyle("title", fontName=FONT, fontSize=16, leading=22, spaceAfter=6),
        "meta": ParagraphStyle("meta", fontName=FONT, fontSize=9.5, leading=14),
        "h2": ParagraphStyle("h2", fontName=FONT, fontSize=12, leading=18, spaceBefore=10, spaceAfter=4),
        "cell": ParagraphStyle("cell", fontName=FONT, fontSize=7.5, leading=9.5),
        "head": ParagraphStyle("head", fontName=FONT, fontSize=7.5, leading=9.5, textColor=colors.white),
        "warn": ParagraphStyle("warn", fontName=FONT, fontSize=9.5, leading=14, textColor=colors.darkred),
    }


def _table(styles, header: list[str], rows: list[list[Any]], widths: list[float] | None = None,
           total_row: bool = False):
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle
    from xml.sax.saxutils import escape

    data = [[Paragraph(escape(h), styles["head"]) for h in header]]
    data += [[Paragraph(escape(str(c)), styles["cell"]) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    style = [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f4e79")),
             ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa5b1")),
             ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#eef2f6")])]
    if total_row and rows:
        style.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#d9e2ec")))
    table.setStyle(TableStyle(style))
    return table


def _document(title: str, meta: list[str], body: list[Any], *, landscape_page: bool = True) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate
    from xml.sax.saxutils import escape

    styles = _pdf_styles()
    buf = io.BytesIO()
    page = landscape(A4) if landscape_page else A4

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.drawString(12 * mm, 8 * mm, f"gi-service · {title}")
        canvas.drawRightString(page[0] - 12 * mm, 8 * mm, f"第 {doc.page} 页 page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(buf, pagesize=page, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                            bottomMargin=14 * mm, title=title, author="gi-service", subject=title)
    story = [Paragraph(escape(title), styles["title"])]
    story += [Paragraph(escape(line), styles["meta"]) for line in meta]
    story += body
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def _region_text(region: dict[str, Any] | None) -> str:
    return f"{region['full_name']} ({region['adcode']})" if region else "全部辖区 all of your jurisdiction"


def listing_pdf(data: dict[str, Any]) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    styles = _pdf_styles()
    year, s = data["year"], data["summary"]
    title = f"{year}年度地理标志专用标志使用年报提交情况 Annual reports {year}: who has reported"
    meta = [f"年度 Year: {year}　　区域 Region: {_region_text(data['region'])}",
            f"报送截止 Due: {data['due_date']}　　省级汇总截止 Provincial filing deadline: {data['filing_deadline']}",
            f"生成时间 Generated: {_cst(data['generated_at'])} (北京时间 China time)",
            f"授权使用人 authorized {s['authorized']} · 已提交 submitted {s['submitted']} (逾期 late {s['late']}) · "
            f"草稿 draft {s['draft']} · 未提交 missing {s['missing']} · 已过期未交 overdue {s['overdue']}"]
    header = ["生产者 Producer", "统一社会信用代码 USCC", "地理标志 GI", "状态 Status", "提交时间 Submitted",
              "逾期 Late", "领取 Received", "使用 Activated", "作废/遗失/被盗 Void/lost/stolen", "年末库存 Stock",
              "产量kg Output", "产值元 Value"]
    rows = []
    for r in data["items"]:
        m, report = r["marks"], r.get("_report")
        removed = "/".join(str(_blank(m[k])) for k in ("voided", "lost", "stolen")) if report else ""
        rows.append([r["producer"]["name"], r["producer"]["uscc"] or "", r["gi"]["name_zh"],
                     f"{STATUS_ZH[r['status']]} {r['status']}" + (" · 已过期 overdue" if r["overdue"] else ""),
                     _cst(r["submitted_at"]), _yn(r["late"]) if r["status"] == "submitted" else "",
                     _blank(m["received"]), _blank(m["activated"]), removed, _blank(m["closing_stock"]),
                     _blank(report.output_kg if report else None), _blank(report.output_value_yuan if report else None)])
    widths = [w * mm for w in (44, 30, 22, 24, 24, 12, 17, 17, 22, 17, 20, 22)]
    body = [Spacer(1, 4 * mm), _table(styles, header, rows, widths)] if rows else \
        [Spacer(1, 4 * mm), Paragraph("没有需要报告的授权使用人 No authorized users had to report.", styles["meta"])]
    return _document(title, meta, body)


def rollup_pdf(data: dict[str, Any]) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    styles = _pdf_styles()
    year = data["year"]
    title = f"{year}年度地理标志专用标志使用情况汇总表 Annual use of the GI special mark {year}: rollup"
    passed = "（已过 passed）" if data["filing_deadline_passed"] else f"（剩余 {data['days_to_filing_deadline']} 天 days left）"
    meta = [f"年度 Year: {year}　　区域 Region: {_region_text(data['region'])}",
            f"省级汇总报送截止 Provincial filing deadline: {data['filing_deadline']} {passed}　　"
            f"使用人报送截止 Producers' due date: {data['due_date']}",
            f"生成时间 Generated: {_cst(data['generated_at'])} (北京时间 China time)　　"
            "数字为已提交报告之和 figures sum the submitted reports"]
    header = ["地理标志 GI", "授权使用人 Authorized", "已提交 Submitted", "逾期 Late", "未提交 Not submitted",
              "领取 Received", "使用 Activated", "作废 Voided", "遗失 Lost", "被盗 Stolen", "年末库存 Stock",
              "批次 Lots", "配额kg Quota", "已用配额kg Used", "产量kg Output", "产值元 Value"]

    def cells(g):
        p, m = g["producers"], g["marks"]
        return [g["gi"]["name_zh"], p["authorized"], p["submitted"], p["late"],
                f"{p['not_submitted']} (草稿 draft {p['draft']})", m["received"], m["activated"], m["voided"],
                m["lost"], m["stolen"], m["closing_stock"], g["lots"]["count"], g["quota"]["granted_kg"],
                g["quota"]["consumed_kg"], g["output_kg_exact"], g["output_value_yuan_exact"]]

    rows = [cells(g) for g in data["items"]] + [cells(data["total"])]
    widths = [w * mm for w in (30, 15, 15, 12, 22, 15, 15, 13, 13, 13, 15, 12, 18, 18, 20, 23)]
    return _document(title, meta, [Spacer(1, 4 * mm), _table(styles, header, rows, widths, total_row=True)])


def report_pdf(data: dict[str, Any]) -> bytes:
    """One producer's report (the serialized form) as a document to sign and keep."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer
    from xml.sax.saxutils import escape

    styles = _pdf_styles()
    year, f = data["year"], data["figures"]
    marks, lots, quota, declared = f.get("marks", {}), f.get("lots", {}), f.get("quota"), data["declared"]
    state = "已提交 submitted" if data["status"] == "submitted" else "草稿（未提交）DRAFT, not submitted"
    title = f"{year}年度地理标志专用标志使用报告 Annual report on the use of the GI special mark, {year}"
    meta = [f"使用人 User: {data['producer']['name']}　　统一社会信用代码 USCC: {data['producer']['uscc'] or '—'}　　"
            f"行政区划 adcode: {data['producer']['adcode']}",
            f"地理标志 GI: {data['gi']['name_zh']}" + (f" ({data['gi']['name_en']})" if data["gi"]["name_en"] else "")
            + (f"　　登记/公告号 Registration: {data['gi']['registration_no']}" if data["gi"]["registration_no"] else ""),
            f"状态 Status: {state}" + (f"　　提交 submitted {_cst(data['submitted_at'])}" if data["submitted_at"] else "")
            + ("　　逾期提交 LATE" if data["late"] else "") + ("　　已过期未交 OVERDUE" if data["overdue"] else ""),
            f"报送截止 Due: {data['due_date']}　　台账数据生成 Ledger figures as of: {_cst(data['generated_at'])}"
            f"　　打印 Printed: {_cst(clock.now().isoformat())} (北京时间 China time)"]
    body: list[Any] = [Paragraph("一、专用标志（台账数据）Special marks, from the ledger", styles["h2"])]
    mark_rows = [["年初库存 Opening stock (1 Jan)", marks.get("opening_stock")],
                 ["领取 Received (issued to you)", marks.get("received")],
                 ["使用 Activated on lots", marks.get("activated")],
                 ["作废 Voided", marks.get("voided")], ["遗失 Lost", marks.get("lost")],
                 ["被盗 Stolen", marks.get("stolen")],
                 ["其中：库存中作废/遗失/被盗 of which from stock", marks.get("removed_from_stock")],
                 ["年末库存 Closing stock (31 Dec, issued not activated)", marks.get("closing_stock")],
                 ["贴标产品重量kg Weight of marked packs (kg)", marks.get("activated_kg")]]
    body.append(_table(styles, ["项目 Item", "数量 Count"], [[a, _blank(b)] for a, b in mark_rows], [120 * mm, 40 * mm]))
    body.append(Paragraph("二、生产批次 Production lots", styles["h2"]))
    pack_rows = [[p["pack_size_g"], p["lots"], p["packs"], p["marks_activated"]] for p in lots.get("by_pack_size", [])]
    pack_rows.append(["合计 Total", lots.get("count", 0), lots.get("packs", 0), marks.get("activated", 0)])
    body.append(_table(styles, ["包装规格g Pack size (g)", "批次数 Lots", "包装数 Packs", "使用标志 Marks"], pack_rows,
                       [50 * mm, 35 * mm, 35 * mm, 40 * mm], total_row=True))
    body.append(Paragraph(f"批次申报总量 Declared lot quantity: {lots.get('declared_kg', 0)} kg　　"
                          f"召回批次 Recalled lots: {lots.get('recalled', 0)}", styles["meta"]))
    body.append(Paragraph("三、年度配额 Quota", styles["h2"]))
    if quota:
        body.append(_table(styles, ["项目 Item", "kg"], [
            ["核定 Base (plots × standard yield)", quota["base_kg"]], ["调整 Adjusted", quota["adjusted_kg"]],
            ["转入 Transferred in", quota["transferred_in_kg"]], ["转出 Transferred out", quota["transferred_out_kg"]],
            ["可用合计 Granted", quota["granted_kg"]], ["已用 Consumed", quota["consumed_kg"]],
            ["剩余 Available", quota["available_kg"]]], [120 * mm, 40 * mm]))
    else:
        body.append(Paragraph("本年度无配额账户 No quota account for this year.", styles["meta"]))
    body.append(Paragraph("四、申报数据 Declared by the user", styles["h2"]))
    body.append(_table(styles, ["项目 Item", "申报值 Declared"], [
        ["产量kg Output quantity (kg)", "" if declared["output_kg"] is None else f"{declared['output_kg']:.3f}"],
        ["产值元 Output value (yuan)",
         "" if declared["output_value_yuan"] is None else f"{declared['output_value_yuan']:.2f}"]],
        [120 * mm, 40 * mm]))
    if declared["notes"]:
        body.append(Paragraph("说明 Notes: " + escape(declared["notes"]), styles["meta"]))
    for w in data["warnings"]:
        body.append(Paragraph("注意 Note: " + escape(w["message"]), styles["warn"]))
    body.append(Spacer(1, 6 * mm))
    return _document(title, meta, body, landscape_page=False)

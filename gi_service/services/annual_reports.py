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
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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

"""The special-mark lifecycle: quota, requests, approval, printing, issuing, activation, voiding.

Every operation takes a session and never commits (the handler owns the transaction), and
every state change appends a ledger event in the same transaction, so a crash leaves all
of an operation or none of it. Marks are kept as serial ranges: an operation on N marks
costs O(number of ranges touched) rows, never O(N).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..codes import Serial, SerialError, format_serial, parse_serial
from ..db import get_by_id, where_given
from ..errors import Conflict, Forbidden, GIError, NotFound, ValidationFailed
from ..faults import crash_point
from ..models import (Authorization, AuthorizationStatus, BatchStatus, GIProduct, Lot, LotStatus, MarkBatch,
                      MarkRange, MarkRequest, MarkState, OrgKind, Organisation, Plot, QuotaAccount, QuotaEntry,
                      RequestStatus, SerialCounter)
from . import ledger
from .accounts import Principal
from .registry import assign_prefix, can_manage_gi, get_gi

MAX_BATCH = 100_000_000
MAX_SEQ = 999_999_999


class QuotaExceeded(GIError):
    status = 409
    code = "quota_exceeded"


class WrongState(GIError):
    status = 409
    code = "wrong_state"


# --- helpers ---------------------------------------------------------------------------------

def _require_authority_for_gi(session: Session, by: Principal, gi: GIProduct) -> None:
    if by.org_kind != OrgKind.authority or not can_manage_gi(session, by, gi):
        raise Forbidden(f"only the authority managing {gi.name_zh} may do this", code="outside_jurisdiction")


def _approved_authorization(session: Session, producer_id: int, gi_id: int) -> Authorization:
    auth = session.scalar(select(Authorization).where(Authorization.producer_id == producer_id,
                                                      Authorization.gi_id == gi_id))
    if auth is None or auth.status != AuthorizationStatus.approved:
        state = auth.status.value if auth else "none"
        raise Conflict(f"producer {producer_id} is not an approved user of GI {gi_id}'s special mark "
                       f"(authorization: {state})", code="not_authorized", details={"authorization": state})
    return auth


def _org(session: Session, org_id: int, kind: OrgKind, code: str) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None or org.kind != kind or not org.is_active:
        raise NotFound(f"{kind.value} {org_id} does not exist or is not active", code=code)
    return org


def grams(value_kg: Decimal | float) -> int:
    return int((Decimal(str(value_kg)) * 1000).to_integral_value())


# --- quota -----------------------------------------------------------------------------------

def get_account(session: Session, account_id: int, *, lock: bool = False) -> QuotaAccount:
    return get_by_id(session, QuotaAccount, account_id, what="quota account", code="quota_account_not_found", lock=lock)


def can_see_account(session: Session, by: Principal, account: QuotaAccount) -> bool:
    return (by.organisation_id == account.producer_id or can_manage_gi(session, by, account.gi)
            or by.covers(account.producer.adcode))


def _entry(session: Session, account: QuotaAccount, kind: str, amount_g: int, reason: str, by: Principal,
           **kw) -> QuotaEntry:
    entry = QuotaEntry(account_id=account.id, kind=kind, amount_g=amount_g, reason=reason, by_id=by.user_id, **kw)
    session.add(entry)
    return entry


def open_account(session: Session, *, producer_id: int, gi_id: int, year: int, by: Principal,
                 reason: str = "annual opening") -> QuotaAccount:
    """Open a producer's yearly quota: Σ surveyed plot area (mu) × the GI's standard yield (kg/mu)."""
    gi = get_gi(session, gi_id)
    _require_authority_for_gi(session, by, gi)
    _org(session, producer_id, OrgKind.producer, "producer_not_found")
    _approved_authorization(session, producer_id, gi_id)
    if gi.standard_yield_kg_per_mu is None:
        raise ValidationFailed(f"{gi.name_zh} has no standard yield per mu; record it in the registry first",
                               code="no_standard_yield")
    plots = list(session.scalars(select(Plot).where(Plot.producer_id == producer_id, Plot.gi_id == gi_id,
                                                    Plot.is_active.is_(True), Plot.survey_year <= year)
                                 .order_by(Plot.id)))
    total_mu = sum(Decimal(str(round(p.area_mu, 4))) for p in plots)
    base_g = grams(total_mu * gi.standard_yield_kg_per_mu)
    account = QuotaAccount(year=year, producer_id=producer_id, gi_id=gi_id, base_g=base_g, adjusted_g=0,
                           transferred_in_g=0, transferred_out_g=0, consumed_g=0, opened_by_id=by.user_id)
    session.add(account)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"the {year} quota account of producer {producer_id} for GI {gi_id} is already open",
                       code="quota_account_exists") from None
    details = {"plots": [{"id": p.id, "area_mu": round(p.area_mu, 4), "survey_year": p.survey_year} for p in plots],
               "total_mu": str(total_mu), "standard_yield_kg_per_mu": str(gi.standard_yield_kg_per_mu)}
    _entry(session, account, "open", base_g, reason, by, details=details)
    ledger.append(session, "quota_opened", by=by, producer_id=producer_id, gi_id=gi_id, reason=reason,
                  data={"account_id": account.id, "year": year, "base_g": base_g, "total_mu": str(total_mu)})
    session.flush()
    return account


def _change_balance(session: Session, account: QuotaAccount, column, delta: int, *, guard_available: int) -> bool:
    """Atomically add `delta` to `column` if at least `guard_available` grams remain available."""
    available = (QuotaAccount.base_g + QuotaAccount.adjusted_g + QuotaAccount.transferred_in_g
                 - QuotaAccount.transferred_out_g - QuotaAccount.consumed_g)
    result = session.execute(update(QuotaAccount)
                             .where(QuotaAccount.id == account.id, available >= guard_available)
                             .values({column: column + delta})
                             .execution_options(synchronize_session=False))
    session.refresh(account)
    return result.rowcount == 1


def adjust_account(session: Session, account_id: int, amount_g: int, *, reason: str, by: Principal) -> QuotaAccount:
    """A manual correction (positive or negative) with its reason; never below what is consumed."""
    account = get_account(session, account_id)
    _require_authority_for_gi(session, by, account.gi)
    if amount_g == 0:
        raise ValidationFailed("an adjustment of 0 g changes nothing", code="no_change")
    if not _change_balance(session, account, QuotaAccount.adjusted_g, amount_g, guard_available=max(0, -amount_g)):
        raise QuotaExceeded(f"the adjustment of {amount_g} g would leave less than nothing available "
                            f"({account.available_g} g available)", details={"available_g": account.available_g})
    _entry(session, account, "adjust", amount_g, reason, by)
    ledger.append(session, "quota_adjusted", by=by, producer_id=account.producer_id, gi_id=account.gi_id,
                  reason=reason, data={"account_id": account.id, "amount_g": amount_g})
    return account


def transfer(session: Session, from_account_id: int, *, to_producer_id: int, amount_g: int, reason: str,
             by: Principal) -> tuple[QuotaAccount, QuotaAccount]:
    """Move quota to another authorized holder of the same GI and year (labels never move)."""
    source = get_account(session, from_account_id)
    if not (by.organisation_id == source.producer_id or
            (by.org_kind == OrgKind.authority and can_manage_gi(session, by, source.gi))):
        raise Forbidden("only the account's producer or the GI's authority may transfer its quota",
                        code="not_your_account")
    if to_producer_id == source.producer_id:
        raise ValidationFailed("a transfer needs another producer", code="same_account")
    if amount_g <= 0:
        raise ValidationFailed("amount_g must be positive", details=[{"field": "amount_g", "problem": "> 0"}])
    _org(session, to_producer_id, OrgKind.producer, "producer_not_found")
    _approved_authorization(session, source.producer_id, source.gi_id)
    _approved_authorization(session, to_producer_id, source.gi_id)
    find_target = select(QuotaAccount).where(QuotaAccount.year == source.year,
                                             QuotaAccount.producer_id == to_producer_id,
                                             QuotaAccount.gi_id == source.gi_id)
    target = session.scalar(find_target)
    if target is None:
        # A packer with no plots of its own holds quota only by transfer.
        try:
            with session.begin_nested():
                target = QuotaAccount(year=source.year, producer_id=to_producer_id, gi_id=source.gi_id, base_g=0,
                                      adjusted_g=0, transferred_in_g=0, transferred_out_g=0, consumed_g=0,
                                      opened_by_id=by.user_id)
                session.add(target)
                session.flush()
                _entry(session, target, "open", 0, "opened by transfer", by)
        except IntegrityError:  # opened by a concurrent transfer: use that one
            target = session.scalar(find_target)
    # Lock both accounts in id order, so opposite transfers between two holders cannot deadlock.
    list(session.scalars(select(QuotaAccount).where(QuotaAccount.id.in_((source.id, target.id)))
                         .order_by(QuotaAccount.id).with_for_update()))
    if not _change_balance(session, source, QuotaAccount.transferred_out_g, amount_g, guard_available=amount_g):
        raise QuotaExceeded(f"only {source.available_g} g are available to transfer, not {amount_g} g",
                            details={"available_g": source.available_g, "requested_g": amount_g})
    _change_balance(session, target, QuotaAccount.transferred_in_g, amount_g, guard_available=0)
    _entry(session, source, "transfer_out", -amount_g, reason, by, counterparty_account_id=target.id)
    _entry(session, target, "transfer_in", amount_g, reason, by, counterparty_account_id=source.id)
    ledger.append(session, "quota_transferred", by=by, producer_id=source.producer_id, gi_id=source.gi_id,
                  reason=reason, data={"from_account_id": source.id, "to_account_id": target.id,
                                       "to_producer_id": to_producer_id, "amount_g": amount_g})
    return source, target


def list_accounts(session: Session, by: Principal, *, year: int | None = None,
                  producer_id: int | None = None, gi_id: int | None = None) -> list[QuotaAccount]:
    stmt = select(QuotaAccount).order_by(QuotaAccount.id)
    if by.org_kind == OrgKind.producer:
        stmt = stmt.where(QuotaAccount.producer_id == by.organisation_id)
    elif by.org_kind not in (OrgKind.authority, OrgKind.inspection):
        return []
    stmt = where_given(stmt, QuotaAccount, year=year, producer_id=producer_id, gi_id=gi_id)
    return [a for a in session.scalars(stmt) if can_see_account(session, by, a)]


def account_entries(session: Session, account_id: int) -> list[QuotaEntry]:
    return list(session.scalars(select(QuotaEntry).where(QuotaEntry.account_id == account_id)
                                .order_by(QuotaEntry.id)))


# --- requests --------------------------------------------------------------------------------

def gtin14(raw: str) -> str:
    """Normalise a GTIN-8/12/13/14 to 14 digits, checking its GS1 check digit."""
    digits = raw.strip()
    if not digits.isascii() or not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        raise ValidationFailed("gtin must be 8, 12, 13 or 14 digits",
                               details=[{"field": "gtin", "problem": "format"}], code="invalid_gtin")
    digits = digits.zfill(14)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13]))
    check = (10 - total % 10) % 10
    if int(digits[13]) != check:
        raise ValidationFailed(f"gtin check digit should be {check}", code="invalid_gtin",
                               details=[{"field": "gtin", "problem": f"check digit should be {check}"}])
    return digits


def create_request(session: Session, *, gi_id: int, pack_size_g: int, quantity: int, by: Principal,
                   year: int | None = None, gtin: str | None = None, note: str | None = None) -> MarkRequest:
    """A producer asks for a batch of marks for one GI and pack size."""
    if by.org_kind != OrgKind.producer:
        raise Forbidden("only a producer requests marks", code="wrong_role")
    gi = get_gi(session, gi_id)
    _approved_authorization(session, by.organisation_id, gi.id)
    if not 1 <= quantity <= MAX_BATCH:
        raise ValidationFailed(f"quantity must be between 1 and {MAX_BATCH:,}",
                               details=[{"field": "quantity", "problem": "out of range"}])
    year = year or clock.now().year
    request = MarkRequest(producer_id=by.organisation_id, gi_id=gi.id, year=year, pack_size_g=pack_size_g,
                          quantity=quantity, gtin=gtin14(gtin) if gtin else None, note=note,
                          status=RequestStatus.requested, requested_by_id=by.user_id, requested_at=clock.now())
    session.add(request)
    session.flush()
    ledger.append(session, "requested", by=by, producer_id=by.organisation_id, gi_id=gi.id, count=quantity,
                  data={"request_id": request.id, "pack_size_g": pack_size_g, "year": year})
    return request


def get_request(session: Session, request_id: int, *, lock: bool = False) -> MarkRequest:
    return get_by_id(session, MarkRequest, request_id, what="mark request", code="request_not_found", lock=lock)


def can_see_request(session: Session, by: Principal, request: MarkRequest) -> bool:
    return by.organisation_id == request.producer_id or can_manage_gi(session, by, request.gi)


def _gi_prefix(session: Session, gi_id: int) -> str:
    # Locked and re-read: two first approvals of a GI at once must agree on one prefix.
    gi = session.scalar(select(GIProduct).where(GIProduct.id == gi_id).with_for_update()
                        .execution_options(populate_existing=True))
    return assign_prefix(session, gi)


def _allocate(session: Session, series: str, quantity: int) -> int:
    """Reserve `quantity` consecutive sequence numbers of a series; returns the first."""
    counter = session.scalar(select(SerialCounter).where(SerialCounter.series == series).with_for_update())
    if counter is None:
        try:
            with session.begin_nested():
                session.add(SerialCounter(series=series, next_seq=1))
        except IntegrityError:
            pass  # created concurrently; the locked read below waits for it
        counter = session.scalar(select(SerialCounter).where(SerialCounter.series == series).with_for_update())
    first = counter.next_seq
    if first + quantity - 1 > MAX_SEQ:
        raise Conflict(f"series {series} has only {MAX_SEQ - first + 1:,} serials left", code="series_exhausted")
    counter.next_seq = first + quantity
    session.flush()
    return first


def approve_request(session: Session, request_id: int, *, by: Principal, printer_id: int | None = None,
                    key_id: str, reason: str = "approved") -> MarkBatch:
    """Approve within the producer's remaining quota: consume quota, allocate one serial range."""
    request = get_request(session, request_id, lock=True)
    _require_authority_for_gi(session, by, request.gi)
    if request.status != RequestStatus.requested:
        raise WrongState(f"request {request_id} is {request.status.value}, not requested", code="not_pending")
    _approved_authorization(session, request.producer_id, request.gi_id)
    printer = _org(session, printer_id, OrgKind.printer, "printer_not_found") if printer_id else None
    account = session.scalar(select(QuotaAccount).where(QuotaAccount.year == request.year,
                                                        QuotaAccount.producer_id == request.producer_id,
                                                        QuotaAccount.gi_id == request.gi_id))
    need = request.quota_g
    if account is None:
        raise QuotaExceeded(f"producer {request.producer_id} has no {request.year} quota account for this GI",
                            code="no_quota_account")
    if not _change_balance(session, account, QuotaAccount.consumed_g, need, guard_available=need):
        raise QuotaExceeded(f"the request needs {need / 1000:g} kg of quota but only {account.available_g / 1000:g} "
                            "kg are available", details={"needed_g": need, "available_g": account.available_g})
    crash_point("approve.after_quota")
    _entry(session, account, "consume", -need, f"request {request.id}", by, request_id=request.id)
    series = _gi_prefix(session, request.gi_id) + f"{request.year % 100:02d}"
    first = _allocate(session, series, request.quantity)
    last = first + request.quantity - 1
    now = clock.now()
    batch = MarkBatch(request_id=request.id, producer_id=request.producer_id, gi_id=request.gi_id,
                      printer_id=printer.id if printer else None, year=request.year, series=series, seq_start=first,
                      seq_end=last, pack_size_g=request.pack_size_g, gtin=request.gtin, key_id=key_id,
                      status=BatchStatus.ordered if printer else BatchStatus.approved, approved_by_id=by.user_id,
                      approved_at=now, ordered_at=now if printer else None)
    session.add(batch)
    session.flush()
    crash_point("approve.after_batch")
    event = ledger.append(session, "approved", by=by, producer_id=request.producer_id, gi_id=request.gi_id,
                          printer_id=batch.printer_id, batch_id=batch.id, series=series, ranges=[(first, last)],
                          count=request.quantity, reason=reason,
                          data={"request_id": request.id, "quota_g": need, "account_id": account.id})
    session.add(MarkRange(batch_id=batch.id, series=series, seq_start=first, seq_end=last,
                          state=MarkState.allocated, event_seq=event.seq, updated_at=now))
    if printer:
        ledger.append(session, "ordered", by=by, producer_id=batch.producer_id, gi_id=batch.gi_id,
                      printer_id=printer.id, batch_id=batch.id, series=series, ranges=[(first, last)],
                      count=batch.quantity)
    request.status = RequestStatus.approved
    request.decided_by_id, request.decided_at, request.decision_reason = by.user_id, now, reason
    crash_point("approve.before_commit")
    session.flush()
    return batch


def refuse_request(session: Session, request_id: int, *, by: Principal, reason: str) -> MarkRequest:
    request = get_request(session, request_id, lock=True)
    _require_authority_for_gi(session, by, request.gi)
    if request.status != RequestStatus.requested:
        raise WrongState(f"request {request_id} is {request.status.value}, not requested", code="not_pending")
    request.status = RequestStatus.refused
    request.decided_by_id, request.decided_at, request.decision_reason = by.user_id, clock.now(), reason
    ledger.append(session, "refused", by=by, producer_id=request.producer_id, gi_id=request.gi_id,
                  count=request.quantity, reason=reason, data={"request_id": request.id})
    return request


def cancel_request(session: Session, request_id: int, *, by: Principal, reason: str) -> MarkRequest:
    request = get_request(session, request_id, lock=True)
    if by.organisation_id != request.producer_id:
        raise Forbidden("only the requesting producer cancels its request", code="not_your_request")
    if request.status != RequestStatus.requested:
        raise WrongState(f"request {request_id} is {request.status.value}; only a pending request can be cancelled",
                         code="not_pending")
    request.status = RequestStatus.cancelled
    request.decided_by_id, request.decided_at, request.decision_reason = by.user_id, clock.now(), reason
    ledger.append(session, "cancelled", by=by, producer_id=request.producer_id, gi_id=request.gi_id,
                  count=request.quantity, reason=reason, data={"request_id": request.id})
    return request


# --- batches and ranges ----------------------------------------------------------------------

def get_batch(session: Session, batch_id: int, *, lock: bool = False) -> MarkBatch:
    return get_by_id(session, MarkBatch, batch_id, what="batch", code="batch_not_found", lock=lock)


def can_see_batch(session: Session, by: Principal, batch: MarkBatch) -> bool:
    return (by.organisation_id in (batch.producer_id, batch.printer_id) or can_manage_gi(session, by, batch.gi)
            or by.covers(batch.producer.adcode))


def order_print(session: Session, batch_id: int, *, printer_id: int, by: Principal) -> MarkBatch:
    """Place (or move) the print order of an approved batch with an authorized printer."""
    batch = get_batch(session, batch_id, lock=True)
    _require_authority_for_gi(session, by, batch.gi)
    if batch.status not in (BatchStatus.approved, BatchStatus.ordered):
        raise WrongState(f"batch {batch_id} is already {batch.status.value}", code="already_printed")
    printer = _org(session, printer_id, OrgKind.printer, "printer_not_found")
    batch.printer_id, batch.status, batch.ordered_at = printer.id, BatchStatus.ordered, clock.now()
    ledger.append(session, "ordered", by=by, producer_id=batch.producer_id, gi_id=batch.gi_id, printer_id=printer.id,
                  batch_id=batch.id, series=batch.series, ranges=[(batch.seq_start, batch.seq_end)],
                  count=batch.quantity)
    return batch


@dataclass(frozen=True)
class SerialSpan:
    series: str
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def parse_spans(items: Sequence[tuple[str, str]], field_name: str = "ranges") -> list[SerialSpan]:
    """(first serial, last serial) pairs -> spans; both ends in one series, in order, not overlapping."""
    spans: list[SerialSpan] = []
    for i, (first_text, last_text) in enumerate(items):
        try:
            first, last = parse_serial(first_text), parse_serial(last_text)
        except SerialError as exc:
            raise ValidationFailed(f"{field_name}[{i}]: {exc}", code="invalid_serial",
                                   details=[{"field": f"{field_name}[{i}]", "problem": str(exc),
                                             "position": getattr(exc, "position", None)}]) from None
        if first.series != last.series or last.seq < first.seq:
            raise ValidationFailed(f"{field_name}[{i}]: {first.text}…{last.text} is not an ascending range of "
                                   "one series", code="invalid_range")
        spans.append(SerialSpan(first.series, first.seq, last.seq))
    spans.sort(key=lambda s: (s.series, s.first))
    for a, b in zip(spans, spans[1:]):
        if a.series == b.series and b.first <= a.last:
            raise ValidationFailed(f"{field_name} overlap in series {a.series}", code="invalid_range")
    return spans


def _ranges_of(session: Session, span: SerialSpan) -> list[MarkRange]:
    stmt = (select(MarkRange).where(MarkRange.series == span.series, MarkRange.seq_start <= span.last,
                                    MarkRange.seq_end >= span.first)
            .order_by(MarkRange.seq_start).with_for_update())
    return list(session.scalars(stmt))


def _serial(series: str, seq: int) -> str:
    return format_serial(series[:4], 2000 + int(series[4:]), seq)


def _check_span(session: Session, span: SerialSpan, ranges: list[MarkRange], allowed: set[MarkState],
                batch_ok) -> None:
    expected = span.first
    for r in ranges:
        if r.seq_start > expected:
            break
        batch = session.get(MarkBatch, r.batch_id)
        if not batch_ok(batch):
            raise Forbidden(f"serials {_serial(span.series, max(r.seq_start, span.first))}… are not yours to change",
                            code="not_your_marks")
        if r.state not in allowed:
            lo, hi = max(r.seq_start, span.first), min(r.seq_end, span.last)
            raise WrongState(f"serials {_serial(span.series, lo)}…{_serial(span.series, hi)} are {r.state.value}; "
                             f"this needs {' or '.join(sorted(s.value for s in allowed))}",
                             details={"state": r.state.value, "first": _serial(span.series, lo),
                                      "last": _serial(span.series, hi)})
        expected = r.seq_end + 1
    if expected <= span.last:
        raise NotFound(f"serial {_serial(span.series, expected)} was never issued", code="unknown_serial",
                       details={"serial": _serial(span.series, expected)})


def _apply(session: Session, span: SerialSpan, ranges: list[MarkRange], state: MarkState, event_seq: int, *,
           lot_id: int | None = None, reason: str | None = None, now: dt.datetime) -> None:
    """Give `state` to exactly the span, splitting ranges at its ends (a new row never reuses a start)."""
    for r in ranges:
        lo, hi = max(r.seq_start, span.first), min(r.seq_end, span.last)
        old_end, old_state, old_lot, old_reason, old_event = r.seq_end, r.state, r.lot_id, r.reason, r.event_seq
        new_lot = lot_id if lot_id is not None else old_lot  # a voided mark still tells which lot it was on
        if old_end > hi:  # the part after the span keeps its old fate
            session.add(MarkRange(batch_id=r.batch_id, series=r.series, seq_start=hi + 1, seq_end=old_end,
                                  state=old_state, lot_id=old_lot, reason=old_reason, event_seq=old_event,
                                  updated_at=r.updated_at))
        if r.seq_start < lo:  # r keeps the part before the span; the span becomes a new row
            r.seq_end = lo - 1
            session.add(MarkRange(batch_id=r.batch_id, series=r.series, seq_start=lo, seq_end=hi, state=state,
                                  lot_id=new_lot, reason=reason, event_seq=event_seq, updated_at=now))
        else:
            r.seq_end = hi
            r.state, r.lot_id, r.reason, r.event_seq, r.updated_at = state, new_lot, reason, event_seq, now


def _transition(session: Session, spans: list[SerialSpan], *, allowed: set[MarkState], state: MarkState,
                kind: str, by: Principal, batch_ok, reason: str | None = None, lot_id: int | None = None,
                data: dict | None = None) -> tuple[int, list[MarkBatch]]:
    """Check every span, append one event per batch and move the spans to `state`."""
    if not spans:
        raise ValidationFailed("give at least one serial range", code="no_ranges")
    touched: dict[int, list[SerialSpan]] = {}
    for span in spans:  # all checks first: nothing moves unless every span may move
        ranges = _ranges_of(session, span)
        _check_span(session, span, ranges, allowed, batch_ok)
        by_batch: dict[int, list[MarkRange]] = {}
        for r in ranges:
            by_batch.setdefault(r.batch_id, []).append(r)
        for batch_id, rs in by_batch.items():
            touched.setdefault(batch_id, []).append(
                SerialSpan(span.series, max(span.first, rs[0].seq_start), min(span.last, rs[-1].seq_end)))
    now = clock.now()
    total = 0
    batches = []
    for batch_id, subs in touched.items():
        batch = session.get(MarkBatch, batch_id)
        count = sum(s.count for s in subs)
        event = ledger.append(session, kind, by=by, producer_id=batch.producer_id, gi_id=batch.gi_id,
                              printer_id=batch.printer_id, batch_id=batch.id, lot_id=lot_id,
                              series=batch.series, ranges=[(s.first, s.last) for s in subs], count=count,
                              reason=reason, data=data)
        for sub in subs:
            # Re-read after the previous span's split: two spans may fall inside one stored range.
            session.flush()
            _apply(session, sub, _ranges_of(session, sub), state, event.seq, lot_id=lot_id, reason=reason, now=now)
        total += count
        batches.append(batch)
    session.flush()
    return total, batches


def _settle_status(session: Session, batch: MarkBatch) -> None:
    """After stock moved: a batch with nothing left at the printer is issued, or closed if none was issued."""
    counts = dict(session.execute(select(MarkRange.state, func.count()).where(MarkRange.batch_id == batch.id)
                                  .group_by(MarkRange.state)).all())
    if counts.get(MarkState.printed) or counts.get(MarkState.allocated):
        return
    post_issue = (MarkState.issued, MarkState.activated, MarkState.voided, MarkState.lost, MarkState.stolen)
    if any(counts.get(s) for s in post_issue):
        if batch.status != BatchStatus.issued:
            batch.status, batch.issued_at = BatchStatus.issued, batch.issued_at or clock.now()
    else:
        batch.status = BatchStatus.closed


def record_printed(session: Session, batch_id: int, *, by: Principal, spoiled: Sequence[tuple[str, str]] = (),
                   note: str | None = None) -> MarkBatch:
    """The assigned printer reports the print run: all serials printed, the spoiled ones listed.

    A note given with spoiled serials says what spoiled them: it is the reason of the spoiled event and
    ranges (the printed ones carry none). Without spoiled serials it is the printed run's note.
    """
    batch = get_batch(session, batch_id, lock=True)
    if by.org_kind != OrgKind.printer or by.organisation_id != batch.printer_id:
        raise Forbidden("only the printer the batch was ordered from reports its printing", code="not_your_order")
    if batch.status != BatchStatus.ordered:
        raise WrongState(f"batch {batch_id} is {batch.status.value}; printing is reported once, after the order",
                         code="not_ordered")
    spoiled_spans = parse_spans(spoiled, "spoiled") if spoiled else []
    for span in spoiled_spans:
        if span.series != batch.series or span.first < batch.seq_start or span.last > batch.seq_end:
            raise ValidationFailed("spoiled serials must belong to the batch", code="not_in_batch")
    whole = SerialSpan(batch.series, batch.seq_start, batch.seq_end)
    _transition(session, [whole], allowed={MarkState.allocated}, state=MarkState.printed, kind="printed", by=by,
                batch_ok=lambda b: b.id == batch.id, reason=None if spoiled_spans else note)
    if spoiled_spans:
        _transition(session, spoiled_spans, allowed={MarkState.printed}, state=MarkState.spoiled, kind="spoiled",
                    by=by, batch_ok=lambda b: b.id == batch.id, reason=note or "spoiled in printing")
    batch.status, batch.printed_at = BatchStatus.printed, clock.now()
    _settle_status(session, batch)  # everything spoiled: nothing to issue
    return batch


def record_spoiled(session: Session, batch_id: int, *, by: Principal, spans: Sequence[tuple[str, str]],
                   reason: str) -> int:
    """The printer writes off marks still in its stock (damaged, destroyed, lost at the printer)."""
    batch = get_batch(session, batch_id, lock=True)
    if by.org_kind != OrgKind.printer or by.organisation_id != batch.printer_id:
        raise Forbidden("only the batch's printer writes off its stock", code="not_your_order")
    count, _ = _transition(session, parse_spans(spans), allowed={MarkState.printed}, state=MarkState.spoiled,
                           kind="spoiled", by=by, batch_ok=lambda b: b.id == batch.id, reason=reason)
    _settle_status(session, batch)
    return count


def issue_batch(session: Session, batch_id: int, *, by: Principal, spans: Sequence[tuple[str, str]] = ()) -> int:
    """Hand printed marks to the producer (all of the printer's stock of the batch by default)."""
    batch = get_batch(session, batch_id, lock=True)
    if not ((by.org_kind == OrgKind.printer and by.organisation_id == batch.printer_id) or
            (by.org_kind == OrgKind.authority and can_manage_gi(session, by, batch.gi))):
        raise Forbidden("only the batch's printer or the GI's authority issues its marks", code="not_your_order")
    if batch.status not in (BatchStatus.printed, BatchStatus.issued):
        raise WrongState(f"batch {batch_id} is {batch.status.value}; marks are issued after printing",
                         code="not_printed")
    # A producer whose authorization was suspended, revoked or lapsed since the approval receives no
    # more marks: they stay at the printer until it is restored (or are voided).
    _approved_authorization(session, batch.producer_id, batch.gi_id)
    if spans:
        chosen = parse_spans(spans)
    else:
        chosen = [SerialSpan(r.series, r.seq_start, r.seq_end) for r in session.scalars(
            select(MarkRange).where(MarkRange.batch_id == batch.id, MarkRange.state == MarkState.printed)
            .order_by(MarkRange.seq_start))]
        if not chosen:
            raise WrongState(f"batch {batch_id} has no printed marks left to issue", code="nothing_to_issue")
    count, _ = _transition(session, chosen, allowed={MarkState.printed}, state=MarkState.issued, kind="issued",
                           by=by, batch_ok=lambda b: b.id == batch.id)
    _settle_status(session, batch)
    return count


def _own_batch(by: Principal):
    return lambda b: b.producer_id == by.organisation_id


def activate(session: Session, *, by: Principal, spans: Sequence[tuple[str, str]], lot_no: str,
             production_date: dt.date, lot_quantity: int, pack_size_g: int, test_report_no: str,
             testing_body: str, test_passed: bool) -> tuple[Lot, int]:
    """Activate issued marks on a production lot — refused unless the lot passed its quality test."""
    if by.org_kind != OrgKind.producer:
        raise Forbidden("only the producer activates its marks", code="wrong_role")
    chosen = parse_spans(spans)
    first_range = _ranges_of(session, chosen[0])
    if not first_range:
        raise NotFound(f"serial {_serial(chosen[0].series, chosen[0].first)} was never issued",
                       code="unknown_serial")
    batch = session.get(MarkBatch, first_range[0].batch_id)
    gi = batch.gi
    if not test_passed:
        raise GIError(f"lot {lot_no} did not pass its quality test: its marks cannot be activated",
                      code="lot_test_failed", status=422)
    if gi.testing_body and testing_body.strip() != gi.testing_body:
        raise GIError(f"{gi.name_zh} must be tested by {gi.testing_body}, not {testing_body}",
                      code="wrong_testing_body", status=422, details={"designated": gi.testing_body})
    if production_date > clock.today():  # lots are dated in China time
        raise ValidationFailed("production_date is in the future",
                               details=[{"field": "production_date", "problem": "future"}])
    _approved_authorization(session, by.organisation_id, gi.id)
    lot = session.scalar(select(Lot).where(Lot.producer_id == by.organisation_id, Lot.lot_no == lot_no)
                         .with_for_update())
    if lot is None:
        lot = Lot(producer_id=by.organisation_id, gi_id=gi.id, lot_no=lot_no, production_date=production_date,
                  quantity=lot_quantity, pack_size_g=pack_size_g, test_report_no=test_report_no,
                  testing_body=testing_body, test_passed=True, status=LotStatus.active)
        session.add(lot)
        session.flush()
    elif (lot.gi_id, lot.production_date, lot.quantity, lot.pack_size_g, lot.test_report_no) != \
            (gi.id, production_date, lot_quantity, pack_size_g, test_report_no):
        raise Conflict(f"lot {lot_no} exists with other details; use its recorded details or a new lot number",
                       code="lot_mismatch")
    if lot.status != LotStatus.active:
        raise WrongState(f"lot {lot_no} was recalled", code="lot_recalled")
    batches_ok = lambda b: (b.producer_id == by.organisation_id and b.gi_id == gi.id  # noqa: E731
                            and b.pack_size_g == pack_size_g)
    for span in chosen:
        for r in _ranges_of(session, span):
            b = session.get(MarkBatch, r.batch_id)
            if b.producer_id == by.organisation_id and b.pack_size_g != pack_size_g:
                raise ValidationFailed(f"marks of batch {b.id} are for {b.pack_size_g} g packs, the lot has "
                                       f"{pack_size_g} g packs", code="pack_size_mismatch")
    # Voided labels free their pack: a damaged label can be replaced on the same lot.
    already = session.scalar(select(func.coalesce(func.sum(MarkRange.seq_end - MarkRange.seq_start + 1), 0))
                             .where(MarkRange.lot_id == lot.id, MarkRange.state == MarkState.activated)) or 0
    wanted = sum(s.count for s in chosen)
    if already + wanted > lot.quantity:
        raise ValidationFailed(f"lot {lot_no} has {lot.quantity} packs; {already} marks are already on it, "
                               f"{wanted} more would exceed it", code="more_marks_than_packs")
    count, _ = _transition(session, chosen, allowed={MarkState.issued}, state=MarkState.activated, kind="activated",
                           by=by, batch_ok=batches_ok, lot_id=lot.id,
                           data={"lot_no": lot_no, "test_report_no": test_report_no, "testing_body": testing_body,
                                 "production_date": production_date.isoformat()})
    crash_point("activate.before_commit")
    return lot, count


VOID_KINDS = {"voided": MarkState.voided, "lost": MarkState.lost, "stolen": MarkState.stolen}


def void(session: Session, *, by: Principal, spans: Sequence[tuple[str, str]], kind: str, reason: str) -> int:
    """Void (damaged, returned, destroyed), or report lost or stolen, marks in the producer's hands."""
    if kind not in VOID_KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(VOID_KINDS)}", code="invalid_kind")
    if by.org_kind == OrgKind.producer:
        batch_ok = _own_batch(by)
    elif by.org_kind == OrgKind.authority:
        batch_ok = lambda b: can_manage_gi(session, by, b.gi)  # noqa: E731
    else:
        raise Forbidden("only the producer or the GI's authority voids marks (a printer writes off its stock as "
                        "spoiled)", code="wrong_role")
    count, _ = _transition(session, parse_spans(spans), allowed={MarkState.issued, MarkState.activated},
                           state=VOID_KINDS[kind], kind=kind, by=by, batch_ok=batch_ok, reason=reason)
    return count


@dataclass(frozen=True)
class VoidedRange:
    series: str
    first: int
    last: int
    event_seq: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def as_dict(self) -> dict:
        first, last = span_serials(self.series, self.first, self.last)
        return {"first": first, "last": last, "count": self.count, "ledger_event": self.event_seq}


def void_unactivated(session: Session, *, producer_id: int, gi_id: int, reason: str, by: Principal | None,
                     data: dict | None = None) -> list[VoidedRange]:
    """Void every issued but unactivated mark of a producer for one GI (the credit rules' suspension).

    One ledger event per serial range, through the same machinery as a producer's void; `by` None means
    the service itself decided it. Marks at the printer and activated marks are left alone.
    """
    ranges = list(session.scalars(
        select(MarkRange).join(MarkBatch, MarkBatch.id == MarkRange.batch_id)
        .where(MarkBatch.producer_id == producer_id, MarkBatch.gi_id == gi_id, MarkRange.state == MarkState.issued)
        .order_by(MarkRange.series, MarkRange.seq_start).with_for_update()))
    spans = [SerialSpan(r.series, r.seq_start, r.seq_end) for r in ranges]
    batch_ok = lambda b: b.producer_id == producer_id and b.gi_id == gi_id  # noqa: E731
    out = []
    for span in spans:
        _transition(session, [span], allowed={MarkState.issued}, state=MarkState.voided, kind="voided", by=by,
                    batch_ok=batch_ok, reason=reason, data=data)
        seq = session.scalar(select(MarkRange.event_seq).where(MarkRange.series == span.series,
                                                               MarkRange.seq_start == span.first))
        out.append(VoidedRange(span.series, span.first, span.last, seq))
    return out


def recall_lot(session: Session, lot_id: int, *, by: Principal, reason: str) -> Lot:
    """Recall a lot: every mark on it answers 'recalled' from now on."""
    lot = get_by_id(session, Lot, lot_id, what="lot", code="lot_not_found", lock=True)
    gi = session.get(GIProduct, lot.gi_id)
    if not (by.organisation_id == lot.producer_id or
            (by.org_kind == OrgKind.authority and can_manage_gi(session, by, gi))):
        raise Forbidden("only the lot's producer or the GI's authority recalls it", code="not_your_lot")
    if lot.status == LotStatus.recalled:
        raise WrongState(f"lot {lot.lot_no} is already recalled", code="already_recalled")
    ranges = list(session.scalars(select(MarkRange).where(MarkRange.lot_id == lot.id).order_by(MarkRange.series,
                                                                                               MarkRange.seq_start)))
    lot.status, lot.recalled_at, lot.recall_reason = LotStatus.recalled, clock.now(), reason
    by_series: dict[str, list[MarkRange]] = {}
    for r in ranges:
        by_series.setdefault(r.series, []).append(r)
    for series, rs in by_series.items():
        ledger.append(session, "recalled", by=by, producer_id=lot.producer_id, gi_id=lot.gi_id, lot_id=lot.id,
                      series=series, ranges=[(r.seq_start, r.seq_end) for r in rs],
                      count=sum(r.count for r in rs), reason=reason, batch_id=rs[0].batch_id)
    if not ranges:
        ledger.append(session, "recalled", by=by, producer_id=lot.producer_id, gi_id=lot.gi_id, lot_id=lot.id,
                      reason=reason)
    session.flush()
    return lot


# --- lookup ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MarkStatus:
    serial: Serial
    state: MarkState
    batch: MarkBatch
    range: MarkRange
    lot: Lot | None


def find_mark(session: Session, serial: Serial) -> MarkStatus | None:
    """The fate of one serial: one query, an index seek on (series, seq_start), whatever the ledger's size."""
    row = session.execute(
        select(MarkRange, MarkBatch, Lot)
        .join(MarkBatch, MarkBatch.id == MarkRange.batch_id)
        .outerjoin(Lot, Lot.id == MarkRange.lot_id)
        .where(MarkRange.series == serial.series, MarkRange.seq_start <= serial.seq)
        .order_by(MarkRange.seq_start.desc()).limit(1)).first()
    if row is None or row[0].seq_end < serial.seq:
        return None
    r, batch, lot = row
    return MarkStatus(serial, r.state, batch, r, lot)


def batch_ranges(session: Session, batch_id: int) -> list[MarkRange]:
    return list(session.scalars(select(MarkRange).where(MarkRange.batch_id == batch_id)
                                .order_by(MarkRange.seq_start)))


def span_serials(series: str, first: int, last: int) -> tuple[str, str]:
    return _serial(series, first), _serial(series, last)


def list_requests(session: Session, by: Principal, *, status: RequestStatus | None = None,
                  gi_id: int | None = None) -> list[MarkRequest]:
    stmt = select(MarkRequest).order_by(MarkRequest.id)
    if by.org_kind == OrgKind.producer:
        stmt = stmt.where(MarkRequest.producer_id == by.organisation_id)
    elif by.org_kind != OrgKind.authority:
        return []
    stmt = where_given(stmt, MarkRequest, status=status, gi_id=gi_id)
    return [r for r in session.scalars(stmt) if can_see_request(session, by, r)]


def list_batches(session: Session, by: Principal, *, status: BatchStatus | None = None) -> list[MarkBatch]:
    stmt = select(MarkBatch).order_by(MarkBatch.id)
    if by.org_kind == OrgKind.producer:
        stmt = stmt.where(MarkBatch.producer_id == by.organisation_id)
    elif by.org_kind == OrgKind.printer:
        stmt = stmt.where(MarkBatch.printer_id == by.organisation_id)
    stmt = where_given(stmt, MarkBatch, status=status)
    return [b for b in session.scalars(stmt) if can_see_batch(session, by, b)]


"""The special-mark ledger API: quota, requests, batches, printing, issuing, activation, voiding."""
from __future__ import annotations

from typing import Any

from flask import current_app

from ..codes import display_serial, parse_serial, SerialError
from ..db import get_session
from ..errors import NotFound, ValidationFailed
from ..http.access import signed_in
from ..http.contract import endpoint
from ..models import BatchStatus, GIProduct, Lot, MarkBatch, MarkRequest, OrgKind, QuotaAccount, RequestStatus
from ..services import marks
from ..services.registry import can_manage_gi
from . import bp
from .serialize import plain
from .schemas import (ActivationBody, AdjustmentBody, ApproveBody, BatchQuery, DecisionBody, IssueBody,
                      MarkRequestBody, PrintedBody, PrintOrderBody, QuotaOpenBody, QuotaQuery, RequestQuery,
                      SpoiledBody, TransferBody, VoidBody)

TAG = ["ledger"]
AUTHORITY = signed_in(OrgKind.authority, note="the authority managing the GI")
PRODUCER = signed_in(OrgKind.producer, note="for its own marks")
STATE_ERRORS = {404: "no such object or serial", 409: "wrong state, quota exceeded or not authorized",
                422: "invalid values or serials"}


def _kg(grams: int) -> float:
    return grams / 1000


def account_json(a: QuotaAccount, entries: bool = False) -> dict[str, Any]:
    data = {"id": a.id, "year": a.year, "producer_id": a.producer_id, "gi_id": a.gi_id,
            "base_kg": _kg(a.base_g), "adjusted_kg": _kg(a.adjusted_g), "transferred_in_kg": _kg(a.transferred_in_g),
            "transferred_out_kg": _kg(a.transferred_out_g), "consumed_kg": _kg(a.consumed_g),
            "allocated_kg": _kg(a.allocated_g), "available_kg": _kg(a.available_g), "available_g": a.available_g,
            "opened_at": plain(a.opened_at)}
    if entries:
        data["entries"] = [{"kind": e.kind, "amount_kg": _kg(e.amount_g), "reason": e.reason, "at": plain(e.at),
                            "by": e.by_id, "counterparty_account_id": e.counterparty_account_id,
                            "request_id": e.request_id, "details": e.details}
                           for e in marks.account_entries(get_session(), a.id)]
    return data


def request_json(r: MarkRequest) -> dict[str, Any]:
    return {"id": r.id, "producer_id": r.producer_id, "gi_id": r.gi_id, "year": r.year, "pack_size_g": r.pack_size_g,
            "quantity": r.quantity, "quota_kg": _kg(r.quota_g), "gtin": r.gtin, "note": r.note,
            "status": r.status.value, "decision_reason": r.decision_reason, "requested_at": plain(r.requested_at),
            "decided_at": plain(r.decided_at)}


def batch_json(b: MarkBatch, ranges: bool = False) -> dict[str, Any]:
    first, last = marks.span_serials(b.series, b.seq_start, b.seq_end)
    data = {"id": b.id, "request_id": b.request_id, "producer_id": b.producer_id, "gi_id": b.gi_id,
            "printer_id": b.printer_id, "year": b.year, "series": b.series, "first_serial": first,
            "last_serial": last, "quantity": b.quantity, "pack_size_g": b.pack_size_g, "gtin": b.gtin,
            "status": b.status.value, "approved_at": plain(b.approved_at), "ordered_at": plain(b.ordered_at),
            "printed_at": plain(b.printed_at), "issued_at": plain(b.issued_at),
            "print_downloads": b.print_downloads, "repeated_download": b.print_downloads > 1}
    if ranges:
        data["ranges"] = []
        for r in marks.batch_ranges(get_session(), b.id):
            f, t = marks.span_serials(r.series, r.seq_start, r.seq_end)
            data["ranges"].append({"first": f, "last": t, "count": r.count, "state": r.state.value,
                                   "lot_id": r.lot_id, "reason": r.reason, "event_seq": r.event_seq})
    return data


def lot_json(lot: Lot) -> dict[str, Any]:
    return {"id": lot.id, "producer_id": lot.producer_id, "gi_id": lot.gi_id, "lot_no": lot.lot_no,
            "production_date": plain(lot.production_date), "quantity": lot.quantity, "pack_size_g": lot.pack_size_g,
            "test_report_no": lot.test_report_no, "testing_body": lot.testing_body, "status": lot.status.value,
            "recall_reason": lot.recall_reason, "recalled_at": plain(lot.recalled_at)}


# --- quota -----------------------------------------------------------------------------------

@endpoint(bp, "/quota-accounts", methods=["POST"], access=AUTHORITY, body=QuotaOpenBody, status=201, tags=TAG,
          summary="Open a producer's yearly quota: Σ surveyed plot area (mu) × the GI's standard yield",
          responses={409: "already open, or the producer is not authorized", 422: "GI has no standard yield"})
def open_quota(principal, body: QuotaOpenBody):
    account = marks.open_account(get_session(), producer_id=body.producer_id, gi_id=body.gi_id, year=body.year,
                                 by=principal, reason=body.reason)
    return account_json(account, entries=True)


@endpoint(bp, "/quota-accounts", access=signed_in(note="producers see their own; authorities their GIs and "
                                                       "jurisdiction"),
          query=QuotaQuery, tags=TAG, summary="Quota accounts and their balances")
def list_quota(principal, query: QuotaQuery):
    accounts = marks.list_accounts(get_session(), principal, year=query.year, producer_id=query.producer_id,
                                   gi_id=query.gi_id)
    return {"items": [account_json(a) for a in accounts]}


@endpoint(bp, "/quota-accounts/<id:account_id>", access=signed_in(note="the producer, or an authority managing "
                                                                      "the GI or covering the producer"),
          tags=TAG, summary="A quota account with every movement", responses={404: "no such account"})
def get_quota(principal, account_id: int):
    session = get_session()
    account = marks.get_account(session, account_id)
    if not marks.can_see_account(session, principal, account):
        raise NotFound(f"quota account {account_id} does not exist", code="quota_account_not_found")
    return account_json(account, entries=True)


@endpoint(bp, "/quota-accounts/<id:account_id>/adjustments", methods=["POST"], access=AUTHORITY, body=AdjustmentBody,
          tags=TAG, summary="Adjust a quota by hand, with the reason (never below what is consumed)",
          responses={404: "no such account", 409: "would leave less than nothing"})
def adjust_quota(principal, account_id: int, body: AdjustmentBody):
    account = marks.adjust_account(get_session(), account_id, body.amount_g, reason=body.reason, by=principal)
    return account_json(account, entries=True)


@endpoint(bp, "/quota-accounts/<id:account_id>/transfers", methods=["POST"], body=TransferBody, tags=TAG,
          access=signed_in(OrgKind.producer, OrgKind.authority, note="the account's producer or the GI's authority"),
          summary="Transfer quota to another authorized holder of the same GI and year", idempotent=True,
          responses={404: "no such account or producer", 409: "not enough quota, or not authorized"})
def transfer_quota(principal, account_id: int, body: TransferBody):
    source, target = marks.transfer(get_session(), account_id, to_producer_id=body.to_producer_id,
                                    amount_g=body.amount_g, reason=body.reason, by=principal)
    return {"from": account_json(source), "to": {"id": target.id, "producer_id": target.producer_id}}


# --- requests --------------------------------------------------------------------------------

@endpoint(bp, "/mark-requests", methods=["POST"], access=PRODUCER, body=MarkRequestBody, status=201, tags=TAG,
          idempotent=True, summary="Request a batch of special marks (GI, pack size, quantity, optional GTIN)",
          responses={409: "not an approved user of the GI's mark", 422: "invalid values or GTIN"})
def create_request(principal, body: MarkRequestBody):
    request = marks.create_request(get_session(), by=principal, **body.model_dump())
    return request_json(request)


@endpoint(bp, "/mark-requests", access=signed_in(OrgKind.producer, OrgKind.authority), query=RequestQuery, tags=TAG,
          summary="Mark requests (a producer's own; an authority's GIs)")
def list_requests(principal, query: RequestQuery):
    status = RequestStatus(query.status) if query.status else None
    return {"items": [request_json(r) for r in marks.list_requests(get_session(), principal, status=status,
                                                                   gi_id=query.gi_id)]}


@endpoint(bp, "/mark-requests/<id:request_id>", access=signed_in(note="the producer or the GI's authority"),
          tags=TAG, summary="One mark request", responses={404: "no such request"})
def get_request(principal, request_id: int):
    session = get_session()
    request = marks.get_request(session, request_id)
    if not marks.can_see_request(session, principal, request):
        raise NotFound(f"mark request {request_id} does not exist", code="request_not_found")
    return request_json(request)


@endpoint(bp, "/mark-requests/<id:request_id>/approve", methods=["POST"], access=AUTHORITY, body=ApproveBody,
          status=201, tags=TAG, idempotent=True,
          summary="Approve within quota: consumes quota and allocates one serial range (optionally ordering print)",
          responses=STATE_ERRORS)
def approve_request(principal, request_id: int, body: ApproveBody):
    keyring = current_app.extensions["gi_keyring"]
    batch = marks.approve_request(get_session(), request_id, by=principal, printer_id=body.printer_id,
                                  key_id=keyring.active, reason=body.reason)
    return batch_json(batch)


@endpoint(bp, "/mark-requests/<id:request_id>/refuse", methods=["POST"], access=AUTHORITY, body=DecisionBody,
          tags=TAG, summary="Refuse a request, with the reason", responses=STATE_ERRORS)
def refuse_request(principal, request_id: int, body: DecisionBody):
    return request_json(marks.refuse_request(get_session(), request_id, by=principal, reason=body.reason))


@endpoint(bp, "/mark-requests/<id:request_id>/cancel", methods=["POST"], access=PRODUCER, body=DecisionBody,
          tags=TAG, summary="Withdraw a pending request", responses=STATE_ERRORS)
def cancel_request(principal, request_id: int, body: DecisionBody):
    return request_json(marks.cancel_request(get_session(), request_id, by=principal, reason=body.reason))


# --- batches ---------------------------------------------------------------------------------

@endpoint(bp, "/batches", access=signed_in(note="producers and printers see their own; authorities their GIs"),
          query=BatchQuery, tags=TAG, summary="Mark batches")
def list_batches(principal, query: BatchQuery):
    status = BatchStatus(query.status) if query.status else None
    return {"items": [batch_json(b) for b in marks.list_batches(get_session(), principal, status=status)]}


@endpoint(bp, "/batches/<id:batch_id>", access=signed_in(note="its producer, its printer or the GI's authority"),
          tags=TAG, summary="One batch with the state of every serial range", responses={404: "no such batch"})
def get_batch(principal, batch_id: int):
    session = get_session()
    batch = marks.get_batch(session, batch_id)
    if not marks.can_see_batch(session, principal, batch):
        raise NotFound(f"batch {batch_id} does not exist", code="batch_not_found")
    return batch_json(batch, ranges=True)


@endpoint(bp, "/batches/<id:batch_id>/print-order", methods=["POST"], access=AUTHORITY, body=PrintOrderBody,
          tags=TAG, summary="Order (or move) the printing of a batch with an authorized printer",
          responses=STATE_ERRORS)
def print_order(principal, batch_id: int, body: PrintOrderBody):
    return batch_json(marks.order_print(get_session(), batch_id, printer_id=body.printer_id, by=principal))


@endpoint(bp, "/batches/<id:batch_id>/printed", methods=["POST"], body=PrintedBody, tags=TAG, idempotent=True,
          access=signed_in(OrgKind.printer, note="the printer the batch was ordered from"),
          summary="Report the print run, listing spoiled serials", responses=STATE_ERRORS)
def printed(principal, batch_id: int, body: PrintedBody):
    batch = marks.record_printed(get_session(), batch_id, by=principal, spoiled=[r.pair() for r in body.spoiled],
                                 note=body.note)
    return batch_json(batch, ranges=True)


@endpoint(bp, "/batches/<id:batch_id>/spoiled", methods=["POST"], body=SpoiledBody, tags=TAG,
          access=signed_in(OrgKind.printer, note="the batch's printer"),
          summary="Write off marks still in the printer's stock", responses=STATE_ERRORS)
def spoiled(principal, batch_id: int, body: SpoiledBody):
    count = marks.record_spoiled(get_session(), batch_id, by=principal, spans=[r.pair() for r in body.ranges],
                                 reason=body.reason)
    return {"batch_id": batch_id, "spoiled": count}


@endpoint(bp, "/batches/<id:batch_id>/issue", methods=["POST"], body=IssueBody, tags=TAG, idempotent=True,
          access=signed_in(OrgKind.printer, OrgKind.authority, note="the batch's printer or the GI's authority"),
          summary="Issue printed marks to the producer (all of the printer's stock by default)",
          responses=STATE_ERRORS)
def issue(principal, batch_id: int, body: IssueBody):
    count = marks.issue_batch(get_session(), batch_id, by=principal,
                              spans=[r.pair() for r in body.ranges] if body.ranges else ())
    return {"batch_id": batch_id, "issued": count}


# --- activation, voiding, recall -------------------------------------------------------------

@endpoint(bp, "/activations", methods=["POST"], access=PRODUCER, body=ActivationBody, status=201, tags=TAG,
          idempotent=True, summary="Activate issued marks on a production lot whose quality test passed",
          responses={**STATE_ERRORS, 422: "lot test failed, wrong testing body, more marks than packs, ..."})
def activate(principal, body: ActivationBody):
    lot_fields = body.lot.model_dump()
    lot, count = marks.activate(get_session(), by=principal, spans=[r.pair() for r in body.ranges],
                                lot_no=lot_fields["lot_no"], production_date=lot_fields["production_date"],
                                lot_quantity=lot_fields["quantity"], pack_size_g=lot_fields["pack_size_g"],
                                test_report_no=lot_fields["test_report_no"], testing_body=lot_fields["testing_body"],
                                test_passed=lot_fields["test_passed"])
    return {"lot": lot_json(lot), "activated": count}


@endpoint(bp, "/voids", methods=["POST"], body=VoidBody, tags=TAG, idempotent=True,
          access=signed_in(OrgKind.producer, OrgKind.authority, note="the producer of the marks or the GI's "
                                                                     "authority"),
          summary="Void marks (damaged, returned, destroyed) or report them lost or stolen", responses=STATE_ERRORS)
def void(principal, body: VoidBody):
    count = marks.void(get_session(), by=principal, spans=[r.pair() for r in body.ranges], kind=body.kind,
                       reason=body.reason)
    return {"kind": body.kind, "count": count}


@endpoint(bp, "/lots/<id:lot_id>", access=signed_in(note="the producer or the GI's authority"), tags=TAG,
          summary="One production lot", responses={404: "no such lot"})
def get_lot(principal, lot_id: int):
    session = get_session()
    lot = session.get(Lot, lot_id)
    if lot is None or not (principal.organisation_id == lot.producer_id or
                           can_manage_gi(session, principal, session.get(GIProduct, lot.gi_id))):
        raise NotFound(f"lot {lot_id} does not exist", code="lot_not_found")
    return lot_json(lot)


@endpoint(bp, "/lots/<id:lot_id>/recall", methods=["POST"], body=DecisionBody, tags=TAG,
          access=signed_in(OrgKind.producer, OrgKind.authority, note="the lot's producer or the GI's authority"),
          summary="Recall a lot: all its marks answer 'recalled'", responses=STATE_ERRORS)
def recall(principal, lot_id: int, body: DecisionBody):
    return lot_json(marks.recall_lot(get_session(), lot_id, by=principal, reason=body.reason))


@endpoint(bp, "/marks/<serial>", access=signed_in(note="the mark's producer or printer, or an authority covering "
                                                       "it"),
          tags=TAG, summary="The ledger state of one serial (one index seek)",
          responses={404: "unknown serial", 422: "malformed serial (with the position)"})
def get_mark(principal, serial: str):
    session = get_session()
    try:
        parsed = parse_serial(serial)
    except SerialError as exc:
        raise ValidationFailed(str(exc), code="invalid_serial",
                               details={"position": getattr(exc, "position", None)}) from None
    status = marks.find_mark(session, parsed)
    if status is None or not marks.can_see_batch(session, principal, status.batch):
        raise NotFound(f"serial {display_serial(parsed)} was never issued", code="unknown_serial")
    lot = lot_json(status.lot) if status.lot else None
    return {"serial": parsed.text, "display": display_serial(parsed), "state": status.state.value,
            "batch": batch_json(status.batch), "lot": lot, "reason": status.range.reason,
            "event_seq": status.range.event_seq}

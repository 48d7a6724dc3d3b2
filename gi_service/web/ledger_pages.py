"""Ledger pages: quota accounts, mark requests and their approval, batches with the printer's
steps (printed, spoiled, issued, print files), and the producer's marks (activation, voiding,
labels, lots).

Label images and print files are answered by ``http.answers.labels`` (with the web session's principal),
as the API answers them, so who may fetch them and what the ledger records stay exactly the API's.
A print-file download records a ledger event, so on the web it is a POST with the CSRF token:
a cross-site link cannot make a printer "download" an order.
"""
from __future__ import annotations


from flask import current_app, request
from sqlalchemy import select

from ..db import get_session
from ..errors import GIError, NotFound
from ..http.answers import labels as answers
from ..http.answers.labels import LabelQuery, PrintFileQuery
from ..http.parsing import parse_model
from ..models import (Authorization, AuthorizationStatus, BatchStatus, Lot, MarkBatch, MarkRange,
                      MarkState, OrgKind, Organisation, QuotaAccount, RequestStatus)
from ..services import marks, producers
from ..services.registry import can_manage_gi
from .framework import (AUTHORITY, INSPECTION, MAX_ID, PRINTER, PRODUCER, SERIAL_PATTERN, F, Form, commit, done,
                        page, problem, render, rollback)
from ..i18n import t, v
from .. import clock
from .names import gi_names, org_names

LIST_LIMIT = 200  # newest first; the status filter narrows the rest


def _active_printers(db) -> list[Organisation]:
    return list(db.scalars(select(Organisation).where(Organisation.kind == OrgKind.printer,
                                                      Organisation.is_active.is_(True)).order_by(Organisation.name)))


def _kg(grams: int) -> str:
    return f"{grams / 1000:,.3f}".rstrip("0").rstrip(".")


def _fail(exc: GIError) -> tuple[str, int]:
    rollback()
    return problem(exc), int(exc.status)


# --- quota -------------------------------------------------------------------------------------------

@page("/app/quota", "quota", kinds=(AUTHORITY, PRODUCER, INSPECTION),
      summary="Quota accounts and balances (a producer's own; an authority's GIs and jurisdiction)")
def quota(principal):
    db = get_session()
    year = request.args.get("year", type=int)
    accounts = marks.list_accounts(db, principal, year=year)
    return render("app/quota.html", accounts=accounts, year=year, kg=_kg,
                  producers=org_names(db, (a.producer_id for a in accounts)),
                  gis=gi_names(db, (a.gi_id for a in accounts)))


def _account_page(principal, account_id: int, *, error: str | None = None, error_at: str | None = None,
                  form=None, status: int = 200):
    db = get_session()
    account = marks.get_account(db, account_id)
    if not marks.can_see_account(db, principal, account):
        raise NotFound(f"quota account {account_id} does not exist", code="quota_account_not_found")
    entries = marks.account_entries(db, account_id)
    can_adjust = principal.org_kind == OrgKind.authority and can_manage_gi(db, principal, account.gi)
    can_transfer = principal.organisation_id == account.producer_id or can_adjust
    holders = []
    if can_transfer:
        holders = list(db.scalars(
            select(Organisation).join(Authorization, Authorization.producer_id == Organisation.id)
            .where(Authorization.gi_id == account.gi_id, Authorization.status == AuthorizationStatus.approved,
                   Organisation.id != account.producer_id).order_by(Organisation.name)))
    counterparts = {e.counterparty_account_id for e in entries if e.counterparty_account_id}
    other = {a.id: a.producer_id for a in db.scalars(select(QuotaAccount).where(QuotaAccount.id.in_(counterparts)))} \
        if counterparts else {}
    return render("app/quota_account.html", status=status, account=account, entries=entries, kg=_kg,
                  can_adjust=can_adjust, can_transfer=can_transfer, holders=holders, other=other,
                  names=org_names(db, [account.producer_id, *other.values()]), error=error, error_at=error_at,
                  form=form or {})


@page("/app/quota/<id:account_id>", "quota_account", kinds=(AUTHORITY, PRODUCER, INSPECTION),
      summary="One quota account with every movement", note="its producer, or an authority managing or covering it")
def quota_account(principal, account_id: int):
    return _account_page(principal, account_id)


@page("/app/quota/<id:account_id>/adjust", "quota_adjust", methods=("POST",), kinds=(AUTHORITY,),
      summary="Adjust a quota by hand, with the reason", note="the authority managing the GI",
      form={"amount_kg": F.kg(description="the change in kilograms (negative to reduce), kept to the gram"),
            "reason": F.text()})
def quota_adjust(principal, account_id: int):
    form = Form()
    amount = form.grams_from_kg("amount_kg", t("amount_kg"))
    reason = form.text("reason", t("reason"))
    try:
        form.check()
        account = marks.adjust_account(get_session(), account_id, amount, reason=reason, by=principal)
        available = account.available_g
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _account_page(principal, account_id, error=error, error_at="adjust", form=request.form, status=status)
    return done(t("adjusted_ok", kg=_kg(available)), "web.quota_account", account_id=account_id)


@page("/app/quota/<id:account_id>/transfer", "quota_transfer", methods=("POST",), kinds=(PRODUCER, AUTHORITY),
      summary="Transfer quota to another authorized holder of the same GI and year",
      note="the account's producer or the GI's authority",
      form={"to_producer_id": F.ident(description="the producer receiving the quota"),
            "amount_kg": F.kg(positive=True, description="kilograms to transfer (at least a gram), kept to the gram"),
            "reason": F.text()})
def quota_transfer(principal, account_id: int):
    form = Form()
    to = form.integer("to_producer_id", t("to_producer"), lo=1, hi=MAX_ID)
    amount = form.grams_from_kg("amount_kg", t("transfer_amount"), positive=True)
    reason = form.text("reason", t("reason"))
    try:
        form.check()
        marks.transfer(get_session(), account_id, to_producer_id=to, amount_g=amount, reason=reason, by=principal)
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _account_page(principal, account_id, error=error, error_at="transfer", form=request.form,
                             status=status)
    return done(t("transferred", kg=_kg(amount)), "web.quota_account", account_id=account_id)


# --- mark requests ----------------------------------------------------------------------------------

def _requests_page(principal, *, error: str | None = None, error_at: str | None = None, form=None,
                   status: int = 200):
    db = get_session()
    wanted = request.args.get("status")
    if wanted is None and principal.org_kind == OrgKind.authority:
        wanted = RequestStatus.requested.value
    state = RequestStatus(wanted) if wanted in RequestStatus._value2member_map_ else None
    rows = list(reversed(marks.list_requests(db, principal, status=state)))
    total = len(rows)
    rows = rows[:LIST_LIMIT]
    gis = []
    if principal.org_kind == OrgKind.producer:
        gis = [a.gi for a in producers.list_authorizations(db, producer_id=principal.organisation_id,
                                                           status=AuthorizationStatus.approved)]
    batches = {b.request_id: b for b in db.scalars(select(MarkBatch).where(
        MarkBatch.request_id.in_([r.id for r in rows])))} if rows else {}
    accounts = {}
    if principal.org_kind == OrgKind.authority and rows:
        for a in db.scalars(select(QuotaAccount).where(QuotaAccount.producer_id.in_({r.producer_id for r in rows}))):
            accounts[(a.year, a.producer_id, a.gi_id)] = a
    return render("app/requests.html", status=status, rows=rows, total=total, limit=LIST_LIMIT, state=wanted or "", statuses=list(RequestStatus),
                  gis=gis, printers=_active_printers(db) if principal.org_kind == OrgKind.authority else [],
                  batches=batches, accounts=accounts, kg=_kg, year=clock.now().year,
                  names=org_names(db, (r.producer_id for r in rows)), error=error, error_at=error_at, form=form or {})


@page("/app/requests", "requests", kinds=(AUTHORITY, PRODUCER),
      summary="Mark requests: the authority's queue to decide, or the producer's own with the request form")
def requests_page(principal):
    return _requests_page(principal)


@page("/app/requests/new", "request_create", methods=("POST",), kinds=(PRODUCER,),
      summary="Request a batch of special marks (GI, pack size, quantity, optional GTIN)",
      form={"gi_id": F.ident(), "pack_size_g": F.integer(1, 1_000_000, description="grams per pack"),
            "quantity": F.integer(1, marks.MAX_BATCH, description="marks wanted"),
            "year": F.integer(2000, 2100, required=False, description="the quota year (default: this year)"),
            "gtin": F.text(14, required=False, description="the product's GTIN (8, 12, 13 or 14 digits)"),
            "note": F.text(required=False)})
def request_create(principal):
    form = Form()
    gi_id = form.integer("gi_id", t("gi"), lo=1, hi=MAX_ID)
    pack = form.integer("pack_size_g", t("pack_size_g"), lo=1, hi=1_000_000)
    quantity = form.integer("quantity", t("quantity"), lo=1, hi=marks.MAX_BATCH)
    year = form.integer("year", t("year"), required=False, lo=2000, hi=2100)
    gtin = form.text("gtin", t("gtin"), required=False, max_len=14)
    note = form.text("note", t("note"), required=False)
    try:
        form.check()
        created = marks.create_request(get_session(), gi_id=gi_id, pack_size_g=pack, quantity=quantity, by=principal,
                                       year=year, gtin=gtin, note=note)
        request_id = created.id
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _requests_page(principal, error=error, error_at="new", form=request.form, status=status)
    return done(t("requested", id=request_id), "web.requests")


@page("/app/requests/<id:request_id>/approve", "request_approve", methods=("POST",), kinds=(AUTHORITY,),
      summary="Approve a request within quota, optionally ordering the print run from a printer",
      note="the authority managing the GI",
      form={"printer_id": F.ident(required=False, description="the printer to order the print run from"),
            "reason": F.text(required=False, description="optional (default: approved)")})
def request_approve(principal, request_id: int):
    form = Form()
    printer_id = form.integer("printer_id", t("choose_printer"), required=False, lo=1, hi=MAX_ID)
    reason = form.text("reason", t("reason"), required=False) or "approved"
    try:
        form.check()
        batch = marks.approve_request(get_session(), request_id, by=principal, printer_id=printer_id,
                                      key_id=current_app.extensions["gi_keyring"].active, reason=reason)
        first, last = marks.span_serials(batch.series, batch.seq_start, batch.seq_end)
        batch_id = batch.id
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _requests_page(principal, error=error, error_at=f"req-{request_id}", form=request.form, status=status)
    return done(t("approved_batch", id=batch_id, first=first, last=last), "web.requests")


@page("/app/requests/<id:request_id>/refuse", "request_refuse", methods=("POST",), kinds=(AUTHORITY,),
      summary="Refuse a request, with the reason", note="the authority managing the GI", form={"reason": F.text()})
def request_refuse(principal, request_id: int):
    form = Form()
    reason = form.text("reason", t("reason"))
    try:
        form.check()
        marks.refuse_request(get_session(), request_id, by=principal, reason=reason)
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _requests_page(principal, error=error, error_at=f"req-{request_id}", form=request.form, status=status)
    return done(t("refused", id=request_id), "web.requests")


@page("/app/requests/<id:request_id>/cancel", "request_cancel", methods=("POST",), kinds=(PRODUCER,),
      summary="Withdraw a pending request", note="the requesting producer",
      form={"reason": F.text(required=False, description="optional (default: withdrawn by the producer)")})
def request_cancel(principal, request_id: int):
    form = Form()
    reason = form.text("reason", t("reason"), required=False) or "withdrawn by the producer"
    try:
        form.check()
        marks.cancel_request(get_session(), request_id, by=principal, reason=reason)
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _requests_page(principal, error=error, error_at=f"req-{request_id}", form=request.form, status=status)
    return done(t("cancelled", id=request_id), "web.requests")


# --- batches -----------------------------------------------------------------------------------------

@page("/app/batches", "batches", kinds=(AUTHORITY, PRINTER, PRODUCER),
      summary="Mark batches: the printer's print orders, the producer's batches, the authority's GIs")
def batches(principal):
    db = get_session()
    wanted = request.args.get("status") or ""
    state = BatchStatus(wanted) if wanted in BatchStatus._value2member_map_ else None
    rows = list(reversed(marks.list_batches(db, principal, status=state)))
    total = len(rows)
    rows = rows[:LIST_LIMIT]
    return render("app/batches.html", rows=rows, total=total, limit=LIST_LIMIT, state=wanted, statuses=list(BatchStatus),
                  names=org_names(db, [*(b.producer_id for b in rows), *(b.printer_id for b in rows)]),
                  gis=gi_names(db, (b.gi_id for b in rows)), serials=marks.span_serials)


def _batch_page(principal, batch_id: int, *, error: str | None = None, error_at: str | None = None, form=None,
                status: int = 200):
    db = get_session()
    batch = marks.get_batch(db, batch_id)
    if not marks.can_see_batch(db, principal, batch):
        raise NotFound(f"batch {batch_id} does not exist", code="batch_not_found")
    ranges = marks.batch_ranges(db, batch_id)
    manages = principal.org_kind == OrgKind.authority and can_manage_gi(db, principal, batch.gi)
    is_printer = principal.org_kind == OrgKind.printer and principal.organisation_id == batch.printer_id
    is_producer = principal.organisation_id == batch.producer_id
    lots = {lot.id: lot for lot in db.scalars(select(Lot).where(Lot.id.in_({r.lot_id for r in ranges if r.lot_id})))}
    return render("app/batch.html", status=status, batch=batch, ranges=ranges, serials=marks.span_serials,
                  manages=manages, is_printer=is_printer, is_producer=is_producer, lots=lots,
                  printers=_active_printers(db) if manages else [], names=org_names(db, [batch.producer_id,
                                                                                        batch.printer_id]),
                  label_states={MarkState.issued, MarkState.activated}, error=error, error_at=error_at,
                  form=form or {})


@page("/app/batches/<id:batch_id>", "batch", kinds=(AUTHORITY, PRINTER, PRODUCER),
      summary="One batch: its serial ranges and their states, and the next step for this account",
      note="its producer, its printer or the GI's authority")
def batch(principal, batch_id: int):
    return _batch_page(principal, batch_id)


def _batch_action(principal, batch_id: int, where: str, action, message):
    try:
        result = action()
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _batch_page(principal, batch_id, error=error, error_at=where, form=request.form, status=status)
    return done(message(result), "web.batch", batch_id=batch_id)


@page("/app/batches/<id:batch_id>/print-order", "batch_print_order", methods=("POST",), kinds=(AUTHORITY,),
      summary="Order (or move) the printing of a batch with an authorized printer", note="the GI's authority",
      form={"printer_id": F.ident()})
def batch_print_order(principal, batch_id: int):
    form = Form()
    printer_id = form.integer("printer_id", t("choose_printer"), lo=1, hi=MAX_ID)

    def action():
        form.check()
        b = marks.order_print(get_session(), batch_id, printer_id=printer_id, by=principal)
        return b.printer.name

    return _batch_action(principal, batch_id, "print-order", action, lambda name: t("ordered", printer=name))


@page("/app/batches/<id:batch_id>/printed", "batch_printed", methods=("POST",), kinds=(PRINTER,),
      summary="Record the print run, listing the spoiled serials", note="the printer the batch was ordered from",
      form={"spoiled": F.spans(required=False, description="the serials spoiled in printing, one range per line "
                                                          "(a serial, or first ~ last); none: all printed well"),
            "note": F.text(required=False)})
def batch_printed(principal, batch_id: int):
    form = Form()
    spoiled = form.spans("spoiled", t("spoiled_serials"), required=False)
    note = form.text("note", t("note"), required=False)

    def action():
        form.check()
        marks.record_printed(get_session(), batch_id, by=principal, spoiled=spoiled, note=note)

    return _batch_action(principal, batch_id, "printed", action, lambda _: t("printed_ok"))


@page("/app/batches/<id:batch_id>/spoiled", "batch_spoiled", methods=("POST",), kinds=(PRINTER,),
      summary="Write off marks still in the printer's stock, with the reason", note="the batch's printer",
      form={"ranges": F.spans(), "reason": F.text()})
def batch_spoiled(principal, batch_id: int):
    form = Form()
    spans = form.spans("ranges", t("write_off_ranges"))
    reason = form.text("reason", t("reason"))

    def action():
        form.check()
        return marks.record_spoiled(get_session(), batch_id, by=principal, spans=spans, reason=reason)

    return _batch_action(principal, batch_id, "spoiled", action, lambda n: t("written_off", n=n))


@page("/app/batches/<id:batch_id>/issue", "batch_issue", methods=("POST",), kinds=(PRINTER, AUTHORITY),
      summary="Issue printed marks to the producer (all of the stock by default)",
      note="the batch's printer or the GI's authority",
      form={"ranges": F.spans(required=False, description="the ranges to issue, one per line (a serial, or first ~ "
                                                         "last); none: all of the printer's stock of the batch")})
def batch_issue(principal, batch_id: int):
    form = Form()
    spans = form.spans("ranges", t("issue_ranges"), required=False)

    def action():
        form.check()
        return marks.issue_batch(get_session(), batch_id, by=principal, spans=spans)

    return _batch_action(principal, batch_id, "issue", action, lambda n: t("issued_ok", n=n))


@page("/app/batches/<id:batch_id>/print-file", "batch_print_file", methods=("POST",), kinds=(PRINTER, AUTHORITY),
      summary="Download the order's print file (PDF, CSV or PNG zip); every download is a ledger event",
      note="the printer the order was placed with, or the GI's authority",
      content_type="application/pdf", alt_content_types=("text/csv", "application/zip"),
      form={"format": F.choice(["", "pdf", "csv", "png-zip"], required=False,
                               description="the file: pdf (default, also when empty), csv or png-zip"),
            "paper": F.choice(["", "A4", "A3"], required=False, description="the PDF's paper (default A4)"),
            "preset": F.choice(["", "20x20", "30x30", "40x60"], required=False,
                               description="the label size in mm (default 30x30)")},
      responses={409: "no print order yet, or not printable now", 422: "a label size refused (the batch page again)"})
def batch_print_file(principal, batch_id: int):
    fields = {k: request.form[k] for k in ("format", "paper", "preset") if request.form.get(k)}
    try:
        query = parse_model(PrintFileQuery, fields, "form")
        return answers.print_file(principal, batch_id, query)
    except GIError as exc:
        error, status = _fail(exc)
        return _batch_page(principal, batch_id, error=error, error_at="print-file", form=request.form, status=status)


@page("/app/labels/<serial>.<fmt>", "label", kinds=(PRODUCER, PRINTER, AUTHORITY),
      summary="One mark's label image (png or svg, 30x30 mm by default)",
      note="as the API: the mark's producer once issued, its printer, or the GI's authority",
      content_type="image/png", alt_content_types=("image/svg+xml",),
      path={"serial": {"type": "string", "pattern": f"^{SERIAL_PATTERN}$",
                       "description": "the mark's serial (BBSH26000001234E); a wrong check character is refused "
                                      "with 422 invalid_serial"},
            "fmt": {"type": "string", "enum": ["png", "svg"]}},
      query={"preset": ("the label size in mm (default 30x30)",
                        {"type": "string", "enum": ["20x20", "30x30", "40x60"]}),
             "dpi": ("print resolution (default 300)", {"type": "integer", "enum": [300, 600]})})
def label(principal, serial: str, fmt: str):
    fields = {"format": fmt, **{k: request.args[k] for k in ("preset", "dpi") if request.args.get(k)}}
    query = parse_model(LabelQuery, fields, "label options")
    resp = answers.mark_label(principal, serial, query)
    resp.headers["Content-Disposition"] = f'inline; filename="{serial}.{query.format}"'
    return resp


# --- the producer's marks -------------------------------------------------------------------------------

def _marks_page(principal, *, error: str | None = None, error_at: str | None = None, form=None, status: int = 200):
    db = get_session()
    held = (MarkState.issued, MarkState.activated, MarkState.voided, MarkState.lost, MarkState.stolen)
    rows = db.execute(select(MarkRange, MarkBatch).join(MarkBatch, MarkBatch.id == MarkRange.batch_id)
                      .where(MarkBatch.producer_id == principal.organisation_id, MarkRange.state.in_(held))
                      .order_by(MarkRange.series, MarkRange.seq_start)).all()
    lots = list(db.scalars(select(Lot).where(Lot.producer_id == principal.organisation_id).order_by(Lot.id.desc())))
    gis = gi_names(db, [b.gi_id for _, b in rows] + [lot.gi_id for lot in lots])
    prefill = form or {"ranges": request.args.get("ranges", ""), "pack_size_g": request.args.get("pack_size_g", "")}
    testing = {}
    for _, b in rows:
        testing.setdefault(b.gi_id, b.gi.testing_body)
    return render("app/marks.html", status=status, rows=rows, lots=lots, gis=gis, serials=marks.span_serials,
                  kinds=list(marks.VOID_KINDS), today=clock.today().isoformat(), testing=testing,
                  error=error, error_at=error_at, form=prefill)


@page("/app/marks", "marks", kinds=(PRODUCER,),
      summary="The producer's marks in hand, activation on a tested lot, voiding, and its lots")
def marks_page(principal):
    return _marks_page(principal)


@page("/app/marks/activate", "marks_activate", methods=("POST",), kinds=(PRODUCER,),
      summary="Activate issued marks on a production lot whose quality test passed",
      form={"ranges": F.spans(), "lot_no": F.text(64), "production_date": F.date(description="not in the future"),
            "lot_quantity": F.integer(1, 10**9, description="packs in the lot"),
            "pack_size_g": F.integer(1, 1_000_000, description="grams per pack"),
            "test_report_no": F.text(100), "testing_body": F.text(200, description="the GI's designated testing body"),
            "test_passed": F.choice(["yes"], description="the lot passed its quality test: marks of a lot that did "
                                                         "not are never activated (422 lot_test_failed)")})
def marks_activate(principal):
    form = Form()
    spans = form.spans("ranges", t("activate_ranges"))
    lot_no = form.text("lot_no", t("lot_no"), max_len=64)
    production_date = form.date("production_date", t("production_date"))
    lot_quantity = form.integer("lot_quantity", t("lot_quantity"), lo=1, hi=10**9)
    pack = form.integer("pack_size_g", t("pack_size_g"), lo=1, hi=1_000_000)
    report = form.text("test_report_no", t("test_report_no"), max_len=100)
    body = form.text("testing_body", t("testing_body"), max_len=200)
    passed = request.form.get("test_passed") == "yes"
    try:
        form.check()
        lot, count = marks.activate(get_session(), by=principal, spans=spans, lot_no=lot_no,
                                    production_date=production_date, lot_quantity=lot_quantity, pack_size_g=pack,
                                    test_report_no=report, testing_body=body, test_passed=passed)
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _marks_page(principal, error=error, error_at="activate", form=request.form, status=status)
    return done(t("activated", lot=lot.lot_no, n=count), "web.marks")


@page("/app/marks/void", "marks_void", methods=("POST",), kinds=(PRODUCER,),
      summary="Void marks (damaged, returned, destroyed) or report them lost or stolen",
      form={"void_ranges": F.spans(), "kind": F.choice(list(marks.VOID_KINDS)), "void_reason": F.text()})
def marks_void(principal):
    form = Form()
    spans = form.spans("void_ranges", t("void_ranges"))
    kind = request.form.get("kind") or ""
    reason = form.text("void_reason", t("reason"))
    try:
        form.check()
        count = marks.void(get_session(), by=principal, spans=spans, kind=kind, reason=reason)
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _marks_page(principal, error=error, error_at="void", form=request.form, status=status)
    return done(t("voided_ok", n=count, kind=v(kind)), "web.marks")


@page("/app/lots/<id:lot_id>/recall", "lot_recall", methods=("POST",), kinds=(PRODUCER,),
      summary="Recall a lot: every mark on it answers 'recalled'", note="the lot's producer",
      form={"reason": F.text()})
def lot_recall(principal, lot_id: int):
    form = Form()
    reason = form.text("reason", t("reason"))
    try:
        form.check()
        lot = marks.recall_lot(get_session(), lot_id, by=principal, reason=reason)
        lot_no = lot.lot_no
        commit()
    except GIError as exc:
        error, status = _fail(exc)
        return _marks_page(principal, error=error, error_at=f"lot-{lot_id}", form=request.form, status=status)
    return done(t("recalled", lot=lot_no), "web.marks")

"""The ledger's public face: signed checkpoints, consistency proofs, events and reports."""
from __future__ import annotations

from flask import Response, current_app

from ..db import get_session
from ..http.access import public, signed_in
from ..http.contract import endpoint
from ..models import OrgKind
from ..http.files import spreadsheet
from ..render.csv import ledger_report_csv
from ..render.sheets import ledger_report_table
from ..services import ledger, reports
from . import bp
from .schemas import CheckpointQuery, ConsistencyQuery, EventsQuery, ReportQuery

TAG = ["ledger"]


def _signer() -> ledger.CheckpointSigner:
    return current_app.extensions["gi_signer"]


def checkpoint_json(cp) -> dict:
    return {"id": cp.id, "seq": cp.seq, "hash": cp.hash, "created_at": cp.created_at.isoformat(timespec="microseconds"),
            "key_id": cp.key_id, "signature": cp.signature,
            "signed_message": ledger.CheckpointSigner.message(cp.seq, cp.hash, cp.created_at).decode()}


@endpoint(bp, "/ledger/checkpoints", access=public(), query=CheckpointQuery, tags=TAG,
          summary="Signed checkpoints of the ledger chain (head seq, hash, time, Ed25519 signature), newest first")
def list_checkpoints(principal, query: CheckpointQuery):
    session = get_session()
    signer = _signer()
    head = session.get(ledger.LedgerHead, 1)
    return {"public_key": signer.public_key_b64, "key_id": signer.key_id, "algorithm": "Ed25519",
            "head": {"seq": head.seq if head else 0, "hash": head.hash if head else ledger.GENESIS},
            "events": ledger.event_count(session),
            "checkpoints": [checkpoint_json(c) for c in ledger.list_checkpoints(session, query.limit,
                                                                                query.before_id)]}


@endpoint(bp, "/ledger/checkpoints", methods=["POST"], access=signed_in(OrgKind.authority), status=201, tags=TAG,
          summary="Sign the current chain head as a new checkpoint (cron: `gi-service ledger checkpoint`)")
def create_checkpoint(principal):
    cp = ledger.create_checkpoint(get_session(), _signer())
    return checkpoint_json(cp)


@endpoint(bp, "/ledger/public-key", access=public(), tags=TAG, summary="The Ed25519 key that signs checkpoints")
def public_key(principal):
    signer = _signer()
    return {"algorithm": "Ed25519", "key_id": signer.key_id, "public_key": signer.public_key_b64,
            "encoding": "base64url of the 32-byte raw public key"}


@endpoint(bp, "/ledger/consistency", access=public(), query=ConsistencyQuery, tags=TAG,
          summary="Does the stored chain, recomputed from the start, still reach this (seq, hash)? "
                  "Use a checkpoint you saved to prove history before it was not rewritten")
def consistency(principal, query: ConsistencyQuery):
    return ledger.consistency(get_session(), query.seq, query.hash)


@endpoint(bp, "/ledger/events", access=signed_in(OrgKind.authority), query=EventsQuery, tags=TAG,
          summary="Ledger events in order, with their hashes, for independent verification")
def list_events(principal, query: EventsQuery):
    from sqlalchemy import select

    from ..models import LedgerEvent
    session = get_session()
    rows = session.scalars(select(LedgerEvent).where(LedgerEvent.seq > query.after).order_by(LedgerEvent.seq)
                           .limit(query.limit))
    return {"events": [ledger.event_dict(e) for e in rows], "genesis": ledger.GENESIS}


@endpoint(bp, "/ledger/report", access=signed_in(OrgKind.authority, OrgKind.producer, OrgKind.printer,
                                                 note="producers and printers see their own figures"),
          query=ReportQuery, tags=TAG,
          summary="台账: requested, approved, printed, spoiled, issued, activated, voided, lost and stocks per printer, "
                  "producer, GI and year, with reconciliation (JSON, CSV or Excel)")
def report(principal, query: ReportQuery):
    data = reports.ledger_report(get_session(), principal, year=query.year, gi_id=query.gi_id,
                                 producer_id=query.producer_id, printer_id=query.printer_id)
    if query.format == "csv":
        return Response(ledger_report_csv(data, query.part), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=ledger-{query.part}.csv"})
    if query.format == "xlsx":
        return spreadsheet(ledger_report_table(data, query.part), f"ledger-{query.part}.xlsx")
    return data

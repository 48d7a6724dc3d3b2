"""Crash safety: a process killed in the middle of an approval or an activation leaves all of it or none.

State is prepared through the API and committed; then a separate Python process opens its
own engine on the same database and calls the service with GI_FAULT naming a crash point,
where it SIGKILLs itself (as a power cut or an OOM kill would). Afterwards nothing of its
work may remain, and the next normal operation must carry on as if it never ran.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gi_service.models import (GIProduct, LedgerHead, Lot, MarkBatch, MarkRange, MarkRequest, MarkState,
                               QuotaAccount, QuotaEntry, SerialCounter)
from gi_service.services import ledger
from tests.factories import LedgerWorld

# Crash tests (a process killing itself mid-transaction, one new interpreter per case) belong to the heavy
# tier, with the other crash, fuzzing and topology tests (pyproject.toml; `make test` runs it after the main one).
pytestmark = pytest.mark.heavy

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120

WORKER = r"""
import datetime as dt, json, sys
from gi_service.db import make_engine, write_session
from gi_service.models import User
from gi_service.services import accounts, marks

args = json.loads(sys.argv[1])
engine = make_engine(args["url"])
session = write_session(engine)
by = accounts.principal_for(session.get(User, args["user_id"]))
if args["op"] == "approve":
    marks.approve_request(session, args["request_id"], by=by, printer_id=args["printer_id"], key_id=args["key_id"])
else:
    lot = args["lot"]
    marks.activate(session, by=by, spans=[tuple(p) for p in args["spans"]], lot_no=lot["lot_no"],
                   production_date=dt.date.fromisoformat(lot["production_date"]), lot_quantity=lot["quantity"],
                   pack_size_g=lot["pack_size_g"], test_report_no=lot["test_report_no"],
                   testing_body=lot["testing_body"], test_passed=lot["test_passed"])
session.commit()
print("committed")
"""


def run_worker(args: dict, fault: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GI_FAULT"}
    if fault:
        env["GI_FAULT"] = fault
    return subprocess.run([sys.executable, "-c", WORKER, json.dumps(args)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT)


def assert_killed(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    assert "committed" not in proc.stdout


def fresh(app) -> Session:
    return Session(app.extensions["gi_engine"], expire_on_commit=False)


def snapshot(app) -> dict:
    """Everything an approval or activation could touch."""
    with fresh(app) as s:
        def rows(model, *cols, order):
            return [tuple(getattr(r, c) for c in cols) for r in s.scalars(select(model).order_by(*order))]
        head = s.get(LedgerHead, 1)
        return {
            "requests": rows(MarkRequest, "id", "status", "decided_at", order=[MarkRequest.id]),
            "accounts": rows(QuotaAccount, "id", "base_g", "adjusted_g", "transferred_in_g", "transferred_out_g",
                             "consumed_g", order=[QuotaAccount.id]),
            "entries": rows(QuotaEntry, "id", "kind", "amount_g", order=[QuotaEntry.id]),
            "batches": rows(MarkBatch, "id", "series", "seq_start", "seq_end", "status", order=[MarkBatch.id]),
            "ranges": rows(MarkRange, "id", "series", "seq_start", "seq_end", "state", "lot_id", "event_seq",
                           order=[MarkRange.series, MarkRange.seq_start]),
            "counters": rows(SerialCounter, "series", "next_seq", order=[SerialCounter.series]),
            "prefixes": rows(GIProduct, "id", "mark_prefix", order=[GIProduct.id]),
            "lots": rows(Lot, "id", "lot_no", order=[Lot.id]),
            "events": ledger.event_count(s),
            "head": (head.seq, head.hash) if head else None,
        }


def verify_ok(app) -> None:
    with fresh(app) as s:
        result = ledger.verify(s, signer=app.extensions["gi_signer"])
    assert result.ok, result


def approve_args(app, database, w: LedgerWorld, request_id: int) -> dict:
    return {"op": "approve", "url": database.url, "user_id": w.authority.principal.user_id,
            "request_id": request_id, "printer_id": w.printer.org.id, "key_id": app.extensions["gi_keyring"].active}


def all_batches(app, gi_id: int) -> list[MarkBatch]:
    with fresh(app) as s:
        return list(s.scalars(select(MarkBatch).where(MarkBatch.gi_id == gi_id).order_by(MarkBatch.seq_start)))


@pytest.mark.parametrize("first", [False, True], ids=["later-approval", "first-approval"])
@pytest.mark.parametrize("point", ["approve.after_quota", "approve.after_batch", "approve.before_commit"])
def test_approval_killed_midway_leaves_nothing(app, client, factory, database, point, first):
    """Does an approval killed at `point` leave no trace, and the next one take the serials after the last batch?"""
    w = LedgerWorld(factory, client)
    previous = None if first else w.approve(w.request(300)["id"])
    pending = w.request(1000)
    before = snapshot(app)
    if first:
        # The prefix is assigned at registration; the series counter is created by the first approval.
        assert before["prefixes"][0][1] is not None and before["counters"] == []

    assert_killed(run_worker(approve_args(app, database, w, pending["id"]), point))

    assert snapshot(app) == before
    verify_ok(app)
    r = client.get(f"/api/v1/mark-requests/{pending['id']}", headers=w.producer.headers)
    assert r.json["status"] == "requested"

    batch = w.approve(pending["id"])
    batches = all_batches(app, w.gi.id)
    assert [b.id for b in batches][-1] == batch["id"]
    newest = batches[-1]
    assert newest.seq_start == (1 if first else batches[-2].seq_end + 1)
    if previous:
        assert batches[-2].id == previous["id"]
    assert newest.seq_end - newest.seq_start + 1 == 1000
    with fresh(app) as s:
        assert s.get(SerialCounter, newest.series).next_seq == newest.seq_end + 1
        acct = s.get(QuotaAccount, w.account["id"])
    assert acct.consumed_g == (300 + 1000 if not first else 1000) * 250   # consumed once, not twice
    after = snapshot(app)
    assert after["events"] == before["events"] + 2                       # approved + ordered
    verify_ok(app)


def test_worker_without_fault_commits(app, client, factory, database):
    """Does the same worker process, run without GI_FAULT, commit its approval (so the kills above are real)?"""
    w = LedgerWorld(factory, client)
    w.approve(w.request(300)["id"])
    pending = w.request(1000)
    proc = run_worker(approve_args(app, database, w, pending["id"]), None)
    assert proc.returncode == 0 and "committed" in proc.stdout, (proc.returncode, proc.stdout, proc.stderr)
    r = client.get(f"/api/v1/mark-requests/{pending['id']}", headers=w.producer.headers)
    assert r.json["status"] == "approved"
    batches = all_batches(app, w.gi.id)
    assert batches[-1].seq_start == batches[-2].seq_end + 1
    verify_ok(app)


def test_activation_killed_midway_leaves_nothing(app, client, factory, database):
    """Does an activation killed before commit leave no lot, marks still issued, and can it then be redone?"""
    w = LedgerWorld(factory, client)
    batch = w.printed_and_issued(1000)
    lot = w.lot("L-CRASH")
    before = snapshot(app)
    args = {"op": "activate", "url": database.url, "user_id": w.producer.principal.user_id,
            "spans": [[batch["first_serial"], batch["last_serial"]]], "lot": lot}

    assert_killed(run_worker(args, "activate.before_commit"))

    assert snapshot(app) == before
    verify_ok(app)
    r = client.get(f"/api/v1/marks/{batch['first_serial']}", headers=w.producer.headers)
    assert r.json["state"] == "issued", r.json
    r = client.post("/api/v1/activations", headers=w.producer.headers,
                    json={"ranges": [{"first": batch["first_serial"], "last": batch["last_serial"]}], "lot": lot})
    assert r.status_code == 201 and r.json["activated"] == 1000, r.json
    after = snapshot(app)
    assert len(after["lots"]) == 1 and after["events"] == before["events"] + 1
    assert {rng[4] for rng in after["ranges"]} == {MarkState.activated}
    verify_ok(app)

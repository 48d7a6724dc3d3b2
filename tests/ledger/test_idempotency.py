"""Idempotency-Key on the ledger's POSTs: a retry gets the first answer and does nothing twice.

Covers request creation and approval: replay with `Idempotent-Replayed: true`, refusal of a
reused key with another body, keys scoped per user, two simultaneous twins doing the work
once, and failures (409) not being cached.
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gi_service.models import IdempotencyRecord, MarkBatch, MarkRequest, QuotaAccount
from gi_service.services import accounts, ledger, marks
from tests.factories import Actor, LedgerWorld
from tests.ledger.test_concurrency import TIMEOUT, Gate, run_parallel, start, wait_blocked_by

PACK = 250


def fresh(app) -> Session:
    return Session(app.extensions["gi_engine"], expire_on_commit=False)


def counts(app) -> dict:
    with fresh(app) as s:
        return {"requests": s.scalar(select(func.count()).select_from(MarkRequest)),
                "batches": s.scalar(select(func.count()).select_from(MarkBatch)),
                "events": ledger.event_count(s),
                "consumed_g": s.scalar(select(func.sum(QuotaAccount.consumed_g))),
                "records": s.scalar(select(func.count()).select_from(IdempotencyRecord))}


def verify_ok(app) -> None:
    with fresh(app) as s:
        result = ledger.verify(s, signer=app.extensions["gi_signer"])
    assert result.ok, result


def with_key(actor: Actor, key: str) -> dict:
    return actor.headers | {"Idempotency-Key": key}


def request_body(w: LedgerWorld, quantity: int = 1000) -> dict:
    return {"gi_id": w.gi.id, "pack_size_g": PACK, "quantity": quantity, "year": w.year}


def test_retried_request_creation_replays_the_first_answer(app, client, factory):
    """Does a retried POST /mark-requests with one key replay the same 201 and body and create nothing new?"""
    w = LedgerWorld(factory, client)
    first = client.post("/api/v1/mark-requests", headers=with_key(w.producer, "req-1"), json=request_body(w))
    assert first.status_code == 201, first.json
    assert "Idempotent-Replayed" not in first.headers
    before = counts(app)
    for _ in range(2):
        again = client.post("/api/v1/mark-requests", headers=with_key(w.producer, "req-1"), json=request_body(w))
        assert again.status_code == 201
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json == first.json
    assert counts(app) == before
    verify_ok(app)


def test_retried_approval_replays_and_allocates_once(app, client, factory):
    """Does a retried approval with the same key return the same batch, consuming quota and serials once?"""
    w = LedgerWorld(factory, client)
    rid = w.request(1000)["id"]
    body = {"printer_id": w.printer.org.id}
    url = f"/api/v1/mark-requests/{rid}/approve"
    first = client.post(url, headers=with_key(w.authority, "approve-1"), json=body)
    assert first.status_code == 201, first.json
    before = counts(app)
    assert before["consumed_g"] == 1000 * PACK and before["batches"] == 1
    again = client.post(url, headers=with_key(w.authority, "approve-1"), json=body)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json
    assert counts(app) == before
    without_key = client.post(url, headers=w.authority.headers, json=body)   # a plain retry is refused, not redone
    assert without_key.status_code == 409 and without_key.json["error"] == "not_pending"
    assert counts(app) == before
    verify_ok(app)


def test_same_key_with_another_body_is_refused(app, client, factory):
    """Is a key reused with another body or URL refused with 422 idempotency_key_reused, doing nothing?"""
    w = LedgerWorld(factory, client)
    r = client.post("/api/v1/mark-requests", headers=with_key(w.producer, "k"), json=request_body(w, 1000))
    assert r.status_code == 201
    before = counts(app)
    r = client.post("/api/v1/mark-requests", headers=with_key(w.producer, "k"), json=request_body(w, 2000))
    assert r.status_code == 422 and r.json["error"] == "idempotency_key_reused", r.json
    assert counts(app) == before

    ids = [w.request(100)["id"], w.request(100)["id"]]
    r = client.post(f"/api/v1/mark-requests/{ids[0]}/approve", headers=with_key(w.authority, "a"), json={})
    assert r.status_code == 201
    before = counts(app)
    r = client.post(f"/api/v1/mark-requests/{ids[1]}/approve", headers=with_key(w.authority, "a"), json={})
    assert r.status_code == 422 and r.json["error"] == "idempotency_key_reused", r.json
    assert counts(app) == before
    with fresh(app) as s:
        assert s.get(MarkRequest, ids[1]).status.value == "requested"


def test_keys_belong_to_their_user(app, client, factory, session):
    """Does another user's request with the same key (even in the same organisation) run on its own?"""
    w = LedgerWorld(factory, client)
    colleague_user = accounts.create_user(session, username="colleague", password="password-123456",
                                          organisation_id=w.producer.org.id)
    _row, token = accounts.create_token(session, colleague_user, name="test", ttl_days=1)
    session.commit()
    colleague = Actor(w.producer.org, accounts.principal_for(colleague_user), token)
    other = factory.producer("341602")
    factory.authorization(other, w.gi, w.authority)

    mine = client.post("/api/v1/mark-requests", headers=with_key(w.producer, "shared"), json=request_body(w))
    theirs = client.post("/api/v1/mark-requests", headers=with_key(colleague, "shared"), json=request_body(w))
    others = client.post("/api/v1/mark-requests", headers=with_key(other, "shared"), json=request_body(w))
    for r in (mine, theirs, others):
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.json
    assert len({mine.json["id"], theirs.json["id"], others.json["id"]}) == 3
    assert others.json["producer_id"] == other.org.id
    again = client.post("/api/v1/mark-requests", headers=with_key(colleague, "shared"), json=request_body(w))
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json == theirs.json
    assert counts(app)["requests"] == 3


def _assert_one_approval(app, results, rid):
    assert [s for s, _ in results] == [201, 201], results
    assert results[0][1] == results[1][1]
    with fresh(app) as s:
        batches = list(s.scalars(select(MarkBatch).where(MarkBatch.request_id == rid)))
        consumed = s.scalar(select(func.sum(QuotaAccount.consumed_g)))
        kinds = list(s.scalars(select(ledger.LedgerEvent.kind).where(ledger.LedgerEvent.kind == "approved")))
    assert len(batches) == 1 and results[0][1]["id"] == batches[0].id
    assert consumed == 1000 * PACK and len(kinds) == 1
    verify_ok(app)


def test_simultaneous_twins_with_one_key_approve_once(app, client, factory):
    """Do two identical approvals with one key, sent at once, make one batch and get the same answer?"""
    w = LedgerWorld(factory, client)
    rid = w.request(1000)["id"]
    call = (lambda c: c.post(f"/api/v1/mark-requests/{rid}/approve", headers=with_key(w.authority, "twin"),
                             json={"printer_id": w.printer.org.id}))
    results = run_parallel(app, [call, call])
    _assert_one_approval(app, results, rid)


def test_twin_arriving_while_the_first_is_working_gets_its_answer(app, client, factory, monkeypatch):
    """Does a twin arriving while the first approval is still in its transaction wait, then replay its answer?"""
    w = LedgerWorld(factory, client)
    rid = w.request(1000)["id"]
    gate = Gate()
    monkeypatch.setattr(marks, "crash_point", lambda name: gate.pause() if name == "approve.before_commit" else None)
    call = (lambda c: c.post(f"/api/v1/mark-requests/{rid}/approve", headers=with_key(w.authority, "twin"),
                             json={"printer_id": w.printer.org.id}))
    results: dict = {}
    a = start(app, "A", call, results, "A")
    gate.wait_reached()
    b = start(app, "B", call, results, "B")
    wait_blocked_by(app.extensions["gi_engine"], gate, b)
    gate.released.set()
    a.join(TIMEOUT)
    b.join(TIMEOUT)
    assert not a.is_alive() and not b.is_alive()
    _assert_one_approval(app, [results["A"], results["B"]], rid)
    assert results["B"] == results["A"]


def test_failed_request_is_not_cached(app, client, factory):
    """Is a 409 quota_exceeded not cached, so the same key succeeds after the quota is raised (then replays)?"""
    w = LedgerWorld(factory, client)
    available = w.account["available_g"]
    too_many = available // PACK + 400                 # 100 kg more than there is
    rid = w.request(too_many)["id"]
    url = f"/api/v1/mark-requests/{rid}/approve"
    refused = client.post(url, headers=with_key(w.authority, "big"), json={})
    assert refused.status_code == 409 and refused.json["error"] == "quota_exceeded", refused.json
    again = client.post(url, headers=with_key(w.authority, "big"), json={})
    assert again.status_code == 409 and "Idempotent-Replayed" not in again.headers
    assert counts(app)["records"] == 0 and counts(app)["batches"] == 0

    r = client.post(f"/api/v1/quota-accounts/{w.account['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": 200_000, "reason": "extra plot surveyed"})
    assert r.status_code == 200, r.json
    ok = client.post(url, headers=with_key(w.authority, "big"), json={})
    assert ok.status_code == 201 and "Idempotent-Replayed" not in ok.headers, ok.json
    replay = client.post(url, headers=with_key(w.authority, "big"), json={})
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json == ok.json
    assert counts(app)["batches"] == 1
    verify_ok(app)


@pytest.mark.parametrize("key", ["x" * 201, "clé-non-ascii", "tab\tkey"])
def test_malformed_key_is_refused(app, client, factory, key):
    """Is an Idempotency-Key that is too long, non-ASCII or unprintable refused with 400, doing nothing?"""
    w = LedgerWorld(factory, client)
    before = counts(app)
    r = client.post("/api/v1/mark-requests", headers=w.producer.headers | {"Idempotency-Key": key},
                    json=request_body(w))
    assert r.status_code == 400 and r.json["error"] == "bad_idempotency_key", r.json
    assert counts(app) == before

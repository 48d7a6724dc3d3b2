"""Concurrency of the ledger: quota is never overspent, serials never overlap, nothing fails with a 500.

Each thread has its own Flask test client, so each request has its own session and
database connection, as under a threaded server. On SQLite writers queue behind
BEGIN IMMEDIATE (busy_timeout); on PostgreSQL they really race. The invariants
asserted are the same on both.

Some races need one request to be held in the middle while another runs; a `Gate`
pauses the thread named "A" at a hook and, on PostgreSQL, waits until the other
request is provably blocked by it (pg_blocking_pids), so those tests are deterministic.
"""
from __future__ import annotations

import threading
import time

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gi_service.db import get_session
from gi_service.models import (GIProduct, MarkBatch, MarkRange, MarkRequest, QuotaAccount, QuotaEntry,
                               SerialCounter, User)
from gi_service.services import accounts, ledger, marks
from tests.factories import LedgerWorld

TIMEOUT = 120          # bound on every thread join, barrier and gate wait (seconds)
PACK = 250


# --- helpers ---------------------------------------------------------------------------------

def run_parallel(app, calls, names=None):
    """Run each `call(client)` in its own thread with its own test client, all released at once."""
    barrier = threading.Barrier(len(calls), timeout=TIMEOUT)
    results: list = [None] * len(calls)

    def worker(i, fn):
        client = app.test_client()
        try:
            barrier.wait()
            r = fn(client)
            results[i] = (r.status_code, r.get_json())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i, fn), daemon=True,
                                name=(names[i] if names else f"worker-{i}")) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a request never finished"
    assert not any(isinstance(r, BaseException) for r in results), results
    return results


def start(app, name, fn, results, key):
    """Run `fn(client)` in a named thread; its (status, json) lands in results[key]."""
    def worker():
        try:
            r = fn(app.test_client())
            results[key] = (r.status_code, r.get_json())
        except BaseException as exc:  # noqa: BLE001
            results[key] = exc

    t = threading.Thread(target=worker, name=name, daemon=True)
    t.start()
    return t


class Gate:
    """Holds the thread named "A" at a hook (once) until released; knows A's PostgreSQL backend."""

    def __init__(self):
        self.reached = threading.Event()
        self.released = threading.Event()
        self.pid = None

    def pause(self):
        if threading.current_thread().name != "A" or self.reached.is_set():
            return
        session = get_session()
        if session.get_bind().dialect.name == "postgresql":
            self.pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        self.reached.set()
        assert self.released.wait(TIMEOUT), "gate never released"

    def wait_reached(self):
        assert self.reached.wait(TIMEOUT), "thread A never reached the gate"


def wait_blocked_by(engine, gate: Gate, thread: threading.Thread) -> None:
    """On PostgreSQL, wait until some backend waits on a lock held by A's; on SQLite the
    other writer queues behind A's BEGIN IMMEDIATE, which cannot be observed, and the
    outcome asserted afterwards does not depend on when A is released."""
    if gate.pid is None:
        thread.join(0.2)
        return
    deadline = time.monotonic() + TIMEOUT
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            n = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                             {"pid": gate.pid}).scalar_one()
            if n:
                return
            assert thread.is_alive(), "the other request finished without waiting for A"
            conn.rollback()
            time.sleep(0.02)
    raise AssertionError("the other request never blocked on A")


def fresh(app) -> Session:
    return Session(app.extensions["gi_engine"], expire_on_commit=False)


def verify_ok(app) -> ledger.VerifyResult:
    with fresh(app) as s:
        result = ledger.verify(s, signer=app.extensions["gi_signer"])
    assert result.ok, result
    return result


def account(app, account_id) -> QuotaAccount:
    with fresh(app) as s:
        return s.get(QuotaAccount, account_id)


def event_count(app) -> int:
    with fresh(app) as s:
        return ledger.event_count(s)


def assert_serials_contiguous(app, gi_id: int) -> list[MarkBatch]:
    """Every batch of the GI is in one series; ranges start at 1, never overlap, leave no gap, and
    the series counter is right after the last one."""
    with fresh(app) as s:
        batches = list(s.scalars(select(MarkBatch).where(MarkBatch.gi_id == gi_id).order_by(MarkBatch.seq_start)))
        series = {b.series for b in batches}
        assert len(series) == 1, f"batches of one GI and year in several series: {sorted(series)}"
        gi = s.get(GIProduct, gi_id)
        assert batches[0].series.startswith(gi.mark_prefix), (batches[0].series, gi.mark_prefix)
        assert batches[0].seq_start == 1
        for a, b in zip(batches, batches[1:]):
            assert b.seq_start == a.seq_end + 1, (a.seq_start, a.seq_end, b.seq_start, b.seq_end)
        counter = s.get(SerialCounter, batches[0].series)
        assert counter.next_seq == batches[-1].seq_end + 1
        for b in batches:
            ranges = list(s.scalars(select(MarkRange).where(MarkRange.batch_id == b.id)))
            assert [(r.seq_start, r.seq_end) for r in ranges] == [(b.seq_start, b.seq_end)]
        return batches


def approve_call(request_id: int, headers: dict, **body):
    return lambda c: c.post(f"/api/v1/mark-requests/{request_id}/approve", headers=headers, json=body)


def transfer_call(account_id: int, headers: dict, to_producer_id: int, amount_g: int):
    return lambda c: c.post(f"/api/v1/quota-accounts/{account_id}/transfers", headers=headers,
                            json={"to_producer_id": to_producer_id, "amount_g": amount_g, "reason": "sold quota"})


def second_holder(factory, w: LedgerWorld):
    p2 = factory.producer("341602")
    factory.authorization(p2, w.gi, w.authority)
    return p2


# --- quota is never overspent ----------------------------------------------------------------

def test_concurrent_approvals_never_overspend_quota(app, client, factory):
    """Do 8 simultaneous 1,000 kg approvals (~5,225 kg left) approve exactly 5, refuse 3 with 409, overlap nothing?"""
    w = LedgerWorld(factory, client)
    w.approve(w.request(100)["id"], printer=False)     # 25 kg; also gives the GI its serial prefix
    before = account(app, w.account["id"])
    need = 4000 * PACK                                  # 1,000 kg each; any one fits alone
    assert before.available_g >= need
    ids = [w.request(4000)["id"] for _ in range(8)]
    events_before = event_count(app)

    results = run_parallel(app, [approve_call(i, w.authority.headers, printer_id=w.printer.org.id) for i in ids])

    statuses = [s for s, _ in results]
    assert 500 not in statuses, results
    won = [(i, body) for i, (s, body) in zip(ids, results) if s == 201]
    lost = [(i, body) for i, (s, body) in zip(ids, results) if s != 201]
    assert len(won) == before.available_g // need == 5
    assert all(s == 409 and body["error"] == "quota_exceeded" for s, body in results if s != 201), results
    after = account(app, w.account["id"])
    assert after.consumed_g == before.consumed_g + len(won) * need
    assert after.consumed_g <= after.allocated_g and after.available_g >= 0
    with fresh(app) as s:
        entries = list(s.scalars(select(QuotaEntry).where(QuotaEntry.account_id == after.id,
                                                          QuotaEntry.kind == "consume")))
        assert -sum(e.amount_g for e in entries) == after.consumed_g
        status = {r.id: r.status.value for r in s.scalars(select(MarkRequest).where(MarkRequest.id.in_(ids)))}
    assert {i for i, _ in won} == {i for i in ids if status[i] == "approved"}
    assert {i for i, _ in lost} == {i for i in ids if status[i] == "requested"}
    batches = assert_serials_contiguous(app, w.gi.id)
    assert sorted(b.id for b in batches[1:]) == sorted(body["id"] for _, body in won)
    assert event_count(app) == events_before + 2 * len(won)   # approved + ordered each
    verify_ok(app)


def test_concurrent_approvals_of_different_sizes_refuse_only_what_cannot_fit(app, client, factory):
    """With unequal simultaneous requests, is every refused one really larger than what was finally left?"""
    w = LedgerWorld(factory, client)
    w.approve(w.request(100)["id"], printer=False)
    before = account(app, w.account["id"])
    quantities = [2400, 3200, 4000, 4800, 5600, 2000, 3600, 4400]   # 600 to 1,400 kg; 7,500 kg in all
    assert max(quantities) * PACK <= before.available_g < sum(quantities) * PACK
    ids = [w.request(q)["id"] for q in quantities]

    results = run_parallel(app, [approve_call(i, w.authority.headers) for i in ids])

    assert {s for s, _ in results} <= {201, 409}, results
    approved_g = sum(q * PACK for q, (s, _) in zip(quantities, results) if s == 201)
    after = account(app, w.account["id"])
    assert after.consumed_g == before.consumed_g + approved_g
    assert after.available_g >= 0
    for q, (s, body) in zip(quantities, results):
        if s == 409:
            assert body["error"] == "quota_exceeded"
            assert q * PACK > after.available_g, f"{q} packs were refused but fit in what was left"
    assert_serials_contiguous(app, w.gi.id)
    verify_ok(app)


def test_concurrent_transfers_never_overspend_quota(app, client, factory):
    """Do 8 simultaneous 1,000 kg transfers out of one account move exactly what fits and refuse the rest (409)?"""
    w = LedgerWorld(factory, client)
    p2 = second_holder(factory, w)
    r = transfer_call(w.account["id"], w.producer.headers, p2.org.id, 25_000)(client)   # opens p2's account
    assert r.status_code == 200, r.json
    to_id = r.json["to"]["id"]
    src0, dst0 = account(app, w.account["id"]), account(app, to_id)
    amount = 1_000_000
    events_before = event_count(app)

    results = run_parallel(app, [transfer_call(w.account["id"], w.producer.headers, p2.org.id, amount)
                                 for _ in range(8)])

    assert {s for s, _ in results} <= {200, 409}, results
    moved = sum(1 for s, _ in results if s == 200)
    assert moved == src0.available_g // amount == 5
    assert all(body["error"] == "quota_exceeded" for s, body in results if s == 409)
    src, dst = account(app, w.account["id"]), account(app, to_id)
    assert src.transferred_out_g == src0.transferred_out_g + moved * amount
    assert dst.transferred_in_g == dst0.transferred_in_g + moved * amount
    assert src.available_g == src0.available_g - moved * amount >= 0
    with fresh(app) as s:
        out = s.scalars(select(QuotaEntry.amount_g).where(QuotaEntry.account_id == src.id,
                                                          QuotaEntry.kind == "transfer_out")).all()
        into = s.scalars(select(QuotaEntry.amount_g).where(QuotaEntry.account_id == dst.id,
                                                           QuotaEntry.kind == "transfer_in")).all()
    assert -sum(out) == src.transferred_out_g and sum(into) == dst.transferred_in_g
    assert event_count(app) == events_before + moved
    verify_ok(app)


def test_concurrent_approvals_and_transfers_share_one_quota(app, client, factory):
    """Do approvals and transfers racing on one account together stay within it, refusing only what cannot fit?"""
    w = LedgerWorld(factory, client)
    p2 = second_holder(factory, w)
    assert transfer_call(w.account["id"], w.producer.headers, p2.org.id, 25_000)(client).status_code == 200
    w.approve(w.request(100)["id"], printer=False)
    before = account(app, w.account["id"])
    amount = 1_000_000
    ids = [w.request(amount // PACK)["id"] for _ in range(4)]
    calls = [approve_call(i, w.authority.headers) for i in ids]
    calls += [transfer_call(w.account["id"], w.producer.headers, p2.org.id, amount) for _ in range(4)]

    results = run_parallel(app, calls)

    assert {s for s, _ in results} <= {200, 201, 409}, results
    ok = sum(1 for s, _ in results if s in (200, 201))
    assert ok == before.available_g // amount == 5
    after = account(app, w.account["id"])
    assert after.consumed_g + after.transferred_out_g == before.consumed_g + before.transferred_out_g + ok * amount
    assert 0 <= after.available_g < amount
    assert_serials_contiguous(app, w.gi.id)
    verify_ok(app)


# --- races found by holding one request in the middle ----------------------------------------

def test_first_approvals_of_a_gi_share_one_series(app, client, factory, monkeypatch, backend, request):
    """When the first two approvals of a GI race, do both batches land in the GI's one series, contiguously?"""
    w = LedgerWorld(factory, client)
    ids = [w.request(100)["id"], w.request(100)["id"]]
    gate = Gate()
    monkeypatch.setattr(marks, "crash_point", lambda name: gate.pause() if name == "approve.before_commit" else None)
    results: dict = {}
    a = start(app, "A", approve_call(ids[0], w.authority.headers), results, "A")
    gate.wait_reached()
    b = start(app, "B", approve_call(ids[1], w.authority.headers), results, "B")
    wait_blocked_by(app.extensions["gi_engine"], gate, b)
    gate.released.set()
    a.join(TIMEOUT)
    b.join(TIMEOUT)
    assert not a.is_alive() and not b.is_alive()
    assert results["A"][0] == 201 and results["B"][0] == 201, results
    assert results["A"][1]["series"] == results["B"][1]["series"], results
    assert_serials_contiguous(app, w.gi.id)
    verify_ok(app)


def test_concurrent_first_transfers_to_a_new_holder(app, client, factory, monkeypatch, backend, request):
    """When two transfers race to a producer who has no account yet, do both succeed into one new account?"""
    w = LedgerWorld(factory, client)
    p2 = second_holder(factory, w)
    gate = Gate()
    real_append = ledger.append

    def append(*args, **kw):
        event = real_append(*args, **kw)
        gate.pause()
        return event

    monkeypatch.setattr(ledger, "append", append)
    results: dict = {}
    call = transfer_call(w.account["id"], w.producer.headers, p2.org.id, 10_000)
    a = start(app, "A", call, results, "A")
    gate.wait_reached()
    b = start(app, "B", call, results, "B")
    wait_blocked_by(app.extensions["gi_engine"], gate, b)
    gate.released.set()
    a.join(TIMEOUT)
    b.join(TIMEOUT)
    assert not a.is_alive() and not b.is_alive()
    assert results["A"][0] == 200 and results["B"][0] == 200, results
    with fresh(app) as s:
        targets = list(s.scalars(select(QuotaAccount).where(QuotaAccount.producer_id == p2.org.id)))
    assert len(targets) == 1 and targets[0].transferred_in_g == 20_000
    assert account(app, w.account["id"]).transferred_out_g == 20_000
    verify_ok(app)


def test_opposite_transfers_between_two_accounts(app, client, factory, monkeypatch, backend, request):
    """Do simultaneous transfers A→B and B→A between two accounts both succeed (no deadlock, no 500)?"""
    w = LedgerWorld(factory, client)
    p2 = second_holder(factory, w)
    r = transfer_call(w.account["id"], w.producer.headers, p2.org.id, 100_000)(client)
    assert r.status_code == 200, r.json
    p2_account = r.json["to"]["id"]
    client.get("/api/v1/me", headers=p2.headers)   # first use of p2's token, outside the race
    gate = Gate()
    real = marks._change_balance

    def change_balance(*args, **kw):
        ok = real(*args, **kw)
        gate.pause()          # A holds its source account's row lock here
        return ok

    monkeypatch.setattr(marks, "_change_balance", change_balance)
    results: dict = {}
    a = start(app, "A", transfer_call(w.account["id"], w.producer.headers, p2.org.id, 10_000), results, "A")
    gate.wait_reached()
    b = start(app, "B", transfer_call(p2_account, p2.headers, w.producer.org.id, 10_000), results, "B")
    wait_blocked_by(app.extensions["gi_engine"], gate, b)
    gate.released.set()
    a.join(TIMEOUT)
    b.join(TIMEOUT)
    assert not a.is_alive() and not b.is_alive()
    assert results["A"][0] == 200 and results["B"][0] == 200, results
    one, two = account(app, w.account["id"]), account(app, p2_account)
    assert (one.transferred_out_g, one.transferred_in_g) == (110_000, 10_000)
    assert (two.transferred_in_g, two.transferred_out_g) == (110_000, 10_000)
    verify_ok(app)


def test_write_by_a_token_used_for_the_first_time(app, client, factory, session, monkeypatch, backend, request):
    """Does an approval made with a never-used token survive another approval committing meanwhile?"""
    w = LedgerWorld(factory, client)
    w.approve(w.request(100)["id"], printer=False)
    user = session.get(User, w.authority.principal.user_id)
    _row, token = accounts.create_token(session, user, name="new device", ttl_days=1)
    session.commit()
    ids = [w.request(100)["id"], w.request(100)["id"]]
    gate = Gate()
    real = marks.get_request

    def get_request(*args, **kw):
        found = real(*args, **kw)
        gate.pause()          # A has read inside its transaction
        return found

    monkeypatch.setattr(marks, "get_request", get_request)
    results: dict = {}
    a = start(app, "A", approve_call(ids[0], {"Authorization": f"Bearer {token}"}), results, "A")
    gate.wait_reached()
    b = start(app, "B", approve_call(ids[1], w.authority.headers), results, "B")
    b.join(5)   # B commits now unless it (rightly) waits for A's write transaction; then A goes on first
    gate.released.set()
    a.join(TIMEOUT)
    b.join(TIMEOUT)
    assert not a.is_alive() and not b.is_alive()
    assert results["A"][0] == 201 and results["B"][0] == 201, results
    assert_serials_contiguous(app, w.gi.id)
    verify_ok(app)

"""Tamper evidence of the ledger: every direct edit of the database is caught and located.

A ledger of eleven events is built through the API, then altered behind the service's
back with SQL on a separate connection (as a DBA or an intruder could). `ledger.verify`
and `gi-service ledger verify` must both report the first event that no longer fits;
signed checkpoints must expose a history rewritten so that the chain itself looks valid.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from gi_service.cli import main
from gi_service.models import LedgerCheckpoint, LedgerEvent, LedgerHead
from gi_service.services import ledger
from tests.factories import LedgerWorld

EVENTS = LedgerEvent.__table__
KINDS = ["quota_opened", "requested", "approved", "ordered", "printed", "issued", "activated", "requested",
         "approved", "quota_adjusted", "voided"]
N = len(KINDS)


@dataclass
class Built:
    app: object
    client: object
    world: LedgerWorld
    env: dict


@pytest.fixture
def built(app, client, factory, database, tmp_path, reused_world) -> Built:
    """Eleven events through the API: quota, two requests and approvals, print, issue, activation, adjustment, void
    (made once per test process and database, then restored for each test)."""
    w = reused_world("tamper", lambda: eleven_events(factory, client), lambda world: world.rebind(factory, client))
    settings = app.config["GI_SETTINGS"]
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path / "cli-instance"),
           "GI_LEDGER_SIGNING_KEY": settings.ledger_signing_key, "GI_MARK_KEYS": settings.mark_keys,
           "GI_MARK_KEY_ID": settings.mark_key_id}
    b = Built(app, client, w, env)
    assert kinds(b) == KINDS
    return b


def eleven_events(factory, client) -> LedgerWorld:
    w = LedgerWorld(factory, client)
    batch = w.printed_and_issued(1000)
    r = client.post("/api/v1/activations", headers=w.producer.headers,
                    json={"ranges": [{"first": batch["first_serial"], "last": batch["last_serial"]}], "lot": w.lot()})
    assert r.status_code == 201, r.json
    w.approve(w.request(200)["id"], printer=False)
    r = client.post(f"/api/v1/quota-accounts/{w.account['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": 5000, "reason": "survey correction"})
    assert r.status_code == 200, r.json
    r = client.post("/api/v1/voids", headers=w.producer.headers,
                    json={"ranges": [{"first": batch["first_serial"]}], "kind": "voided", "reason": "damaged label"})
    assert r.status_code == 200, r.json
    return w


# --- helpers ---------------------------------------------------------------------------------

def fresh_session(b: Built) -> Session:
    """A new session, so nothing cached from before the tampering is seen."""
    return Session(b.app.extensions["gi_engine"], expire_on_commit=False)


def verify(b: Built) -> ledger.VerifyResult:
    with fresh_session(b) as s:
        return ledger.verify(s, signer=b.app.extensions["gi_signer"])


def cli_verify(b: Built):
    return CliRunner().invoke(main, ["ledger", "verify"], env=b.env)


def kinds(b: Built) -> list[str]:
    with fresh_session(b) as s:
        return list(s.scalars(select(LedgerEvent.kind).order_by(LedgerEvent.seq)))


def row(b: Built, seq: int) -> dict:
    with fresh_session(b) as s:
        return dict(s.execute(select(EVENTS).where(EVENTS.c.seq == seq)).mappings().one())


def tamper(b: Built, *statements) -> None:
    """Run SQL (text or Core) directly on a separate connection and commit, bypassing the service."""
    with fresh_session(b) as s:
        for stmt in statements:
            if isinstance(stmt, str):
                s.execute(text(stmt))
            elif isinstance(stmt, tuple):  # (statement, parameters)
                s.execute(*stmt)
            else:
                s.execute(stmt)
        s.commit()


def head(b: Built) -> tuple[int, str]:
    with fresh_session(b) as s:
        h = s.get(LedgerHead, 1)
        return h.seq, h.hash


def chain_is_self_consistent(b: Built) -> bool:
    """Recompute every link independently of the service's verify (ignores checkpoints)."""
    with fresh_session(b) as s:
        prev, expected = ledger.GENESIS, 1
        for r in s.execute(select(EVENTS).order_by(EVENTS.c.seq)).mappings():
            if r["seq"] != expected or r["prev_hash"] != prev:
                return False
            if ledger.event_hash(prev, {n: r[n] for n in ledger.HASHED_FIELDS}) != r["hash"]:
                return False
            prev, expected = r["hash"], expected + 1
        h = s.get(LedgerHead, 1)
        return (h.seq, h.hash) == (expected - 1, prev)


def rewrite_history(b: Built, seq: int, **changes) -> None:
    """Alter one event, then recompute every hash after it and the head: a self-consistent forgery."""
    with fresh_session(b) as s:
        s.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(**changes))
        prev = ledger.GENESIS
        for r in s.execute(select(EVENTS).order_by(EVENTS.c.seq)).mappings().all():
            digest = ledger.event_hash(prev, {n: r[n] for n in ledger.HASHED_FIELDS})
            if (r["prev_hash"], r["hash"]) != (prev, digest):
                s.execute(update(EVENTS).where(EVENTS.c.seq == r["seq"]).values(prev_hash=prev, hash=digest))
            prev, last = digest, r["seq"]
        s.execute(update(LedgerHead).where(LedgerHead.id == 1).values(seq=last, hash=prev))
        s.commit()


def assert_broken_at(b: Built, seq: int) -> None:
    result = verify(b)
    assert not result.ok, result
    assert result.first_broken_seq == seq, result.problem
    out = cli_verify(b)
    assert out.exit_code == 1, out.output
    assert f"BROKEN at event {seq}:" in out.output, out.output


def b64url(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


# --- the untampered ledger -------------------------------------------------------------------

def test_untampered_ledger_verifies(built):
    """Does the ledger built through the API verify OK, by the service and by `gi-service ledger verify` (exit 0)?"""
    result = verify(built)
    assert result.ok and result.events == N and result.head_seq == N and result.first_broken_seq is None, result
    assert chain_is_self_consistent(built)
    out = cli_verify(built)
    assert out.exit_code == 0, out.output
    assert f"ledger OK: {N} events, head {N} " in out.output


# --- (a) altered rows ------------------------------------------------------------------------

SEQ = 5  # "printed": has a printer, a batch, a series and ranges

ALTERATIONS = {
    "count": lambda: "UPDATE ledger_events SET count = count + 1 WHERE seq = 5",
    "reason": lambda: "UPDATE ledger_events SET reason = 'printed fine, honest' WHERE seq = 5",
    "kind": lambda: "UPDATE ledger_events SET kind = 'spoiled' WHERE seq = 5",
    "series": lambda: "UPDATE ledger_events SET series = 'XXXX26' WHERE seq = 5",
    "actor": lambda: "UPDATE ledger_events SET actor_user_id = NULL WHERE seq = 5",
    "printer": lambda: "UPDATE ledger_events SET printer_id = producer_id WHERE seq = 5",
    "prev_hash": lambda: f"UPDATE ledger_events SET prev_hash = '{ledger.GENESIS}' WHERE seq = 5",
    "hash": lambda: f"UPDATE ledger_events SET hash = '{'f' * 64}' WHERE seq = 5",
    "at": lambda: update(EVENTS).where(EVENTS.c.seq == SEQ).values(
        at=dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)),
    "ranges": lambda: update(EVENTS).where(EVENTS.c.seq == SEQ).values(ranges=[[1, 5]]),
    "data": lambda: update(EVENTS).where(EVENTS.c.seq == SEQ).values(data={"note": "forged"}),
}


@pytest.mark.parametrize("column", sorted(ALTERATIONS))
def test_altered_event_is_named(built, column):
    """Does altering any one column of a middle event break the chain exactly at that event?"""
    before = row(built, SEQ)
    tamper(built, ALTERATIONS[column]())
    after = row(built, SEQ)
    assert after != before  # the edit really happened
    assert_broken_at(built, SEQ)


def test_altered_count_of_late_event_is_named(built):
    """Does a changed `count` on the activation (event 7) name event 7, not an earlier one?"""
    tamper(built, "UPDATE ledger_events SET count = count - 1 WHERE seq = 7")
    assert_broken_at(built, 7)


# --- (b) and (c) deleted rows ----------------------------------------------------------------

def test_deleted_middle_event_breaks_the_chain(built):
    """Does deleting a middle event make verify and the CLI fail, saying which event is missing?"""
    tamper(built, "DELETE FROM ledger_events WHERE seq = 6")
    result = verify(built)
    assert not result.ok and result.first_broken_seq in (6, 7), result
    assert "expected event 6 next" in result.problem
    out = cli_verify(built)
    assert out.exit_code == 1 and "expected event 6 next" in out.output, out.output


def test_deleted_middle_event_is_named(built):
    """Does deleting a middle event name that very event (as deleting the last event does)?"""
    tamper(built, "DELETE FROM ledger_events WHERE seq = 6")
    assert_broken_at(built, 6)


def test_deleted_last_event_is_named(built):
    """Does deleting the last event (the head now records one more) name the deleted event?"""
    tamper(built, f"DELETE FROM ledger_events WHERE seq = {N}")
    assert_broken_at(built, N)


def test_truncation_with_a_matching_head_is_caught_by_a_checkpoint(built):
    """Is deleting the last events and moving the head back to match caught, once a checkpoint covers them?"""
    r = built.client.post("/api/v1/ledger/checkpoints", headers=built.world.authority.headers)
    assert r.status_code == 201 and r.json["seq"] == N
    keep = row(built, N - 2)
    tamper(built, f"DELETE FROM ledger_events WHERE seq > {N - 2}",
           (update(LedgerHead).where(LedgerHead.id == 1).values(seq=N - 2, hash=keep["hash"]),))
    assert chain_is_self_consistent(built)
    assert_broken_at(built, N)
    assert "checkpoint" in verify(built).problem


# --- (d) inserted rows -----------------------------------------------------------------------

def _shift_up_from(seq: int) -> list[str]:
    # Two steps, so no statement ever collides with the primary key on either backend.
    return [f"UPDATE ledger_events SET seq = -(seq + 1) WHERE seq >= {seq}",
            "UPDATE ledger_events SET seq = -seq WHERE seq < 0"]


def _forged(b: Built, seq: int, prev_hash: str, correct_hash: bool) -> dict:
    """A plausible 'issued' event copied from a real one, with another count and reason."""
    model = row(b, 6)
    fields = {n: model[n] for n in ledger.HASHED_FIELDS} | {"seq": seq, "count": 250, "reason": "extra issue"}
    digest = ledger.event_hash(prev_hash, fields) if correct_hash else hashlib.sha256(b"made up").hexdigest()
    return fields | {"prev_hash": prev_hash, "hash": digest}


def test_forged_event_with_made_up_hash_in_the_middle_is_named(built):
    """Does a forged event inserted at 6 (later ones renumbered), with a made-up hash, break the chain at 6?"""
    forged = _forged(built, 6, row(built, 5)["hash"], correct_hash=False)
    tamper(built, *_shift_up_from(6), (insert(EVENTS), [forged]))
    assert kinds(built).count("issued") == 2
    assert_broken_at(built, 6)


def test_forged_event_correctly_linked_in_the_middle_breaks_the_next(built):
    """Does a correctly hashed forged event at 6 break the chain at the displaced original, now event 7?"""
    forged = _forged(built, 6, row(built, 5)["hash"], correct_hash=True)
    tamper(built, *_shift_up_from(6), (insert(EVENTS), [forged]))
    assert_broken_at(built, 7)


def test_forged_event_at_the_end_is_named(built):
    """Does an event appended behind the service's back, with a made-up hash, break the chain at that event?"""
    forged = _forged(built, N + 1, row(built, N)["hash"], correct_hash=False)
    tamper(built, (insert(EVENTS), [forged]))
    assert_broken_at(built, N + 1)


# --- (e) reordered rows ----------------------------------------------------------------------

def test_swapped_events_are_named(built):
    """Does swapping the contents (all but seq) of events 4 and 8 break the chain at event 4?"""
    a, c = row(built, 4), row(built, 8)
    swapped = [c | {"seq": 4}, a | {"seq": 8}]
    tamper(built, delete(EVENTS).where(EVENTS.c.seq.in_([4, 8])), (insert(EVENTS), swapped))
    assert kinds(built)[3] == "requested" and kinds(built)[7] == "ordered"
    assert_broken_at(built, 4)


def test_adjacent_events_swapped_are_named(built):
    """Does swapping the contents of two neighbouring events (2 and 3) break the chain at event 2?"""
    a, c = row(built, 2), row(built, 3)
    tamper(built, delete(EVENTS).where(EVENTS.c.seq.in_([2, 3])), (insert(EVENTS), [c | {"seq": 2}, a | {"seq": 3}]))
    assert_broken_at(built, 2)


# --- (f) altered head ------------------------------------------------------------------------

def test_altered_head_hash_is_named(built):
    """Does a head whose hash no longer matches the last event name the last event?"""
    tamper(built, f"UPDATE ledger_head SET hash = '{'a' * 64}' WHERE id = 1")
    assert_broken_at(built, N)


def test_head_pointing_past_the_chain_is_named(built):
    """Does a head moved forward (claiming an event that does not exist) name that missing event?"""
    tamper(built, "UPDATE ledger_head SET seq = seq + 1 WHERE id = 1")
    assert_broken_at(built, N + 1)


def test_head_moved_back_breaks_the_chain(built):
    """Does a head moved back to the previous event (its true hash) make verify and the CLI fail?"""
    prev = row(built, N - 1)
    tamper(built, (update(LedgerHead).where(LedgerHead.id == 1).values(seq=N - 1, hash=prev["hash"]),))
    result = verify(built)
    assert not result.ok and result.first_broken_seq in (N - 1, N), result
    assert cli_verify(built).exit_code == 1


def test_head_moved_back_names_the_uncovered_event(built):
    """Does a head moved back to event N-1 name event N, the one it no longer covers?"""
    prev = row(built, N - 1)
    tamper(built, (update(LedgerHead).where(LedgerHead.id == 1).values(seq=N - 1, hash=prev["hash"]),))
    assert_broken_at(built, N)


# --- checkpoints -----------------------------------------------------------------------------

def test_rewritten_history_is_exposed_by_a_saved_checkpoint(built):
    """Does a self-consistent rewrite of history before a checkpoint fail verify and the consistency proof?"""
    b, w = built, built.world
    r = b.client.post("/api/v1/ledger/checkpoints", headers=w.authority.headers)
    assert r.status_code == 201, r.json
    saved = r.json
    assert (saved["seq"], saved["hash"]) == head(b)
    proof = {"seq": saved["seq"], "hash": saved["hash"]}
    assert b.client.get("/api/v1/ledger/consistency", query_string=proof).json["consistent"] is True
    w.approve(w.request(300)["id"])  # three more events after the checkpoint
    assert head(b)[0] == N + 3
    assert b.client.get("/api/v1/ledger/consistency", query_string=proof).json["consistent"] is True
    ok = verify(b)
    assert ok.ok and ok.checkpoints_checked == 1, ok

    rewrite_history(b, 2, count=1, data={"request_id": 1, "pack_size_g": 250, "year": 2026})

    assert chain_is_self_consistent(b)  # the chain alone looks valid...
    new_seq, new_hash = head(b)
    assert new_seq == N + 3
    alone = b.client.get("/api/v1/ledger/consistency", query_string={"seq": new_seq, "hash": new_hash}).json
    assert alone["consistent"] is True
    result = verify(b)  # ...but not against the signed checkpoint
    assert not result.ok and result.first_broken_seq == saved["seq"], result
    assert "checkpoint" in result.problem and "rewritten" in result.problem
    out = cli_verify(b)
    assert out.exit_code == 1 and f"BROKEN at event {saved['seq']}:" in out.output, out.output
    answer = b.client.get("/api/v1/ledger/consistency", query_string=proof).json
    assert answer["consistent"] is False, answer
    assert answer["recomputed_hash"] != saved["hash"]


def test_consistency_proof_fails_after_a_plain_alteration(built):
    """Does the consistency proof of a saved checkpoint answer false after an event before it is altered?"""
    saved = built.client.post("/api/v1/ledger/checkpoints", headers=built.world.authority.headers).json
    tamper(built, "UPDATE ledger_events SET count = count + 1 WHERE seq = 3")
    answer = built.client.get("/api/v1/ledger/consistency",
                              query_string={"seq": saved["seq"], "hash": saved["hash"]}).json
    assert answer["consistent"] is False, answer


def test_checkpoint_signature_verifies_independently(built):
    """Does a checkpoint's Ed25519 signature verify with only the published public key and signed message?"""
    b = built
    cp = b.client.post("/api/v1/ledger/checkpoints", headers=b.world.authority.headers).json
    pub = b.client.get("/api/v1/ledger/public-key").json
    assert pub["algorithm"] == "Ed25519"
    raw = b64url(pub["public_key"])
    assert len(raw) == 32 and pub["key_id"] == cp["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    key = Ed25519PublicKey.from_public_bytes(raw)
    assert cp["signed_message"] == f"gi-ledger-checkpoint|{cp['seq']}|{cp['hash']}|{cp['created_at']}"
    key.verify(b64url(cp["signature"]), cp["signed_message"].encode())  # raises if invalid
    listed = b.client.get("/api/v1/ledger/checkpoints").json
    assert listed["public_key"] == pub["public_key"]
    assert listed["checkpoints"][0]["signature"] == cp["signature"]

    sig = bytearray(b64url(cp["signature"]))
    sig[7] ^= 0x01
    with pytest.raises(InvalidSignature):
        key.verify(bytes(sig), cp["signed_message"].encode())
    for forged in (f"gi-ledger-checkpoint|{cp['seq'] + 1}|{cp['hash']}|{cp['created_at']}",
                   f"gi-ledger-checkpoint|{cp['seq']}|{'0' * 64}|{cp['created_at']}"):
        with pytest.raises(InvalidSignature):
            key.verify(b64url(cp["signature"]), forged.encode())


@pytest.mark.parametrize("what", ["signature", "created_at"])
def test_tampered_checkpoint_row_fails_verify(built, what):
    """Does a stored checkpoint whose signature or time was altered fail verify and the CLI at its event?"""
    b = built
    cp = b.client.post("/api/v1/ledger/checkpoints", headers=b.world.authority.headers).json
    if what == "signature":
        other = b.app.extensions["gi_signer"].sign(cp["seq"] - 1, cp["hash"], dt.datetime.now(dt.timezone.utc))
        change = {"signature": other}
    else:
        change = {"created_at": dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)}
    tamper(b, (update(LedgerCheckpoint).where(LedgerCheckpoint.id == cp["id"]).values(**change),))
    result = verify(b)
    assert not result.ok and result.first_broken_seq == cp["seq"], result
    assert "invalid signature" in result.problem
    out = cli_verify(b)
    assert out.exit_code == 1 and f"BROKEN at event {cp['seq']}:" in out.output, out.output
    listed = b.client.get("/api/v1/ledger/checkpoints").json["checkpoints"][0]
    key = Ed25519PublicKey.from_public_bytes(b64url(b.client.get("/api/v1/ledger/public-key").json["public_key"]))
    with pytest.raises(InvalidSignature):
        key.verify(b64url(listed["signature"]), listed["signed_message"].encode())


def test_rewriting_the_checkpoint_too_is_caught_by_its_signature(built):
    """If an intruder rewrites history and also the stored checkpoint's hash to match, does the signature catch it?"""
    b = built
    cp = b.client.post("/api/v1/ledger/checkpoints", headers=b.world.authority.headers).json
    rewrite_history(b, 3, reason="approved, honestly")
    assert chain_is_self_consistent(b)
    seq, new_hash = head(b)
    assert seq == cp["seq"]
    tamper(b, (update(LedgerCheckpoint).where(LedgerCheckpoint.id == cp["id"]).values(hash=new_hash),))
    result = verify(b)
    assert not result.ok and result.first_broken_seq == cp["seq"] and "invalid signature" in result.problem, result
    assert cli_verify(b).exit_code == 1
    answer = b.client.get("/api/v1/ledger/consistency", query_string={"seq": cp["seq"], "hash": cp["hash"]}).json
    assert answer["consistent"] is False  # the copy the auditor saved still tells the truth

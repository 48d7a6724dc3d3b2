"""The tamper-evident ledger: hash-chained events, verification and signed checkpoints.

Each event's hash is SHA-256 over the previous hash and a canonical JSON of the
event's fields (sequence number included), so altering, deleting, inserting or
reordering a row breaks the chain at that row. The head row (seq, hash) is locked
by every append, which orders events strictly. Checkpoints sign (seq, hash, time)
with the service's Ed25519 key: whoever saved one can later check that the history
up to it was not rewritten (`consistency`), without trusting the database.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from ..errors import NotFound
from ..models import LedgerCheckpoint, LedgerEvent, LedgerHead
from .accounts import Principal

GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "at", "kind", "actor_user_id", "actor_org_id", "producer_id", "printer_id", "gi_id",
                 "batch_id", "lot_id", "series", "ranges", "count", "reason", "data")


def _canonical_value(name: str, value: Any) -> Any:
    if name == "at":
        return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    return value


# The hash each new event is chained with: SHA-256, or SM3 under China's commercial cryptography suite
# (GI_CRYPTO_SUITE=sm; set by create_app). Each event records its own (``hash_alg``; NULL is SHA-256), so a
# chain that switched suite verifies from end to end.
HASH_ALGS = ("sha256", "sm3")
_hash_alg = "sha256"


def configure(hash_alg: str) -> None:
    global _hash_alg
    if hash_alg not in HASH_ALGS:
        raise ValueError(f"unknown ledger hash {hash_alg!r} (known: {', '.join(HASH_ALGS)})")
    _hash_alg = hash_alg


def current_hash_alg() -> str:
    """The hash new links of the chains (the ledger's, the audit trail's) are made with."""
    return _hash_alg


def chain_hash(prev_hash: str, body: dict[str, Any], alg: str) -> str:
    """A chain link: the hash (SHA-256 or SM3) of the previous hash, "|" and the canonical JSON of `body`.
    Shared by the ledger and the audit trail (services/audit.py)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.new(alg, (prev_hash + "|" + text).encode()).hexdigest()


def event_hash(prev_hash: str, fields: dict[str, Any], alg: str | None = None) -> str:
    """The hash (SHA-256 or SM3) of the previous hash and the event's canonical JSON. An SM3 event's JSON also
    names its hash, so an event cannot be passed off under the other algorithm."""
    alg = alg or "sha256"
    body = {name: _canonical_value(name, fields.get(name)) for name in HASHED_FIELDS}
    if alg != "sha256":
        body["hash_alg"] = alg
    return chain_hash(prev_hash, body, alg)


def _lock_head(session: Session) -> LedgerHead:
    head = session.scalar(select(LedgerHead).where(LedgerHead.id == 1).with_for_update())
    if head is None:  # a database migrated before the head row existed
        head = LedgerHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def append(session: Session, kind: str, *, by: Principal | None, ranges: Iterable[tuple[int, int]] = (),
           count: int = 0, reason: str | None = None, data: dict[str, Any] | None = None,
           producer_id: int | None = None, printer_id: int | None = None, gi_id: int | None = None,
           batch_id: int | None = None, lot_id: int | None = None, series: str | None = None) -> LedgerEvent:
    """Append one event to the chain, in the caller's transaction."""
    head = _lock_head(session)
    at = clock.now()
    fields = dict(seq=head.seq + 1, at=at, kind=kind, actor_user_id=by.user_id if by else None,
                  actor_org_id=by.organisation_id if by else None, producer_id=producer_id, printer_id=printer_id,
                  gi_id=gi_id, batch_id=batch_id, lot_id=lot_id, series=series,
                  ranges=[[int(a), int(b)] for a, b in ranges], count=int(count), reason=reason, data=data or {})
    alg = _hash_alg
    digest = event_hash(head.hash, fields, alg)
    event = LedgerEvent(**fields, prev_hash=head.hash, hash=digest, hash_alg=None if alg == "sha256" else alg)
    session.add(event)
    head.seq, head.hash = event.seq, digest
    session.flush()
    return event


@dataclass
class VerifyResult:
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None
    checkpoints_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "head_seq": self.head_seq, "head_hash": self.head_hash,
                "first_broken_seq": self.first_broken_seq, "problem": self.problem,
                "checkpoints_checked": self.checkpoints_checked}


def verify(session: Session, *, signer: "CheckpointSigner | None" = None, batch: int = 5000) -> VerifyResult:
    """Recompute the whole chain and name the first event that does not fit."""
    expected_seq, prev = 1, GENESIS
    hashes: dict[int, str] = {}
    count = 0
    checkpoints = {c.seq: c for c in session.scalars(select(LedgerCheckpoint))}
    last_seq = 0
    stmt = select(LedgerEvent).order_by(LedgerEvent.seq).execution_options(yield_per=batch)
    for event in session.scalars(stmt):
        count += 1
        fields = {name: getattr(event, name) for name in HASHED_FIELDS}
        if event.seq != expected_seq:
            if event.seq > expected_seq:  # a gap: the first missing event is the broken one
                return _broken(count, prev, expected_seq, f"expected event {expected_seq} next, found {event.seq}: "
                                                          "event(s) missing (deleted?)")
            return _broken(count, prev, event.seq, f"expected event {expected_seq} next, found {event.seq}: "
                                                   "events out of order or duplicated")
        if event.prev_hash != prev:
            return _broken(count, prev, event.seq, "its prev_hash is not the hash of the event before it "
                                                  "(an event before it was altered, deleted, inserted or reordered)")
        if event.hash_alg not in (None, *HASH_ALGS):
            return _broken(count, prev, event.seq, f"it names an unknown hash {event.hash_alg!r}")
        recomputed = event_hash(prev, fields, event.hash_alg)
        if recomputed != event.hash:
            return _broken(count, prev, event.seq, "its content does not match its hash (the row was altered)")
        if event.seq in checkpoints:
            hashes[event.seq] = event.hash
        prev, expected_seq, last_seq = event.hash, expected_seq + 1, event.seq
    head = session.get(LedgerHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (last_seq, prev):
        # Name the first event the head and the chain disagree about.
        broken = last_seq + 1 if head_seq > last_seq else (head_seq + 1 if head_seq < last_seq else head_seq)
        return _broken(count, prev, broken, f"the chain ends at event {last_seq} but the head records event "
                                            f"{head_seq}: events at the end were deleted, or the head was altered")
    checked = 0
    for seq, cp in sorted(checkpoints.items()):
        if hashes.get(seq) != cp.hash:
            return _broken(count, prev, seq, f"checkpoint {cp.id} signed hash {cp.hash[:12]}… for event {seq}, "
                                             "but the chain now differs there: history before it was rewritten")
        if signer is not None and not signer.verify_checkpoint(cp):
            return _broken(count, prev, seq, f"checkpoint {cp.id} has an invalid signature")
        checked += 1
    return VerifyResult(True, count, head_seq, head_hash, checkpoints_checked=checked)


def _broken(count: int, prev: str, seq: int, problem: str) -> VerifyResult:
    return VerifyResult(False, count, -1, prev, first_broken_seq=seq, problem=f"event {seq}: {problem}")


def consistency(session: Session, seq: int, expected_hash: str) -> dict[str, Any]:
    """Does the stored chain, recomputed from the start, still reach `expected_hash` at `seq`?"""
    prev = GENESIS
    reached = None
    stmt = (select(LedgerEvent).where(LedgerEvent.seq <= seq).order_by(LedgerEvent.seq)
            .execution_options(yield_per=5000))
    expected_seq = 1
    for event in session.scalars(stmt):
        if event.seq != expected_seq or event.prev_hash != prev:
            break
        prev = event_hash(prev, {name: getattr(event, name) for name in HASHED_FIELDS}, event.hash_alg)
        expected_seq += 1
        reached = event.seq
    consistent = reached == seq and prev == expected_hash
    return {"seq": seq, "expected_hash": expected_hash, "recomputed_hash": prev if reached == seq else None,
            "consistent": consistent}


# --- checkpoints -----------------------------------------------------------------------------

def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CheckpointSigner:
    """Signs and verifies checkpoints with the service's key: Ed25519, or SM2 (China's commercial
    cryptography suite) when the setting reads ``sm2:<base64url of the 32-byte private scalar>``."""

    def __init__(self, private_key_b64: str):
        text = private_key_b64.strip()
        self.algorithm = "SM2" if text.startswith("sm2:") else "Ed25519"
        seed = _b64decode(text[4:] if self.algorithm == "SM2" else text)
        if len(seed) != 32:
            raise ValueError("GI_LEDGER_SIGNING_KEY must be the base64url encoding of 32 bytes "
                             "(prefixed with sm2: for an SM2 key)")
        if self.algorithm == "SM2":
            from ..smcrypto import SM2Key

            self._sm2 = SM2Key(int.from_bytes(seed, "big"))
            raw = self._sm2.public_xy
            self.public_key = None
        else:
            self._private = Ed25519PrivateKey.from_private_bytes(seed)
            self.public_key = self._private.public_key()
            raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key_raw = raw
        self.public_key_b64 = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    def public_key_pem(self) -> str:
        if self.algorithm == "SM2":
            return self._sm2.public_key_pem()
        return self.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()

    # What a signature is over starts with the chain's name, so a ledger checkpoint cannot be passed off as
    # an audit trail's (services/audit.py signs "gi-audit-checkpoint") or the other way round.
    @staticmethod
    def message(seq: int, hash_: str, created_at: dt.datetime, domain: str = "gi-ledger-checkpoint") -> bytes:
        stamp = created_at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
        return f"{domain}|{seq}|{hash_}|{stamp}".encode()

    def sign(self, seq: int, hash_: str, created_at: dt.datetime, domain: str = "gi-ledger-checkpoint") -> str:
        message = self.message(seq, hash_, created_at, domain)
        if self.algorithm == "SM2":
            return base64.urlsafe_b64encode(self._sm2.sign(message)).decode()
        return base64.urlsafe_b64encode(self._private.sign(message)).decode()

    def verify_checkpoint(self, cp: LedgerCheckpoint, public_key: Ed25519PublicKey | None = None,
                          domain: str = "gi-ledger-checkpoint") -> bool:
        if self.algorithm == "SM2" and public_key is None:
            try:
                signature = _b64decode(cp.signature)
            except ValueError:
                return False
            return self._sm2.verify(self.message(cp.seq, cp.hash, cp.created_at, domain), signature)
        try:
            (public_key or self.public_key).verify(_b64decode(cp.signature), self.message(cp.seq, cp.hash,
                                                                                          cp.created_at, domain))
        except (InvalidSignature, ValueError):
            return False
        return True


def create_checkpoint(session: Session, signer: CheckpointSigner) -> LedgerCheckpoint:
    """Sign the current head (reusing the latest checkpoint when the head has not moved)."""
    head = session.get(LedgerHead, 1)
    seq, hash_ = (head.seq, head.hash) if head else (0, GENESIS)
    latest = session.scalar(select(LedgerCheckpoint).order_by(LedgerCheckpoint.id.desc()).limit(1))
    if latest is not None and latest.seq == seq and latest.hash == hash_:
        return latest
    now = clock.now()
    cp = LedgerCheckpoint(seq=seq, hash=hash_, created_at=now, key_id=signer.key_id,
                          signature=signer.sign(seq, hash_, now))
    session.add(cp)
    session.flush()
    return cp


def list_checkpoints(session: Session, limit: int = 100, before_id: int | None = None) -> list[LedgerCheckpoint]:
    stmt = select(LedgerCheckpoint).order_by(LedgerCheckpoint.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(LedgerCheckpoint.id < before_id)
    return list(session.scalars(stmt))


def get_event(session: Session, seq: int) -> LedgerEvent:
    event = session.get(LedgerEvent, seq)
    if event is None:
        raise NotFound(f"ledger event {seq} does not exist", code="event_not_found")
    return event


def event_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LedgerEvent)) or 0)


def event_dict(event: LedgerEvent) -> dict[str, Any]:
    return {name: (_canonical_value(name, getattr(event, name))) for name in HASHED_FIELDS} | {
        "prev_hash": event.prev_hash, "hash": event.hash}

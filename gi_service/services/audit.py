"""The audit trail: who did what, when and from where, tamper-evident and kept for the retention period.

Records (``models.AuditRecord``) are written by the faces (``http/audit.py`` for the API and the pages,
``cli.py`` for the operator's commands): a successful write's record is added to the write's own
transaction, a failed write's record is written in a transaction of its own after the rollback. Neither
touches the chain: a record is inserted with no chain fields, so writers never queue on a shared row.

**Sequencing after commit.** ``seal`` chains the records not chained yet, in id order, under the lock of
the single ``audit_head`` row: each gets the next ``seq``, the previous record's hash, and its own hash —
SHA-256 or SM3 over the previous hash and the record's canonical JSON, the same link as the ledger's
(``ledger.chain_hash``), the hash named in the record (``hash_alg``). The process seals right after each
audited request (skipping when another sealer holds the head: that one, the next request or the cron
command `gi-service audit seal` takes the record), so only sealers ever wait for one another, never the
writers. A record committed by a slow transaction after a higher id was sealed is simply sealed next: the
chain's order is ``seq``, the order records were sealed in.

**Tamper evidence.** ``verify`` recomputes the chain and names the first record that does not fit (a
changed, deleted or inserted record, or a rewritten head). Signed checkpoints (``checkpoint``; Ed25519 or
SM2 with the ledger's key, over "gi-audit-checkpoint|seq|hash|time") let anyone who saved one show later
that the history up to it was not rewritten. **Pruning** (``prune``) keeps records for at least the
retention period (GI_AUDIT_RETENTION_DAYS, 180 days at least in production: Cybersecurity Law Art. 21);
it signs a "prune" checkpoint at the cut and deletes the records up to it in one transaction, and
verification of what remains starts from that signed checkpoint.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterator

from sqlalchemy import delete, event, func, or_, select
from sqlalchemy.orm import Session

from .. import clock
from ..config import AUDIT_MIN_RETENTION_DAYS as MIN_RETENTION_DAYS  # Cybersecurity Law, Art. 21: six months
from ..errors import Forbidden, ValidationFailed
from ..models import AuditCheckpoint, AuditHead, AuditRecord, OrgKind
from . import ledger
from .accounts import Principal
from .jurisdiction import jurisdiction_codes

GENESIS = ledger.GENESIS
SIGNATURE_DOMAIN = "gi-audit-checkpoint"
SUCCESS, FAILURE = "success", "failure"
CHANNELS = ("api", "web", "cli")

# The fields a record's hash covers, in the canonical JSON (with its hash_alg).
HASHED_FIELDS = ("seq", "id", "at", "channel", "action", "method", "path", "target", "outcome", "error_code",
                 "http_status", "user_id", "username", "organisation_id", "role", "org_adcode", "token_id",
                 "address", "request_id", "detail")
# What a record says, in the order the files (CSV, the backup) and the API list it.
RECORD_FIELDS = ("id", "seq", "at", "channel", "action", "target", "outcome", "error_code", "http_status",
                 "user_id", "username", "organisation_id", "role", "org_adcode", "token_id", "address",
                 "request_id", "method", "path", "detail")
CHAIN_FIELDS = ("prev_hash", "hash", "hash_alg", "sealed_at")


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def record_hash(prev_hash: str, record: AuditRecord, alg: str) -> str:
    """The link of `record` after `prev_hash`, with hash function `alg` (sha256 or sm3), named in the JSON."""
    body = {name: getattr(record, name) for name in HASHED_FIELDS}
    body["at"] = _iso(record.at)
    body["detail"] = record.detail or {}
    body["hash_alg"] = alg
    return ledger.chain_hash(prev_hash, body, alg)


# --- sealing (the sequencer) ---------------------------------------------------------------------------

def _lock_head(session: Session, *, wait: bool) -> AuditHead | None:
    stmt = select(AuditHead).where(AuditHead.id == 1).with_for_update(skip_locked=not wait)
    head = session.scalar(stmt)
    if head is None:
        if not wait and session.get(AuditHead, 1) is not None:
            return None                 # another sealer holds it (PostgreSQL)
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def seal(session: Session, *, wait: bool = True, limit: int = 10_000) -> int:
    """Chain the records not chained yet, oldest id first (at most `limit`); the number chained.

    `wait=False`: give up at once when another sealer holds the head (PostgreSQL; SQLite's write lock
    serialises sealers anyway). Run in a transaction of its own, committed by the caller."""
    head = _lock_head(session, wait=wait)
    if head is None:
        return 0
    rows = list(session.scalars(select(AuditRecord).where(AuditRecord.seq.is_(None)).order_by(AuditRecord.id)
                                .limit(limit)))
    alg, now = ledger.current_hash_alg(), clock.now()
    for record in rows:
        record.seq, record.prev_hash, record.hash_alg, record.sealed_at = head.seq + 1, head.hash, alg, now
        record.hash = record_hash(head.hash, record, alg)
        head.seq, head.hash = record.seq, record.hash
    session.flush()
    return len(rows)


def pending(session: Session) -> int:
    """How many records wait to be chained."""
    return int(session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.seq.is_(None))) or 0)


# --- checkpoints and verification ----------------------------------------------------------------------

def checkpoint(session: Session, signer: ledger.CheckpointSigner, *, kind: str = "checkpoint",
               seq: int | None = None, hash_: str | None = None, records_pruned: int = 0) -> AuditCheckpoint:
    """Sign (seq, hash) — by default the head's — as a checkpoint; reuses the latest when the head has not moved."""
    if seq is None:
        head = session.get(AuditHead, 1)
        seq, hash_ = (head.seq, head.hash) if head else (0, GENESIS)
        latest = session.scalar(select(AuditCheckpoint).where(AuditCheckpoint.kind == kind)
                                .order_by(AuditCheckpoint.id.desc()).limit(1))
        if latest is not None and (latest.seq, latest.hash) == (seq, hash_):
            return latest
    now = clock.now()
    cp = AuditCheckpoint(kind=kind, seq=seq, hash=hash_, created_at=now, key_id=signer.key_id,
                         signature=signer.sign(seq, hash_, now, SIGNATURE_DOMAIN), records_pruned=records_pruned)
    session.add(cp)
    session.flush()
    return cp


@dataclass
class VerifyResult:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    start_seq: int = 0                  # the signed prune checkpoint verification started from (0: genesis)
    pending: int = 0
    first_broken_seq: int | None = None
    problem: str | None = None
    checkpoints_checked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("ok", "records", "head_seq", "head_hash", "start_seq", "pending",
                                              "first_broken_seq", "problem", "checkpoints_checked")}


def verify(session: Session, *, signer: ledger.CheckpointSigner | None = None, batch: int = 5000) -> VerifyResult:
    """Recompute the chain from genesis, or from the signed prune checkpoint just before the oldest record
    kept, and name the first record that does not fit; then check every later checkpoint against it.

    Everything is read from one snapshot (PostgreSQL: REPEATABLE READ; SQLite's read transaction is one), so
    records sealed meanwhile are not mistaken for records appended behind the head's back."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    checkpoints = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)))
    prunes = {cp.seq: cp for cp in checkpoints if cp.kind == "prune"}
    waiting = pending(session)
    first = session.scalar(select(func.min(AuditRecord.seq)))
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    start_seq, prev = 0, GENESIS
    latest_prune = max(prunes) if prunes else 0
    if first is None:                       # no sealed record: everything was pruned, or nothing happened yet
        start_seq = latest_prune
        prev = prunes[latest_prune].hash if prunes else GENESIS
    elif first > 1:
        cp = prunes.get(first - 1)
        if cp is None:
            return _broken(0, prev, 1 if not prunes else latest_prune + 1, waiting,
                           f"the oldest record kept is {first}, but no signed prune checkpoint covers records "
                           f"before it: record(s) {max(latest_prune, 0) + 1}–{first - 1} were deleted")
        start_seq, prev = cp.seq, cp.hash
    if start_seq and signer is not None and not signer.verify_checkpoint(prunes[start_seq],
                                                                         domain=SIGNATURE_DOMAIN):
        return _broken(0, prev, start_seq + 1, waiting,
                       f"the prune checkpoint {prunes[start_seq].id} at record {start_seq} has an invalid signature")
    expected, count, last = start_seq + 1, 0, start_seq
    hashes: dict[int, str] = {start_seq: prev} if start_seq else {}
    wanted = {cp.seq for cp in checkpoints}
    stmt = (select(AuditRecord).where(AuditRecord.seq.is_not(None)).order_by(AuditRecord.seq)
            .execution_options(yield_per=batch))
    for record in session.scalars(stmt):
        count += 1
        if record.seq != expected:
            why = ("record(s) missing (deleted?)" if record.seq > expected else "records out of order or duplicated")
            return _broken(count, prev, expected if record.seq > expected else record.seq, waiting,
                           f"expected record {expected} next, found {record.seq}: {why}")
        if record.prev_hash != prev:
            return _broken(count, prev, record.seq, waiting, "its prev_hash is not the hash of the record before it "
                           "(a record before it was altered, deleted, inserted or reordered)")
        if record.hash_alg not in ledger.HASH_ALGS:
            return _broken(count, prev, record.seq, waiting, f"it names an unknown hash {record.hash_alg!r}")
        if record_hash(prev, record, record.hash_alg) != record.hash:
            return _broken(count, prev, record.seq, waiting, "its content does not match its hash (the record was "
                                                             "altered)")
        if record.seq in wanted:
            hashes[record.seq] = record.hash
        prev, expected, last = record.hash, expected + 1, record.seq
    if (head_seq, head_hash) != (last, prev):
        broken = last + 1 if head_seq > last else min(head_seq + 1, last)
        return _broken(count, prev, broken, waiting, f"the chain ends at record {last} but the head records "
                       f"{head_seq}: records at the end were deleted or inserted, or the head was altered")
    checked = 0
    for cp in checkpoints:
        if cp.seq < start_seq:
            continue                        # before the cut: its records are gone, its signature stays
        if cp.seq > 0 and hashes.get(cp.seq) != cp.hash:
            return _broken(count, prev, cp.seq, waiting, f"checkpoint {cp.id} signed hash {cp.hash[:12]}… for "
                           f"record {cp.seq}, but the chain now differs there: history before it was rewritten")
        if signer is not None and not signer.verify_checkpoint(cp, domain=SIGNATURE_DOMAIN):
            return _broken(count, prev, cp.seq, waiting, f"checkpoint {cp.id} has an invalid signature")
        checked += 1
    return VerifyResult(True, count, head_seq, head_hash, start_seq=start_seq, pending=waiting,
                        checkpoints_checked=checked)


def _broken(count: int, prev: str, seq: int, waiting: int, problem: str) -> VerifyResult:
    return VerifyResult(False, count, -1, prev, pending=waiting, first_broken_seq=seq,
                        problem=f"record {seq}: {problem}")


# --- retention -------------------------------------------------------------------------------------------

@dataclass
class PruneResult:
    cutoff: dt.datetime
    cut_seq: int
    deleted: int
    checkpoint_id: int | None = None
    notes: list[str] = field(default_factory=list)


def prune(session: Session, signer: ledger.CheckpointSigner, *, retention_days: int,
          minimum_days: int = MIN_RETENTION_DAYS) -> PruneResult:
    """Delete the records older than `retention_days` (never fewer than `minimum_days`), leaving a signed
    "prune" checkpoint at the cut so that what remains stays verifiable. Seals first; caller commits.

    The cut is the last record before the first one still within the period, so a record older than the
    cut-off but sealed after a newer one is kept a little longer, never dropped early."""
    if retention_days < minimum_days:
        raise ValidationFailed(f"audit records are kept at least {minimum_days} days; got {retention_days}",
                               code="retention_too_short")
    seal(session)
    cutoff = clock.now() - dt.timedelta(days=retention_days)
    head = session.get(AuditHead, 1)
    first_kept = session.scalar(select(func.min(AuditRecord.seq)).where(AuditRecord.seq.is_not(None),
                                                                        AuditRecord.at >= cutoff))
    cut = (first_kept - 1) if first_kept is not None else (head.seq if head else 0)
    oldest = session.scalar(select(func.min(AuditRecord.seq)))
    if oldest is None or cut < oldest:
        return PruneResult(cutoff, cut, 0)
    cut_hash = session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == cut))
    deleted = session.execute(delete(AuditRecord).where(AuditRecord.seq <= cut)).rowcount or 0
    cp = checkpoint(session, signer, kind="prune", seq=cut, hash_=cut_hash, records_pruned=deleted)
    return PruneResult(cutoff, cut, deleted, cp.id)


# --- reading --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """A search of the trail; every given field narrows it."""
    username: str | None = None
    user_id: int | None = None
    organisation_id: int | None = None
    action: str | None = None          # exact, or a prefix ending in "*" (api.*, web.login*)
    target: str | None = None          # exact, or the records of a resource and those below it (gi:3 → gi:3/…)
    outcome: str | None = None
    channel: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None   # exclusive


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(by: Principal, filters: Filters, *, before_id: int | None = None):
    """The records `by` may read that match `filters`, newest first (a select; page it with `before_id`).

    Only authorities read the trail, each for the organisations in its jurisdiction; the national
    authority also reads what no organisation did (the operator's commands, sign-ins of unknown names)."""
    if by.org_kind != OrgKind.authority:
        raise Forbidden("the audit trail is read by authorities", code="wrong_role")
    stmt = select(AuditRecord).order_by(AuditRecord.id.desc())
    codes = jurisdiction_codes(by.adcode)
    if codes is not None:
        stmt = stmt.where(AuditRecord.org_adcode.in_(codes))
    f = filters
    if f.username is not None:
        stmt = stmt.where(AuditRecord.username == f.username)
    if f.user_id is not None:
        stmt = stmt.where(AuditRecord.user_id == f.user_id)
    if f.organisation_id is not None:
        stmt = stmt.where(AuditRecord.organisation_id == f.organisation_id)
    if f.action:
        if f.action.endswith("*"):
            stmt = stmt.where(AuditRecord.action.like(_escape_like(f.action[:-1]) + "%", escape="\\"))
        else:
            stmt = stmt.where(AuditRecord.action == f.action)
    if f.target:
        stmt = stmt.where(or_(AuditRecord.target == f.target,
                              AuditRecord.target.like(_escape_like(f.target) + "/%", escape="\\")))
    if f.outcome is not None:
        stmt = stmt.where(AuditRecord.outcome == f.outcome)
    if f.channel is not None:
        stmt = stmt.where(AuditRecord.channel == f.channel)
    if f.since is not None:
        stmt = stmt.where(AuditRecord.at >= f.since)
    if f.until is not None:
        stmt = stmt.where(AuditRecord.at < f.until)
    if before_id is not None:
        stmt = stmt.where(AuditRecord.id < before_id)
    return stmt


def record_dict(record: AuditRecord, *, chain: bool = False) -> dict[str, Any]:
    out = {name: getattr(record, name) for name in RECORD_FIELDS}
    out["at"] = _iso(record.at)
    out["detail"] = record.detail or {}
    if chain:
        out.update({name: getattr(record, name) for name in CHAIN_FIELDS})
        out["sealed_at"] = _iso(record.sealed_at)
    return out


def checkpoint_dict(cp: AuditCheckpoint) -> dict[str, Any]:
    return {"id": cp.id, "kind": cp.kind, "seq": cp.seq, "hash": cp.hash, "created_at": _iso(cp.created_at),
            "key_id": cp.key_id, "signature": cp.signature, "records_pruned": cp.records_pruned}


def export(session: Session, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every record with its chain fields, in id order (the full backup)."""
    stmt = select(AuditRecord).order_by(AuditRecord.id).execution_options(yield_per=batch)
    for record in session.scalars(stmt):
        yield record_dict(record, chain=True)


# --- capturing (shared by the faces: http/audit.py for requests, cli.py for commands) ---------------------

@dataclass
class Capture:
    """The audit record of one action in progress: who, what and from where, before its outcome is known.

    A successful write's record is added to the committing session by the `before_commit` hook below (so
    it commits with the write); the face writes a failure (or a write that committed nothing through a
    watched session) in a transaction of its own with `record(...)`."""
    channel: str
    action: str
    method: str | None = None
    path: str | None = None
    target: str | None = None
    address: str | None = None
    request_id: str | None = None
    success_status: int | None = None
    user_id: int | None = None
    username: str | None = None
    organisation_id: int | None = None
    role: str | None = None
    org_adcode: str | None = None
    token_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    written: bool = False

    def act_as(self, principal: Principal | None) -> None:
        """Name who acts (a signed-in caller, or the account a sign-in just proved)."""
        if principal is None:
            return
        self.user_id, self.username = principal.user_id, principal.username
        self.organisation_id, self.role = principal.organisation_id, principal.kind
        self.org_adcode, self.token_id = principal.adcode, principal.token_id

    def record(self, outcome: str, *, error_code: str | None = None, http_status: int | None = None,
               **detail: Any) -> AuditRecord:
        clip = lambda text, n: None if text is None else str(text)[:n]  # noqa: E731
        return AuditRecord(
            at=clock.now(), channel=self.channel, action=self.action[:100], method=self.method,
            path=clip(self.path, 500), target=clip(self.target, 200), outcome=outcome,
            error_code=clip(error_code, 64), http_status=http_status, user_id=self.user_id,
            username=clip(self.username, 64), organisation_id=self.organisation_id, role=self.role,
            org_adcode=self.org_adcode, token_id=self.token_id, address=clip(self.address, 64),
            request_id=clip(self.request_id, 64), detail={**self.detail, **detail})


# Each face tells the hook which capture, if any, a committing session carries (None: not an audited one).
_capture_finders: list = []


def watch_commits(finder) -> None:
    """Register `finder(session) -> Capture | None`; its capture's success record joins that session's commit."""
    if finder not in _capture_finders:
        _capture_finders.append(finder)


def _stage_on_commit(session: Session) -> None:
    # SQLAlchemy calls before_commit (and after_commit) for a savepoint's release too: the record waits for
    # the request's real commit, so that what the view notes after a service's savepoint is in it.
    if session.in_nested_transaction():
        return
    # Only a commit that writes carries the success record: a commit of nothing (a view that answered an error
    # without raising, a no-op) leaves the record to the face, written with the answer's real outcome.
    if not (session.info.get("gi_wrote") or session.new or session.dirty or session.deleted):
        return
    for finder in _capture_finders:
        capture = finder(session)
        if capture is not None and not capture.written:
            session.add(capture.record(SUCCESS, http_status=capture.success_status))
            capture.written = True
            return

def _wrote(session: Session) -> None:
    session.info["gi_wrote"] = True


def _statement_writes(state) -> None:
    if not state.is_select:             # an ORM or textual UPDATE/DELETE/INSERT (or anything not a plain read)
        _wrote(state.session)


def _transaction_over(session: Session, *_args) -> None:
    if not session.in_nested_transaction():       # a savepoint released: the writes before it still count
        session.info.pop("gi_wrote", None)


def _rolled_back(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:           # a savepoint rolled back: the writes before it still count
        session.info.pop("gi_wrote", None)


event.listen(Session, "before_commit", _stage_on_commit)
event.listen(Session, "after_flush", lambda session, _context: _wrote(session))
event.listen(Session, "do_orm_execute", _statement_writes)
event.listen(Session, "after_commit", _transaction_over)
event.listen(Session, "after_soft_rollback", _rolled_back)

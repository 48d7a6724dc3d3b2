"""The audit trail of staff actions: one record per write and per sign-in attempt, hash-chained after commit."""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, JSONType, timestamp

BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditRecord(Base):
    """Who (user, organisation, role) did what (action, target, outcome, error code), when, from where.

    A record is inserted without its chain fields (seq, prev_hash, hash, hash_alg) in the transaction of the
    write it describes; the sequencer (services/audit.py `seal`) chains records after commit, so writers never
    wait for one another on the chain's head."""

    __tablename__ = "audit_records"
    __table_args__ = (
        # The sequencer's work list: records not chained yet (a handful at any time).
        Index("ix_audit_records_unsealed", "id", postgresql_where=text("seq IS NULL"),
              sqlite_where=text("seq IS NULL")),
        # Ids are never reused after pruning (SQLite's AUTOINCREMENT; a sequence on PostgreSQL).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[timestamp] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(8))            # api, web or cli
    action: Mapped[str] = mapped_column(String(100), index=True)
    method: Mapped[Optional[str]] = mapped_column(String(8))
    path: Mapped[Optional[str]] = mapped_column(String(500))
    target: Mapped[Optional[str]] = mapped_column(String(200), index=True)
    outcome: Mapped[str] = mapped_column(String(8))             # success or failure
    error_code: Mapped[Optional[str]] = mapped_column(String(64))
    http_status: Mapped[Optional[int]] = mapped_column(Integer)
    # Who, as they were at the time (no foreign keys: a record outlives what it names).
    user_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    username: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    organisation_id: Mapped[Optional[int]] = mapped_column(Integer, index=True)
    role: Mapped[Optional[str]] = mapped_column(String(32))
    org_adcode: Mapped[Optional[str]] = mapped_column(String(6), index=True)
    token_id: Mapped[Optional[int]] = mapped_column(Integer)
    address: Mapped[Optional[str]] = mapped_column(String(64))
    request_id: Mapped[Optional[str]] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    # The chain, filled by the sequencer: position, previous hash, own hash and the hash function it names.
    seq: Mapped[Optional[int]] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[Optional[str]] = mapped_column(String(64))
    hash: Mapped[Optional[str]] = mapped_column(String(64))
    hash_alg: Mapped[Optional[str]] = mapped_column(String(8))
    sealed_at: Mapped[Optional[dt.datetime]]


class AuditHead(Base):
    """The chain's head (single row), locked by the sequencer only, never by a writer."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed (seq, hash, time) of the audit chain; `kind` "prune" marks the cut of a pruning, where
    verification of the remaining records starts."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[timestamp]
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(200))
    records_pruned: Mapped[int] = mapped_column(BigInteger, default=0)

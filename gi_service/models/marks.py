"""The special-mark ledger: quotas, requests, batches, serial ranges, lots and the event chain.

Storage is O(1) rows per batch: a batch owns contiguous serial ranges and a range is
split only where the fate of part of it differs (printed, spoiled, issued, activated,
voided, lost). Every state change also appends one hash-chained LedgerEvent.
"""
from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Optional

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, JSONType, intpk, timestamp
from .accounts import Organisation, enum_column
from .registry import GIProduct


class QuotaAccount(Base):
    """One producer's yearly quota for one GI, in grams (integers: no rounding drift)."""

    __tablename__ = "quota_accounts"
    __table_args__ = (
        UniqueConstraint("year", "producer_id", "gi_id", name="uq_quota_accounts_year_producer_gi"),
        # The database itself refuses an overspent account, whatever the application does.
        CheckConstraint("base_g + adjusted_g + transferred_in_g - transferred_out_g - consumed_g >= 0",
                        name="not_overspent"),
        CheckConstraint("consumed_g >= 0 AND transferred_in_g >= 0 AND transferred_out_g >= 0 AND base_g >= 0",
                        name="non_negative"),
    )

    id: Mapped[intpk]
    year: Mapped[int]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    base_g: Mapped[int] = mapped_column(BigInteger)
    adjusted_g: Mapped[int] = mapped_column(BigInteger, default=0)
    transferred_in_g: Mapped[int] = mapped_column(BigInteger, default=0)
    transferred_out_g: Mapped[int] = mapped_column(BigInteger, default=0)
    consumed_g: Mapped[int] = mapped_column(BigInteger, default=0)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[timestamp]

    producer: Mapped[Organisation] = relationship(foreign_keys=[producer_id])
    gi: Mapped[GIProduct] = relationship(foreign_keys=[gi_id])

    @property
    def allocated_g(self) -> int:
        return self.base_g + self.adjusted_g + self.transferred_in_g - self.transferred_out_g

    @property
    def available_g(self) -> int:
        return self.allocated_g - self.consumed_g


class QuotaEntry(Base):
    """Append-only movements of a quota account (open, adjust, transfer, consume, release)."""

    __tablename__ = "quota_entries"

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("quota_accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_g: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(1000))
    counterparty_account_id: Mapped[Optional[int]] = mapped_column(ForeignKey("quota_accounts.id"))
    request_id: Mapped[Optional[int]] = mapped_column(ForeignKey("mark_requests.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[timestamp]


class RequestStatus(str, enum.Enum):
    requested = "requested"
    approved = "approved"
    refused = "refused"
    cancelled = "cancelled"


class MarkRequest(Base):
    """A producer's request for a batch of special marks."""

    __tablename__ = "mark_requests"
    __table_args__ = (
        CheckConstraint("quantity > 0 AND pack_size_g > 0", name="positive"),
    )

    id: Mapped[intpk]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    year: Mapped[int]
    pack_size_g: Mapped[int]
    quantity: Mapped[int] = mapped_column(BigInteger)
    gtin: Mapped[Optional[str]] = mapped_column(String(14))
    note: Mapped[Optional[str]] = mapped_column(String(1000))
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus, "request_status"), index=True)
    decision_reason: Mapped[Optional[str]] = mapped_column(String(1000))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[timestamp]
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[Optional[dt.datetime]]

    producer: Mapped[Organisation] = relationship(foreign_keys=[producer_id])
    gi: Mapped[GIProduct] = relationship(foreign_keys=[gi_id])

    @property
    def quota_g(self) -> int:
        return self.pack_size_g * self.quantity


class BatchStatus(str, enum.Enum):
    approved = "approved"      # serials allocated, no printer yet
    ordered = "ordered"        # print order placed with a printer
    printed = "printed"        # printer reported the print run (spoils listed)
    issued = "issued"          # every good mark handed to the producer
    closed = "closed"          # nothing left to do (e.g. all spoiled or voided)


class MarkBatch(Base):
    """An approved batch: one contiguous serial range of one series, O(1) rows whatever its size."""

    __tablename__ = "mark_batches"
    __table_args__ = (
        UniqueConstraint("series", "seq_start", name="uq_mark_batches_series_seq_start"),
        CheckConstraint("seq_end >= seq_start", name="range_order"),
    )

    id: Mapped[intpk]
    request_id: Mapped[int] = mapped_column(ForeignKey("mark_requests.id"), unique=True)
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    printer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"), index=True)
    year: Mapped[int]
    series: Mapped[str] = mapped_column(String(6))
    seq_start: Mapped[int] = mapped_column(BigInteger)
    seq_end: Mapped[int] = mapped_column(BigInteger)
    pack_size_g: Mapped[int]
    # Indexed: the GS1 resolver's walk-up (/01/{gtin}, /p/{gtin}) finds a GTIN's batches by it.
    gtin: Mapped[Optional[str]] = mapped_column(String(14), index=True)
    key_id: Mapped[str] = mapped_column(String(1))
    status: Mapped[BatchStatus] = mapped_column(enum_column(BatchStatus, "batch_status"), index=True)
    approved_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[timestamp]
    ordered_at: Mapped[Optional[dt.datetime]]
    printed_at: Mapped[Optional[dt.datetime]]
    issued_at: Mapped[Optional[dt.datetime]]
    # Print files handed out for this order; more than one download is flagged for the authority.
    print_downloads: Mapped[int] = mapped_column(default=0, server_default="0")
    last_download_at: Mapped[Optional[dt.datetime]]

    producer: Mapped[Organisation] = relationship(foreign_keys=[producer_id])
    printer: Mapped[Optional[Organisation]] = relationship(foreign_keys=[printer_id])
    gi: Mapped[GIProduct] = relationship(foreign_keys=[gi_id])

    @property
    def quantity(self) -> int:
        return self.seq_end - self.seq_start + 1


class MarkState(str, enum.Enum):
    allocated = "allocated"    # approved, not yet printed
    printed = "printed"        # in the printer's stock
    spoiled = "spoiled"        # spoiled in printing (never issued)
    issued = "issued"          # in the producer's stock
    activated = "activated"    # applied to a tested production lot
    voided = "voided"          # damaged, returned or destroyed
    lost = "lost"              # reported lost
    stolen = "stolen"          # reported stolen


class MarkRange(Base):
    """Contiguous serials of one batch sharing one fate."""

    __tablename__ = "mark_ranges"
    __table_args__ = (
        UniqueConstraint("series", "seq_start", name="uq_mark_ranges_series_seq_start"),
        CheckConstraint("seq_end >= seq_start", name="range_order"),
    )

    id: Mapped[intpk]
    batch_id: Mapped[int] = mapped_column(ForeignKey("mark_batches.id"), index=True)
    series: Mapped[str] = mapped_column(String(6))
    seq_start: Mapped[int] = mapped_column(BigInteger)
    seq_end: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[MarkState] = mapped_column(enum_column(MarkState, "mark_state"))
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"), index=True)
    reason: Mapped[Optional[str]] = mapped_column(String(1000))
    event_seq: Mapped[int] = mapped_column(BigInteger)   # the ledger event that gave this range its state
    updated_at: Mapped[timestamp]

    @property
    def count(self) -> int:
        return self.seq_end - self.seq_start + 1


class SerialCounter(Base):
    """The next free sequence number of a series (GI prefix + year); only ever increases."""

    __tablename__ = "serial_counters"

    series: Mapped[str] = mapped_column(String(6), primary_key=True)
    next_seq: Mapped[int] = mapped_column(BigInteger)


class LotStatus(str, enum.Enum):
    active = "active"
    recalled = "recalled"


class Lot(Base):
    """A production lot that passed its quality test; marks are activated on it."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("producer_id", "lot_no", name="uq_lots_producer_id_lot_no"),)

    id: Mapped[intpk]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    lot_no: Mapped[str] = mapped_column(String(64))
    production_date: Mapped[dt.date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(BigInteger)        # number of packs
    pack_size_g: Mapped[int]
    test_report_no: Mapped[str] = mapped_column(String(100))
    testing_body: Mapped[str] = mapped_column(String(200))
    test_passed: Mapped[bool]
    status: Mapped[LotStatus] = mapped_column(enum_column(LotStatus, "lot_status"))
    recall_reason: Mapped[Optional[str]] = mapped_column(String(1000))
    recalled_at: Mapped[Optional[dt.datetime]]
    created_at: Mapped[timestamp]


class LedgerEvent(Base):
    """One append-only, hash-chained ledger event (who, when, what range, counts, why)."""

    __tablename__ = "ledger_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[timestamp]
    kind: Mapped[str] = mapped_column(String(32), index=True)
    actor_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    actor_org_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"))
    producer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"), index=True)
    printer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"))
    gi_id: Mapped[Optional[int]] = mapped_column(ForeignKey("gis.id"))
    batch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("mark_batches.id"), index=True)
    lot_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lots.id"))
    series: Mapped[Optional[str]] = mapped_column(String(6))
    ranges: Mapped[list[Any]] = mapped_column(JSONType(), default=list)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[Optional[str]] = mapped_column(String(1000))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The hash this event is chained with: NULL for SHA-256, "sm3" under the SM suite (services/ledger.py).
    hash_alg: Mapped[Optional[str]] = mapped_column(String(8))


class LedgerHead(Base):
    """The chain's head (single row), locked by each append so events are strictly ordered."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class LedgerCheckpoint(Base):
    """A signed statement of the chain head: (seq, hash, time), verifiable with the public key."""

    __tablename__ = "ledger_checkpoints"

    id: Mapped[intpk]
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[timestamp]
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(200))


class IdempotencyRecord(Base):
    """The first answer to a POST carrying an Idempotency-Key, replayed to retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_records_user_id_key"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[Optional[int]]
    response: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType())
    created_at: Mapped[timestamp]

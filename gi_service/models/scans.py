"""Consumer checks of special-mark codes: one small row per check, and one summary row per serial.

A ``Scan`` is written for every check (GET of a verification page or answer): when, the
verdict, the serial the code names (if it names one), a keyed daily-rotating hash of the
caller's IP (never the IP itself) and a coarse user-agent class. Location is added only if
the consumer chooses to share it, rounded to 0.01° with its county adcode.

``MarkCheck`` keeps per-serial counters ("checked N times, first on DATE in CITY") so the
page never counts scans: each process buffers its checks and a flusher writes them with one
aggregated upsert of these counters in the same transaction (services/checklog.py).
"""
from __future__ import annotations

import datetime as dt
import enum
from typing import Optional

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, timestamp
from .accounts import enum_column

# 64-bit ids on PostgreSQL (scans grow without bound); SQLite only auto-increments INTEGER keys.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Verdict(str, enum.Enum):
    """What a check of a code concluded (see services/verification.py for the order of checks)."""

    genuine = "genuine"                                  # activated on an active lot, authorization in force
    genuine_not_activated = "genuine_not_activated"      # real label, never activated: must not be on sale
    voided = "voided"                                    # voided (or spoiled in printing)
    lost_or_stolen = "lost_or_stolen"                    # reported lost or stolen
    recalled = "recalled"                                # its lot was recalled
    authorization_suspended = "authorization_suspended"  # the producer's right to the mark is not in force
    unknown = "unknown"                                  # MAC fails, or a valid MAC for a serial never issued
    malformed = "malformed"                              # not shaped like a code


class UAClass(str, enum.Enum):
    """A coarse class of the caller's user agent (the string itself is not kept)."""

    mobile = "mobile"
    in_app = "in_app"        # WeChat, Alipay, ... in-app browsers
    desktop = "desktop"
    bot = "bot"              # crawlers and link-preview fetchers: logged, not counted as checks
    other = "other"


class Scan(Base):
    """One consumer check of a code."""

    __tablename__ = "scans"
    __table_args__ = (
        # Per-serial history (copied-label signals). Ids come in blocks per process (services/checklog.py):
        # they are unique but not in time order across processes; compare checks by `at`.
        Index("ix_scans_series_seq", "series", "seq"),
        # Bursts of unknown codes from one client (the hash rotates daily).
        Index("ix_scans_ip_hash_at", "ip_hash", "at"),
        # SQLite: sqlite_sequence is the id sequence the check log takes blocks from (services/checklog.py).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[timestamp]
    # The serial the code names: verified when mac_ok, merely claimed otherwise; None if malformed.
    series: Mapped[Optional[str]] = mapped_column(String(6))
    seq: Mapped[Optional[int]] = mapped_column(BigInteger)
    mac_ok: Mapped[bool]
    verdict: Mapped[Verdict] = mapped_column(enum_column(Verdict, "scan_verdict"))
    # Why, in a word: never_issued, bad_mac, no_tag, gtin_mismatch, spoiled, lost, stolen, suspended, ...
    detail: Mapped[Optional[str]] = mapped_column(String(32))
    # HMAC-SHA256 of the IP under a key derived from the secret and the (China) date; 128 bits, hex.
    ip_hash: Mapped[Optional[str]] = mapped_column(String(32))
    ua_class: Mapped[UAClass] = mapped_column(enum_column(UAClass, "ua_class"))
    # Only if the consumer shared it: rounded to 0.01° (about 1 km), and its county.
    lat: Mapped[Optional[float]] = mapped_column(Float)
    lon: Mapped[Optional[float]] = mapped_column(Float)
    adcode: Mapped[Optional[str]] = mapped_column(String(6))
    located_at: Mapped[Optional[dt.datetime]]


class MarkCheck(Base):
    """Running counters of the checks of one serial, kept in step with ``scans``."""

    __tablename__ = "mark_checks"

    series: Mapped[str] = mapped_column(String(6), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    first_scan_id: Mapped[int] = mapped_column(BigInteger)
    # The county of the first check, if that consumer shared a location.
    first_adcode: Mapped[Optional[str]] = mapped_column(String(6))
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_scan_id: Mapped[int] = mapped_column(BigInteger)
    # The county of the latest check that shared a location, and when it was shared.
    last_adcode: Mapped[Optional[str]] = mapped_column(String(6))
    last_located_at: Mapped[Optional[dt.datetime]]
    # The scan whose location last_adcode is (locations may be shared out of order).
    last_located_scan_id: Mapped[Optional[int]] = mapped_column(BigInteger)
    # Set when a copied-label alert names this serial; the page then warns the consumer.
    suspect_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    # The alert kinds raised, comma-separated (e.g. "too_many_checks,impossible_travel").
    suspect_reasons: Mapped[Optional[str]] = mapped_column(String(120))


class ScanIdBlock(Base):
    """A block of check ids one process took (services/checklog.py): ids exist before their rows.

    Taking a block is a committed write, so no block is ever handed out twice, even across a crash.
    """

    __tablename__ = "scan_id_blocks"

    first_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    host: Mapped[Optional[str]] = mapped_column(String(64))
    pid: Mapped[Optional[int]] = mapped_column(Integer)


class ReplicationHeartbeat(Base):
    """One row the primary keeps fresh while standbys serve reads; a standby's copy is as old as its lag
    (gi_service/replicas.py)."""

    __tablename__ = "replication_heartbeat"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

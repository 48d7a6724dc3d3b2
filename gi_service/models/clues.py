"""Clues for the inspectors' queue: copied-label alerts and consumers' reports of suspected fakes.

A ``Clue`` is anything that may start an investigation. Two kinds exist so far:

* ``alert`` — raised by the service itself from the scan log (services/signals.py): too many
  checks of one code, impossible travel between two checks, a check far outside the GI's
  declared sales regions, or a burst of unknown codes from one client. One alert per
  (signal, subject): a repeat bumps ``occurrences`` and ``last_at`` instead of a new row.
* ``consumer_report`` — sent from the verification page ("report a suspected fake"), with its
  own row in ``consumer_reports`` (description, shop, photo, location).

``CluePlace`` routes a clue: one row per administrative place it concerns (where it happened,
the producer's place, the GI's authority), so the authorities and inspection units whose
jurisdiction covers any of them see it in their queue.
"""
from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Optional

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..datacrypt import EncryptedText
from ..db import Base, JSONType, UTCDateTime, intpk, timestamp
from .accounts import enum_column
from .scans import BigId


class ClueKind(str, enum.Enum):
    alert = "alert"
    consumer_report = "consumer_report"


class AlertKind(str, enum.Enum):
    too_many_checks = "too_many_checks"              # one code checked more often than its GI's threshold
    impossible_travel = "impossible_travel"          # two checks of one code implying > 1,000 km/h
    outside_sales_regions = "outside_sales_regions"  # checked far outside the GI's declared sales regions
    unknown_burst = "unknown_burst"                  # many unknown codes from one client in a short time


class ClueStatus(str, enum.Enum):
    open = "open"                  # waiting in the queue
    acknowledged = "acknowledged"  # someone is looking at it
    dismissed = "dismissed"        # looked at: nothing to pursue (a reason is recorded)
    referred = "referred"          # taken into a case (supervision)


class PlaceRole(str, enum.Enum):
    scan_place = "scan_place"          # where the check or the report happened
    producer_place = "producer_place"  # the registered place of the producer the mark was issued to
    gi_authority = "gi_authority"      # the jurisdiction of the GI's authority (when no producer is known)


class Clue(Base):
    __tablename__ = "clues"
    __table_args__ = (
        Index("ix_clues_status_id", "status", "id"),
        Index("ix_clues_series_seq", "series", "seq"),
    )

    id: Mapped[intpk]
    kind: Mapped[ClueKind] = mapped_column(enum_column(ClueKind, "clue_kind"))
    alert_kind: Mapped[Optional[AlertKind]] = mapped_column(enum_column(AlertKind, "alert_kind"))
    # One open alert per signal and subject, e.g. "too_many_checks:BBSH26:1234"; NULL for reports.
    dedup_key: Mapped[Optional[str]] = mapped_column(String(120), unique=True)
    status: Mapped[ClueStatus] = mapped_column(enum_column(ClueStatus, "clue_status"), default=ClueStatus.open)
    created_at: Mapped[timestamp]
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    gi_id: Mapped[Optional[int]] = mapped_column(ForeignKey("gis.id"), index=True)
    producer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"), index=True)
    # The serial concerned (verified for alerts on real marks; as claimed for unknown codes).
    series: Mapped[Optional[str]] = mapped_column(String(6))
    seq: Mapped[Optional[int]] = mapped_column(BigInteger)
    # The check that raised it (alerts) or that the report was sent from.
    scan_id: Mapped[Optional[int]] = mapped_column(BigId)
    # County where it happened, when known (a shared location).
    adcode: Mapped[Optional[str]] = mapped_column(String(6))
    summary: Mapped[str] = mapped_column(String(300))
    # The evidence: counts, places, distances, speeds, the scans involved.
    details: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    status_reason: Mapped[Optional[str]] = mapped_column(String(1000))
    status_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    status_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())

    places: Mapped[list["CluePlace"]] = relationship(back_populates="clue", cascade="all, delete-orphan",
                                                    order_by="CluePlace.role")
    report: Mapped[Optional["ConsumerReport"]] = relationship(back_populates="clue", uselist=False)


class CluePlace(Base):
    __tablename__ = "clue_places"

    clue_id: Mapped[int] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[PlaceRole] = mapped_column(enum_column(PlaceRole, "place_role"), primary_key=True)
    adcode: Mapped[str] = mapped_column(String(6), primary_key=True, index=True)

    clue: Mapped[Clue] = relationship(back_populates="places")


class ConsumerReport(Base):
    """What a consumer reported from the verification page."""

    __tablename__ = "consumer_reports"

    id: Mapped[intpk]
    clue_id: Mapped[int] = mapped_column(ForeignKey("clues.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[timestamp]
    # The code as the page had it, and the verdict the service gave when the report was made.
    code: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    shop_name: Mapped[str] = mapped_column(String(200))
    shop_address: Mapped[Optional[str]] = mapped_column(String(300))
    # Only if the consumer shared it: WGS-84, rounded to 0.0001° (about 10 m: a shop, not a person's home).
    lat: Mapped[Optional[float]] = mapped_column(Float)
    lon: Mapped[Optional[float]] = mapped_column(Float)
    adcode: Mapped[Optional[str]] = mapped_column(String(6))
    # The photo, re-encoded as JPEG without EXIF, in the file store (never in the row).
    photo_key: Mapped[Optional[str]] = mapped_column(String(200))
    photo_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    photo_bytes: Mapped[Optional[int]] = mapped_column(Integer)
    photo_width: Mapped[Optional[int]] = mapped_column(Integer)
    photo_height: Mapped[Optional[int]] = mapped_column(Integer)
    # The uploaded file's own hash (to match a copy the sender kept) and its EXIF capture time.
    photo_original_sha256: Mapped[Optional[str]] = mapped_column(String(64))
    photo_taken_at: Mapped[Optional[str]] = mapped_column(String(19))
    # The same keyed daily IP hash as the scan log (for abuse review), never the IP.
    ip_hash: Mapped[Optional[str]] = mapped_column(String(32))
    # Only if the consumer left them to be called back: personal data, stored encrypted (datacrypt.py).
    reporter_name: Mapped[Optional[str]] = mapped_column(EncryptedText("consumer_reports.reporter_name"))
    reporter_phone: Mapped[Optional[str]] = mapped_column(EncryptedText("consumer_reports.reporter_phone"))

    clue: Mapped[Clue] = relationship(back_populates="report")

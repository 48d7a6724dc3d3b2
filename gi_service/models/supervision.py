"""Supervision: inspectors' findings with evidence, cases linked across regions, credit, annual reports.

* ``Finding`` — what an inspector saw at a shop, market, farm or web shop: a point (its county
  derived), the premises, the GI, the codes checked on the spot (``FindingCode``, each with the
  verdict the service gave), the violation kinds, notes, and photos (``FindingPhoto``, re-encoded
  without EXIF, stored outside the row). Field work is often offline: ``client_id`` makes an
  upload of a finding captured earlier idempotent per filing organisation.
* ``Case`` — an investigation opened from clues and findings (``CaseEvidence``). Its owner is
  the organisation whose queue it is in; when the producer is elsewhere it is referred to the
  production place's authority, and the places of sale and circulation stay parties
  (``CaseParty``) who see the outcome. Every step is a ``CaseEvent`` with who and why.
* ``CreditEntry`` — a producer's credit record (confirmed violations, suspensions, listings);
  ``SeriousViolator`` — the public list of serious violators (delisted after credit repair).
* ``AnnualReport`` — a producer's yearly special-mark usage report for one GI: figures from the
  ledger plus the declared output quantity and value; locked once submitted.
"""
from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, JSONType, UTCDateTime, intpk, timestamp
from .accounts import enum_column


class PremisesKind(str, enum.Enum):
    production = "production"    # farm, plot, factory, processing site
    wholesale = "wholesale"      # wholesale market, distributor (circulation)
    retail = "retail"            # shop, supermarket, market stall
    e_commerce = "e_commerce"    # a web shop (its URL is recorded)


class ViolationKind(str, enum.Enum):
    unauthorized_use = "unauthorized_use"                        # the mark used without any authorization
    forged_or_copied_label = "forged_or_copied_label"            # fake or copied special-mark labels
    outside_area_or_substandard = "outside_area_or_substandard"  # genuine labels on product from outside the
                                                                 # area or below the standard
    look_alike = "look_alike"                                    # look-alike name or logo ("XX-style")
    authorization_not_in_force = "authorization_not_in_force"    # expired, suspended or revoked authorization
    mark_without_uscc = "mark_without_uscc"                      # mark printed without the user's USCC
    unactivated_label = "unactivated_label"                      # a genuine label never activated on a lot,
                                                                 # on product offered for sale


class Finding(Base):
    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("organisation_id", "client_id", name="uq_findings_organisation_client"),
        Index("ix_findings_adcode_observed", "adcode", "observed_at"),
    )

    id: Mapped[intpk]
    # The inspection unit (or authority) that filed it, and the person.
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The device's own id for this finding: a re-upload of the same finding changes nothing.
    client_id: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())   # when the inspection happened
    received_at: Mapped[timestamp]                                      # when the service got it
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    adcode: Mapped[str] = mapped_column(String(6))                      # county of the point
    premises_name: Mapped[str] = mapped_column(String(200))
    premises_kind: Mapped[PremisesKind] = mapped_column(enum_column(PremisesKind, "premises_kind"))
    premises_url: Mapped[Optional[str]] = mapped_column(String(500))    # e-commerce listing
    premises_address: Mapped[Optional[str]] = mapped_column(String(300))
    premises_uscc: Mapped[Optional[str]] = mapped_column(String(18))    # the seller's USCC, if known
    gi_id: Mapped[Optional[int]] = mapped_column(ForeignKey("gis.id"), index=True)
    # The producer the product or its codes point to, if any.
    producer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"), index=True)
    violations: Mapped[list[Any]] = mapped_column(JSONType(), default=list)   # ViolationKind values
    notes: Mapped[Optional[str]] = mapped_column(Text)
    case_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"), index=True)

    codes: Mapped[list["FindingCode"]] = relationship(back_populates="finding", cascade="all, delete-orphan",
                                                      order_by="FindingCode.position")
    photos: Mapped[list["FindingPhoto"]] = relationship(back_populates="finding", cascade="all, delete-orphan",
                                                        order_by="FindingPhoto.id")


class FindingCode(Base):
    """A code checked on the spot, with the verdict the service gave at that moment."""

    __tablename__ = "finding_codes"

    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(64))            # as read (canonical when well-formed)
    verdict: Mapped[str] = mapped_column(String(32))         # Verdict value
    detail: Mapped[Optional[str]] = mapped_column(String(32))
    series: Mapped[Optional[str]] = mapped_column(String(6))
    seq: Mapped[Optional[int]] = mapped_column(BigInteger)
    batch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("mark_batches.id"))
    producer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"))

    finding: Mapped[Finding] = relationship(back_populates="codes")


class FindingPhoto(Base):
    __tablename__ = "finding_photos"
    __table_args__ = (UniqueConstraint("finding_id", "client_photo_id", name="uq_finding_photos_client"),)

    id: Mapped[intpk]
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), index=True)
    client_photo_id: Mapped[Optional[str]] = mapped_column(String(64))   # idempotent re-upload
    key: Mapped[str] = mapped_column(String(200))                         # FileStore key
    sha256: Mapped[str] = mapped_column(String(64))                       # of the stored (re-encoded) bytes
    original_sha256: Mapped[str] = mapped_column(String(64))              # of the uploaded file
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    taken_at: Mapped[Optional[str]] = mapped_column(String(19))           # EXIF capture time, camera-local
    filename: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[timestamp]

    finding: Mapped[Finding] = relationship(back_populates="photos")


# --- cases ------------------------------------------------------------------------------------------

class CaseStatus(str, enum.Enum):
    open = "open"
    investigating = "investigating"
    referred = "referred"          # handed to the production place's authority, which now owns it
    concluded = "concluded"


class CaseOutcome(str, enum.Enum):
    violation_confirmed = "violation_confirmed"
    no_violation = "no_violation"


class CasePartyRole(str, enum.Enum):
    opened = "opened"                          # the organisation that opened it (where it was found)
    production_place = "production_place"      # the producer's authority (referral target)
    sales_place = "sales_place"
    circulation_place = "circulation_place"
    issuing_authority = "issuing_authority"    # the authority that approved the marks


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_owner_status", "owner_org_id", "status"),)

    id: Mapped[intpk]
    number: Mapped[str] = mapped_column(String(40), unique=True)    # e.g. "440106-2026-0007"
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[CaseStatus] = mapped_column(enum_column(CaseStatus, "case_status"), default=CaseStatus.open)
    outcome: Mapped[Optional[CaseOutcome]] = mapped_column(enum_column(CaseOutcome, "case_outcome"))
    measure: Mapped[Optional[str]] = mapped_column(Text)            # the measure taken (fine, confiscation, ...)
    violations: Mapped[list[Any]] = mapped_column(JSONType(), default=list)   # ViolationKind values
    serious: Mapped[bool] = mapped_column(default=False)            # decided by the credit rules at conclusion
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))   # whose queue it is in
    opened_by_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]
    concluded_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    concluded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    gi_id: Mapped[Optional[int]] = mapped_column(ForeignKey("gis.id"), index=True)
    producer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"), index=True)
    adcode: Mapped[str] = mapped_column(String(6), index=True)      # where it was found

    parties: Mapped[list["CaseParty"]] = relationship(back_populates="case", cascade="all, delete-orphan")
    evidence: Mapped[list["CaseEvidence"]] = relationship(back_populates="case", cascade="all, delete-orphan",
                                                          order_by="CaseEvidence.id")
    events: Mapped[list["CaseEvent"]] = relationship(back_populates="case", cascade="all, delete-orphan",
                                                     order_by="CaseEvent.id")


class CaseParty(Base):
    """An organisation that sees the case and its outcome (the owner handles it)."""

    __tablename__ = "case_parties"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True, index=True)
    role: Mapped[CasePartyRole] = mapped_column(enum_column(CasePartyRole, "case_party_role"), primary_key=True)

    case: Mapped[Case] = relationship(back_populates="parties")


class CaseEvidence(Base):
    """A clue or a finding attached to a case."""

    __tablename__ = "case_evidence"
    __table_args__ = (
        UniqueConstraint("case_id", "clue_id", name="uq_case_evidence_clue"),
        UniqueConstraint("case_id", "finding_id", name="uq_case_evidence_finding"),
    )

    id: Mapped[intpk]
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    clue_id: Mapped[Optional[int]] = mapped_column(ForeignKey("clues.id"), index=True)
    finding_id: Mapped[Optional[int]] = mapped_column(ForeignKey("findings.id"), index=True)
    added_at: Mapped[timestamp]
    added_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[Optional[str]] = mapped_column(String(1000))

    case: Mapped[Case] = relationship(back_populates="evidence")


class CaseEvent(Base):
    """One step of a case: opened, evidence added, status changed, referred, concluded (who, why)."""

    __tablename__ = "case_events"

    id: Mapped[intpk]
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[timestamp]
    by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))          # None: the service itself
    by_org_id: Mapped[Optional[int]] = mapped_column(ForeignKey("organisations.id"))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[Optional[str]] = mapped_column(String(16))
    to_status: Mapped[Optional[str]] = mapped_column(String(16))
    reason: Mapped[Optional[str]] = mapped_column(String(2000))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)

    case: Mapped[Case] = relationship(back_populates="events")


# --- credit -----------------------------------------------------------------------------------------

class CreditEntryKind(str, enum.Enum):
    violation = "violation"                    # a confirmed violation the rules do not call serious
    serious_violation = "serious_violation"    # a confirmed violation the rules call serious
    suspended = "suspended"                    # the authorization was suspended by the rules
    marks_voided = "marks_voided"              # issued but unactivated marks voided with the suspension
    suspension_lifted = "suspension_lifted"
    listed = "listed"                          # put on the public serious-violator list
    delisted = "delisted"                      # taken off it (credit repair)


class CreditEntry(Base):
    __tablename__ = "credit_entries"

    id: Mapped[intpk]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[Optional[int]] = mapped_column(ForeignKey("gis.id"))
    at: Mapped[timestamp]
    kind: Mapped[CreditEntryKind] = mapped_column(enum_column(CreditEntryKind, "credit_entry_kind"))
    case_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"), index=True)
    rule: Mapped[Optional[str]] = mapped_column(String(64))       # the rule that decided it
    reason: Mapped[str] = mapped_column(String(1000))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))   # None: the rules themselves


class SeriousViolator(Base):
    """The public list of serious violators (严重违法失信名单); current while delisted_at is NULL."""

    __tablename__ = "serious_violators"

    id: Mapped[intpk]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    rule: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(1000))
    listed_at: Mapped[timestamp]
    # Earliest date credit repair may take it off the list.
    repair_after: Mapped[Optional[dt.date]] = mapped_column()
    delisted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    delisted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    delist_reason: Mapped[Optional[str]] = mapped_column(String(1000))


# --- annual usage reports ---------------------------------------------------------------------------

class AnnualReportStatus(str, enum.Enum):
    draft = "draft"            # generated from the ledger; the producer may add the declared figures
    submitted = "submitted"    # locked


class AnnualReport(Base):
    __tablename__ = "annual_reports"
    __table_args__ = (UniqueConstraint("producer_id", "gi_id", "year", name="uq_annual_reports_producer_gi_year"),)

    id: Mapped[intpk]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    year: Mapped[int]
    status: Mapped[AnnualReportStatus] = mapped_column(enum_column(AnnualReportStatus, "annual_report_status"),
                                                      default=AnnualReportStatus.draft)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)   # from the ledger, at generation
    generated_at: Mapped[timestamp]
    output_kg: Mapped[Optional[Decimal]] = mapped_column(Numeric(16, 3))       # declared output quantity
    output_value_yuan: Mapped[Optional[Decimal]] = mapped_column(Numeric(18, 2))  # declared output value
    notes: Mapped[Optional[str]] = mapped_column(Text)
    submitted_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    submitted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))

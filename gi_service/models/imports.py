"""Bulk imports from spreadsheets: one row per import that wrote (a dry run or a refused file leaves none)."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, intpk, timestamp


class ImportRun(Base):
    """Who imported which file (by its SHA-256) into what, when, and what it changed."""

    __tablename__ = "import_runs"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(20))            # producers | authorizations | plots
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    created: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    at: Mapped[timestamp]

"""Organisations, users and API tokens."""
from __future__ import annotations

import datetime as dt
import enum
from typing import Optional

from sqlalchemy import BigInteger, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import clock
from ..datacrypt import EncryptedText
from ..db import Base, UTCDateTime, intpk, timestamp


class OrgKind(str, enum.Enum):
    authority = "authority"        # an IP office with a jurisdiction
    producer = "producer"          # a GI producer (authorized user of the special mark)
    printer = "printer"            # an authorized printing house
    inspection = "inspection"      # a market inspection unit with a jurisdiction


def enum_column(enum_cls: type[enum.Enum], name: str):
    """Enums stored as their values with a named CHECK constraint on both backends."""
    return Enum(enum_cls, name=name, native_enum=False, create_constraint=True, length=32,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[intpk]
    kind: Mapped[OrgKind] = mapped_column(enum_column(OrgKind, "org_kind"))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[Optional[str]] = mapped_column(String(200))
    # Unified social credit code (GB 32100-2015); required for producers and printers.
    uscc: Mapped[Optional[str]] = mapped_column(String(18), unique=True)
    # Jurisdiction (authority, inspection unit) or registered place (producer, printer).
    adcode: Mapped[str] = mapped_column(String(6), index=True)
    address: Mapped[Optional[str]] = mapped_column(String(300))
    # A person's name and phone number: personal data, stored encrypted (datacrypt.py).
    contact: Mapped[Optional[str]] = mapped_column(EncryptedText("organisations.contact"))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[timestamp]

    users: Mapped[list["User"]] = relationship(back_populates="organisation")


class User(Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[timestamp]
    last_login_at: Mapped[Optional[dt.datetime]]
    # Password rules (services/passwords.py): when it was last set (its age), whether the next sign-in must
    # change it (set by an authority, or reset), and the temporary lockout after repeated failures:
    # failures since the last success or lockout, lockouts since the last success (the next is longer).
    password_changed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    must_change_password: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    # Demo and test accounts: exempt from password age, forced change, lockout and two-factor sign-in outside
    # production (never in production).
    rules_exempt: Mapped[bool] = mapped_column(default=False)
    # TOTP (services/totp.py): the secret, encrypted (it must be recoverable to check codes); enabled once a
    # first code confirmed it; the last 30-second time step a code was accepted for (no code twice).
    totp_secret: Mapped[Optional[str]] = mapped_column(EncryptedText("users.totp_secret"))
    totp_enabled_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[Optional[int]] = mapped_column(BigInteger)

    organisation: Mapped[Organisation] = relationship(back_populates="users", lazy="joined")


class UnknownNameFailures(Base):
    """Failed sign-ins under a username that no account has, counted and locked exactly as an account's are
    (services/passwords.py), so that a lockout never tells whether an account exists. Keyed by the name's
    SHA-256, so the table holds no names in clear. Forgotten 30 days after its last failure."""

    __tablename__ = "unknown_name_failures"

    name_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class RecoveryCode(Base):
    """A one-time code that stands in for a TOTP code (phone lost); only its argon2 hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[timestamp]
    used_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[timestamp]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[Optional[dt.datetime]]
    last_used_at: Mapped[Optional[dt.datetime]]
    # Issued after a second factor (a TOTP or recovery code), or by the operator on the host
    # (`gi-service tokens create`). Creating further tokens needs such a token when TOTP is required.
    two_factor: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(lazy="joined")

    def is_valid(self, now: dt.datetime | None = None) -> bool:
        now = now or clock.now()
        return self.revoked_at is None and self.expires_at > now

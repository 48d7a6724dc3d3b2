"""Organisations, users, passwords (argon2) and API bearer tokens (stored hashed)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from geodata.admin import get_registry

from .. import clock
from ..errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from ..models import ApiToken, OrgKind, Organisation, User
from .uscc import validate_uscc

TOKEN_PREFIX = "gi_"
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown user the same as for a known one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their organisation and how they authenticated."""

    user_id: int
    username: str
    organisation_id: int
    org_kind: OrgKind
    adcode: str
    token_id: int | None = None

    @property
    def kind(self) -> str:
        return self.org_kind.value

    def covers(self, adcode: str | None) -> bool:
        """Is `adcode` inside this principal's jurisdiction (authority or inspection unit)?"""
        if adcode is None or self.org_kind not in (OrgKind.authority, OrgKind.inspection):
            return False
        return get_registry().is_within(adcode, self.adcode)


def principal_for(user: User, token_id: int | None = None) -> Principal:
    org = user.organisation
    return Principal(user.id, user.username, org.id, org.kind, org.adcode, token_id)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < 10:
        raise ValidationFailed("password must have at least 10 characters",
                               details=[{"field": "password", "problem": "too short"}])


def create_organisation(session: Session, *, kind: OrgKind, name: str, adcode: str | None = None,
                        uscc: str | None = None, name_en: str | None = None, address: str | None = None,
                        contact: str | None = None, by: Principal | None = None) -> Organisation:
    """Register an organisation; producers and printers need a valid USCC.

    With `by` (an authority), the organisation's place must lie in its jurisdiction; that is
    checked before the USCC's uniqueness so nobody learns what is registered elsewhere.
    """
    registry = get_registry()
    info = validate_uscc(uscc) if uscc else None
    if info is not None:
        uscc = info.code
        if adcode is None:
            adcode = info.adcode if registry.get(info.adcode) else info.adcode[:2] + "0000"
    elif kind in (OrgKind.producer, OrgKind.printer):
        raise ValidationFailed(f"a {kind.value} needs its unified social credit code (uscc)",
                               details=[{"field": "uscc", "problem": "required"}])
    if adcode is None:
        raise ValidationFailed(f"a {kind.value} needs the adcode of its jurisdiction",
                               details=[{"field": "adcode", "problem": "required"}])
    if registry.get(adcode) is None:
        raise ValidationFailed(f"adcode {adcode} is not a known administrative division",
                               details=[{"field": "adcode", "problem": "unknown"}], code="unknown_adcode")
    if by is not None and not by.covers(adcode):
        raise Forbidden(f"{adcode} is outside your jurisdiction ({by.adcode})", code="outside_jurisdiction")
    if uscc and session.scalar(select(Organisation.id).where(Organisation.uscc == uscc)) is not None:
        raise Conflict(f"an organisation with USCC {uscc} already exists", code="duplicate_uscc")
    org = Organisation(kind=kind, name=name, name_en=name_en, uscc=uscc, adcode=adcode,
                       address=address, contact=contact)
    session.add(org)
    session.flush()
    return org


def create_user(session: Session, *, username: str, password: str, organisation_id: int,
                display_name: str | None = None) -> User:
    check_password_strength(password)
    if session.get(Organisation, organisation_id) is None:
        raise NotFound(f"organisation {organisation_id} does not exist")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", code="duplicate_username")
    user = User(username=username, display_name=display_name or username,
                password_hash=hash_password(password), organisation_id=organisation_id)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """Check a username and password; the same error for every failure."""
    user = session.scalar(select(User).where(User.username == username))
    failure = Unauthenticated("username or password is wrong", code="invalid_credentials")
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        raise failure
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if not user.is_active or not user.organisation.is_active:
        raise Unauthenticated("this account is disabled", code="account_disabled")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = clock.now()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, *, name: str, ttl_days: int,
                 token: str | None = None) -> tuple[ApiToken, str]:
    """Issue a bearer token; the plaintext is returned once and only its hash is kept.

    `token` may be given for the documented demo accounts only.
    """
    if ttl_days < 1 or ttl_days > 3650:
        raise ValidationFailed("ttl_days must be between 1 and 3650",
                               details=[{"field": "ttl_days", "problem": "out of range"}])
    plaintext = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, prefix=plaintext[:10], token_hash=_digest(plaintext),
                   expires_at=clock.now() + dt.timedelta(days=ttl_days))
    session.add(row)
    session.flush()
    return row, plaintext


def resolve_token(session: Session, plaintext: str) -> ApiToken:
    """The valid token for a bearer string, or Unauthenticated."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(plaintext)))
    if row is None or not hmac.compare_digest(row.token_hash, _digest(plaintext)):
        raise Unauthenticated("the bearer token is not valid", code="invalid_token")
    now = clock.now()
    if row.revoked_at is not None:
        raise Unauthenticated("the bearer token has been revoked", code="token_revoked")
    if row.expires_at <= now:
        raise Unauthenticated("the bearer token has expired; create a new one", code="token_expired")
    if not row.user.is_active or not row.user.organisation.is_active:
        raise Unauthenticated("this account is disabled", code="account_disabled")
    return row


def revoke_token(session: Session, token_id: int, *, by: Principal) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != by.user_id:
        raise NotFound(f"token {token_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return row


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))

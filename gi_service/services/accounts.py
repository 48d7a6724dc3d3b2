"""Organisations, users, passwords (argon2) and API bearer tokens (stored hashed)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from geodata.admin import get_registry

from .. import clock
from ..errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from ..models import ApiToken, OrgKind, Organisation, User
from . import passwords
from .passwords import SignInPolicy
from .uscc import validate_uscc

TOKEN_PREFIX = "gi_"
# The name of the api_tokens row behind a web sign-in (web/auth.py): never usable as a bearer token.
WEB_SESSION_NAME = "web session"
_hasher = PasswordHasher()
# Usernames: what people can type on any keyboard and read out on the phone (the API's UserBody says the same).
USERNAME = re.compile(r"[A-Za-z0-9_.\-]{3,64}")
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
    # Signed in with a second factor (a token or web session issued after a TOTP or recovery code).
    two_factor: bool = False

    @property
    def kind(self) -> str:
        return self.org_kind.value

    def covers(self, adcode: str | None) -> bool:
        """Is `adcode` inside this principal's jurisdiction (authority or inspection unit)?"""
        if adcode is None or self.org_kind not in (OrgKind.authority, OrgKind.inspection):
            return False
        return get_registry().is_within(adcode, self.adcode)


def principal_for(user: User, token_id: int | None = None, two_factor: bool = False) -> Principal:
    org = user.organisation
    return Principal(user.id, user.username, org.id, org.kind, org.adcode, token_id, two_factor)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_hash(stored: str, secret: str) -> bool:
    """Does `secret` match an argon2 hash made by hash_password?"""
    try:
        return _hasher.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


def check_password_strength(password: str, policy: SignInPolicy | None = None, *, username: str | None = None,
                            field: str = "password") -> None:
    passwords.check_strength(password, policy or SignInPolicy(), username=username, field=field)


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
                display_name: str | None = None, policy: SignInPolicy | None = None, must_change: bool = False,
                rules_exempt: bool = False) -> User:
    """Create an account. `must_change`: the password was chosen by someone else (an authority) and must be
    changed at the first sign-in; `rules_exempt`: a demo or test account (see services/passwords.py)."""
    check_password_strength(password, policy, username=username)
    if not USERNAME.fullmatch(username or ""):
        raise ValidationFailed("a username is 3 to 64 letters (a-z, A-Z), digits, '.', '_' or '-': no spaces and "
                               "no Chinese characters", details=[{"field": "username", "problem": "invalid"}])
    if session.get(Organisation, organisation_id) is None:
        raise NotFound(f"organisation {organisation_id} does not exist")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken", code="duplicate_username")
    user = User(username=username, display_name=display_name or username,
                password_hash=hash_password(password), organisation_id=organisation_id,
                password_changed_at=clock.now(), must_change_password=must_change, rules_exempt=rules_exempt)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:   # the same name created meanwhile by another request; the caller rolls back
        raise Conflict(f"username {username!r} is taken", code="duplicate_username") from None
    passwords.inherit_unknown_name_failures(session, user)
    return user


def create_user_in_jurisdiction(session: Session, by: Principal, *, organisation_id: int, username: str,
                                password: str, display_name: str | None = None,
                                policy: SignInPolicy | None = None) -> User:
    """An authority creates an account for an organisation in its jurisdiction (the same or a lower level). It
    chose the first password, or was shown one (`passwords.first_password`): the owner must change it at the
    first sign-in."""
    org = session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound(f"organisation {organisation_id} does not exist")
    if by.org_kind != OrgKind.authority or not by.covers(org.adcode):
        raise Forbidden(f"organisation {org.id} is outside your jurisdiction", code="outside_jurisdiction")
    if not org.is_active:
        raise Conflict(f"organisation {org.id} is deactivated: it can have no new accounts",
                       code="organisation_inactive")
    return create_user(session, username=username, password=password, organisation_id=org.id,
                       display_name=display_name, policy=policy, must_change=True)


def authenticate(session: Session, username: str, password: str, policy: SignInPolicy | None = None) -> User:
    """Check a username and password; the same error for every failure (the caller counts it with
    `passwords.record_failure` in its own transaction). A locked account is refused (429) first, and so is a
    name no account has once its failures have locked it, so that neither answer tells who has an account.

    This is the first step only: `sign_in_steps` says what must follow before a token or session is issued, and
    `signed_in` marks the sign-in complete."""
    policy = policy or SignInPolicy()
    user = session.scalar(select(User).where(User.username == username))
    failure = Unauthenticated("username or password is wrong", code="invalid_credentials")
    if user is None:
        passwords.check_unknown_name_not_locked(session, username)   # locked alike: a 429 names no account
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        raise failure
    passwords.check_not_locked(user, policy)
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if not user.is_active or not user.organisation.is_active:
        raise Unauthenticated("this account is disabled", code="account_disabled")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def signed_in(user: User) -> None:
    """A sign-in completed (every step passed): the failure count and lockout start afresh. Not at the
    password alone, or a known password would reset the count between guesses of the second factor."""
    passwords.record_success(user)
    user.last_login_at = clock.now()


def sign_in_steps(user: User, policy: SignInPolicy) -> list[str]:
    """What must follow a right password: "totp" (a code: TOTP is set up), "totp_enrol" (TOTP is required
    and not set up yet), "password_change" (set by an authority, or older than the maximum age)."""
    steps = []
    if user.totp_enabled_at is not None:
        steps.append("totp")
    elif policy.totp_required_for(user):
        steps.append("totp_enrol")
    if passwords.must_change(user, policy):
        steps.append("password_change")
    return steps


def change_password(session: Session, user: User, new_password: str, policy: SignInPolicy | None = None,
                    *, field: str = "new_password") -> User:
    """Set a new password chosen by its owner (the caller has checked the current one)."""
    check_password_strength(new_password, policy, username=user.username, field=field)
    if verify_hash(user.password_hash, new_password):
        raise ValidationFailed("the new password must differ from the current one", code="weak_password",
                               details=[{"field": field, "problem": "same as the current password"}])
    user.password_hash = hash_password(new_password)
    user.password_changed_at = clock.now()
    user.must_change_password = False
    return user


def check_may_create_token(principal: Principal, user: User, policy: SignInPolicy) -> None:
    """A token made by a signed-in user (API or web session) needs that sign-in to have passed two factors
    when TOTP is required for the account; the operator's `gi-service tokens create` is not asked."""
    if policy.totp_required_for(user) and not principal.two_factor:
        raise Forbidden("creating API tokens needs a sign-in with two factors: sign in again with your "
                        "authenticator code (POST /api/v1/auth/login with `totp`)", code="two_factor_required")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, *, name: str, ttl_days: int,
                 token: str | None = None, two_factor: bool = False) -> tuple[ApiToken, str]:
    """Issue a bearer token; the plaintext is returned once and only its hash is kept.

    `token` may be given for the documented demo accounts only.
    """
    if ttl_days < 1 or ttl_days > 3650:
        raise ValidationFailed("ttl_days must be between 1 and 3650",
                               details=[{"field": "ttl_days", "problem": "out of range"}])
    plaintext = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, prefix=plaintext[:10], token_hash=_digest(plaintext),
                   expires_at=clock.now() + dt.timedelta(days=ttl_days), two_factor=two_factor)
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


def user_for_authority(session: Session, user_id: int, by: Principal) -> User:
    """A user whose organisation lies in the jurisdiction of authority `by` (the same or a lower level)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if by.org_kind != OrgKind.authority or not by.covers(user.organisation.adcode):
        raise Forbidden(f"user {user_id} belongs to an organisation outside your jurisdiction",
                        code="outside_jurisdiction")
    return user


def _within(stmt: Select, by: Principal) -> Select:
    """`stmt` (over Organisation) kept to the organisations in `by`'s jurisdiction."""
    from .jurisdiction import jurisdiction_codes

    codes = jurisdiction_codes(by.adcode)
    return stmt if codes is None else stmt.where(Organisation.adcode.in_(codes))


def organisations_matching(by: Principal, q: str | None = None) -> Select:
    """The organisations in `by`'s jurisdiction whose name or USCC contains `q` (a statement to narrow, order
    and limit)."""
    stmt = _within(select(Organisation), by)
    if q:
        stmt = stmt.where(Organisation.name.contains(q, autoescape=True)
                          | Organisation.uscc.contains(q.upper(), autoescape=True))
    return stmt


def users_in_jurisdiction(session: Session, by: Principal, *, q: str | None = None, limit: int = 500) -> list[User]:
    """The accounts of the organisations in an authority's jurisdiction (username or organisation name
    containing `q`), for the account-security page: who has TOTP, who is locked."""
    stmt = _within(select(User).join(User.organisation), by).order_by(Organisation.kind, Organisation.name,
                                                                       User.username)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(User.username.ilike(like) | Organisation.name.ilike(like))
    return list(session.scalars(stmt.limit(limit)))


def organisations_in_jurisdiction(session: Session, by: Principal, *, q: str | None = None,
                                  limit: int = 200) -> list[Organisation]:
    """The active organisations in an authority's jurisdiction (name or USCC containing `q`), by kind and name:
    whom it may create accounts for."""
    stmt = organisations_matching(by, q).where(Organisation.is_active)
    return list(session.scalars(stmt.order_by(Organisation.kind, Organisation.name, Organisation.id).limit(limit)))


def unlock(session: Session, user_id: int, *, by: Principal) -> User:
    """End a user's sign-in lockout now (an authority covering the user's organisation)."""
    user = user_for_authority(session, user_id, by)
    passwords.record_success(user)
    return user

"""Password rules and sign-in lockout (GB/T 22239-2019 level 3: complexity, periodic change, failed sign-ins).

* A new password has at least ``min_length`` characters of at least ``min_classes`` of four classes (lower
  case, upper case, digits, anything else), is not in the bundled list of common passwords, and does not
  contain the username.
* A password set by an authority for someone else must be changed at its owner's first sign-in, and any
  password older than ``max_age_days`` must be changed at the next sign-in.
* After ``lockout_threshold`` failed sign-ins in a row an account is locked for ``lockout_seconds``; each
  further lockout before a successful sign-in doubles that, up to ``lockout_max_seconds``. A lockout always
  ends by itself: a permanent one would let anyone lock an authority out by guessing.
* A username that no account has is counted and locked the same way (``unknown_name_failures``, keyed by the
  name's SHA-256), so neither the 401 nor the 429 tells whether an account exists. Its count is forgotten
  30 days after its last failure (``FORGET_UNKNOWN_AFTER``); an account's lasts until its next success. An
  account opened under such a name takes its count over.

Demo and test accounts (``users.rules_exempt``) are exempt from age, forced change, lockout and two-factor
sign-in outside production; in production the flag is ignored.

The common-password list (gi_service/data/common-passwords.txt.gz) is the 20,000 common passwords
compiled by Royce Williams from breach corpora, as shipped in Django (django/contrib/auth,
BSD-3-Clause licence, Copyright (c) Django Software Foundation and individual contributors).
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import gzip
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..config import Settings
from ..errors import GIError, ValidationFailed
from ..models import OrgKind, UnknownNameFailures, User


class AccountLocked(GIError):
    """Too many failed sign-ins in a row: answered 429 with ``Retry-After`` (seconds)."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "account_locked"

    def __init__(self, message: str, *, retry_after: int, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


_DEFAULTS = Settings()   # the settings' own defaults: one place for each value


@dataclass(frozen=True)
class SignInPolicy:
    """The sign-in rules in force (from the settings: GI_PASSWORD_*, GI_LOCKOUT_*, GI_TOTP_REQUIRED); without
    arguments, the settings' defaults outside production."""

    min_length: int = _DEFAULTS.password_min_length
    min_classes: int = _DEFAULTS.password_min_classes
    max_age_days: int = _DEFAULTS.password_max_age_days
    lockout_threshold: int = _DEFAULTS.lockout_threshold
    lockout_seconds: int = _DEFAULTS.lockout_seconds
    lockout_max_seconds: int = _DEFAULTS.lockout_max_seconds
    totp_required: bool = bool(_DEFAULTS.totp_required)
    production: bool = _DEFAULTS.is_production

    @classmethod
    def from_settings(cls, settings) -> "SignInPolicy":
        return cls(min_length=settings.password_min_length, min_classes=settings.password_min_classes,
                   max_age_days=settings.password_max_age_days, lockout_threshold=settings.lockout_threshold,
                   lockout_seconds=settings.lockout_seconds, lockout_max_seconds=settings.lockout_max_seconds,
                   totp_required=bool(settings.totp_required), production=settings.is_production)

    def exempt(self, user: User) -> bool:
        return bool(user.rules_exempt) and not self.production

    def totp_required_for(self, user: User) -> bool:
        """Must this account sign in with a second factor? Authority and inspection accounts, when required."""
        return (self.totp_required and user.organisation.kind in (OrgKind.authority, OrgKind.inspection)
                and not self.exempt(user))

    def lockout_for(self, lockouts: int) -> int:
        """Seconds of the `lockouts`-th lockout in a row (1st: lockout_seconds, then doubling, capped)."""
        return min(self.lockout_max_seconds, self.lockout_seconds * 2 ** min(max(lockouts - 1, 0), 30))


# A first password's characters: no look-alikes (0/O, 1/l/I), so it can be read out or copied by hand.
_FIRST_PASSWORD_KINDS = ("ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz", "23456789")


def first_password(policy: SignInPolicy, *, username: str | None = None) -> str:
    """A first password for an account an authority creates, shown to it once: at least 16 random characters
    (about 5.8 bits each) of upper case, lower case and digits, in groups of four joined by '-', so of four
    kinds, at least the policy's length, and never containing the username. Its owner must change it at the
    first sign-in."""
    alphabet = "".join(_FIRST_PASSWORD_KINDS)
    groups = max(4, -(-(policy.min_length + 1) // 5))   # 5 * groups - 1 characters: four and a hyphen a group
    while True:
        chars = "".join(secrets.choice(alphabet) for _ in range(4 * groups))
        made = "-".join(chars[i:i + 4] for i in range(0, len(chars), 4))
        four_kinds = all(any(c in kind for c in chars) for kind in _FIRST_PASSWORD_KINDS)
        if four_kinds and not contains_username(made, username):
            return made


@functools.cache
def common_passwords() -> frozenset[str]:
    data = resources.files("gi_service").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip().lower() for line in gzip.decompress(data).decode("utf-8").splitlines()
                     if line.strip())


def character_classes(password: str) -> int:
    return sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))


def contains_username(password: str, username: str | None) -> bool:
    """Does the password contain the username (of three characters or more), whatever the case?"""
    return bool(username) and len(username) >= 3 and username.lower() in password.lower()


def check_strength(password: str, policy: SignInPolicy, *, username: str | None = None,
                   field: str = "password") -> None:
    """Refuse a new password that breaks the rules (422 weak_password, every problem listed)."""
    problems = []
    if len(password) < policy.min_length:
        problems.append(f"at least {policy.min_length} characters (it has {len(password)})")
    if character_classes(password) < policy.min_classes:
        problems.append(f"characters of at least {policy.min_classes} kinds of: lower case, upper case, digits, "
                        "other characters")
    if password.strip().lower() in common_passwords():
        problems.append("not one of the commonly used passwords (it is in the list of 20,000 that attackers "
                        "try first)")
    if contains_username(password, username):
        problems.append("not containing the username")
    if problems:
        raise ValidationFailed("the password needs " + "; ".join(problems), code="weak_password",
                               details=[{"field": field, "problem": p} for p in problems])


def password_expired(user: User, policy: SignInPolicy, now: dt.datetime | None = None) -> bool:
    if not policy.max_age_days:
        return False
    changed = user.password_changed_at or user.created_at
    return changed is not None and (now or clock.now()) - changed > dt.timedelta(days=policy.max_age_days)


def must_change(user: User, policy: SignInPolicy) -> bool:
    """Must the password be changed before this sign-in goes on (set by an authority, or too old)?"""
    if policy.exempt(user):
        return False
    return bool(user.must_change_password) or password_expired(user, policy)


FORGET_UNKNOWN_AFTER = dt.timedelta(days=30)


def _name_digest(username: str) -> str:
    return hashlib.sha256(username.encode("utf-8")).hexdigest()


def _refuse_if_locked(locked_until: dt.datetime | None) -> None:
    if locked_until is None:
        return
    left = (locked_until - clock.now()).total_seconds()
    if left > 0:
        seconds = int(left) + (left > int(left))
        raise AccountLocked(f"too many failed sign-ins: this account is locked for {seconds} more seconds; "
                            "the lock ends by itself (an authority need not do anything)", retry_after=seconds)


def check_not_locked(user: User, policy: SignInPolicy) -> None:
    """Refuse a sign-in to a locked account before its password is even looked at."""
    if not policy.exempt(user):
        _refuse_if_locked(user.locked_until)


def check_unknown_name_not_locked(session: Session, username: str) -> None:
    """Refuse a sign-in under a name no account has, when its failures have locked it, in the words and with
    the Retry-After an account's lock has."""
    row = session.get(UnknownNameFailures, _name_digest(username))
    if row is not None:
        _refuse_if_locked(row.locked_until)


def _count(holder: User | UnknownNameFailures, policy: SignInPolicy) -> int | None:
    holder.failed_logins = (holder.failed_logins or 0) + 1
    if holder.failed_logins < policy.lockout_threshold:
        return None
    holder.lockouts = (holder.lockouts or 0) + 1
    seconds = policy.lockout_for(holder.lockouts)
    holder.locked_until = clock.now() + dt.timedelta(seconds=seconds)
    holder.failed_logins = 0
    return seconds


def _unknown_name_row(session: Session, username: str) -> UnknownNameFailures:
    """The failure count of a name no account has, locked for this transaction; created (and the counts of
    names forgotten for 30 days deleted) on its first failure."""
    digest = _name_digest(username)
    query = select(UnknownNameFailures).where(UnknownNameFailures.name_digest == digest).with_for_update()
    row = session.scalar(query)
    if row is not None:
        return row
    now = clock.now()
    # At most 500 forgotten names a time, and none another sign-in holds (SKIP LOCKED on PostgreSQL): the
    # sign-in that prunes never waits, and two that prune at once cannot deadlock.
    forgotten = (select(UnknownNameFailures.name_digest)
                 .where(UnknownNameFailures.last_failed_at < now - FORGET_UNKNOWN_AFTER)
                 .limit(500).with_for_update(skip_locked=True))
    session.execute(delete(UnknownNameFailures).where(UnknownNameFailures.name_digest.in_(forgotten.scalar_subquery())))
    try:
        with session.begin_nested():
            row = UnknownNameFailures(name_digest=digest, failed_logins=0, lockouts=0, last_failed_at=now)
            session.add(row)
    except IntegrityError:   # a concurrent first failure under the same name created it
        row = session.scalar(query)
    return row


def record_failure(session: Session, username: str, policy: SignInPolicy) -> int | None:
    """Count a failed sign-in (wrong password or second factor) under a username, whether an account has it or
    not; the seconds of the lockout it starts, if it starts one. Call it in its own transaction, after the
    failed one's rollback, and commit."""
    user = session.scalar(select(User).where(User.username == username).with_for_update(of=User))
    if user is None:
        row = _unknown_name_row(session, username)
        row.last_failed_at = clock.now()
        return _count(row, policy)
    if policy.exempt(user):
        return None
    return _count(user, policy)


def inherit_unknown_name_failures(session: Session, user: User) -> None:
    """A new account takes over the failures counted under its name while no account had it (and the lock they
    started), so that opening the account does not end a lock and tell a guesser that it now exists."""
    row = session.get(UnknownNameFailures, _name_digest(user.username))
    if row is not None:
        user.failed_logins, user.lockouts, user.locked_until = row.failed_logins, row.lockouts, row.locked_until
        session.delete(row)


def record_success(user: User) -> None:
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None

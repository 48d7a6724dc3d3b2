"""TOTP two-factor sign-in (RFC 6238) with one-time recovery codes.

The parameters are the ones every authenticator app supports (and assumes when a QR code names none):
HMAC-SHA-1, 6 digits, 30-second steps, a 160-bit secret in base32. A code is accepted for the current
step or one step either side (clock drift), and only for a step later than the last one accepted, so a
code seen over a shoulder or replayed is refused; the step is claimed with one conditional UPDATE, so two
requests racing with the same code cannot both pass. The service clock decides the time.

The secret is stored encrypted (datacrypt.EncryptedText: it must be recoverable to check codes). Recovery
codes — ten, shown once when TOTP is set up — are stored as argon2 hashes and each works once.
"""
from __future__ import annotations

import hmac
import secrets
import urllib.parse

import pyotp
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from .. import clock
from ..errors import Conflict, Forbidden, Unauthenticated, ValidationFailed
from ..models import ApiToken, RecoveryCode, User
from . import accounts
from .accounts import Principal

STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODES = 10
# Crockford-like alphabet without 0/O, 1/I/L: codes read off paper are typed without doubt.
_RECOVERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def current_step() -> int:
    return int(clock.now().timestamp()) // STEP_SECONDS


def provisioning_uri(user: User, secret: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return _totp(secret).provisioning_uri(name=user.username, issuer_name=issuer)


def secret_for_display(secret: str) -> str:
    """The secret in groups of four, for typing into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def begin_enrolment(session: Session, user: User) -> str:
    """A new secret waiting for its first code (a pending one is kept, so a reloaded QR code stays valid)."""
    if user.totp_enabled_at is not None:
        raise Conflict("two-factor sign-in is already set up for this account; an authority can reset it",
                       code="totp_already_enabled")
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32(32)
        user.totp_last_step = None
    return user.totp_secret


def _matching_step(secret: str, code: str) -> int | None:
    totp, now = _totp(secret), current_step()
    for step in (now - 1, now, now + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _claim_step(session: Session, user: User, step: int) -> bool:
    """Record `step` as used unless it (or a later one) already was; True if this call claimed it."""
    result = session.execute(update(User).where(User.id == user.id).where(
        or_(User.totp_last_step.is_(None), User.totp_last_step < step)).values(totp_last_step=step)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    user.totp_last_step = step
    return True


def normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _check_code(session: Session, user: User, code: str) -> None:
    code = normalise(code)
    step = _matching_step(user.totp_secret, code) if len(code) == DIGITS and code.isdigit() else None
    if step is None:
        raise Unauthenticated("the code is wrong or has expired; type the code your app shows now",
                              code="invalid_totp")
    if not _claim_step(session, user, step):
        raise Unauthenticated("this code has been used already; wait for the next one in your app",
                              code="totp_reused")


def confirm_enrolment(session: Session, user: User, code: str) -> list[str]:
    """Turn TOTP on with the first code from the app; the ten recovery codes (shown once)."""
    if user.totp_enabled_at is not None:
        raise Conflict("two-factor sign-in is already set up for this account", code="totp_already_enabled")
    if not user.totp_secret:
        raise Conflict("start setting up two-factor sign-in first", code="totp_not_started")
    _check_code(session, user, code)
    user.totp_enabled_at = clock.now()
    return new_recovery_codes(session, user)


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones (plaintext returned once, hashes kept)."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))  # 49 bits
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=accounts.hash_password(raw)))
    session.flush()
    return codes


def remaining_recovery_codes(session: Session, user_id: int) -> int:
    return len(session.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id,
                                                              RecoveryCode.used_at.is_(None))).all())


def verify(session: Session, user: User, code: str) -> str:
    """Check a second factor: a TOTP code ("totp") or an unused recovery code ("recovery")."""
    if user.totp_enabled_at is None or not user.totp_secret:
        raise Conflict("two-factor sign-in is not set up for this account", code="totp_not_enabled")
    norm = normalise(code)
    if not (len(norm) == DIGITS and norm.isdigit()) and len(norm) == 10:
        unused = session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                            RecoveryCode.used_at.is_(None))).all()
        for row in unused:
            if accounts.verify_hash(row.code_hash, norm):
                claimed = session.execute(update(RecoveryCode).where(
                    RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None)).values(used_at=clock.now())
                    .execution_options(synchronize_session=False))
                if claimed.rowcount == 1:
                    return "recovery"
        raise Unauthenticated("the recovery code is wrong or has been used", code="invalid_totp")
    _check_code(session, user, code)
    return "totp"


def reset(session: Session, user_id: int, *, by: Principal) -> User:
    """Turn a user's TOTP off (phone lost) so the next sign-in sets it up again; ends the user's web sessions.

    Only an authority whose jurisdiction covers the user's organisation (the same or a higher level) may, and
    never for itself (another authority, or the operator's `gi-service users reset-2fa`, does that)."""
    user = accounts.user_for_authority(session, user_id, by)
    if user.id == by.user_id:
        raise Forbidden("you cannot reset your own two-factor sign-in; ask another authority of the same or a "
                        "higher jurisdiction", code="own_account")
    return clear(session, user)


def clear(session: Session, user: User) -> User:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.name == accounts.WEB_SESSION_NAME,
                                           ApiToken.revoked_at.is_(None)).values(revoked_at=clock.now())
                    .execution_options(synchronize_session=False))
    return user


def issuer_for(base_url: str) -> str:
    """The name the authenticator app shows next to the code: the service's host."""
    host = urllib.parse.urlsplit(base_url).hostname or "gi-service"
    return f"GI {host}"


def check_code_format(code: str | None, field: str = "totp") -> str:
    if not code or not normalise(code):
        raise ValidationFailed("type the 6-digit code from your authenticator app (or a recovery code)",
                               details=[{"field": field, "problem": "required"}], code="totp_required")
    return code

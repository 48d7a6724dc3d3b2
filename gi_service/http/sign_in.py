"""What the API's and the pages' sign-ins share: the rules in force, and counting a failure towards a lockout."""
from __future__ import annotations

from flask import current_app

from ..db import write_session
from ..services import passwords
from ..services.passwords import SignInPolicy
from . import audit


def policy() -> SignInPolicy:
    """The sign-in rules of this app's settings (GI_PASSWORD_*, GI_LOCKOUT_*, GI_TOTP_REQUIRED)."""
    return SignInPolicy.from_settings(current_app.config["GI_SETTINGS"])


def count_failure(username: str, rules: SignInPolicy) -> int | None:
    """Count a wrong password or code towards the account's lockout, in a transaction of its own (the request's
    session is rolled back: its commit would be recorded in the audit trail as the action's success), and name
    the lockout it starts, if any, in the request's audit record. The lockout's seconds."""
    with write_session(current_app.extensions["gi_engine"]) as own:
        seconds = passwords.record_failure(own, username, rules)
        own.commit()
    audit.note(lockout_started_s=seconds)
    return seconds

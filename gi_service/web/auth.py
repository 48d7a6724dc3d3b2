"""Sign-in and sign-out for the web pages, and the session that carries the signed-in user.

A web sign-in is a row in ``api_tokens`` (name ``web session``) whose secret is thrown away at
once: it can never be used as a bearer token, but it gives the session a server-side identity.
The cookie (Flask's signed session: HttpOnly, SameSite=Lax, Secure in production) holds the
user id, that row's id, the sign-in time and the time of the last request. So:

* signing out revokes the row, and a copy of the cookie is dead from then on;
* a session ends after ``PERMANENT_SESSION_LIFETIME`` (12 h) without a request, and at the latest
  ``WEB_SESSION_DAYS`` (1 day) after sign-in (the row's expiry);
* disabling the user or organisation ends its sessions at the next request (as for tokens);
* the operator can end a session like any token (``gi-service tokens revoke ID``).

Signing in clears the old session first (no fixation) and makes a new CSRF token. A right password may
still need steps before the session is made (web/account_pages.py: the authenticator's code, setting TOTP
up, a new password); until then the cookie holds only the pending sign-in, and failures count towards the
account's temporary lockout (services/passwords.py). The session row records whether a code was checked.

The session is read only for the web blueprint's pages (and the GET landing page, which shows
who is signed in). The JSON API never accepts it: a cookie-authenticated API write would be
open to cross-site requests, so the API keeps bearer tokens only.
"""
from __future__ import annotations

import time

from flask import current_app, flash, g, redirect, request, session, url_for

from .. import clock
from ..db import write_session
from ..errors import Unauthenticated
from ..http import audit
from ..http.sign_in import count_failure, policy
from ..i18n import t
from ..models import ApiToken, User
from ..services import accounts, totp
from ..services.accounts import WEB_SESSION_NAME, Principal, principal_for
from ..services.passwords import AccountLocked
from . import csrf
from .framework import NOT_BLANK, Field, F, page, render, safe_next

WEB_SESSION_DAYS = 1  # at the latest a day after sign-in; the idle limit is PERMANENT_SESSION_LIFETIME (12 h)
SEEN_RESOLUTION_S = 60  # the last-request time is rewritten at most once a minute
PENDING_S = 600  # the steps after the password (code, set-up, new password) must be done within 10 minutes
# The page of each step that may follow a right password (accounts.sign_in_steps).
STEP_PAGES = {"totp": "web.login_code", "totp_enrol": "web.login_enrol", "password_change": "web.login_password"}


def _session_applies() -> bool:
    if request.path.startswith("/api/"):
        return False
    if request.blueprint == "web":
        return True
    return request.method in ("GET", "HEAD") and request.endpoint == "ogc.landing"


def session_principal() -> Principal | None:
    """The signed-in web user, for `current_principal()` (registered as gi_session_principal)."""
    if not _session_applies():
        return None
    sid, uid = session.get("sid"), session.get("uid")
    if not sid or not uid:
        return None
    now = time.time()
    seen = session.get("seen", 0)
    if now - seen > current_app.permanent_session_lifetime.total_seconds():
        _end(expired=True)
        return None
    with current_app.extensions["gi_sessionmaker"]() as db:
        row = db.get(ApiToken, sid)
        valid = (row is not None and row.user_id == uid and row.name == WEB_SESSION_NAME and row.revoked_at is None
                 and row.expires_at > clock.now() and row.user.is_active and row.user.organisation.is_active)
        if not valid:
            principal = None
        else:
            principal = principal_for(row.user, token_id=row.id, two_factor=row.two_factor)
            g.web_org_name = row.user.organisation.name
    if principal is None:
        _end(expired=True)
        return None
    if now - seen > SEEN_RESOLUTION_S:
        session["seen"] = now
    return principal


def _end(*, expired: bool = False) -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    if expired:
        g.web_session_expired = True


NEXT_DESCRIPTION = "a local path to go to after signing in (/app/...); anything else is ignored"


def _refused(status: int, code: str, key: str, *, target: str | None, username: str, **values):
    """The sign-in form again, saying why, with the refusal's status and X-Error-Code."""
    g.web_error_code = code
    resp = render("app/login.html", status=status, next=target, username=username, login_error=t(key, **values))
    if "retry_after" in values:
        resp.headers["Retry-After"] = str(values["retry_after"])
    return resp


def locked(exc: AccountLocked, *, target: str | None = None, username: str = ""):
    """The sign-in form saying the account is locked for a while (429, Retry-After)."""
    _end_pending()
    return _refused(429, "account_locked", "login_locked", target=target, username=username,
                    retry_after=exc.retry_after, minutes=max(1, -(-exc.retry_after // 60)))


# --- the steps after a right password --------------------------------------------------------------------
# Between the password and the session, the cookie holds only the pending sign-in: the user id, when the
# password was right, the steps left and whether a second factor passed. No page but the steps' reads it.

def begin_pending(user_id: int, steps: list[str], target: str | None) -> None:
    lang = session.get("lang")
    session.clear()
    session["pending"] = {"uid": user_id, "at": time.time(), "steps": list(steps), "tf": False, "next": target}
    if lang:
        session["lang"] = lang


def pending() -> dict | None:
    """The pending sign-in, if one is under way and not older than PENDING_S."""
    state = session.get("pending")
    if not state or time.time() - state.get("at", 0) > PENDING_S:
        return None
    return state


def _end_pending() -> None:
    session.pop("pending", None)


def step_done(state: dict, step: str, *, two_factor: bool = False) -> None:
    state = dict(state)
    state["steps"] = [s for s in state["steps"] if s != step]
    state["tf"] = state["tf"] or two_factor
    session["pending"] = state


def next_step_url(state: dict) -> str | None:
    return url_for(STEP_PAGES[state["steps"][0]]) if state["steps"] else None


def pending_user(db, state: dict) -> User | None:
    user = db.get(User, state["uid"])
    if user is None or not user.is_active or not user.organisation.is_active:
        return None
    return user


def finish_sign_in(db, user: User, *, two_factor: bool, target: str | None):
    """Every step passed: the web session (an api_tokens row) and a fresh cookie. The caller's `db` is
    committed here."""
    accounts.signed_in(user)
    audit.signed_in(db, user, two_factor=two_factor)
    row, _secret = accounts.create_token(db, user, name=WEB_SESSION_NAME, ttl_days=WEB_SESSION_DAYS,
                                         two_factor=two_factor)
    db.commit()
    uid, sid, name = user.id, row.id, user.display_name or user.username
    lang = session.get("lang")
    session.clear()  # a new session: nothing from before sign-in survives (fixation)
    session.permanent = True
    session.update(uid=uid, sid=sid, login_at=time.time(), seen=time.time())
    if lang:
        session["lang"] = lang
    csrf.renew()
    flash(t("welcome", name=name), "ok")
    return redirect(target or url_for("web.home"), code=303)


@page("/login", "login", methods=("GET", "POST"), kinds=None, summary="Sign-in page (username and password)",
      note="public; a successful sign-in sets the session cookie",
      query={"next": (NEXT_DESCRIPTION, {"type": "string"})},
      form={"username": Field({"type": "string", "minLength": 1, "pattern": NOT_BLANK}),
            "password": Field({"type": "string", "minLength": 1}),
            "next": F.string(description=NEXT_DESCRIPTION)},
      responses={401: "sign-in refused: wrong username or password, or a disabled account (the form again, saying "
                      "so alike; X-Error-Code: invalid_credentials)",
                 422: "username or password left out (the form again)",
                 429: "too many failed sign-ins: the account is locked for Retry-After seconds (X-Error-Code: "
                      "account_locked)"})
def login():
    from ..http.access import current_principal

    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_principal() is not None:
            return redirect(target or url_for("web.home"), code=303)
        return render("app/login.html", next=target)
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    if not username or not password:
        return _refused(422, "validation_failed", "login_missing", target=target, username=username)
    rules = policy()
    with write_session(current_app.extensions["gi_engine"]) as db:
        try:
            user = accounts.authenticate(db, username, password, rules)
        except AccountLocked as exc:
            db.rollback()
            return locked(exc, target=target, username=username)
        except Unauthenticated:
            # Wrong password, unknown user and disabled account read the same: nothing to probe.
            db.rollback()
            count_failure(username, rules)   # its own write transaction (BEGIN IMMEDIATE on SQLite)
            return _refused(401, "invalid_credentials", "login_failed", target=target, username=username)
        steps = accounts.sign_in_steps(user, rules)
        if not steps:
            return finish_sign_in(db, user, two_factor=False, target=target)
        audit.signed_in(db, user, password=True, steps_left=list(steps))
        if "totp_enrol" in steps:
            totp.begin_enrolment(db, user)  # the secret the set-up page shows
        db.commit()
        uid = user.id
    begin_pending(uid, steps, target)
    csrf.renew()
    return redirect(url_for(STEP_PAGES[steps[0]]), code=303)


@page("/logout", "logout", methods=("POST",), kinds=None, summary="Sign out: ends the web session for good",
      note="public; with the session's CSRF token", form={})
def logout():
    sid = session.get("sid")
    if sid:
        with write_session(current_app.extensions["gi_engine"]) as db:
            row = db.get(ApiToken, sid)
            if row is not None and row.name == WEB_SESSION_NAME and row.revoked_at is None:
                row.revoked_at = clock.now()
                db.commit()
    _end()
    csrf.renew()
    flash(t("signed_out"), "ok")
    return redirect(url_for("web.login"), code=303)

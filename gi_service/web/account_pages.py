"""The sign-in steps after the password, and the account's own security page.

After a right password (web/auth.py) a sign-in may still need: the code of the authenticator app (TOTP set
up), setting TOTP up (required for authority and inspection accounts and not set up yet), or a new password
(set by an authority, or too old). Each step is its own page; the web session is made only when all are done,
and is marked as having passed two factors when a code was checked.

Signed in, every account can change its password, set TOTP up, and get new recovery codes (/app/account).
Every step that changes something is a POST through `page()`, so the audit trail records it.
"""
from __future__ import annotations

import base64
import io
import re

import qrcode
from flask import current_app, g, redirect, request, url_for

from .. import clock
from ..db import write_session
from ..errors import Conflict, GIError, Unauthenticated, ValidationFailed
from ..http import audit
from ..http.sign_in import count_failure, policy
from ..i18n import t
from ..models import OrgKind, User
from ..services import accounts, passwords, totp
from ..services.passwords import AccountLocked
from . import auth
from .framework import MAX_ID, F, Form, done, page, problem, render

CODE_FIELD = {"code": F.text(20, description="the 6-digit code of the authenticator app, or a recovery code "
                                            "(XXXXX-XXXXX)")}
NEW_PASSWORD_FIELDS = {"new_password": F.text(200, description="the new password, by the password rules"),
                       "new_password2": F.text(200, description="the new password again")}


def qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as a PNG QR code (a data: URI: the pages' CSP allows images from data:)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=6, border=4)
    qr.add_data(uri)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _enrolment_view(user: User, secret: str) -> dict:
    settings = current_app.config["GI_SETTINGS"]
    uri = totp.provisioning_uri(user, secret, totp.issuer_for(settings.public_base_url))
    return {"qr": qr_data_uri(uri), "secret": totp.secret_for_display(secret), "issuer": totp.issuer_for(
        settings.public_base_url), "account": user.username}


def _new_passwords(form: Form) -> str | None:
    new = form.text("new_password", t("new_password"), max_len=200)
    again = form.text("new_password2", t("new_password2"), max_len=200)
    form.check()
    if new != again:
        raise ValidationFailed("the two new passwords differ", code="passwords_differ",
                               details=[{"field": "new_password2", "problem": "differs from new_password"}])
    return new


def _no_pending():
    g.web_error_code = "sign_in_expired"
    return redirect(url_for("web.login"), code=303)


# --- the sign-in steps ----------------------------------------------------------------------------------

@page("/login/code", "login_code", methods=("GET", "POST"), kinds=None, form=CODE_FIELD,
      summary="Sign-in step: the code of the authenticator app (or a recovery code)",
      note="public; only within a sign-in whose password was right (else back to /login)",
      responses={401: "wrong or already used code (X-Error-Code: invalid_totp, totp_reused)",
                 429: "too many failed sign-ins: locked for Retry-After seconds (account_locked)"})
def login_code():
    state = auth.pending()
    if state is None or "totp" not in state["steps"]:
        return _no_pending()
    if request.method == "GET":
        return render("app/login_code.html")
    rules = policy()
    engine = current_app.extensions["gi_engine"]
    form = Form()
    with write_session(engine) as db:
        user = auth.pending_user(db, state)
        if user is None:
            auth._end_pending()
            return _no_pending()
        try:
            code = form.text("code", t("totp_code"), max_len=20)
            form.check()
            passwords.check_not_locked(user, rules)
            totp.verify(db, user, code)
        except AccountLocked as exc:
            db.rollback()
            return auth.locked(exc)
        except Unauthenticated as exc:
            db.rollback()
            seconds = passwords.record_failure(db, user.username, rules)
            audit.note(lockout_started_s=seconds)
            db.commit()
            if seconds:
                return auth.locked(AccountLocked("locked", retry_after=seconds))
            return render("app/login_code.html", status=401, error=problem(exc))
        except GIError as exc:
            db.rollback()
            return render("app/login_code.html", status=exc.status, error=problem(exc))
        auth.step_done(state, "totp", two_factor=True)
        state = auth.pending()
        if state["steps"]:
            db.commit()
            return redirect(auth.next_step_url(state), code=303)
        return auth.finish_sign_in(db, user, two_factor=True, target=state.get("next"))


@page("/login/enrol", "login_enrol", methods=("GET", "POST"), kinds=None, form=CODE_FIELD,
      summary="Sign-in step: set up two-factor sign-in (scan the QR code, type the first code); the recovery codes "
              "are shown once",
      note="public; only within a sign-in whose password was right and whose account must set TOTP up",
      status=200, responses={401: "wrong code (X-Error-Code: invalid_totp)",
                             303: "no sign-in under way that must set TOTP up (or it took longer than 10 minutes): "
                                  "back to /login"})
def login_enrol():
    state = auth.pending()
    if state is None or "totp_enrol" not in state["steps"]:
        return _no_pending()
    engine = current_app.extensions["gi_engine"]
    form = Form() if request.method == "POST" else None
    with write_session(engine) as db:
        user = auth.pending_user(db, state)
        if user is None or not user.totp_secret:
            auth._end_pending()
            return _no_pending()
        view = _enrolment_view(user, user.totp_secret)
        if form is None:
            return render("app/totp_enrol.html", action=url_for("web.login_enrol"), **view)
        try:
            code = form.text("code", t("totp_code"), max_len=20)
            form.check()
            codes = totp.confirm_enrolment(db, user, code)
        except GIError as exc:
            db.rollback()
            return render("app/totp_enrol.html", status=exc.status, error=problem(exc),
                          action=url_for("web.login_enrol"), **view)
        auth.step_done(state, "totp_enrol", two_factor=True)
        state = auth.pending()
        if state["steps"]:
            db.commit()
            follow = auth.next_step_url(state)
        else:
            resp = auth.finish_sign_in(db, user, two_factor=True, target=state.get("next"))
            follow = resp.location
    # The codes are shown here once: the answer is the page itself, not a redirect.
    return render("app/recovery_codes.html", codes=codes, follow=follow)


@page("/login/password", "login_password", methods=("GET", "POST"), kinds=None, form=NEW_PASSWORD_FIELDS,
      summary="Sign-in step: choose a new password (first sign-in with a password set by an authority, or the "
              "password is older than the maximum age)",
      note="public; only within a sign-in whose password was right and must be changed",
      responses={422: "the new password breaks the rules or the two differ (X-Error-Code: weak_password, "
                      "passwords_differ)"})
def login_password():
    state = auth.pending()
    if state is None or "password_change" not in state["steps"] or state["steps"][0] != "password_change":
        return _no_pending()
    rules = policy()
    if request.method == "GET":
        return render("app/password_change.html", rules=rules, action=url_for("web.login_password"))
    form = Form()
    with write_session(current_app.extensions["gi_engine"]) as db:
        user = auth.pending_user(db, state)
        if user is None:
            auth._end_pending()
            return _no_pending()
        try:
            accounts.change_password(db, user, _new_passwords(form), rules)
        except GIError as exc:
            db.rollback()
            return render("app/password_change.html", status=exc.status, error=problem(exc), rules=rules,
                          action=url_for("web.login_password"))
        auth.step_done(state, "password_change")
        state = auth.pending()
        return auth.finish_sign_in(db, user, two_factor=state["tf"], target=state.get("next"))


# --- the account's own page -------------------------------------------------------------------------------

def _account_page(principal, status: int = 200, **extra):
    from ..db import get_session

    db = get_session()
    user = db.get(User, principal.user_id)
    tokens = [row for row in accounts.list_tokens(db, user.id)
                  if row.name != accounts.WEB_SESSION_NAME and row.is_valid()]
    return render("app/account.html", status=status, user=user, rules=policy(), tokens=tokens,
                  may_create_tokens=not policy().totp_required_for(user) or principal.two_factor,
                  remaining=totp.remaining_recovery_codes(db, user.id), expired=passwords.password_expired(
                      user, policy()), **extra)


@page("/app/account", "account", summary="My account's security: password, two-factor sign-in, recovery codes")
def account(principal):
    return _account_page(principal)


@page("/app/account/password", "account_password", methods=("POST",),
      form={"password": F.text(200, description="the current password"), **NEW_PASSWORD_FIELDS},
      summary="Change my password (with the current one)",
      responses={401: "the current password is wrong (invalid_credentials)",
                 422: "the new password breaks the rules or the two differ (weak_password, passwords_differ)",
                 429: "too many failed attempts: locked for Retry-After seconds (account_locked)"})
def account_password(principal):
    from ..db import get_session

    db = get_session()
    rules = policy()
    form = Form()
    try:
        current = form.text("password", t("current_password"), max_len=200)
        new = _new_passwords(form)
        user = accounts.authenticate(db, principal.username, current, rules)
        accounts.change_password(db, user, new, rules)
    except Unauthenticated as exc:
        db.rollback()
        count_failure(principal.username, rules)
        return _account_page(principal, status=401, error=problem(exc))
    except GIError as exc:
        db.rollback()
        resp = _account_page(principal, status=exc.status, error=problem(exc))
        if getattr(exc, "retry_after", None):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    db.commit()
    return done(t("password_changed"), "web.account")


@page("/app/account/totp", "account_totp", methods=("GET", "POST"), form=CODE_FIELD, status=200,
      summary="Set up two-factor sign-in for my account: the QR code (GET), the first code (POST; the recovery codes "
              "are shown once)",
      responses={401: "wrong code (invalid_totp)", 409: "already set up (totp_already_enabled), or not started "
                                                        "(totp_not_started)"})
def account_totp(principal):
    from ..db import get_session

    db = get_session()
    user = db.get(User, principal.user_id)
    if user.totp_enabled_at is not None or not user.totp_secret:
        if request.method == "GET":
            return redirect(url_for("web.account"), code=303)
        exc = Conflict("two-factor sign-in is already set up for this account" if user.totp_enabled_at else
                       "start setting up two-factor sign-in first (the button on the account page)",
                       code="totp_already_enabled" if user.totp_enabled_at else "totp_not_started")
        return _account_page(principal, status=exc.status, error=problem(exc))
    if request.method == "GET":
        return render("app/totp_enrol.html", action=url_for("web.account_totp"),
                      **_enrolment_view(user, user.totp_secret))
    form = Form()
    try:
        code = form.text("code", t("totp_code"), max_len=20)
        form.check()
        codes = totp.confirm_enrolment(db, user, code)
    except GIError as exc:
        db.rollback()
        user = db.get(User, principal.user_id)
        return render("app/totp_enrol.html", status=exc.status, error=problem(exc),
                      action=url_for("web.account_totp"), **_enrolment_view(user, user.totp_secret))
    db.commit()
    return render("app/recovery_codes.html", codes=codes, follow=url_for("web.account"))


@page("/app/account/totp/start", "account_totp_start", methods=("POST",), form={},
      summary="Start setting up two-factor sign-in for my account (a new secret; then /app/account/totp)",
      responses={409: "already set up (totp_already_enabled)"})
def account_totp_start(principal):
    from ..db import get_session

    db = get_session()
    user = db.get(User, principal.user_id)
    try:
        totp.begin_enrolment(db, user)
    except Conflict as exc:
        db.rollback()
        return _account_page(principal, status=exc.status, error=problem(exc))
    db.commit()
    return redirect(url_for("web.account_totp"), code=303)


@page("/app/account/recovery-codes", "account_recovery_codes", methods=("POST",), form=CODE_FIELD, status=200,
      summary="New recovery codes for my account (the old ones stop working), shown once; needs a current code",
      responses={401: "wrong code (invalid_totp)", 409: "two-factor sign-in is not set up (totp_not_enabled)"})
def account_recovery_codes(principal):
    from ..db import get_session

    db = get_session()
    rules = policy()
    user = db.get(User, principal.user_id)
    form = Form()
    try:
        code = form.text("code", t("totp_code"), max_len=20)
        form.check()
        totp.verify(db, user, code)
        codes = totp.new_recovery_codes(db, user)
    except Unauthenticated as exc:
        db.rollback()
        count_failure(principal.username, rules)
        return _account_page(principal, status=401, error=problem(exc))
    except GIError as exc:
        db.rollback()
        return _account_page(principal, status=exc.status, error=problem(exc))
    db.commit()
    return render("app/recovery_codes.html", codes=codes, follow=url_for("web.account"))


@page("/app/account/tokens", "account_tokens", methods=("POST",), status=200,
      form={"name": F.text(100, description="what the token is for (a script, a report tool)"),
            "ttl_days": F.integer(1, 365, description="days until it expires")},
      summary="Create an API token for my account from the web session; the token is shown only in this answer",
      note="where two-factor sign-in is required, only from a session that passed two factors",
      responses={403: "this session did not pass two factors and the account needs them (two_factor_required)"})
def account_tokens(principal):
    from ..db import get_session

    db = get_session()
    user = db.get(User, principal.user_id)
    form = Form()
    try:
        name = form.text("name", t("token_name"), max_len=100)
        ttl_days = form.integer("ttl_days", t("token_days"), lo=1, hi=365)
        form.check()
        accounts.check_may_create_token(principal, user, policy())
        row, plaintext = accounts.create_token(db, user, name=name, ttl_days=ttl_days,
                                               two_factor=principal.two_factor)
    except GIError as exc:
        db.rollback()
        return _account_page(principal, status=exc.status, error=problem(exc))
    db.commit()
    return _account_page(principal, new_token=plaintext, new_token_row=row)


@page("/app/account/tokens/<id:token_id>/revoke", "account_token_revoke", methods=("POST",), form={},
      summary="Revoke one of my API tokens", responses={404: "no such token of yours"})
def account_token_revoke(principal, token_id: int):
    from ..db import get_session

    db = get_session()
    try:
        accounts.revoke_token(db, token_id, by=principal)
    except GIError as exc:
        db.rollback()
        return _account_page(principal, status=exc.status, error=problem(exc))
    db.commit()
    return done(t("token_revoked"), "web.account")


# --- an authority's view of the accounts in its jurisdiction ----------------------------------------------

def _search_text() -> str | None:
    """The `q` of a search form: at most 100 characters, blank is none."""
    q = (request.args.get("q") or "").strip() or None
    if q is not None and len(request.args["q"]) > 100:
        raise ValidationFailed("search for at most 100 characters", details=[{"field": "q", "problem": "too long"}])
    return q


@page("/app/users", "users", kinds=(OrgKind.authority,),
      summary="The accounts in my jurisdiction: two-factor sign-in, lockouts, last sign-in; reset TOTP, unlock",
      query={"q": ("part of a username or an organisation's name", {"type": "string", "maxLength": 100})})
def users(principal):
    from ..db import get_session

    q = _search_text()
    rows = accounts.users_in_jurisdiction(get_session(), principal, q=q)
    return render("app/users.html", rows=rows, q=q or "", now=clock.now())


@page("/app/users/<id:user_id>/totp-reset", "user_totp_reset", kinds=(OrgKind.authority,), methods=("POST",),
      form={}, summary="Reset a user's two-factor sign-in (phone lost): set up again at the next sign-in",
      responses={403: "outside your jurisdiction, or your own account", 404: "no such user"})
def user_totp_reset(principal, user_id: int):
    from ..db import get_session

    db = get_session()
    user = totp.reset(db, user_id, by=principal)
    name = user.username
    db.commit()
    return done(t("totp_was_reset", name=name), "web.users")


@page("/app/users/<id:user_id>/unlock", "user_unlock", kinds=(OrgKind.authority,), methods=("POST",), form={},
      summary="End a user's sign-in lockout now", responses={403: "outside your jurisdiction", 404: "no such user"})
def user_unlock(principal, user_id: int):
    from ..db import get_session

    db = get_session()
    user = accounts.unlock(db, user_id, by=principal)
    name = user.username
    db.commit()
    return done(t("user_unlocked", name=name), "web.users")


USER_FIELDS = {
    "organisation_id": F.ident(description="the organisation the account belongs to: one in your jurisdiction"),
    "username": F.text(64, description="3 to 64 letters (a-z, A-Z), digits, '.', '_' or '-'"),
    "display_name": F.text(120, required=False, description="the person's name as lists show it (optional: "
                                                             "the username)"),
}
ORG_QUERY = {"q": ("part of an organisation's name or USCC", {"type": "string", "maxLength": 100}),
             "org": ("the id of the organisation to choose in the form (e.g. from its producer page)",
                     {"type": "integer", "minimum": 1, "maximum": MAX_ID})}


def _user_form_page(principal, *, status: int = 200, error: str | None = None, form=None, created: dict | None = None):
    from ..db import get_session
    from ..models import Organisation

    db = get_session()
    q = _search_text()
    orgs = accounts.organisations_in_jurisdiction(db, principal, q=q)
    chosen = ((form or {}).get("organisation_id") or request.args.get("org") or "").strip()
    selected = int(chosen) if re.fullmatch(r"[0-9]{1,10}", chosen) and int(chosen) <= MAX_ID else None
    if selected is not None and selected not in {o.id for o in orgs}:
        org = db.get(Organisation, selected)   # chosen on its own page: listed even when the search would not
        if org is not None and principal.covers(org.adcode):
            orgs.insert(0, org)
    return render("app/user_new.html", status=status, orgs=orgs, q=q or "", selected=selected, form=form or {},
                  error=error, created=created)


@page("/app/users/new", "user_new", kinds=(OrgKind.authority,), query=ORG_QUERY,
      summary="The form that opens an account for an organisation in my jurisdiction")
def user_new(principal):
    return _user_form_page(principal)


@page("/app/users/new", "user_create", kinds=(OrgKind.authority,), methods=("POST",), form=USER_FIELDS, status=200,
      summary="Open an account for an organisation in my jurisdiction: the service makes its first password, shows "
              "it only in this answer, and its owner must change it at the first sign-in",
      responses={403: "the organisation is outside your jurisdiction", 404: "no such organisation",
                 409: "the username is taken (duplicate_username)", 422: "a missing or invalid field"})
def user_create(principal):
    from ..db import get_session

    db = get_session()
    form = Form()
    try:
        org_id = form.integer("organisation_id", t("users_org"), lo=1, hi=MAX_ID)
        username = form.text("username", t("username"), max_len=64)
        display_name = form.text("display_name", t("display_name"), required=False, max_len=120)
        form.check()
        rules = policy()
        first = passwords.first_password(rules, username=username)
        user = accounts.create_user_in_jurisdiction(db, principal, organisation_id=org_id, username=username,
                                                    password=first, display_name=display_name, policy=rules)
    except GIError as exc:
        db.rollback()
        return _user_form_page(principal, status=exc.status, error=problem(exc), form=request.form)
    created = {"username": user.username, "org": user.organisation.name, "password": first}
    audit.note(user_id=user.id, organisation_id=org_id)
    db.commit()
    return _user_form_page(principal, created=created)

"""The audit trail on the API and the pages: every staff write and every sign-in attempt, recorded generically.

Which requests: every request to the JSON API (``api.*``) and the pages (``web.*``) that writes — a method
other than GET/HEAD/OPTIONS, or a GET whose request session writes (a print file's download is recorded in
the ledger) — when a staff member is behind it or it was refused for want of one (a staff-only endpoint
called without a usable sign-in), and every sign-in attempt (``api.login``, ``web.login``) with the username
tried, known or not. The consumer faces (``verify.*``, ``ogc.*``) are never recorded: consumers' addresses are
not kept (PIPL), only hashed in the check log.

What: the action is the endpoint's name (``api.approve_request``, ``web.login``), the target the URL's
resource ids (``request:5``, ``gi:3/plot:7``), the outcome success or failure with the error code and the
HTTP status; who is the caller's user, organisation and role; from where, the client address as the app
sees it (``request.remote_addr``, behind GI_TRUSTED_PROXIES through ProxyFix) and the request id.

When: a successful write's record is added to the request session's commit (``services/audit.py``'s
``before_commit`` hook), so the write and its record commit together; a failed one is written after the
rollback, in a transaction of its own. After the answer's record is committed the process seals pending
records into the chain, skipping when another process is at it (``audit.seal(wait=False)``).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import write_session
from ..errors import HTTP_CODES
from ..models import User
from ..services import audit
from ..services.accounts import Principal, principal_for
from .access import PUBLIC, current_principal

log = logging.getLogger("gi_service.audit")

AUDITED_BLUEPRINTS = ("api", "web")
# Sign-in attempts, recorded whatever their outcome: the password (API and page), the web's later steps (a TOTP
# or recovery code, setting up TOTP, a forced password change: the pending sign-in names the user) and the
# API's password change, which signs in too.
SIGN_INS = ("api.login", "api.change_password", "web.login", "web.login_code", "web.login_enrol",
            "web.login_password")
READS = ("GET", "HEAD", "OPTIONS")


def _target(view_args: dict[str, Any] | None) -> str | None:
    """The resource the URL names, from its rule's arguments: {gi_id: 3, plot_id: 7} -> "gi:3/plot:7"."""
    parts = [f"{name[:-3] if name.endswith('_id') else name}:{value}" for name, value in (view_args or {}).items()]
    return "/".join(parts) or None


def _access_level() -> str | None:
    view = current_app.view_functions.get(request.endpoint or "")
    access = getattr(view, "gi_access", None)
    return access.level if access is not None else None


def _success_statuses() -> dict[tuple[str, str], int]:
    """(endpoint, method) -> the declared success status, from the contracts every view declares."""
    found = current_app.extensions.get("gi_audit_statuses")
    if found is None:
        from .contract import SPECS

        found = {}
        for spec in SPECS:
            for method in spec.methods:
                name = spec.endpoint
                if name.endswith("_" + method):          # a page's write listed per method: web.name_POST
                    name = name[: -len(method) - 1]
                found[(name, method)] = spec.success_status
        current_app.extensions["gi_audit_statuses"] = found
    return found


def _attempted_username() -> str | None:
    """The username a sign-in tried (JSON body of the API, form of the page), as typed."""
    if request.is_json:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    else:
        name = request.form.get("username")
    return name.strip()[:64] if isinstance(name, str) and name.strip() else None


def _start() -> audit.Capture:
    capture = audit.Capture(
        channel=request.blueprint or "", action=request.endpoint or "", method=request.method,
        path=request.full_path.rstrip("?") if request.query_string else request.path,
        target=_target(request.view_args), address=request.remote_addr, request_id=g.get("request_id"),
        success_status=_success_statuses().get((request.endpoint or "", request.method)))
    if request.endpoint in SIGN_INS:
        capture.username = _attempted_username()
        capture.detail["sign_in"] = True
        if capture.username is None:
            _name_pending_user(capture)
    return capture


def _name_pending_user(capture: audit.Capture) -> None:
    """A later step of a web sign-in carries no username: its user is the pending sign-in's."""
    from flask import session as cookie

    state = cookie.get("pending") if request.blueprint == "web" else None
    uid = state.get("uid") if isinstance(state, dict) else None
    if not isinstance(uid, int):
        return
    with current_app.extensions["gi_sessionmaker"]() as session:
        user = session.get(User, uid)
        if user is not None:
            capture.username = user.username
            capture.act_as(principal_for(user))


def _before() -> None:
    if request.blueprint not in AUDITED_BLUEPRINTS or request.endpoint is None or request.method in READS:
        return
    g.audit = _start()
    if request.blueprint == "web" and request.endpoint not in SIGN_INS:
        # The pages' caller is known before the view runs (signing out clears the session); the pages never
        # refuse for a header they cannot use, so this resolves nothing the wrapper would not.
        current_principal()


def _principal() -> Principal | None:
    return g.get("principal") or g.get("bearer_principal")


def _finder(session: Session) -> audit.Capture | None:
    """The capture a committing session carries: the request's session, or a sign-in's own (`signed_in`)."""
    if not has_request_context():
        return None
    capture = g.get("audit")
    if capture is None or capture.written:
        return None
    if session is not g.get("db_session") and not session.info.get("gi_audit"):
        return None
    if not capture.user_id:
        capture.act_as(_principal())
    if capture.user_id is None and request.endpoint not in SIGN_INS and _access_level() == PUBLIC:
        return None                      # an anonymous public write is not a staff action
    return capture


def _on_flush(session: Session, _flush_context) -> None:
    """A GET whose request session writes (a print file's download, recorded in the ledger) is audited too."""
    if (has_request_context() and request.method in READS and "audit" not in g
            and request.blueprint in AUDITED_BLUEPRINTS and session is g.get("db_session")
            and (session.new or session.dirty or session.deleted)):
        g.audit = _start()


def signed_in(session: Session, user: User, **detail: Any) -> None:
    """A sign-in view proved `user`: its record names them, and joins the commit of `session` (the view's own
    session, when it is not the request's). Further steps (a second factor) may add `detail`."""
    capture = g.get("audit")
    if capture is None:
        return
    capture.act_as(principal_for(user))
    capture.detail.update(detail)
    session.info["gi_audit"] = True


def note(**detail: Any) -> None:
    """Add `detail` (values not None) to this request's audit record: what a view knows and the wrapper does not,
    e.g. the lockout a refused sign-in started."""
    capture = g.get("audit") if has_request_context() else None
    if capture is not None:
        capture.detail.update({name: value for name, value in detail.items() if value is not None})


def _error_code(resp: Response) -> str:
    code = g.get("web_error_code") or resp.headers.get("X-Error-Code")
    if not code and resp.is_json:
        body = resp.get_json(silent=True)
        code = body.get("error") if isinstance(body, dict) else None
    return code or HTTP_CODES.get(resp.status_code, "unauthenticated" if resp.status_code < 400 else "http_error")


def _write_own(capture: audit.Capture, record_args: dict[str, Any]) -> None:
    """Write the record in a transaction of its own, after the request's has been rolled back."""
    if "db_session" in g:
        g.db_session.rollback()          # SQLite: let go of the write lock the request's transaction holds
    engine = current_app.extensions["gi_engine"]
    with write_session(engine) as session:
        if capture.user_id is None and capture.username and request.endpoint in SIGN_INS:
            # A refused sign-in of a known account is shown to the authorities over that account's organisation.
            user = session.scalar(select(User).where(User.username == capture.username))
            if user is not None:
                capture.act_as(principal_for(user))
                capture.token_id = None
        session.add(capture.record(**record_args))
        session.commit()


def _after(resp: Response) -> Response:
    capture = g.get("audit")
    if capture is None:
        return resp
    if not capture.user_id:
        capture.act_as(_principal())
    anonymous = capture.user_id is None and request.endpoint not in SIGN_INS
    level = _access_level()
    if anonymous and level == PUBLIC:
        return resp                      # an anonymous public write (none today but the sign-ins) is no staff action
    # A staff-only page answers an anonymous caller with a redirect to /login: a refusal all the same.
    failed = resp.status_code >= 400 or (anonymous and level != PUBLIC)
    try:
        if failed:
            extra = {"committed_before_failure": True} if capture.written else {}
            _write_own(capture, {"outcome": audit.FAILURE, "error_code": _error_code(resp),
                                 "http_status": resp.status_code, **extra})
        elif not capture.written:
            _write_own(capture, {"outcome": audit.SUCCESS, "http_status": resp.status_code})
        capture.written = True
        seal_now()
    except Exception:  # noqa: BLE001 - the answer stands; the operator is told loudly
        log.exception("could not write the audit record of %s %s (request id %s)", request.method, request.path,
                      g.get("request_id", "-"))
    return resp


def seal_now() -> int:
    """Chain the pending records now unless another process is at it (then it, or the next one, will)."""
    engine = current_app.extensions["gi_engine"]
    with write_session(engine) as session:
        count = audit.seal(session, wait=False)
        session.commit()
    return count


def init_app(app: Flask) -> None:
    """Install the hooks (before the rate limits', so a refused sign-in flood is recorded too)."""
    from sqlalchemy import event

    app.before_request(_before)
    app.after_request(_after)
    audit.watch_commits(_finder)
    if not event.contains(Session, "after_flush", _on_flush):
        event.listen(Session, "after_flush", _on_flush)

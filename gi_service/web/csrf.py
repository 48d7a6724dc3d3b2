"""CSRF protection for the web pages: one random token per session, checked on every cookie-authenticated write.

Every state-changing request to the web blueprint (POST, PUT, PATCH, DELETE) must carry the
session's token, in the form field ``csrf_token`` or the header ``X-CSRF-Token`` (for fetch),
compared in constant time; a request whose ``Origin`` names another site is refused too. A
refusal is a 400 page that says what to do (``X-Error-Code: csrf_failed``).

The one exception is a write whose caller is named by a usable bearer token (``Authorization:
Bearer …``, see ``http.access.bearer_principal``): a browser never attaches such a header by
itself, so a cross-site page cannot make a victim's browser send one, and the request is not
exposed to CSRF — the rule Django REST framework applies (CSRF only for session authentication).
Such a write needs no token and no Origin check. An Authorization header the pages cannot use (an
unknown, expired or revoked token, a proxy's ``Basic``) names nobody: it is ignored, the session
cookie decides, and the token and Origin checks apply as without it.

The JSON API under /api/v1 never reads the session (see ``auth.session_principal``), so it needs
no token: a cookie cannot act there.
"""
from __future__ import annotations

import hmac
import secrets

from flask import request, session

from ..http.access import bearer_principal
from ..errors import GIError

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class CSRFError(GIError):
    status = 400
    code = "csrf_failed"


def token() -> str:
    """The session's CSRF token (made on first use; login makes a fresh one)."""
    value = session.get("csrf")
    if not value:
        value = session["csrf"] = secrets.token_urlsafe(32)
    return value


def renew() -> str:
    session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _same_origin(origin: str) -> bool:
    return origin.rstrip("/") == request.host_url.rstrip("/")


def check() -> None:
    """Refuse a write without the session's token (or from another origin): before every web view, unless
    the caller is named by a usable bearer token."""
    if request.method in SAFE_METHODS:
        return
    if bearer_principal() is not None:
        return
    origin = request.headers.get("Origin")
    if origin and not _same_origin(origin):  # "null" (sandboxed frames, file:) is another origin too
        raise CSRFError(f"the request came from {origin}, not from this site")
    expected = session.get("csrf")
    sent = request.headers.get(HEADER) or request.form.get(FIELD) or ""
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CSRFError("the form's security token is missing or does not match this session")

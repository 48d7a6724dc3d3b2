"""Who may call a view, and who is calling.

``Access`` is the rule every view of every face declares (the public, any signed-in user, or some
organisation kinds); ``current_principal()`` resolves the caller from a bearer token or the web session,
once per request, and ``enforce`` applies a rule to it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app, g, request
from sqlalchemy import update

from .. import clock
from ..db import write_session
from ..errors import Forbidden, Unauthenticated
from ..models import ApiToken, OrgKind
from ..services.accounts import Principal, principal_for, resolve_token

PUBLIC = "public"
AUTHENTICATED = "authenticated"


@dataclass(frozen=True)
class Access:
    """Who may call an endpoint: the public, any signed-in user, or some organisation kinds."""

    level: str
    kinds: tuple[OrgKind, ...] = ()
    note: str = ""
    # A signed-in read whose answer may come from a hot standby within the lag bound (statistics: heavy reads
    # of settled facts), once that standby has replayed the caller's own last write (gi_service/replicas.py).
    # Public reads go to a standby anyway when the caller is anonymous.
    standby_reads: bool = False

    def describe(self) -> str:
        if self.level == PUBLIC:
            text = "public"
        elif self.kinds:
            text = "signed-in " + " or ".join(k.value for k in self.kinds)
        else:
            text = "any signed-in user"
        return f"{text}; {self.note}" if self.note else text


def public(note: str = "") -> Access:
    return Access(PUBLIC, note=note)


def signed_in(*kinds: OrgKind, note: str = "", standby_reads: bool = False) -> Access:
    return Access(AUTHENTICATED, tuple(kinds), note, standby_reads)


def is_web_page() -> bool:
    """Whether this request is for a page people sign in to with the session cookie: the web pages
    (``/login``, ``/app/…``) and the HTML landing page."""
    return request.blueprint == "web" or request.endpoint == "ogc.landing"


def _bearer_principal(header: str) -> Principal:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use `Authorization: Bearer <token>`", code="invalid_token")
    # Its own short session, before the request's: committing last_used_at must not end the
    # request's transaction (on SQLite that would drop the write lock a writer took at BEGIN).
    with current_app.extensions["gi_sessionmaker"]() as session:
        row = resolve_token(session, token.strip())
        principal = principal_for(row.user, token_id=row.id, two_factor=row.two_factor)
        last_used = row.last_used_at
    now = clock.now()
    # Recording every use would turn each read into a write; a 5-minute resolution is enough.
    if last_used is None or now - last_used > dt.timedelta(minutes=5):
        with write_session(current_app.extensions["gi_engine"]) as session:
            session.execute(update(ApiToken).where(ApiToken.id == principal.token_id).values(last_used_at=now))
            session.commit()
    return principal


def bearer_principal() -> Principal | None:
    """The caller named by a usable `Authorization: Bearer …` header, cached per request; None without one.

    On the API an unusable header is refused (401); on the web pages (`is_web_page`) it is ignored (None),
    as `current_principal` explains."""
    if "bearer_principal" in g:
        return g.bearer_principal
    principal = None
    header = request.headers.get("Authorization", "")
    if header:
        try:
            principal = _bearer_principal(header)
        except Unauthenticated:
            if not is_web_page():
                raise
    g.bearer_principal = principal
    return principal


def current_principal() -> Principal | None:
    """The caller resolved from `Authorization: Bearer …` (or the web session), cached per request.

    On the API an `Authorization` header must be a usable bearer token, or the request is refused
    (401). On the web pages (`is_web_page`) a valid bearer token identifies the caller too, but a
    header the pages cannot use — another scheme (a proxy's `Basic`), an unknown, expired or revoked
    token — is ignored: the page reads the session cookie as if no header had been sent, so a signed-in
    person behind such a proxy keeps working and a signed-out one is sent to /login once, never in a
    loop (/login itself never redirects because of a header)."""
    if "principal" in g:
        return g.principal
    principal = bearer_principal()
    if principal is None:
        loader = current_app.extensions.get("gi_session_principal")
        if loader is not None:
            principal = loader()
    g.principal = principal
    return principal


def enforce(access: Access) -> Principal | None:
    principal = current_principal()
    if access.level == PUBLIC:
        return principal
    if principal is None:
        raise Unauthenticated("sign in first: send `Authorization: Bearer <token>`")
    if access.kinds and principal.org_kind not in access.kinds:
        raise Forbidden(f"this action is for {' or '.join(k.value for k in access.kinds)} accounts; "
                        f"you are signed in as a {principal.kind}", code="wrong_role")
    return principal


def require(condition: bool, message: str, *, code: str = "forbidden") -> None:
    """Refuse with 403 unless `condition` holds."""
    if not condition:
        raise Forbidden(message, code=code)

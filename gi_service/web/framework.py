"""How a web page is declared and answered: access rule, layout, forms, errors, security headers.

``page(...)`` registers a view on the web blueprint with its access rule (checked on every
request: not signed in → the login page; wrong kind of account → the 403 page) and lists it in
/openapi.json like every other URL rule. Views call the same services as the API, so the same
permission rules hold; a write commits, flashes what was done and redirects (303), and a service
error (GIError) is shown on the form with its message and status.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

from flask import Response, flash, g, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from .. import clock
from ..api.framework import SPECS, Access, EndpointSpec, current_principal, public, signed_in
from ..codes import display_serial
from ..errors import Forbidden, GIError, NotFound, Unauthenticated, ValidationFailed
from ..i18n import current_lang, error_text, remember_lang, t, v
from ..models import OrgKind
from . import bp, csrf

log = logging.getLogger("gi_service.web")

AUTHORITY, PRODUCER, PRINTER, INSPECTION = (OrgKind.authority, OrgKind.producer, OrgKind.printer,
                                            OrgKind.inspection)
ANY_KIND = (AUTHORITY, PRODUCER, PRINTER, INSPECTION)
SESSION_NOTE = "web page; signed in with the session cookie from /login (forms carry a CSRF token)"

# No inline script or style anywhere in the signed-in pages: everything comes from /static.
# Inline SVG maps use presentation attributes, which CSP does not govern.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

# The navigation of each kind of account: (endpoint, text key). Later pages add their entries here.
NAV: dict[OrgKind, list[tuple[str, str]]] = {
    AUTHORITY: [("web.home", "nav_home"), ("web.registry", "nav_registry"), ("web.producers", "nav_producers"),
                ("web.quota", "nav_quota"), ("web.requests", "nav_requests"), ("web.batches", "nav_batches")],
    PRODUCER: [("web.home", "nav_home"), ("web.plots", "nav_plots"), ("web.quota", "nav_quota"),
               ("web.requests", "nav_requests"), ("web.marks", "nav_marks"), ("web.registry", "nav_registry")],
    PRINTER: [("web.home", "nav_home"), ("web.batches", "nav_orders"), ("web.registry", "nav_registry")],
    INSPECTION: [("web.home", "nav_home"), ("web.registry", "nav_registry"), ("web.producers", "nav_producers")],
}
# The second half of issue 7: inspection, supervision, credit, annual reports (and statistics, see statistics_pages).
NAV[AUTHORITY] += [("web.cases", "nav_cases"), ("web.clues", "nav_clues"), ("web.findings", "nav_findings"),
                   ("web.credit", "nav_credit"), ("web.annual_reports", "nav_annual"),
                   ("web.statistics", "nav_statistics")]
NAV[PRODUCER] += [("web.annual_report", "nav_annual_report")]
NAV[INSPECTION][1:1] = [("web.scan", "nav_scan"), ("web.findings", "nav_findings"), ("web.clues", "nav_clues"),
                        ("web.cases", "nav_cases")]
NAV[INSPECTION] += [("web.credit", "nav_credit"), ("web.statistics", "nav_statistics")]


# Views that answer the pages' own scripts: their errors (CSRF, sign-in, refusals) are JSON, not HTML pages.
JSON_ENDPOINTS: set[str] = set()


# --- declaring pages -----------------------------------------------------------------------------

def page(rule: str, name: str, *, summary: str, kinds: Iterable[OrgKind] | None = ANY_KIND,
         methods: Iterable[str] = ("GET",), note: str = "", content_type: str = "text/html",
         body_content_type: str | None = None):
    """Register a web view. `kinds=None` makes it public (login); otherwise a signed-in account of
    one of `kinds` is required and passed to the view as `principal`. `content_type` is what it
    answers (HTML pages; JSON or images for the pages' own scripts), `body_content_type` what a
    write takes (a form by default)."""
    methods = tuple(m.upper() for m in methods)
    kinds = tuple(kinds) if kinds is not None else None
    access: Access = public(note or "web page") if kinds is None else signed_in(
        *(() if set(kinds) == set(ANY_KIND) else kinds), note=(note + "; " if note else "") + SESSION_NOTE)

    def decorate(view: Callable[..., Any]):
        @functools.wraps(view)
        def wrapper(**kwargs):
            if kinds is not None:
                principal = current_principal()
                if principal is None:
                    raise Unauthenticated("sign in first")
                if principal.org_kind not in kinds:
                    raise Forbidden(f"this page is for {' or '.join(k.value for k in kinds)} accounts; "
                                    f"you are signed in as a {principal.kind}", code="wrong_role")
                kwargs["principal"] = principal
            return view(**kwargs)

        wrapper.gi_access = access  # type: ignore[attr-defined]
        bp.add_url_rule(rule, endpoint=name, view_func=wrapper, methods=list(methods))
        if content_type == "application/json":
            JSON_ENDPOINTS.add(f"web.{name}")
        for method in methods:
            write = method != "GET"
            SPECS.append(EndpointSpec(
                rule=rule, methods=(method,), endpoint=f"web.{name}" + ("" if len(methods) == 1 else f"_{method}"),
                summary=summary, access=access, tags=("web pages",),
                success_status=303 if write and content_type == "text/html" else 200,
                success_content_type=content_type,
                body_content_type=(body_content_type or "application/x-www-form-urlencoded") if write
                else "application/json",
                responses={400: "missing or wrong CSRF token"} if write else {}))
        return wrapper

    return decorate


# --- answering -------------------------------------------------------------------------------------

def render(template: str, status: int = 200, **context: Any) -> Response:
    resp = make_response(render_template(template, **context), status)
    return resp


def done(message: str, endpoint: str, **values: Any) -> Response:
    """After a successful write: say what was done and show the page again (303 See Other)."""
    flash(message, "ok")
    return redirect(url_for(endpoint, **values), code=303)


def problem(exc: GIError) -> str:
    return error_text(exc.code, exc.message)


def commit() -> None:
    if "db_session" in g:
        g.db_session.commit()


def rollback() -> None:
    if "db_session" in g:
        g.db_session.rollback()


def safe_next(target: str | None) -> str | None:
    """A local path to go back to after sign-in; anything else (another host, //x, \\x) is dropped."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if re.search(r"[\x00-\x1f]", target):
        return None
    return target


def other_lang_url() -> str:
    args = request.args.to_dict()
    args["lang"] = "en" if current_lang() == "zh" else "zh"
    return request.path + "?" + urlencode(args)


# --- forms -------------------------------------------------------------------------------------------

class Form:
    """Read a submitted form field by field; problems are collected and raised together (422)."""

    def __init__(self, data=None):
        self.data = data if data is not None else request.form
        self.problems: list[dict[str, str]] = []

    def _fail(self, name: str, key: str, label: str) -> None:
        self.problems.append({"field": name, "problem": t(key, field=label)})

    def text(self, name: str, label: str, *, required: bool = True, max_len: int = 1000) -> str | None:
        value = (self.data.get(name) or "").strip()
        if not value:
            if required:
                self._fail(name, "required_field", label)
            return None
        if len(value) > max_len:
            self._fail(name, "out_of_range", label)
            return None
        return value

    def integer(self, name: str, label: str, *, required: bool = True, lo: int | None = None,
                hi: int | None = None) -> int | None:
        raw = (self.data.get(name) or "").strip().replace(",", "")
        if not raw:
            if required:
                self._fail(name, "required_field", label)
            return None
        try:
            value = int(raw)
        except ValueError:
            self._fail(name, "bad_number", label)
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self._fail(name, "out_of_range", label)
            return None
        return value

    def grams_from_kg(self, name: str, label: str, *, positive: bool = False) -> int | None:
        raw = (self.data.get(name) or "").strip().replace(",", "")
        if not raw:
            self._fail(name, "required_field", label)
            return None
        try:
            grams = int((Decimal(raw) * 1000).to_integral_value())
        except InvalidOperation:
            self._fail(name, "bad_number", label)
            return None
        if positive and grams <= 0 or abs(grams) > 10**15:
            self._fail(name, "out_of_range", label)
            return None
        return grams

    def decimal(self, name: str, label: str, *, required: bool = False) -> Decimal | None:
        raw = (self.data.get(name) or "").strip()
        if not raw:
            if required:
                self._fail(name, "required_field", label)
            return None
        try:
            return Decimal(raw)
        except InvalidOperation:
            self._fail(name, "bad_number", label)
            return None

    def date(self, name: str, label: str, *, required: bool = True) -> dt.date | None:
        raw = (self.data.get(name) or "").strip()
        if not raw:
            if required:
                self._fail(name, "required_field", label)
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            self._fail(name, "bad_date", label)
            return None

    def spans(self, name: str, label: str, *, required: bool = True) -> list[tuple[str, str]]:
        """Serial ranges typed one per line: a serial, or 'first ~ last' (also '..', '至', 'to', ',')."""
        pairs = []
        for line in (self.data.get(name) or "").splitlines():
            line = line.strip()
            if not line:
                continue
            parts = [p.strip() for p in re.split(r"~|～|\.\.|…|至|\bto\b|,|，", line) if p.strip()]
            if len(parts) == 1:
                pairs.append((parts[0], parts[0]))
            elif len(parts) == 2:
                pairs.append((parts[0], parts[1]))
            else:
                self._fail(name, "bad_range", label)
                return []
        if required and not pairs:
            self._fail(name, "required_field", label)
        return pairs

    def check(self) -> None:
        if self.problems:
            raise ValidationFailed("; ".join(p["problem"] for p in self.problems), details=self.problems)


# --- hooks ---------------------------------------------------------------------------------------------

@bp.before_request
def _before() -> None:
    remember_lang()
    if request.endpoint in JSON_ENDPOINTS:
        g.web_json = True
    csrf.check()


@bp.after_request
def _security_headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers.setdefault("Permissions-Policy", "camera=(self), geolocation=(self), microphone=()")
    if request.endpoint != "web.static":
        # Signed-in pages hold private data: never cached, so the back button after sign-out shows nothing.
        resp.headers["Cache-Control"] = "no-store"
        resp.vary.add("Cookie")
    return resp


@bp.context_processor
def _layout_context() -> dict[str, Any]:
    principal = g.get("principal")
    return {
        "t": t, "v": v, "lang": current_lang(), "csrf_token": csrf.token, "principal": principal,
        "nav": NAV.get(principal.org_kind, []) if principal else [], "other_lang_url": other_lang_url(),
        "org_name": g.get("web_org_name"),
    }


@bp.app_template_filter("china_time")
def china_time(value: dt.datetime) -> str:
    """A stored UTC time as people in China read it (CST, UTC+8)."""
    return value.astimezone(clock.CHINA_TZ).strftime("%Y-%m-%d %H:%M")


@bp.app_template_filter("display_serial")
def serial_for_people(serial: str) -> str:
    """BBSH26000001234E -> BBSH-26-000001234-E, as printed on the label."""
    return display_serial(serial)


def _error_page(status: int, title_key: str, text: str, *, detail: str | None = None) -> Response:
    return render("app/error.html", status=status, title=t(title_key), text=text, detail=detail,
                  request_id=g.get("request_id"))


def _json_error(status: int, code: str, message: str, details: Any = None) -> Response:
    body = {"error": code, "message": message, "details": details}
    if g.get("request_id"):
        body["request_id"] = g.request_id
    resp = make_response(body, status)
    return resp


@bp.errorhandler(GIError)
def _gi_error(exc: GIError):
    rollback()
    if g.get("web_json"):
        return _json_error(int(exc.status), exc.code, problem(exc), exc.details)
    if isinstance(exc, Unauthenticated):
        flash(t("session_expired") if g.get("web_session_expired") else t("login_intro"), "info")
        # Back here after sign-in, but never "back to /login": a refusal there must not nest `next` in a loop.
        target = request.full_path.rstrip("?") if request.method == "GET" and request.endpoint != "web.login" \
            else None
        return redirect(url_for("web.login", next=target) if target else url_for("web.login"), code=303)
    if isinstance(exc, csrf.CSRFError):
        return _error_page(400, "csrf_title", t("csrf_text"))
    if isinstance(exc, Forbidden):
        return _error_page(403, "forbidden_title", t("forbidden_text"), detail=problem(exc))
    if isinstance(exc, NotFound):
        return _error_page(404, "not_found_title", t("not_found_text"), detail=problem(exc))
    return _error_page(int(exc.status), "error_title", problem(exc))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    if exc.code == 404:
        return _error_page(404, "not_found_title", t("not_found_text"))
    return _error_page(exc.code, "error_title", exc.description or exc.name)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    rollback()
    log.exception("unhandled error in web request %s %s (request id %s)", request.method, request.path,
                  g.get("request_id", "-"))
    if g.get("web_json"):
        return _json_error(500, "server_error", t("server_error_text"))
    return _error_page(500, "error_title", t("server_error_text"))


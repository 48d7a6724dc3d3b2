"""How a web page is declared and answered: access rule, layout, forms, errors, security headers.

``page(...)`` registers a view on the web blueprint with its access rule (checked on every
request: not signed in → the login page; wrong kind of account → the 403 page) and lists it in
/openapi.json like every other URL rule. Views call the same services as the API, so the same
permission rules hold; a write commits, flashes what was done and redirects (303), and a service
error (GIError) is shown on the form with its message and status.

Every write declares its form fields (``form={"reason": F.text(), ...}``, the ``F`` constructors mirror
``Form``'s readers and their bounds): /openapi.json describes them as the write's request body, and
``Form`` checks in tests that a view reads only declared fields, with the declared bounds. Every error
answer of the pages (an HTML page, or JSON for the pages' scripts) carries the stable error code in the
``X-Error-Code`` header (``validation_failed``, ``csrf_failed``, ``invalid_serial``, ...), the code the
API puts in its JSON ``error`` field: a script driving the pages need not read the HTML.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable
from urllib.parse import urlencode

from flask import Response, current_app, flash, g, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from ..codes import display_serial
from ..errors import HTTP_CODES, Forbidden, GIError, NotFound, Unauthenticated, ValidationFailed
from ..http.access import Access, current_principal, public, signed_in
from ..http.contract import EndpointSpec, SPECS
from .. import clock
from ..i18n import current_lang, error_text, remember_lang, t, v
from ..models import OrgKind
from . import bp, csrf

log = logging.getLogger("gi_service.web")

AUTHORITY, PRODUCER, PRINTER, INSPECTION = (OrgKind.authority, OrgKind.producer, OrgKind.printer,
                                            OrgKind.inspection)
ANY_KIND = (AUTHORITY, PRODUCER, PRINTER, INSPECTION)
SESSION_NOTE = ("web page; signed in with the session cookie from /login (a write also sends the session's CSRF "
                "token) or a bearer token (a write needs no CSRF token)")

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


# --- declaring a write's form fields -------------------------------------------------------------------

# What Python's str.strip() removes (Form strips every field before reading it): a required text field needs
# one character that is none of these.
_PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"[^{_PY_SPACE}]"
MAX_ID = 2**31 - 1          # a row id (as the API's `Id`)
MAX_KG = 10**12             # the largest amount of a quota movement, in kg (10^15 g)
# A serial as printed, without hyphens (BBSH26000001234E): 4 prefix characters (no I, no O), the year, the
# 9-digit number and the check character. Lowercase, spaces and hyphens are read too; a wrong check character
# or the number 000000000 is refused with 422 invalid_serial.
SERIAL_PATTERN = "[0-9A-HJ-NP-Z]{4}[0-9]{11}[0-9A-Z]"
_SPAN = f"[ \\t]*{SERIAL_PATTERN}([ \\t]*~[ \\t]*{SERIAL_PATTERN})?[ \\t]*"
CSRF_FIELD_SCHEMA = {"type": "string", "description": "the session's CSRF token (in every form of the pages; "
                     "/app/session.json gives it to scripts): required when signed in with the session cookie (and "
                     "when signing in); not with a bearer token. The X-CSRF-Token header may carry it instead"}


@dataclass(frozen=True)
class Field:
    """One field of a write's form as /openapi.json states it: its JSON Schema, whether it is required, and
    what `Form` reads it as (`reader`, with its bounds) for the test-time check that the two agree."""
    schema: dict[str, Any]
    required: bool = True
    reader: str = "raw"
    bounds: tuple[Any, ...] = ()


def _described(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description} if description else schema


class F:
    """Form fields, one constructor per `Form` reader (same names, same bounds)."""

    @staticmethod
    def text(max_len: int = 1000, *, required: bool = True, description: str = "") -> Field:
        """`Form.text`: stripped of surrounding spaces; blank is missing (refused when required, else ignored)."""
        schema = ({"type": "string", "minLength": 1, "maxLength": max_len, "pattern": NOT_BLANK} if required
                  else {"type": "string", "maxLength": max_len})
        return Field(_described(schema, description or ("" if required else "optional: blank means left out")),
                     required, "text", (max_len,))

    @staticmethod
    def integer(lo: int, hi: int, *, required: bool = True, description: str = "") -> Field:
        """`Form.integer` with its bounds (commas between thousands are read too)."""
        schema = {"type": "integer", "minimum": lo, "maximum": hi}
        return Field(_described(schema, description), required, "integer", (lo, hi))

    @staticmethod
    def ident(*, required: bool = True, description: str = "") -> Field:
        """A row id (`Form.integer(lo=1, hi=MAX_ID)`); one that names nothing is refused with 404 or 422."""
        return F.integer(1, MAX_ID, required=required, description=description)

    @staticmethod
    def kg(*, positive: bool = False, description: str = "") -> Field:
        """`Form.grams_from_kg`: kilograms, kept to the gram (rounded to 3 decimals)."""
        schema = {"type": "number", "minimum": 0.001 if positive else -MAX_KG, "maximum": MAX_KG}
        return Field(_described(schema, description or "kilograms, kept to the gram"), True, "kg", (positive,))

    @staticmethod
    def decimal(lo: float | None = None, hi: float | None = None, *, gt: float | None = None,
                required: bool = False, description: str = "") -> Field:
        """`Form.decimal`: a finite decimal number, at least `lo` (or more than `gt`) and at most `hi`."""
        schema: dict[str, Any] = {"type": "number"}
        if lo is not None:
            schema["minimum"] = lo
        if gt is not None:
            schema["exclusiveMinimum"] = gt
        if hi is not None:
            schema["maximum"] = hi
        return Field(_described(schema, description), required, "decimal", (lo, gt, hi))

    @staticmethod
    def date(*, required: bool = True, description: str = "") -> Field:
        """`Form.date`: an ISO date (2026-04-30)."""
        return Field(_described({"type": "string", "format": "date"}, description), required, "date")

    @staticmethod
    def spans(*, required: bool = True, description: str = "") -> Field:
        """`Form.spans`: serial ranges, one per line: a serial, or `first ~ last` (also `..`, `至`, `to`, `,`).
        A wrong check character is refused with 422 invalid_serial; serials the caller does not hold, with the
        service's 403/404/409/422."""
        lines = f"{_SPAN}(\\r?\\n{_SPAN})*\\s*"
        schema = {"type": "string", "pattern": f"^{lines}$" if required else f"^(\\s*|{lines})$",
                  "description": description or "serial ranges, one per line: a serial, or `first ~ last`"}
        return Field(schema, required, "spans")

    @staticmethod
    def choice(values: Iterable[str], *, required: bool = True, description: str = "") -> Field:
        """One of `values` (a select or radio buttons); anything else is refused with 422."""
        return Field(_described({"type": "string", "enum": list(values)}, description), required)

    @staticmethod
    def choices(values: Iterable[str], *, description: str = "") -> Field:
        """Any of `values`, the field repeated (checkboxes); anything else is refused with 422."""
        schema = {"type": "array", "items": {"type": "string", "enum": list(values)}, "uniqueItems": True}
        return Field(_described(schema, description), False)

    @staticmethod
    def flag(description: str) -> Field:
        """A checkbox: `yes` means yes; any other value, or leaving it out, means no."""
        return Field({"type": "string", "description": description + ": `yes`; any other value, or none, is no"},
                     False)

    @staticmethod
    def string(*, required: bool = False, description: str = "") -> Field:
        """Free text read as it is (nothing refused)."""
        return Field(_described({"type": "string"}, description), required)

    @staticmethod
    def files(description: str) -> Field:
        """Uploaded files, the field repeated (multipart/form-data)."""
        return Field({"type": "array", "items": {"type": "string", "format": "binary"}, "description": description},
                     False)


def form_schema(fields: dict[str, Field], *, csrf_field: bool = True, closed: bool = False) -> dict[str, Any]:
    """The JSON Schema of a write's body: its fields, and the optional `csrf_token`. Unknown fields are ignored
    (a browser's form may send more), unless `closed`."""
    properties = {name: f.schema for name, f in fields.items()}
    if csrf_field:
        properties["csrf_token"] = CSRF_FIELD_SCHEMA
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    required = [name for name, f in fields.items() if f.required]
    if required:
        schema["required"] = required
    return schema


# --- declaring pages -----------------------------------------------------------------------------

def page(rule: str, name: str, *, summary: str, kinds: Iterable[OrgKind] | None = ANY_KIND,
         methods: Iterable[str] = ("GET",), note: str = "", content_type: str = "text/html",
         body_content_type: str | None = None, form: dict[str, Field] | None = None, body: Any = None,
         path: dict[str, dict[str, Any]] | None = None, query: dict[str, Any] | None = None,
         responses: dict[int, str] | None = None, alt_content_types: tuple[str, ...] = (),
         status: int | None = None, form_closed: bool = False, form_rules: dict[str, Any] | None = None):
    """Register a web view. `kinds=None` makes it public (login); otherwise a signed-in account of
    one of `kinds` is required and passed to the view as `principal`. `content_type` is what it
    answers (HTML pages; JSON or images for the pages' own scripts), `body_content_type` what a
    write takes (a form by default).

    A write states what it reads: `form` its form fields (`F.text()`, ..., `{}` for none) or `body` the
    pydantic model of its JSON body. `path` gives JSON Schemas of path parameters that are more than any
    string, `query` the query parameters it reads ({name: (description, schema[, required])}), `responses`
    what its writes answer besides the usual (303 done; 400, 403, 404, 409, 422 shown as a page).
    `alt_content_types` lists other media types of its success (a download's formats), `status` the
    success status of a write that is no 303 (a script's 201), `form_closed` that unknown fields are refused
    (the API's upload handlers), not ignored; `form_rules` JSON Schema keywords over the fields together (an
    `anyOf` of required fields)."""
    methods = tuple(m.upper() for m in methods)
    kinds = tuple(kinds) if kinds is not None else None
    access: Access = public(note or "web page") if kinds is None else signed_in(
        *(() if set(kinds) == set(ANY_KIND) else kinds), note=(note + "; " if note else "") + SESSION_NOTE)
    writes = [m for m in methods if m != "GET"]
    if writes and form is None and body is None:
        raise TypeError(f"page {name}: a write declares its form fields (form={{...}}) or its JSON body (body=)")
    body_type = body_content_type or "application/x-www-form-urlencoded"
    # The pages' own scripts send the CSRF token in the X-CSRF-Token header, never as a field.
    csrf_field = content_type != "application/json"

    def decorate(view: Callable[..., Any]):
        @functools.wraps(view)
        def wrapper(**kwargs):
            if form is not None and request.method != "GET":
                g.web_form_fields = form
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
                success_status=status if write and status else 303 if write and content_type == "text/html" else 200,
                success_content_type=content_type, alt_content_types=alt_content_types,
                body_content_type=body_type if write else "application/json",
                body=body if write else None,
                form_schema={**form_schema(form, csrf_field=csrf_field, closed=form_closed), **(form_rules or {})}
                if write and form is not None else None,
                path_schemas=dict(path or {}), query_params=dict(query or {}),
                responses={400: "missing or wrong CSRF token", **(responses or {})} if write else {}))
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
    """The refusal's text for the page; its code becomes the answer's X-Error-Code (the first refusal's)."""
    if "web_error_code" not in g:
        g.web_error_code = exc.code
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

    def _declared(self, name: str, reader: str, required: bool, bounds: tuple[Any, ...] = ()) -> None:
        """Under test, refuse to read a field the page's `form=` does not declare as read here (so /openapi.json
        cannot drift from the view); in production, log it."""
        declared = g.get("web_form_fields")
        if declared is None:
            return
        field = declared.get(name)
        if field is not None and (field.reader, field.required, field.bounds) == (reader, required, bounds):
            return
        message = (f"{request.endpoint}: the view reads form field {name!r} as {reader}{bounds} "
                   f"(required={required}), but the page declares {field}")
        if current_app.testing:
            raise AssertionError(message)
        log.warning("%s", message)

    def text(self, name: str, label: str, *, required: bool = True, max_len: int = 1000) -> str | None:
        self._declared(name, "text", required, (max_len,))
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
        self._declared(name, "integer", required, (lo, hi))
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
        """Kilograms as whole grams: at most MAX_KG either way; `positive`: at least a gram (0.001)."""
        self._declared(name, "kg", True, (positive,))
        raw = (self.data.get(name) or "").strip().replace(",", "")
        if not raw:
            self._fail(name, "required_field", label)
            return None
        try:
            kg = Decimal(raw)
        except InvalidOperation:
            self._fail(name, "bad_number", label)
            return None
        if not kg.is_finite():
            self._fail(name, "bad_number", label)
            return None
        # The bounds hold for the amount as typed (as /openapi.json states them), before rounding to the gram.
        if positive and kg < Decimal("0.001") or abs(kg) > MAX_KG:
            self._fail(name, "out_of_range", label)
            return None
        return int((kg * 1000).to_integral_value())

    def decimal(self, name: str, label: str, *, required: bool = False, lo: float | None = None,
                gt: float | None = None, hi: float | None = None) -> Decimal | None:
        self._declared(name, "decimal", required, (lo, gt, hi))
        raw = (self.data.get(name) or "").strip()
        if not raw:
            if required:
                self._fail(name, "required_field", label)
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():  # NaN and Infinity are no amounts
            self._fail(name, "bad_number", label)
            return None
        if (lo is not None and value < Decimal(str(lo))) or (gt is not None and value <= Decimal(str(gt))) \
                or (hi is not None and value > Decimal(str(hi))):
            self._fail(name, "out_of_range", label)
            return None
        return value

    def date(self, name: str, label: str, *, required: bool = True) -> dt.date | None:
        self._declared(name, "date", required)
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
        self._declared(name, "spans", required)
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
    if resp.status_code >= 400 and g.get("web_error_code"):
        resp.headers["X-Error-Code"] = g.web_error_code
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


def _error_page(status: int, title_key: str, text: str, *, code: str, detail: str | None = None) -> Response:
    g.web_error_code = code
    return render("app/error.html", status=status, title=t(title_key), text=text, detail=detail,
                  request_id=g.get("request_id"))


def _json_error(status: int, code: str, message: str, details: Any = None) -> Response:
    g.web_error_code = code
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
        return _error_page(400, "csrf_title", t("csrf_text"), code=exc.code)
    if isinstance(exc, Forbidden):
        return _error_page(403, "forbidden_title", t("forbidden_text"), detail=problem(exc), code=exc.code)
    if isinstance(exc, NotFound):
        return _error_page(404, "not_found_title", t("not_found_text"), detail=problem(exc), code=exc.code)
    return _error_page(int(exc.status), "error_title", problem(exc), code=exc.code)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    code = HTTP_CODES.get(exc.code, "http_error")
    if exc.code == 404:
        return _error_page(404, "not_found_title", t("not_found_text"), code=code)
    return _error_page(exc.code, "error_title", exc.description or exc.name, code=code)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    rollback()
    log.exception("unhandled error in web request %s %s (request id %s)", request.method, request.path,
                  g.get("request_id", "-"))
    if g.get("web_json"):
        return _json_error(500, "server_error", t("server_error_text"))
    return _error_page(500, "error_title", t("server_error_text"), code="server_error")


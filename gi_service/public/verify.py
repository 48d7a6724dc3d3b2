"""Consumer verification: `/v/{code}`, the GS1 Digital Link resolver `/01/{gtin}/…` and the product page `/p/{gtin}`.

`GET /v/{code}` answers a mobile-first HTML page (Chinese by default; English for
`Accept-Language: en…` or `?lang=en`) or, for `Accept: application/json`, the same answer
as JSON. Every GET is a check: it is logged (services/scans.py) and counted. HEAD and
OPTIONS are answered without logging.

Status codes — only a genuine mark answers 200; every other verdict still gets a full page
saying what happened and what to do:

=====  =========================  ==============================================================
200    genuine                    activated on a tested, active lot; authorization in force
400    malformed                  not shaped like a code (or, via GS1, not a valid Digital Link):
                                  the request itself is wrong
404    unknown                    no such mark: the MAC fails, or a valid MAC names a serial
                                  never issued (or, via GS1, a tag missing or the wrong GTIN)
409    genuine_not_activated      the mark exists, but its state (not activated) conflicts with
                                  being on sale
410    voided                     the mark existed and was withdrawn for good (voided, spoiled)
410    lost_or_stolen             withdrawn by its holder's report: the label is no longer valid
410    recalled                   the lot it was activated on was withdrawn from the market
451    authorization_suspended    an administrative decision (suspension, revocation, lapse)
                                  took away the producer's right to the mark ("unavailable for
                                  legal reasons", RFC 7725)
=====  =========================  ==============================================================

One JSON shape for every verdict (``verification.json_body``): the verdict document at the top level —
`verdict`, `genuine`, `status`, `detail`, `reason`, `title`, `message`, `advice`, `code`, `serial`, … and,
for a real mark, its facts. A non-genuine answer adds `error` (the verdict again) and `request_id`, so a
client of the error contract still finds its code; but `message` is the document's bilingual
``{"zh", "en"}`` like `title` and `advice` — the error contract's one English sentence is `reason`. Errors
that are not verdicts (405, 429, 500, 503, an unavailable `linkType`) keep the error contract
``{"error", "message": <string>, "details"}``.

A lot named on the package (`?lot=`, which the resolver fills from a Digital Link's `/10/{lot}`) is
compared with the lot the mark was activated on: a different one keeps the verdict and its status, adds
`lot_mismatch` (a warning) to the answer, and a genuine check is logged with the detail `lot_mismatch`.

Answers are `Cache-Control: no-store` (each check counts, and a verdict can change) and
`Vary: Accept, Accept-Language`. Every answer carries a strict Content-Security-Policy: the pages load
nothing from anywhere (`default-src 'none'`); their inline style and scripts run by a per-answer nonce;
they may only fetch and post to this origin and show its icon (`/favicon.ico`); nobody may frame them
(`frame-ancestors 'none'`, `X-Frame-Options: DENY`).

The GS1 resolver (GS1-Conformant Resolver standard): the URI is checked — bad syntax (e.g. a wrong
GTIN check digit, an unknown or misplaced qualifier, anything after the serial) is the *malformed*
verdict (400, detail `invalid_digital_link`, `reason` saying what is wrong); the `v` query parameter
carries the key id and MAC tag. An item whose tag is valid and whose serial was issued for that GTIN
has links — `gs1:defaultLink`, `gs1:verificationService`, `gs1:pip`, `gs1:traceability`, all on its
`/v/{code}` answer (with `?lot=` when the URI names a lot) — and is answered with a 307 redirect
(query string passed on, less `linkType` and `v`, which the resolver consumed), a 404 for an
unavailable `linkType`, or an RFC 9264 linkset for `linkType=linkset` (or `all`) or
`Accept: application/linkset+json`. An item without links (no tag, a wrong tag, never issued,
another GTIN) is answered directly with the *unknown* verdict (404), never redirected and never
walked up. A URI without a serial (`/01/{gtin}`, `/01/{gtin}/10/{lot}`) names a product, not a
label: it walks up to the GTIN's own links, `gs1:pip` (also the default link), the product page
`/p/{gtin}` (with `?lot=`); a GTIN no batch carries has none (404). Every resolver answer carries
`Access-Control-Allow-Origin: *`; `/.well-known/gs1resolver` describes the resolver.
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, quote, urlencode

from flask import (Blueprint, Response, current_app, g, jsonify, redirect, render_template, request,
                   send_from_directory)
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field

from .. import photos
from ..db import get_session
from ..errors import GIError, MalformedRequest, NotFound, ServiceUnavailable, ValidationFailed
from ..http.access import Access, public
from ..http.contract import endpoint, EndpointSpec, SPECS
from ..http.parsing import parse_model, read_json_body
from ..models import Verdict
from ..services import clues, gtins, scans, signals, verification
from ..services.marks import find_mark
from ..services.verification import Check
from .. import clock, i18n
from ..render.maps import public_area_map

bp = Blueprint("verify", __name__)

LINKSET_TYPE = "application/linkset+json"
GS1_VOC = "https://gs1.org/voc/"
LINKSET_CONTEXT = "https://ref.gs1.org/standards/resolver/linkset-context"
STATIC = Path(__file__).parent.parent / "web" / "static"
ICON_TYPE = "image/vnd.microsoft.icon"


def _register(rule: str, name: str, summary: str, access: Access, responses: dict[int, str],
              content_type: str = "text/html", query: dict[str, str] | None = None,
              response_schema: dict[str, Any] | None = None, tags: tuple[str, ...] = ("verification",),
              alt_content_types: tuple[str, ...] = (), error_content: dict[int, dict[str, Any]] | None = None,
              path_schemas: dict[str, dict[str, Any]] | None = None, **options):
    """Register a GET view with its access rule and its OpenAPI entry (like ogc.py): `content_type` is the success
    answer's documented media type (with `response_schema`), `alt_content_types` the others it may have."""
    def decorate(view):
        bp.add_url_rule(rule, endpoint=name, view_func=view, methods=["GET"], **options)
        view.gi_access = access
        spec = EndpointSpec(rule=rule, methods=("GET",), endpoint=f"verify.{name}", summary=summary, access=access,
                            tags=tags, success_content_type=content_type, responses=responses,
                            response_schema=response_schema)
        spec.alt_content_types = alt_content_types
        spec.error_content = error_content or {}
        spec.path_schemas = path_schemas or {}
        # The query parameters here are hints (lang, lot, linkType, v): a wrong one is ignored or becomes the
        # verdict, never the generic 413/415/422 input errors.
        spec.input_errors = False
        spec.query_params = query or {}
        SPECS.append(spec)
        return view
    return decorate


# The public pages load nothing from anywhere: their one inline stylesheet and their scripts run by the
# answer's nonce; they fetch and post only to this origin (location, report) and show its icon.
PAGE_CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Everything else (JSON, linksets, redirects, the icon, werkzeug's pages): nothing at all. An answer that
# brings its own policy (the rate limiter's page: ratelimit.PAGE_POLICY) keeps it.
DATA_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _nonce() -> str:
    """This answer's CSP nonce (128 random bits), the same for each of its inline elements."""
    nonce = g.get("verify_nonce")
    if nonce is None:
        nonce = g.verify_nonce = secrets.token_urlsafe(16)
    return nonce


def _policy(resp: Response) -> str:
    nonce = g.get("verify_nonce")
    if nonce is not None:
        return PAGE_CSP.format(nonce=nonce)
    return resp.headers.get("Content-Security-Policy") or DATA_CSP


@bp.after_request
def _cors_caching_and_policy(resp: Response) -> Response:
    # Resolvers and verification answers are read from anywhere (GS1: "SHALL support CORS");
    # POST stays same-origin: it is not among the allowed methods.
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    resp.headers["Access-Control-Allow-Headers"] = "Accept, Accept-Language"
    resp.headers["Access-Control-Expose-Headers"] = "Link, Location, Content-Language"
    resp.headers["Content-Security-Policy"] = _policy(resp)
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Permissions-Policy"] = "geolocation=(self), camera=(), microphone=()"
    if request.endpoint not in ("verify.resolver_description", "verify.favicon"):
        resp.headers["Cache-Control"] = "no-store"
        resp.vary.update(("Accept", "Accept-Language"))
    return resp


# --- helpers -----------------------------------------------------------------------------------

def _settings():
    return current_app.config["GI_SETTINGS"]


def _base_url() -> str:
    return _settings().public_base_url.rstrip("/")


def _lang() -> str:
    return i18n.choose_lang(request, negotiate=True)


def _wants_json() -> bool:
    accept = request.accept_mimetypes
    best = accept.best_match(["text/html", "application/json", LINKSET_TYPE])
    return best in ("application/json", LINKSET_TYPE) and accept[best] > accept["text/html"]


# The pages' words (gi_service/i18n/texts.py), one dict per language for the templates.
UI = i18n.by_lang("verify.")


def _checks_sentence(doc: dict[str, Any], lang: str) -> str | None:
    checks = doc.get("checks")
    if not checks:
        return None
    t = UI[lang]
    if checks["count"] == 0:
        return None
    if checks["count"] == 1:
        return t["checked_first"]
    city = (checks.get("first_place") or {}).get("city_name")
    place = t["checked_in"].format(city=city) if city else ""
    return t["checked_n"].format(n=checks["count"], date=checks["first_date"], place=place)


def _json_answer(result: verification.ConsumerVerdict) -> Response:
    body = verification.json_body(result)
    if not result.check.genuine and getattr(g, "request_id", None):
        body = {**body, "request_id": g.request_id}
    resp = jsonify(body)
    resp.status_code = result.check.status
    return resp


def _consumer_check(*, code: str | None = None, check: verification.Check | None = None,
                    record: bool = True, lot: str | None = None) -> verification.ConsumerVerdict:
    """The verification service's consumer check, with what this request says (GET logs; HEAD does not)."""
    return verification.consumer_check(
        get_session(), keyring=current_app.extensions["gi_keyring"], settings=_settings(),
        checklog=current_app.extensions["gi_checklog"], code=code, check=check, ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"), base_url=_base_url(),
        record=record and request.method == "GET", lot=lot)


def _answer(result: verification.ConsumerVerdict) -> Response:
    """Answer a consumer check as HTML or JSON with the verdict's status."""
    check, doc = result.check, result.doc
    if _wants_json():
        return _language_header(_json_answer(result))
    lang = _lang()
    svg = None
    if check.mark is not None:
        t = UI[lang]
        svg = public_area_map(get_session(), check.mark.batch.gi_id, check.mark.batch.producer_id,
                              title=str(escape(t["area"])), plots_label=str(escape(t["plots"])))
    other = "en" if lang == "zh" else "zh"
    other_url = f"{request.path}?{urlencode({**request.args.to_dict(), 'lang': other})}"
    html = render_template("verify.html", doc=doc, lang=lang, t=UI[lang], svg=Markup(svg) if svg else None,
                           checks_sentence=_checks_sentence(doc, lang), other_lang=other, other_url=other_url,
                           today=clock.today().isoformat(), nonce=_nonce())
    resp = Response(html, status=check.status, mimetype="text/html")
    resp.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    return resp


def _language_header(resp: Response) -> Response:
    resp.headers["Content-Language"] = "zh-CN" if _lang() == "zh" else "en"
    return resp


def _await_check(scan_id: int) -> None:
    """The check a token names is written behind its answer, usually by another process: wait for its
    row (it appears within one flush interval), else 503 with Retry-After so the page tries again."""
    if not current_app.extensions["gi_checklog"].wait_for(scan_id):
        raise ServiceUnavailable("this check is still being recorded; try again in a second",
                                 code="check_not_recorded_yet", retry_after=1)


# --- /v/{code} -------------------------------------------------------------------------------------

# --- the documented shapes (OpenAPI) ------------------------------------------------------------------

_BILINGUAL = {"type": "object", "required": ["zh", "en"],
              "properties": {"zh": {"type": "string"}, "en": {"type": "string"}}}
_NULLABLE_STRING = {"type": ["string", "null"]}
_WARNING = {"type": "object", "properties": {"title": _BILINGUAL, "message": _BILINGUAL, "advice": _BILINGUAL}}

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "The verdict document. Every verdict answer has this shape at the top level, whatever its status: "
        "200 genuine, and the 4xx verdicts (400 malformed, 404 unknown, 409 genuine_not_activated, 410 voided / "
        "lost_or_stolen / recalled, 451 authorization_suspended) — of GET /v/{code} and of the GS1 resolver's "
        "direct answers. `verdict` is always present; a non-genuine answer adds `error` (equal to `verdict`) and "
        "`request_id`. `message` is bilingual like `title` and `advice`, unlike the error contract's string "
        "`message`: the one-sentence English explanation is `reason`. A real mark adds its facts (mark, gi, "
        "producer, authorization, lot, timeline, checks). Errors that are not verdicts (405, 429, 500, 503) follow "
        "the error contract {error, message, details}."),
    "required": ["verdict", "genuine", "status", "detail", "reason", "title", "message", "advice", "code", "serial",
                 "serial_display"],
    "properties": {
        "verdict": {"type": "string", "enum": [v.value for v in Verdict]},
        "error": {"type": "string", "description": "non-genuine answers only: the verdict, for error-contract clients"},
        "genuine": {"type": "boolean"},
        "status": {"type": "integer", "description": "the HTTP status of this verdict"},
        "detail": {**_NULLABLE_STRING, "description": "a word refining the verdict: bad_mac, never_issued, no_tag, "
                   "gtin_mismatch, invalid_digital_link, spoiled, lost, stolen, suspended, revoked, expired, "
                   "gi_revoked, lot_mismatch (genuine, but the package names another lot), …"},
        "reason": {"type": "string", "description": "one English sentence: why this verdict"},
        "title": _BILINGUAL, "message": _BILINGUAL, "advice": _BILINGUAL,
        "code": {**_NULLABLE_STRING, "description": "the canonical code, if well-formed"},
        "serial": {**_NULLABLE_STRING, "description": "the serial, when the tag verified"},
        "serial_display": _NULLABLE_STRING,
        "mark": {"type": "object", "description": "state, pack_size_g, gtin"},
        "gi": {"type": "object", "description": "name_zh, name_en, kind, kind_label, registration_no, standard, area…"},
        "producer": {"type": "object", "description": "name, name_en, uscc"},
        "authorization": {"type": ["object", "null"], "description": "status, valid_until"},
        "lot": {"type": ["object", "null"], "description": "lot_no, production_date, test_report_no, testing_body, "
                "status, recalled_at"},
        "lot_mismatch": {**_WARNING, "description": "when the package's lot (?lot=, a Digital Link's /10/) is not "
                         "the lot the mark was activated on: package_lot, activated_lot and the warning's words"},
        "timeline": {"type": "array", "items": {"type": "object"}, "description": "printed, issued, activated, …"},
        "checks": {"type": "object", "description": "count, first_at, first_date, first_place, last_place"},
        "suspect": {**_WARNING, "description": "a copied-label alert named this code: since, reasons"},
        "scan": {"type": "object", "description": "token and location_url for sharing a location or reporting"},
        "request_id": {"type": "string", "description": "non-genuine answers only"},
    },
}

_VERDICT_STATUS = "the verdict document (as 200, with `error`), or the page"
_STATUS_DOC = {400: f"malformed: not shaped like a code — {_VERDICT_STATUS}",
               404: f"unknown: no such mark was issued (MAC fails, or serial never issued) — {_VERDICT_STATUS}",
               409: f"genuine_not_activated: a real label, never activated; must not be on sale — {_VERDICT_STATUS}",
               410: f"voided, lost_or_stolen or recalled: the mark or its lot was withdrawn — {_VERDICT_STATUS}",
               429: "too many checks from this client (error contract; Retry-After)",
               451: "authorization_suspended: the producer's right to the mark is suspended, revoked or lapsed — "
                    f"{_VERDICT_STATUS}"}


_PAGE = {"type": "string"}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
# A verdict's status answers the verdict document (JSON) or its page; a refusal by the rate limiter the error
# contract (JSON) or the limiter's page.
_VERDICT_CONTENT = {status: {"application/json": VERDICT_SCHEMA, "text/html": _PAGE} for status in (400, 404, 409, 410, 451)}
_LIMITED_CONTENT = {429: {"application/json": _ERROR_REF, "text/html": _PAGE}}
# A Digital Link path after /01/: a GTIN, then the key qualifiers 22, 10, 21 in that order, each once, each
# value 1-20 characters of GS1 character set 82 (less the slash). The GTIN's check digit cannot be stated.
_CSET82 = "[!\"%&'()*+,\\-.0-9:;<=>?A-Z_a-z]{1,20}"
DIGITAL_LINK_SCHEMA = {"type": "string",
                       "pattern": f"^([0-9]{{8}}|[0-9]{{12,14}})(/22/{_CSET82})?(/10/{_CSET82})?(/21/{_CSET82})?/?$",
                       "description": "{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]"}
# What a scanned label carries: a key id, the serial without its check character (sequence 0 is never
# issued), a 14-character tag (case does not matter). Anything else is the malformed verdict (400).
CODE_SCHEMA = {"type": "string",
               "pattern": "^[A-Za-z][0-9A-HJ-NP-Za-hj-np-z]{4}[0-9]{2}(?!0{9})[0-9]{9}[A-Za-z2-7]{14}$",
               "description": "the 30-character code of a label"}


@_register("/v/<code>", "verify_code_page", "Verify a special-mark code: the verdict document for Accept: "
           "application/json (every verdict, whatever its status), else an HTML page; every GET is logged as a check",
           public("consumers; no sign-in"), _STATUS_DOC, content_type="application/json",
           response_schema=VERDICT_SCHEMA, alt_content_types=("text/html",),
           error_content={**_VERDICT_CONTENT, **_LIMITED_CONTENT}, path_schemas={"code": CODE_SCHEMA},
           query={"lang": "zh (default) or en; Accept-Language: en also selects English",
                  "lot": "the lot on the package (GS1 AI 10, 1-20 characters; the resolver passes a Digital Link's "
                         "/10/ on): another lot than the mark's keeps the verdict and adds the lot_mismatch warning"})
def verify_code_page(code: str):
    return _answer(_consumer_check(code=code, lot=verification.package_lot(request.args.get("lot"))))


class LocationBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: str = Field(min_length=1, max_length=200, description="scan.token from the verification answer")
    lat: float = Field(ge=-90, le=90, description="WGS-84 latitude; stored rounded to 0.01°")
    lon: float = Field(ge=-180, le=180, description="WGS-84 longitude; stored rounded to 0.01°")


@endpoint(bp, "/v/<code>/location", methods=["POST"], access=public("the consumer who just checked the code, "
          "with the scan token of that check"), body=LocationBody, tags=["verification"],
          summary="Add the consumer's approximate location (rounded to 0.01°, with its county) to a check, once",
          responses={403: "invalid or expired scan token", 409: "this check already has a location",
                     503: "the check is still being recorded (it is written behind its answer): retry after "
                          "Retry-After seconds"})
def record_location(principal, code: str, body: LocationBody):
    canonical = code.strip().upper()
    settings = _settings()
    scan_id = scans.read_scan_token(settings.secret_key, body.token, canonical)
    _await_check(scan_id)
    session = get_session()
    scan, answer = scans.record_location(session, scan_id, lat=body.lat, lon=body.lon)
    answer["suspect"] = False
    if scan.mac_ok and scan.series is not None:
        mark = find_mark(session, signals.serial_of(scan.series, scan.seq))
        if mark is not None:
            signals.after_location(session, settings, scan, gi_id=mark.batch.gi_id, producer_id=mark.batch.producer_id)
            answer["suspect"] = bool(scans.checks_of(session, mark.serial).suspect_reasons)
    return answer


PHONE_PATTERN = r"^\+?[0-9][0-9 ()\-]{3,28}[0-9]$"


class ReportForm(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: str = Field(min_length=1, max_length=200, description="scan.token from the verification answer")
    description: str = Field(min_length=5, max_length=2000, description="what the consumer saw")
    shop_name: str = Field(min_length=1, max_length=200, description="shop or market where the product is sold")
    shop_address: Optional[str] = Field(default=None, max_length=300)
    reporter_name: Optional[str] = Field(default=None, max_length=50,
                                         description="the consumer's name, only to be called back (stored encrypted)")
    reporter_phone: Optional[str] = Field(default=None, min_length=5, max_length=30, pattern=PHONE_PATTERN,
                                          description="the consumer's phone number, only to be called back "
                                                      "(stored encrypted)")
    lat: Optional[float] = Field(default=None, ge=-90, le=90, description="WGS-84; stored rounded to 0.0001°")
    lon: Optional[float] = Field(default=None, ge=-180, le=180, description="WGS-84; stored rounded to 0.0001°")
    lang: Optional[str] = Field(default=None, max_length=5)


REPORT_PHOTO_MAX_BYTES = 10 * 1024 * 1024


def _report_input() -> tuple[ReportForm, bytes | None]:
    """The report from a multipart form (the page) or a JSON body (no photo)."""
    if request.mimetype == "application/json":
        read_json_body()
        return parse_model(ReportForm, None, "report", json_text=request.get_data(cache=True)), None
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise MalformedRequest("send the report as multipart/form-data (with an optional `photo` file) or JSON",
                               code="unsupported_media_type", status=415)
    fields = {k: v for k, v in request.form.to_dict(flat=True).items() if v.strip() != ""}
    form = parse_model(ReportForm, fields, "report")
    if (form.lat is None) != (form.lon is None):
        raise ValidationFailed("give both lat and lon, or neither", details=[{"field": "lat", "problem": "pair"}])
    upload = request.files.get("photo")
    photo = None
    if upload is not None and upload.filename:
        photo = upload.read(REPORT_PHOTO_MAX_BYTES + 1)
    return form, photo


@endpoint(bp, "/v/<code>/report", methods=["POST"], access=public("the consumer who just checked the code, with "
          "the scan token of that check (one report per check)"), body_content_type="multipart/form-data",
          form_schema={"type": "object", "required": ["token", "description", "shop_name"], "properties": {
              "token": {"type": "string", "description": "scan.token from the verification answer"},
              "description": {"type": "string", "minLength": 5, "maxLength": 2000},
              "shop_name": {"type": "string", "minLength": 1, "maxLength": 200},
              "shop_address": {"type": "string", "maxLength": 300},
              "reporter_name": {"type": "string", "maxLength": 50,
                                "description": "only to be called back; stored encrypted"},
              "reporter_phone": {"type": "string", "minLength": 5, "maxLength": 30, "pattern": PHONE_PATTERN,
                                 "description": "only to be called back; stored encrypted"},
              "lat": {"type": "number", "minimum": -90, "maximum": 90},
              "lon": {"type": "number", "minimum": -180, "maximum": 180},
              "lang": {"type": "string", "enum": ["zh", "en"]},
              "photo": {"type": "string", "format": "binary", "description": "JPEG or PNG, at most 10 MB"}},
              "dependentRequired": {"lat": ["lon"], "lon": ["lat"]}},
          tags=["verification"], status=201,
          summary="Report a suspected fake from the verification page: description, shop, optional photo (re-encoded, "
                  "EXIF removed) and location; it becomes a clue in the inspectors' queue",
          responses={403: "invalid or expired scan token", 409: "this check was already reported",
                     503: "the check is still being recorded: retry after Retry-After seconds",
                     413: "photo larger than 10 MB", 415: "not multipart/form-data or JSON",
                     422: "a field is missing or invalid, or the photo is not a JPEG/PNG image",
                     429: "too many reports from this client"})
def report_fake(principal, code: str):
    settings = _settings()
    canonical = code.strip().upper()
    lang = _lang()
    try:
        form, photo_data = _report_input()
        if form.lang in i18n.LANGS:
            lang = form.lang
        scan_id = scans.read_scan_token(settings.secret_key, form.token, canonical)
        _await_check(scan_id)
        store = current_app.extensions["gi_storage"]
        photo = photos.store_photo(store, "reports", photo_data, max_bytes=REPORT_PHOTO_MAX_BYTES) \
            if photo_data is not None else None
        session = get_session()
        try:
            data = clues.ReportInput(description=form.description, shop_name=form.shop_name,
                                     shop_address=form.shop_address, lat=form.lat, lon=form.lon,
                                     reporter_name=form.reporter_name, reporter_phone=form.reporter_phone)
            clue = clues.create_report(session, scan_id=scan_id, code=canonical,
                                       keyring=current_app.extensions["gi_keyring"], data=data, photo=photo,
                                       secret=settings.secret_key, ip=request.remote_addr)
            session.commit()
        except BaseException:
            session.rollback()
            if photo is not None:  # nothing half-written: no photo without its report
                store.delete(photo.key)
            raise
    except GIError as exc:
        if _wants_json() or request.mimetype == "application/json":
            raise
        return _report_page(lang, canonical, ok=False, message=exc.message, status=exc.status)
    if _wants_json() or request.mimetype == "application/json":
        resp = jsonify({"id": clue.id, "status": clue.status.value, "verdict": clue.report.verdict,
                        "photo": {"sha256": photo.sha256, "bytes": photo.bytes} if photo else None})
        resp.status_code = 201
        return resp
    return _report_page(lang, canonical, ok=True, message=UI[lang]["thanks"].format(id=clue.id), status=201)


def _spec(name: str) -> EndpointSpec:
    return next(spec for spec in SPECS if spec.endpoint == name)


# The report form is a page's form: its refusals are pages for the browser and the error contract for JSON.
_spec("verify.report_fake").error_content = {
    status: {"application/json": _ERROR_REF, "text/html": _PAGE} for status in (400, 403, 404, 409, 413, 415, 422,
                                                                                 429, 503)}
for _name in ("verify.report_fake", "verify.record_location"):
    _spec(_name).path_schemas = {"code": CODE_SCHEMA}


def _report_page(lang: str, code: str, *, ok: bool, message: str, status: int) -> Response:
    t = UI[lang]
    html = render_template("report_result.html", lang=lang, t=t, ok=ok, message=message, code=code, nonce=_nonce())
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    return resp


# --- GS1 Digital Link -----------------------------------------------------------------------------

_QUALIFIERS = ("22", "10", "21")      # the key qualifiers of a GTIN, in the order the syntax requires
_CSET82 = verification.CSET82


def gtin14(raw: str) -> str:
    """A GTIN-8/12/13/14 from a URI, padded to 14 digits, or 400 saying what is wrong."""
    if not raw.isascii() or not raw.isdigit() or len(raw) not in (8, 12, 13, 14):
        raise MalformedRequest(f"/01/ takes a GTIN of 8, 12, 13 or 14 digits, not {raw!r}",
                               code="invalid_digital_link")
    digits = raw.zfill(14)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:13]))
    check = (10 - total % 10) % 10
    if int(digits[13]) != check:
        raise MalformedRequest(f"GTIN {raw}: the check digit should be {check}", code="invalid_digital_link",
                               details={"gtin": raw, "check_digit": check})
    return digits


def parse_digital_link(path: str) -> tuple[str, dict[str, str]]:
    """`{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]` -> (GTIN-14, qualifiers); 400 on any other shape."""
    segments = path[:-1].split("/") if path.endswith("/") else path.split("/")
    gtin = gtin14(segments[0])
    rest = segments[1:]
    if len(rest) % 2:
        raise MalformedRequest(f"/{'/'.join(rest)}: a key qualifier needs its value, and nothing may follow the "
                               "last one", code="invalid_digital_link")
    qualifiers: dict[str, str] = {}
    last = -1
    for ai, value in zip(rest[::2], rest[1::2], strict=True):
        if ai not in _QUALIFIERS:
            raise MalformedRequest(f"/{ai}/ is not a key qualifier of a GTIN (22, 10, 21)", code="invalid_digital_link")
        position = _QUALIFIERS.index(ai)
        if position <= last:
            raise MalformedRequest("the key qualifiers of a GTIN come in the order 22, 10, 21, each once",
                                   code="invalid_digital_link")
        if not _CSET82.fullmatch(value):
            raise MalformedRequest(f"AI {ai}: {value!r} is not 1-20 characters of GS1 character set 82",
                                   code="invalid_digital_link")
        last = position
        qualifiers[ai] = value
    return gtin, qualifiers


LINK_TYPES: dict[str, dict[str, Any]] = {
    "defaultLink": {"fragment": "", "title": {"en": "Verify this GI special mark", "zh": "验证地理标志专用标志"}},
    "verificationService": {"fragment": "", "title": {"en": "Verification of this GI special mark",
                                                      "zh": "地理标志专用标志验证服务"}},
    "pip": {"fragment": "#product", "title": {"en": "Product information: GI, producer, lot",
                                             "zh": "产品信息：地理标志、生产者、批次"}},
    "traceability": {"fragment": "#timeline", "title": {"en": "Mark history: printed, issued, activated",
                                                        "zh": "标志记录：印制、发放、激活"}},
}
# A GTIN (walked up to from a URI without a serial) has one page: the product's.
PRODUCT_TITLES = {
    "product": {"en": "Product information: GI, producer, production area, standard",
                "zh": "产品信息：地理标志、生产者、产地范围、标准"},
    "lot": {"en": "Product and lot information: GI, producer, production area, standard, lot test",
            "zh": "产品和批次信息：地理标志、生产者、产地范围、标准、批次检验"},
}


def normalise_link_type(value: str) -> str | None:
    """`gs1:pip`, `https://gs1.org/voc/pip` or `https://ref.gs1.org/voc/pip` -> `pip` (None if foreign)."""
    for prefix in ("gs1:", "https://gs1.org/voc/", "http://gs1.org/voc/", "https://ref.gs1.org/voc/"):
        if value.startswith(prefix):
            return value[len(prefix):]
    return None


def _with_lot(url: str, lot: str | None) -> str:
    return f"{url}?{urlencode({'lot': lot})}" if lot else url


def _link(name: str, href: str, media: str, title: dict[str, str]) -> dict[str, Any]:
    return {"rel": GS1_VOC + name, "name": name, "href": href, "type": media, "title": title, "hreflang": ["zh", "en"]}


def _item_links(check: Check, lot: str | None) -> list[dict[str, Any]]:
    """A verified label's links: all on its /v/{code} answer (with the package's lot, which it compares)."""
    target = _with_lot(f"{_base_url()}/v/{check.code}", lot)
    out = []
    for name, spec in LINK_TYPES.items():
        types = ("text/html", "application/json") if name == "verificationService" else ("text/html",)
        out.extend(_link(name, target + spec["fragment"], media, spec["title"]) for media in types)
    return out


def _product_links(gtin: str, lot: str | None) -> list[dict[str, Any]]:
    """A GTIN's links: its product page, the default link and gs1:pip (HTML, or JSON)."""
    target = _with_lot(f"{_base_url()}/p/{gtin}", lot)
    title = PRODUCT_TITLES["lot" if lot else "product"]
    return [_link("defaultLink", target, "text/html", title), _link("pip", target, "text/html", title),
            _link("pip", target, "application/json", title)]


def _anchor(gtin: str, qualifiers: dict[str, str]) -> str:
    # Percent-encoded: qualifier values may hold characters (<>;,") that would break a Link header.
    path = "".join(f"/{ai}/{quote(qualifiers[ai], safe='')}" for ai in _QUALIFIERS if ai in qualifiers)
    return f"{_base_url()}/01/{gtin}{path}"


def _link_header(links: list[dict[str, Any]], linkset_url: str) -> str:
    # Header values are Latin-1: English titles here; the linkset has both languages.
    parts = []
    for link in links:
        langs = "".join(f'; hreflang="{h}"' for h in link["hreflang"])
        parts.append(f'<{link["href"]}>; rel="{link["rel"]}"; type="{link["type"]}"{langs}; '
                     f'title="{link["title"]["en"]}"')
    parts.append(f'<{linkset_url}>; rel="linkset"; type="{LINKSET_TYPE}"; title="All links for this item"')
    return ", ".join(parts)


def _redirect_to(href: str) -> Response:
    """307 to `href`, passing on the request's query string (GS1: SHALL) less what the resolver consumed.

    `linkType` chose the link, `v` is already inside the target's code and a `lot` the link carries came
    from the URI's /10/, so none is repeated: the default answer's Location is then exactly the default
    link's href.
    """
    base, _, fragment = href.partition("#")
    path, _, query = base.partition("?")
    own = parse_qsl(query)
    consumed = {"linkType", "v", *(k for k, _ in own)}
    args = own + [(k, v) for k, v in request.args.items(multi=True) if k not in consumed]
    location = path + (f"?{urlencode(args)}" if args else "") + (f"#{fragment}" if fragment else "")
    return redirect(location, code=307)


def _wants_linkset(link_type: str | None) -> bool:
    if link_type is not None:
        return link_type in ("linkset", "all")
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", LINKSET_TYPE]) == LINKSET_TYPE and accept[LINKSET_TYPE] > accept["text/html"]


def _linkset_response(anchor: str, links: list[dict[str, Any]]) -> Response:
    """An RFC 9264 linkset: the context object holds `anchor` and, for every relation, an array of target
    objects (nothing else: each other member is read as a relation). Titles in both languages (`title*`)."""
    entry: dict[str, Any] = {"anchor": anchor}
    for link in links:
        entry.setdefault(link["rel"], []).append(
            {"href": link["href"], "title": f'{link["title"]["zh"]} / {link["title"]["en"]}',
             "title*": [{"value": link["title"][lang], "language": lang} for lang in ("zh", "en")],
             "type": link["type"], "hreflang": link["hreflang"]})
    accept = request.accept_mimetypes
    best = accept.best_match([LINKSET_TYPE, "application/json", "application/ld+json"]) or LINKSET_TYPE
    body: dict[str, Any] = {"linkset": [entry]}
    if best == "application/ld+json":
        body = {"@context": LINKSET_CONTEXT, **body}
    resp = jsonify(body)
    resp.mimetype = best
    return resp


def _follow(links: list[dict[str, Any]], link_type: str | None, anchor: str, linkset_url: str) -> Response:
    """The resolver's answer for an identifier with links: a linkset, or a 307 to the chosen link."""
    if _wants_linkset(link_type):
        resp = _linkset_response(anchor, links)
    elif link_type is None or normalise_link_type(link_type) == "defaultLink":
        resp = _redirect_to(links[0]["href"])
    else:
        name = normalise_link_type(link_type)
        chosen = next((link for link in links if link["name"] == name), None)
        if chosen is None:
            available = sorted({"gs1:" + link["name"] for link in links})
            raise NotFound(f"link type {link_type!r} is not available for this item; available: "
                           f"{', '.join(available)}, linkset", code="link_type_unavailable",
                           details={"available": available})
        resp = _redirect_to(chosen["href"])
    resp.headers["Link"] = _link_header(links, linkset_url)
    return resp


LINKSET_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["linkset"],
    "description": "RFC 9264: one context object with `anchor` (the URI asked for) and, for each link relation "
                   "(https://gs1.org/voc/…), an array of target objects {href, title, title*, type, hreflang}",
    "properties": {"@context": {"type": "string", "description": "application/ld+json only"},
                   "linkset": {"type": "array", "items": {
                       "type": "object", "required": ["anchor"], "properties": {"anchor": {"type": "string"}},
                       "additionalProperties": {"type": "array", "items": {
                           "type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}}}}}},
}


@_register("/01/<path:dl_path>", "gs1_resolve",
           "GS1 Digital Link resolver: /01/{gtin}/21/{serial}?v={kid}{tag} redirects (307) to the label's "
           "verification answer; /01/{gtin} and /01/{gtin}/10/{lot} walk up to the product page; linkType "
           "selects a link, linkType=linkset lists them (RFC 9264, the documented 200)",
           public("consumers and GS1 applications; no sign-in"),
           {307: "the default link, or the link linkType chose (Location; Link lists every link); the query string "
                 "is passed on, less linkType and v",
            400: "malformed: not a valid GS1 Digital Link URI — the verdict document (detail invalid_digital_link, "
                 "reason says what is wrong), or the page",
            404: "unknown: a label without links (no or wrong tag, never issued, another GTIN) — the verdict "
                 "document, or the page; or (error contract) a linkType the item has no link for "
                 "(link_type_unavailable), or a GTIN no batch carries (no_links)",
            429: "too many checks from this client (error contract; Retry-After)"},
           content_type=LINKSET_TYPE, response_schema=LINKSET_SCHEMA,
           alt_content_types=("application/json", "application/ld+json"),
           error_content={400: {"application/json": VERDICT_SCHEMA, "text/html": _PAGE},
                          404: {"application/json": {"anyOf": [VERDICT_SCHEMA, _ERROR_REF]}, "text/html": _PAGE},
                          **_LIMITED_CONTENT},
           path_schemas={"dl_path": DIGITAL_LINK_SCHEMA},
           query={"v": "key id and MAC tag of the label (15 characters); without it no label verifies",
                  "linkType": "gs1:defaultLink, gs1:verificationService, gs1:pip, gs1:traceability (labels), "
                              "gs1:defaultLink, gs1:pip (GTINs), linkset, all"})
def gs1_resolve(dl_path: str):
    link_type = request.args.get("linkType")
    wants_linkset = _wants_linkset(link_type)
    try:
        gtin, qualifiers = parse_digital_link(dl_path)
    except MalformedRequest as exc:   # the malformed verdict, answered like any other
        check = Check(Verdict.malformed, "invalid_digital_link", exc.message)
        return _answer(_consumer_check(check=check, record=not wants_linkset))
    lot = qualifiers.get("10")
    anchor = _anchor(gtin, qualifiers)
    if "21" not in qualifiers:        # a product (or a lot of it), not a label: the GTIN's own links
        return _walk_up(gtin, lot, link_type, anchor)
    tag = request.args.get("v")
    check = verification.check_gs1(get_session(), current_app.extensions["gi_keyring"], gtin=gtin,
                                   serial_text=qualifiers["21"], tag=tag)
    if check.mark is None:  # no links, and never walked up: answer the verdict here rather than redirect to it
        return _answer(_consumer_check(check=check, record=not wants_linkset))
    return _follow(_item_links(check, lot), link_type, anchor,
                   f"{anchor}?{urlencode({'v': tag, 'linkType': 'linkset'})}")


def _walk_up(gtin: str, lot: str | None, link_type: str | None, anchor: str) -> Response:
    """`/01/{gtin}[/22/…][/10/{lot}]`: the links of the GTIN (its product page, with the lot), if a batch carries it."""
    if not gtins.products(get_session(), gtin):
        if _wants_json() or _wants_linkset(link_type):
            raise NotFound(f"no GI product with GTIN {gtin} is on record here", code="no_links",
                           details={"gtin": gtin})
        return _product_page(gtin, [], None)
    return _follow(_product_links(gtin, lot), link_type, anchor, f"{anchor}?linkType=linkset")


# --- the product page of a GTIN (walk-up) -------------------------------------------------------------------

PRODUCT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["gtin", "title", "note", "products"],
    "description": "What a GTIN names here (not a check, not logged): every (GI, producer, pack size) whose batches "
                   "carry it, the most recent first, and the lot `?lot=` names",
    "properties": {
        "gtin": {"type": "string", "description": "GTIN-14"},
        "title": _BILINGUAL, "note": _BILINGUAL,
        "products": {"type": "array", "items": {"type": "object", "properties": {
            "gi": {"type": "object"}, "producer": {"type": "object"}, "pack_size_g": {"type": "integer"},
            "authorization": {"type": "object", "description": "status, valid_until, in_force, warning"}}}},
        "lot_no": {"type": "string", "description": "the lot asked for (?lot=)"},
        "lot": {"type": ["object", "null"], "description": "that lot of one of the producers, if on record"},
        "lot_warning": _BILINGUAL,
    },
}
PRODUCT_UI = i18n.by_lang("product.")


@_register("/p/<gtin>", "product_page", "The product page of a GTIN (the GS1 resolver's gs1:pip for /01/{gtin} "
           "and /01/{gtin}/10/{lot}): the GI, its producer, production area and standard, and the lot; JSON for "
           "Accept: application/json, else an HTML page. Not a check: nothing is logged",
           public("consumers and GS1 applications; no sign-in"),
           {400: "not a GTIN-8/12/13/14 with its check digit (error contract)",
            404: "no batch carries this GTIN (error contract, or the page)",
            429: "too many requests from this client: the product page shares the checks' budget (error contract "
                 "or the limiter's page; Retry-After)"},
           content_type="application/json", response_schema=PRODUCT_SCHEMA, alt_content_types=("text/html",),
           error_content={404: {"application/json": _ERROR_REF, "text/html": _PAGE}, **_LIMITED_CONTENT},
           path_schemas={"gtin": {"type": "string", "pattern": "^([0-9]{8}|[0-9]{12,14})$",
                                  "description": "a GTIN-8, -12, -13 or -14 (its check digit must be right)"}},
           query={"lot": "a lot number (GS1 AI 10): its production date, test and status",
                  "lang": "zh (default) or en; Accept-Language: en also selects English"})
def product_page(gtin: str):
    try:
        digits = gtin14(gtin)
    except MalformedRequest as exc:
        raise MalformedRequest(f"/p/{{gtin}}: {exc.message}", code="invalid_gtin") from None
    lot = verification.package_lot(request.args.get("lot"))
    found = gtins.products(get_session(), digits)
    if not found and _wants_json():
        raise NotFound(f"no GI product with GTIN {digits} is on record here", code="unknown_gtin",
                       details={"gtin": digits})
    doc = gtins.describe(get_session(), digits, found, lot, base_url=_base_url()) if found else None
    if _wants_json():
        return _language_header(jsonify(doc))
    return _product_page(digits, found, doc)


def _product_page(gtin: str, found: list[gtins.ProductFacts], doc: dict[str, Any] | None) -> Response:
    lang = _lang()
    t = UI[lang]
    maps = [public_area_map(get_session(), p.gi_id, p.producer_id, title=str(escape(t["area"])),
                            plots_label=str(escape(t["plots"]))) for p in found]
    other = "en" if lang == "zh" else "zh"
    other_url = f"{request.path}?{urlencode({**request.args.to_dict(), 'lang': other})}"
    html = render_template("product.html", doc=doc, gtin=gtin, lang=lang, t=t, p=PRODUCT_UI[lang],
                           words=gtins.TEXTS, maps=[Markup(m) if m else None for m in maps], other_lang=other,
                           other_url=other_url, nonce=_nonce())
    resp = Response(html, status=200 if doc is not None else 404, mimetype="text/html")
    resp.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    return resp


# --- the icon ---------------------------------------------------------------------------------------------

@_register("/favicon.ico", "favicon", "The service's icon (every browser asks for it; the public pages link it)",
           public(), {}, content_type=ICON_TYPE, response_schema={"type": "string", "format": "binary"},
           tags=("meta",))
def favicon():
    return send_from_directory(STATIC, "favicon.ico", mimetype=ICON_TYPE, max_age=7 * 24 * 3600)


@_register("/.well-known/gs1resolver", "resolver_description", "GS1 resolver description file",
           public(), {}, content_type="application/json")
def resolver_description():
    return jsonify({
        "name": "gi-service: GI special-mark labels (地理标志专用标志)",
        "resolverRoot": _base_url(),
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": GS1_VOC, "prefix": "gs1:"}],
        "linkTypeDefaultCanBeLinkset": False,
        "jsonLdContextLocation": LINKSET_CONTEXT,
        "activeLinkTypes": {lang: {f"gs1:{name}": {"title": spec["title"][lang], "url": GS1_VOC + name}
                                   for name, spec in LINK_TYPES.items()} for lang in ("en", "zh")},
    })

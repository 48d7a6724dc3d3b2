"""Consumer verification: `/v/{code}` and the GS1 Digital Link resolver `/01/{gtin}/21/{serial}`.

`GET /v/{code}` answers a mobile-first HTML page (Chinese by default; English for
`Accept-Language: en…` or `?lang=en`) or, for `Accept: application/json`, the same answer
as JSON. Every GET is a check: it is logged (services/scans.py) and counted. HEAD and
OPTIONS are answered without logging.

Status codes — only a genuine mark answers 200; every other verdict still gets a full page
saying what happened and what to do, and JSON in the error contract
(`{"error": <verdict>, "message", "details": <the whole answer>}`):

=====  =========================  ==============================================================
200    genuine                    activated on a tested, active lot; authorization in force
400    malformed                  not shaped like a code: the request itself is wrong
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

Answers are `Cache-Control: no-store` (each check counts, and a verdict can change) and
`Vary: Accept, Accept-Language`.

The GS1 resolver (GS1-Conformant Resolver standard): the URI is checked (400 on bad syntax,
e.g. a wrong GTIN check digit, an unknown or misplaced qualifier, anything after the
serial); the `v` query parameter carries the key id and MAC tag. An item whose tag is
valid and whose serial was issued for that GTIN has links — `gs1:defaultLink`,
`gs1:verificationService`, `gs1:pip`, `gs1:traceability`, all on its `/v/{code}` page — and
is answered with a 307 redirect (query string passed on, less `linkType` and `v`, which the
resolver consumed), a 404 for an unavailable `linkType`, or an RFC 9264 linkset for
`linkType=linkset` (or `all`) or `Accept: application/linkset+json`. An item without links
(no tag, a wrong tag, never issued, another GTIN) is answered directly with the *unknown*
verdict (404), never redirected. Every resolver answer carries `Access-Control-Allow-Origin: *`;
`/.well-known/gs1resolver` describes the resolver.
"""
from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, g, jsonify, redirect, render_template, request
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field

from .api.framework import Access, EndpointSpec, SPECS, endpoint, parse_model, public, read_json_body
from .db import get_session, utcnow
from .errors import GIError, MalformedRequest, NotFound, ServiceUnavailable, ValidationFailed
from . import photos
from .services import clues, scans, signals, verification
from .services.marks import find_mark
from .services.verification import Check

bp = Blueprint("verify", __name__)

LANGS = ("zh", "en")
LINKSET_TYPE = "application/linkset+json"
GS1_VOC = "https://gs1.org/voc/"
LINKSET_CONTEXT = "https://ref.gs1.org/standards/resolver/linkset-context"


def _register(rule: str, name: str, summary: str, access: Access, responses: dict[int, str],
              content_type: str = "text/html", query: dict[str, str] | None = None, **options):
    """Register a GET view with its access rule and its OpenAPI entry (like ogc.py)."""
    def decorate(view):
        bp.add_url_rule(rule, endpoint=name, view_func=view, methods=["GET"], **options)
        view.gi_access = access
        spec = EndpointSpec(rule=rule, methods=("GET",), endpoint=f"verify.{name}", summary=summary, access=access,
                            tags=("verification",), success_content_type=content_type, responses=responses)
        spec.query_params = query or {}
        SPECS.append(spec)
        return view
    return decorate


@bp.after_request
def _cors_and_caching(resp: Response) -> Response:
    # Resolvers and verification answers are read from anywhere (GS1: "SHALL support CORS");
    # POST stays same-origin: it is not among the allowed methods.
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    resp.headers["Access-Control-Allow-Headers"] = "Accept, Accept-Language"
    resp.headers["Access-Control-Expose-Headers"] = "Link, Location, Content-Language"
    if request.endpoint != "verify.resolver_description":
        resp.headers["Cache-Control"] = "no-store"
        resp.vary.update(("Accept", "Accept-Language"))
    return resp


# --- helpers -----------------------------------------------------------------------------------

def _settings():
    return current_app.config["GI_SETTINGS"]


def _base_url() -> str:
    return _settings().public_base_url.rstrip("/")


def _lang() -> str:
    asked = request.args.get("lang", "").strip().lower()[:2]
    if asked in LANGS:
        return asked
    return "en" if request.accept_languages.best_match(LANGS) == "en" else "zh"


def _wants_json() -> bool:
    accept = request.accept_mimetypes
    best = accept.best_match(["text/html", "application/json", LINKSET_TYPE])
    return best in ("application/json", LINKSET_TYPE) and accept[best] > accept["text/html"]


UI = {
    "zh": {
        "page_title": "地理标志专用标志验证", "serial": "标志编号", "product": "产品", "kind": "类型",
        "registration_no": "公告号 / 注册号", "standard": "标准", "area": "产地范围", "plots": "生产者的地块",
        "producer": "生产者", "uscc": "统一社会信用代码", "lot": "生产批次", "lot_no": "批次号",
        "production_date": "生产 / 采收日期", "test_report_no": "检验报告编号", "testing_body": "检验机构",
        "timeline": "标志记录", "printed": "印制", "issued": "发放给生产者", "activated": "激活（批次检验合格）",
        "spoiled": "印制报废", "voided": "作废", "lost": "挂失（遗失）", "stolen": "挂失（被盗）",
        "recalled": "批次召回",
        "first_check": "首次查询", "this_check": "本次查询",
        "checked_first": "这是该码的第一次查询。",
        "checked_n": "该码已被查询 {n} 次，首次查询于 {date}{place}。",
        "checked_in": "，地点：{city}",
        "copied_note": "如果您此前没有查询过这个码，多次查询可能意味着标签被复制。",
        "share": "分享我的大致位置（精确到约 1 公里）",
        "share_note": "仅在您点击后，通过浏览器定位获取并四舍五入到 0.01°，用于发现假冒和被复制的标签；"
                      "不保存您的 IP 地址。",
        "shared": "已记录大致位置：", "share_failed": "未能记录位置。", "other_lang": "English",
        "no_map": "产地范围未以地图形式登记。", "code": "验证码",
        "report": "举报疑似假冒", "report_intro": "发现假冒、标签被复制或与包装信息不符？请告诉我们，市场监管部门会收到您的线索。",
        "description": "情况说明", "description_hint": "例如：包装上的生产者与本页不一致、同一标签出现在多件商品上",
        "shop_name": "店铺或市场名称", "shop_address": "店铺地址（可选）", "photo": "照片（可选，JPEG 或 PNG，不超过 10 MB）",
        "photo_note": "照片会被重新编码并去除拍摄位置等 EXIF 信息。",
        "report_location": "附上店铺位置（浏览器定位，约 10 米）", "send": "提交举报",
        "thanks_title": "感谢您的举报", "thanks": "您的线索已转给当地和产地的市场监管部门（编号 {id}）。",
        "report_failed": "举报未能提交", "back": "返回上一页",
    },
    "en": {
        "page_title": "GI special mark verification", "serial": "Mark serial", "product": "Product", "kind": "Kind",
        "registration_no": "Announcement / registration no.", "standard": "Standard", "area": "Production area",
        "plots": "the producer's plots", "producer": "Producer", "uscc": "Unified social credit code",
        "lot": "Production lot", "lot_no": "Lot no.", "production_date": "Production / harvest date",
        "test_report_no": "Quality test report no.", "testing_body": "Testing body", "timeline": "Mark history",
        "printed": "Printed", "issued": "Issued to the producer", "activated": "Activated (lot passed its test)",
        "spoiled": "Spoiled in printing", "voided": "Voided", "lost": "Reported lost", "stolen": "Reported stolen",
        "recalled": "Lot recalled", "first_check": "First check", "this_check": "This check",
        "checked_first": "This is the first check of this code.",
        "checked_n": "This code has been checked {n} times, first on {date}{place}.",
        "checked_in": " in {city}",
        "copied_note": "If you have not checked this code before, repeated checks may mean the label was copied.",
        "share": "Share my approximate location (to about 1 km)",
        "share_note": "Only if you press the button: your browser's location, rounded to 0.01°, helps find "
                      "counterfeit and copied labels. Your IP address is not stored.",
        "shared": "Approximate location recorded: ", "share_failed": "The location could not be recorded.",
        "other_lang": "中文", "no_map": "The production area is not registered as a map.", "code": "Code",
        "report": "Report a suspected fake", "report_intro": "A fake, a copied label, or details that do not match "
        "the package? Tell us: the market regulators will receive your report.",
        "description": "What did you see?", "description_hint": "e.g. the producer on the package differs from this "
        "page; the same label on several products",
        "shop_name": "Shop or market", "shop_address": "Shop address (optional)",
        "photo": "Photo (optional, JPEG or PNG, up to 10 MB)",
        "photo_note": "The photo is re-encoded; its location and other EXIF data are removed.",
        "report_location": "Add the shop's location (your browser's, to about 10 m)", "send": "Send the report",
        "thanks_title": "Thank you for your report",
        "thanks": "Your report went to the market regulators of this place and of the production place (no. {id}).",
        "report_failed": "The report could not be sent", "back": "Back",
    },
}


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
                    record: bool = True) -> verification.ConsumerVerdict:
    """The verification service's consumer check, with what this request says (GET logs; HEAD does not)."""
    return verification.consumer_check(
        get_session(), keyring=current_app.extensions["gi_keyring"], settings=_settings(),
        checklog=current_app.extensions["gi_checklog"], code=code, check=check, ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"), base_url=_base_url(),
        record=record and request.method == "GET")


def _answer(result: verification.ConsumerVerdict) -> Response:
    """Answer a consumer check as HTML or JSON with the verdict's status."""
    check, doc = result.check, result.doc
    if _wants_json():
        return _language_header(_json_answer(result))
    lang = _lang()
    svg = None
    if check.mark is not None:
        t = UI[lang]
        svg = verification.area_map(get_session(), check.mark.batch.gi_id, check.mark.batch.producer_id,
                                    title=str(escape(t["area"])), plots_label=str(escape(t["plots"])))
    other = "en" if lang == "zh" else "zh"
    other_url = f"{request.path}?{urlencode({**request.args.to_dict(), 'lang': other})}"
    html = render_template("verify.html", doc=doc, lang=lang, t=UI[lang], svg=Markup(svg) if svg else None,
                           checks_sentence=_checks_sentence(doc, lang), other_lang=other, other_url=other_url,
                           today=verification.china_date(utcnow()))
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

_STATUS_DOC = {400: "malformed: not shaped like a code",
               404: "unknown: no such mark was issued (MAC fails, or serial never issued)",
               409: "genuine_not_activated: a real label, never activated; must not be on sale",
               410: "voided, lost_or_stolen or recalled: the mark or its lot was withdrawn",
               451: "authorization_suspended: the producer's right to the mark is suspended, revoked or lapsed"}


@_register("/v/<code>", "verify_code_page", "Verify a special-mark code (HTML page, or JSON with Accept: "
           "application/json); every GET is logged as a check", public("consumers; no sign-in"), _STATUS_DOC,
           query={"lang": "zh (default) or en; Accept-Language: en also selects English"})
def verify_code_page(code: str):
    return _answer(_consumer_check(code=code))


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


class ReportForm(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: str = Field(min_length=1, max_length=200, description="scan.token from the verification answer")
    description: str = Field(min_length=5, max_length=2000, description="what the consumer saw")
    shop_name: str = Field(min_length=1, max_length=200, description="shop or market where the product is sold")
    shop_address: Optional[str] = Field(default=None, max_length=300)
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
              "lat": {"type": "number", "minimum": -90, "maximum": 90},
              "lon": {"type": "number", "minimum": -180, "maximum": 180},
              "lang": {"type": "string", "enum": ["zh", "en"]},
              "photo": {"type": "string", "format": "binary", "description": "JPEG or PNG, at most 10 MB"}}},
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
        if form.lang in LANGS:
            lang = form.lang
        scan_id = scans.read_scan_token(settings.secret_key, form.token, canonical)
        _await_check(scan_id)
        store = current_app.extensions["gi_storage"]
        photo = photos.store_photo(store, "reports", photo_data, max_bytes=REPORT_PHOTO_MAX_BYTES) \
            if photo_data is not None else None
        session = get_session()
        try:
            data = clues.ReportInput(description=form.description, shop_name=form.shop_name,
                                     shop_address=form.shop_address, lat=form.lat, lon=form.lon)
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


def _report_page(lang: str, code: str, *, ok: bool, message: str, status: int) -> Response:
    t = UI[lang]
    html = render_template("report_result.html", lang=lang, t=t, ok=ok, message=message, code=code)
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    return resp


# --- GS1 Digital Link -----------------------------------------------------------------------------

_QUALIFIERS = ("22", "10", "21")      # the key qualifiers of a GTIN, in the order the syntax requires
_CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}")


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


def normalise_link_type(value: str) -> str | None:
    """`gs1:pip`, `https://gs1.org/voc/pip` or `https://ref.gs1.org/voc/pip` -> `pip` (None if foreign)."""
    for prefix in ("gs1:", "https://gs1.org/voc/", "http://gs1.org/voc/", "https://ref.gs1.org/voc/"):
        if value.startswith(prefix):
            return value[len(prefix):]
    return None


def _links(check: Check) -> list[dict[str, Any]]:
    target = f"{_base_url()}/v/{check.code}"
    out = []
    for name, spec in LINK_TYPES.items():
        types = ("text/html", "application/json") if name == "verificationService" else ("text/html",)
        for media in types:
            out.append({"rel": GS1_VOC + name, "name": name, "href": target + spec["fragment"], "type": media,
                        "title": spec["title"], "hreflang": ["zh", "en"]})
    return out


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
    parts.append(f'<{linkset_url}>; rel="linkset"; type="{LINKSET_TYPE}"; title="All links for this label"')
    return ", ".join(parts)


def _redirect_to(href: str) -> Response:
    """307 to `href`, passing on the request's query string (GS1: SHALL) less what the resolver consumed.

    `linkType` chose the link and `v` is already inside the target's code, so neither is repeated: the
    default answer's Location is then exactly the default link's href.
    """
    base, _, fragment = href.partition("#")
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("linkType", "v")]
    location = base + (f"?{urlencode(args)}" if args else "") + (f"#{fragment}" if fragment else "")
    return redirect(location, code=307)


def _wants_linkset(link_type: str | None) -> bool:
    if link_type is not None:
        return link_type in ("linkset", "all")
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", LINKSET_TYPE]) == LINKSET_TYPE and accept[LINKSET_TYPE] > accept["text/html"]


def _linkset_response(anchor: str, links: list[dict[str, Any]], description: str) -> Response:
    entry: dict[str, Any] = {"anchor": anchor, "description": description}
    for link in links:
        entry.setdefault(link["rel"], []).append(
            {"href": link["href"], "title": f'{link["title"]["zh"]} / {link["title"]["en"]}', "type": link["type"],
             "hreflang": link["hreflang"]})
    accept = request.accept_mimetypes
    best = accept.best_match([LINKSET_TYPE, "application/json", "application/ld+json"]) or LINKSET_TYPE
    body: dict[str, Any] = {"linkset": [entry]}
    if best == "application/ld+json":
        body = {"@context": LINKSET_CONTEXT, **body}
    resp = jsonify(body)
    resp.mimetype = best
    return resp


@_register("/01/<path:dl_path>", "gs1_resolve",
           "GS1 Digital Link resolver for special-mark labels: /01/{gtin}/21/{serial}?v={kid}{tag} redirects "
           "(307) to the verification answer; linkType selects a link, linkType=linkset lists them (RFC 9264)",
           public("consumers and GS1 applications; no sign-in"),
           {400: "not a valid GS1 Digital Link URI",
            404: "unknown item (answered with the 'unknown' verdict), or the linkType is not available"},
           content_type=LINKSET_TYPE,
           query={"v": "key id and MAC tag of the label (15 characters); without it nothing verifies",
                  "linkType": "gs1:defaultLink, gs1:verificationService, gs1:pip, gs1:traceability, linkset, all"})
def gs1_resolve(dl_path: str):
    gtin, qualifiers = parse_digital_link(dl_path)
    if "21" not in qualifiers:
        raise NotFound("this resolver answers for individual labels: /01/{gtin}/21/{serial}?v=…", code="no_links")
    link_type = request.args.get("linkType")
    wants_linkset = _wants_linkset(link_type)
    keyring = current_app.extensions["gi_keyring"]
    tag = request.args.get("v")
    check = verification.check_gs1(get_session(), keyring, gtin=gtin, serial_text=qualifiers["21"], tag=tag)
    if check.mark is None:  # no links: answer the verdict here rather than redirect to it
        return _answer(_consumer_check(check=check, record=not wants_linkset))
    links = _links(check)
    anchor = _anchor(gtin, qualifiers)
    linkset_url = f"{anchor}?{urlencode({'v': tag, 'linkType': 'linkset'})}"
    if wants_linkset:
        description = f"{check.serial.display} · 地理标志专用标志 GI special mark"
        resp = _linkset_response(anchor, links, description)
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

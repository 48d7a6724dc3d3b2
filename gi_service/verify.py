"""Consumer verification: `/v/{code}`.

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
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field

from .api.framework import Access, EndpointSpec, SPECS, endpoint, public
from .codes import verify_code
from .db import get_session, utcnow
from .services import scans, verification
from .services.verification import Check

bp = Blueprint("verify", __name__)

LANGS = ("zh", "en")


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
    # Verification answers may be read from anywhere; POST stays same-origin: it is not among
    # the allowed methods.
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    resp.headers["Access-Control-Allow-Headers"] = "Accept, Accept-Language"
    resp.headers["Access-Control-Expose-Headers"] = "Link, Location, Content-Language"
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
    best = accept.best_match(["text/html", "application/json"])
    return best == "application/json" and accept[best] > accept["text/html"]


def _write_if_recording(code: str) -> None:
    """On SQLite a check that reads the ledger and then logs must hold the write lock from BEGIN.

    A deferred transaction that read before another writer committed cannot write any more
    (SQLITE_BUSY_SNAPSHOT). Forged and malformed codes read nothing, so they need no lock early.
    """
    if request.method == "GET" and "db_session" not in g and verify_code(current_app.extensions["gi_keyring"],
                                                                          code).valid:
        get_session().connection(execution_options={"gi_write": True})


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


def _json_answer(doc: dict[str, Any], check: Check) -> Response:
    if check.genuine:
        resp = jsonify(doc)
    else:
        body = {"error": check.verdict.value, "message": f"{doc['title']['en']}: {doc['message']['en']}",
                "details": doc}
        if getattr(g, "request_id", None):
            body["request_id"] = g.request_id
        resp = jsonify(body)
    resp.status_code = check.status
    return resp


def _answer(check: Check, *, record: bool = True) -> Response:
    """Log the check (GET only), describe it, and answer HTML or JSON with the verdict's status."""
    session = get_session()
    settings = _settings()
    recording = record and request.method == "GET"
    checks, scan = None, None
    if recording:
        scan, checks = scans.record_scan(session, verdict=check.verdict, detail=check.detail, serial=check.serial,
                                         mac_ok=check.mac_ok, counted=check.mark is not None,
                                         secret=settings.secret_key, ip=request.remote_addr,
                                         user_agent=request.headers.get("User-Agent"))
    elif check.mark is not None:
        checks = scans.checks_of(session, check.serial)
    doc = verification.describe(session, check, checks, base_url=_base_url())
    if scan is not None and check.code:
        doc["scan"] = {"token": scans.scan_token(settings.secret_key, scan, check.code),
                       "location_url": f"{_base_url()}/v/{check.code}/location"}
    lang = _lang()
    svg = None
    if not _wants_json() and check.mark is not None:
        t = UI[lang]
        svg = verification.area_map(session, check.mark.batch.gi_id, check.mark.batch.producer_id,
                                    title=str(escape(t["area"])), plots_label=str(escape(t["plots"])))
    if "db_session" in g:
        session.commit()
    if _wants_json():
        resp = _json_answer(doc, check)
    else:
        other = "en" if lang == "zh" else "zh"
        other_url = f"{request.path}?{urlencode({**request.args.to_dict(), 'lang': other})}"
        html = render_template("verify.html", doc=doc, lang=lang, t=UI[lang], svg=Markup(svg) if svg else None,
                               checks_sentence=_checks_sentence(doc, lang), other_lang=other, other_url=other_url,
                               today=verification.china_date(utcnow()))
        resp = Response(html, status=check.status, mimetype="text/html")
    resp.headers["Content-Language"] = "zh-CN" if lang == "zh" else "en"
    return resp


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
    _write_if_recording(code)
    check = verification.check_code(get_session(), current_app.extensions["gi_keyring"], code)
    return _answer(check)


class LocationBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: str = Field(min_length=1, max_length=200, description="scan.token from the verification answer")
    lat: float = Field(ge=-90, le=90, description="WGS-84 latitude; stored rounded to 0.01°")
    lon: float = Field(ge=-180, le=180, description="WGS-84 longitude; stored rounded to 0.01°")


@endpoint(bp, "/v/<code>/location", methods=["POST"], access=public("the consumer who just checked the code, "
          "with the scan token of that check"), body=LocationBody, tags=["verification"],
          summary="Add the consumer's approximate location (rounded to 0.01°, with its county) to a check, once",
          responses={403: "invalid or expired scan token", 409: "this check already has a location"})
def record_location(principal, code: str, body: LocationBody):
    canonical = code.strip().upper()
    scan_id = scans.read_scan_token(_settings().secret_key, body.token, canonical)
    return scans.record_location(get_session(), scan_id, lat=body.lat, lon=body.lon)

"""The consumer's public pages in a real browser under their strict Content-Security-Policy: the verdict page, the
report's result and the product page are styled and their scripts work with nothing blocked, and the service's
icon is there (no 404 in the console)."""
from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect
from sqlalchemy import select

from gi_service.models import Scan
from tests.verify.conftest import World

from .conftest import fresh, with_location

GTIN = "09506000134352"
BOZHOU = (33.85, 115.78)


def _watch(page) -> dict[str, list]:
    """Record the page's CSP violations (its own event), console errors and failed or 4xx/5xx requests."""
    seen: dict[str, list] = {"violations": [], "errors": [], "failed": []}
    page.add_init_script("window.__csp=[];document.addEventListener('securitypolicyviolation',"
                         "function(e){window.__csp.push(e.violatedDirective+' '+e.blockedURI)})")
    page.on("console", lambda msg: seen["errors"].append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: seen["failed"].append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: seen["failed"].append(f"failed {r.url}"))
    return seen


def _clean(page, seen, *, expected_status: set[str] = frozenset()) -> None:
    seen["violations"] += page.evaluate("window.__csp")
    assert seen["violations"] == [], seen["violations"]
    assert seen["errors"] == [] or all(any(s in e for s in expected_status) for e in seen["errors"]), seen["errors"]
    assert [f for f in seen["failed"] if not any(s in f for s in expected_status)] == [], seen["failed"]


def _icon(page) -> None:
    """The page links the icon, which the server answers (asked outside the page: Playwright does not route the
    browser's own favicon requests, and a page's fetch of the favicon URL fails under routing)."""
    href = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert urlsplit(href).path == "/favicon.ico"
    r = page.request.get(href)
    assert r.status == 200 and r.headers["content-type"] == "image/vnd.microsoft.icon"


def test_the_verify_page_works_under_its_policy(phone, factory, client, app, session):
    """Does a genuine verdict page on a phone get its inline style, share the location through its script (a POST
    to its own site) and link the icon — with no CSP violation, console error or failed request?"""
    world = World(factory, client, app)
    b = world.batch(10, gtin=GTIN)
    world.activate(b, 1, 5)
    with_location(phone, *BOZHOU)
    page = phone.new_page()
    seen = _watch(page)
    page.goto(f"{phone.base}/v/{b.code(1)}")
    expect(page.locator("h1")).to_have_text("正品：地理标志专用标志有效")
    assert page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(36, 85, 58)"
    page.locator("#share").click()
    expect(page.locator("#share-result")).to_contain_text("已记录大致位置")
    _icon(page)
    _clean(page, seen)
    fresh(session)
    assert session.scalar(select(Scan.adcode)) is not None


def test_the_lot_warning_and_the_report_page_work_under_their_policy(phone, factory, client, app):
    """Does a Digital Link naming another lot lead to a genuine page that warns of the lot, and does sending the
    report form from it show the result page styled, its back link working, with nothing blocked?"""
    world = World(factory, client, app)
    b = world.batch(10, gtin=GTIN)
    world.activate(b, 1, 5)
    location = urlsplit(client.get(f"/01/{GTIN}/10/L-9/21/{b.serial(2)}?v={b.tag(2)}").headers["Location"])
    page = phone.new_page()
    seen = _watch(page)
    page.goto(f"{phone.base}{location.path}?{location.query}")
    expect(page.locator(".lot-mismatch")).to_contain_text("包装上的批次号是 L-9")
    expect(page.locator("#report details")).to_have_attribute("open", "")
    page.fill("textarea[name=description]", "包装上的批次号与页面不一致")
    page.fill("input[name=shop_name]", "亳州某市场")
    page.locator("#report-form button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("感谢您的举报")
    assert page.evaluate("getComputedStyle(document.querySelector('section')).borderTopColor") == "rgb(30, 123, 60)"
    _icon(page)
    _clean(page, seen)
    page.locator("#back").click()
    expect(page.locator(".lot-mismatch")).to_be_visible()
    _clean(page, seen)


def test_the_product_page_of_a_walked_up_gtin_works_under_its_policy(desktop, factory, client, app):
    """Does the product page a GTIN's Digital Link walks up to show the GI, producer and area map, styled, in
    Chinese and (by its language link) English, with nothing blocked — and a GTIN without products a 404 page?"""
    world = World(factory, client, app)
    b = world.batch(10, gtin=GTIN)
    world.activate(b, 1, 5)
    location = urlsplit(client.get(f"/01/{GTIN}/10/L-1").headers["Location"])
    assert location.path == f"/p/{GTIN}"
    page = desktop.new_page()
    seen = _watch(page)
    page.goto(f"{desktop.base}{location.path}?{location.query}")
    expect(page.locator("#product h2").first).to_contain_text("亳白芍")
    expect(page.locator("#lot")).to_contain_text("R-2026-001")
    assert page.locator("svg.map").count() == 1
    assert page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(36, 85, 58)"
    page.locator("header a[hreflang=en]").click()
    expect(page.locator("h1")).to_have_text("Product information")
    _icon(page)
    _clean(page, seen)
    page.goto(f"{desktop.base}/p/96385074")
    expect(page.locator("section.missing")).to_contain_text("没有使用此商品条码")
    _clean(page, seen, expected_status={"404"})

"""Sign-in, sign-out, the session cookie, CSRF and the language switch, in a real browser."""
from __future__ import annotations

import re

from sqlalchemy import select, update

from gi_service.models import ApiToken, MarkRequest, User

from .conftest import PASSWORD


def test_wrong_password_and_disabled_account_get_the_same_message(desktop, factory, session):
    """Is a wrong password refused with a clear message that does not say whether the account exists or is
    disabled, and does the right password of a disabled account read the same?"""
    producer = factory.producer()
    page = desktop.new_page()
    page.goto(desktop.base + "/login")
    page.fill("input[name=username]", producer.principal.username)
    page.fill("input[name=password]", "not-the-password")
    page.click("#login-form button[type=submit]")
    alert = page.locator("#form-error")
    assert "用户名或密码错误，或账号已停用" in alert.inner_text()
    wrong_password = alert.inner_text()

    page.fill("input[name=username]", "nobody-at-all")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    assert page.locator("#form-error").inner_text() == wrong_password

    session.execute(update(User).where(User.id == producer.principal.user_id).values(is_active=False))
    session.commit()
    page.fill("input[name=username]", producer.principal.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    assert page.locator("#form-error").inner_text() == wrong_password
    assert page.url.endswith("/login")


def test_sign_in_then_sign_out_ends_the_session_for_good(desktop, browser, live_server, factory, session):
    """After signing out, is the session dead on the server, so that a copy of the old cookie opens nothing?"""
    producer = factory.producer()
    page = desktop.login(producer)
    assert page.locator("#who").inner_text().count(producer.principal.username) == 1
    stolen = desktop.context.cookies()
    assert [c["name"] for c in stolen] == ["gi_session"]

    page.click("header .logout button")
    page.wait_for_url(re.compile(r"/login$"))
    assert "已退出登录" in page.locator(".flash").first.inner_text()
    page.goto(desktop.base + "/app")
    assert page.url.startswith(desktop.base + "/login")

    replay = browser.new_context(base_url=live_server.url)
    try:
        replay.add_cookies(stolen)
        other = replay.new_page()
        other.goto(live_server.url + "/app")
        assert other.url.startswith(live_server.url + "/login"), "the copied cookie still opened the pages"
    finally:
        replay.close()
    row = session.scalars(select(ApiToken).where(ApiToken.user_id == producer.principal.user_id,
                                                 ApiToken.name == "web session")).one()
    assert row.revoked_at is not None


def test_session_cookie_and_security_headers(desktop, factory):
    """Is the session cookie HttpOnly and SameSite=Lax, and do the pages forbid framing, inline script and
    leaking the address in referrers?"""
    authority = factory.authority()
    page = desktop.new_page()
    response = page.goto(desktop.base + "/login")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    desktop.login(authority, page)
    cookie = next(c for c in desktop.context.cookies() if c["name"] == "gi_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""


def test_signing_in_replaces_the_session(desktop, factory):
    """Does signing in start a new session (no fixation): the cookie set before sign-in, with its CSRF token,
    is no longer the one in use afterwards?"""
    producer = factory.producer()
    page = desktop.new_page()
    page.goto(desktop.base + "/login")
    before_cookie = next(c["value"] for c in desktop.context.cookies() if c["name"] == "gi_session")
    before_token = page.input_value("#login-form input[name=csrf_token]")
    desktop.login(producer, page)
    after_cookie = next(c["value"] for c in desktop.context.cookies() if c["name"] == "gi_session")
    after_token = page.input_value("header .logout input[name=csrf_token]")
    assert after_cookie != before_cookie
    assert after_token != before_token


def test_a_form_without_its_csrf_token_is_refused(desktop, factory, client, session, ledger_world):
    """Is a POST that lacks the session's CSRF token (or carries another one) answered 400 with a page that
    says what to do, and does it change nothing?"""
    world = ledger_world()
    page = desktop.login(world.producer)
    page.goto(desktop.base + "/app/requests")
    page.fill("#request-form input[name=pack_size_g]", "250")
    page.fill("#request-form input[name=quantity]", "10")
    page.evaluate("document.querySelector('#request-form input[name=csrf_token]').remove()")
    with page.expect_response(re.compile(r"/app/requests/new$")) as answer:
        page.click("#request-form button[type=submit]")
    assert answer.value.status == 400
    assert "表单已失效" in page.locator("h1").inner_text()

    refused = page.request.post(desktop.base + "/app/requests/new",
                                form={"csrf_token": "forged", "gi_id": str(world.gi.id), "pack_size_g": "250",
                                      "quantity": "10"})
    assert refused.status == 400
    assert session.scalars(select(MarkRequest)).all() == []


def test_the_api_does_not_accept_the_session_cookie(desktop, factory):
    """Does the JSON API ignore the browser's session (bearer tokens only), so a cookie cannot act there?"""
    producer = factory.producer()
    page = desktop.login(producer)
    read = page.request.get(desktop.base + "/api/v1/quota-accounts")
    assert read.status == 401
    write = page.request.post(desktop.base + "/api/v1/mark-requests",
                              data={"gi_id": 1, "pack_size_g": 250, "quantity": 10})
    assert write.status == 401 and write.json()["error"] == "unauthenticated"


def test_a_signed_out_visit_returns_to_the_page_after_sign_in(desktop, factory):
    """Does opening a page while signed out lead to sign-in and then back to that page (but never to
    another site)?"""
    producer = factory.producer()
    page = desktop.new_page()
    page.goto(desktop.base + "/app/marks")
    assert re.search(r"/login\?next=/app/marks$", page.url)
    page.fill("input[name=username]", producer.principal.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/app/marks$"))

    page.click("header .logout button")
    page.goto(desktop.base + "/login?next=//evil.example/steal")
    page.fill("input[name=username]", producer.principal.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"127\.0\.0\.1:\d+/app$"))


def test_chinese_first_with_an_english_switch_kept_in_the_session(desktop, factory):
    """Are the pages Chinese by default, and does ?lang=en switch them to English for the rest of the
    session (and ?lang=zh back)?"""
    authority = factory.authority()
    page = desktop.login(authority)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("nav.nav").inner_text().startswith("首页")
    page.click("header a.lang")
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(desktop.base + "/app/registry")
    assert "GI registry" in page.locator("h1").inner_text()
    page.goto(desktop.base + "/app/registry?lang=zh")
    assert "地理标志档案" in page.locator("h1").inner_text()

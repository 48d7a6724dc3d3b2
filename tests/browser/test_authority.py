"""The authority's main flow in a browser: registry with history and map, producers and their
authorizations, quota, and deciding mark requests."""
from __future__ import annotations

import re

from sqlalchemy import select

from gi_service.models import (AuthorizationStatus, BatchStatus, GIVersion, MarkBatch, MarkRequest, QuotaAccount,
                               RequestStatus, User)

from .conftest import follow, fresh, no_horizontal_scroll


def test_authority_approves_a_request_with_a_printer(desktop, factory, client, session, ledger_world):
    """Does the authority see the pending request on its home page, approve it with a printer chosen, and does
    that consume the quota and place the print order exactly as the API would?"""
    world = ledger_world()
    request = world.request(quantity=400, pack_size_g=250)
    page = desktop.login(world.authority)
    assert page.locator("#count-pending_requests .n").inner_text() == "1"
    page.click(f"a[href$='#req-{request['id']}']")
    card = page.locator(f"#req-{request['id']}")
    assert "100" in card.inner_text()  # quota needed: 400 × 250 g = 100 kg
    card.locator("form.approve select[name=printer_id]").select_option(str(world.printer.org.id))
    card.locator("form.approve input[name=reason]").fill("符合配额")
    card.locator("form.approve button").click()
    flash = page.locator(".flash.ok")
    assert re.search(r"已批准：批次 #\d+，序列号 \w{16} ~ \w{16}", flash.inner_text())

    fresh(session)
    batch = session.scalars(select(MarkBatch)).one()
    assert (batch.status, batch.printer_id, batch.quantity) == (BatchStatus.ordered, world.printer.org.id, 400)
    assert session.get(MarkRequest, request["id"]).status == RequestStatus.approved
    account = session.get(QuotaAccount, world.account["id"])
    assert account.consumed_g == 100_000
    page.goto(desktop.base + "/app/batches")
    assert f"批次 #{batch.id}" in page.locator("#batch-list").inner_text()


def test_refusal_needs_a_reason_and_an_overspend_is_shown_on_the_form(desktop, factory, client, session, ledger_world):
    """Is a request beyond the quota refused on the page with the service's reason (409, nothing written), and can
    the authority then refuse it with a reason?"""
    world = ledger_world()
    too_big = world.request(quantity=100_000, pack_size_g=250)  # 25 t against ~5.2 t of quota
    page = desktop.login(world.authority)
    page.goto(desktop.base + "/app/requests")
    card = page.locator(f"#req-{too_big['id']}")
    with page.expect_response(re.compile(r"/approve$")) as answer:
        card.locator("form.approve button").click()
    assert answer.value.status == 409
    assert "配额不足" in page.locator("#form-error").inner_text()
    fresh(session)
    assert session.scalars(select(MarkBatch)).all() == []

    card = page.locator(f"#req-{too_big['id']}")
    card.locator("form.refuse input[name=reason]").fill("超出年度配额")
    card.locator("form.refuse button").click()
    assert f"已不予批准申请 #{too_big['id']}" in page.locator(".flash.ok").inner_text()
    fresh(session)
    refused = session.get(MarkRequest, too_big["id"])
    assert (refused.status, refused.decision_reason) == (RequestStatus.refused, "超出年度配额")


def test_registry_record_shows_its_area_and_history_and_amends_as_a_new_version(desktop, factory, session):
    """Does the GI page draw the production area from its geometry (inline SVG, no tiles), list every version,
    and does an amendment by the managing authority add a version with its reason?"""
    authority = factory.authority("341600")
    gi = factory.gi(authority, name_zh="亳白芍", name_pinyin="Bo Bai Shao", testing_body="亳州市检验中心")
    page = desktop.login(authority)
    page.goto(desktop.base + "/app/registry?q=bbs")
    page.click("#gi-list a:has-text('亳白芍')")
    page.wait_for_url(re.compile(rf"/app/registry/{gi.id}$"))
    path = page.locator("#area svg.map path").first
    assert len(path.get_attribute("d")) > 200  # the county outline, not a box
    assert page.locator("#versions tr.version").count() == 1

    page.fill("#amend input[name=standard]", "DB34/T 亳白芍-2026")
    page.fill("#amend input[name=reason]", "标准修订")
    page.click("#amend button[type=submit]")
    assert "已修订为第 2 版" in page.locator(".flash.ok").inner_text()
    rows = page.locator("#versions tr.version")
    assert rows.count() == 2
    assert "标准修订" in rows.first.inner_text() and "standard" in rows.first.inner_text()
    fresh(session)
    assert [v.version for v in session.scalars(select(GIVersion).where(GIVersion.gi_id == gi.id))] == [1, 2]


def test_authority_suspends_an_authorization_with_a_reason(desktop, factory, session):
    """Can the authority find a producer in its jurisdiction, see its plots on the map, and suspend its
    authorization with a reason that lands in the history?"""
    authority = factory.authority("341600")
    gi = factory.gi(authority)
    producer = factory.producer("341602", name="谯城区白芍合作社")
    factory.plot(producer, gi, name="东地块")
    auth = factory.authorization(producer, gi, by=authority)
    page = desktop.login(authority)
    page.goto(desktop.base + "/app/producers?q=白芍")
    page.click("#producer-list a:has-text('谯城区白芍合作社')")
    assert page.locator(".plots-group svg.map").count() == 2  # the area, and a close-up of the plots
    assert page.locator(".plots-group .plot-row").count() == 1

    item = page.locator(f"#auth-{auth.id}")
    item.locator("select[name=to]").select_option("suspended")
    item.locator("input[name=reason]").fill("抽检不合格")
    item.locator("button[type=submit]").click()
    assert "已暂停" in page.locator(".flash.ok").inner_text()
    item = page.locator(f"#auth-{auth.id}")
    assert "已暂停" in item.locator("h3").inner_text()
    item.locator("summary").click()
    assert "抽检不合格" in item.locator("ol.history").inner_text()
    fresh(session)
    assert session.get(type(auth), auth.id).status == AuthorizationStatus.suspended


def test_authority_opens_and_adjusts_a_yearly_quota(desktop, factory, session):
    """Does opening a quota from the producer page compute plot area × standard yield, and does an adjustment
    with a reason change the balance shown?"""
    authority = factory.authority("341600")
    gi = factory.gi(authority, standard_yield_kg_per_mu=350)
    producer = factory.producer("341602")
    factory.plot(producer, gi, side_m=100)  # 15 mu
    factory.authorization(producer, gi, by=authority)
    page = desktop.login(authority)
    page.goto(desktop.base + f"/app/producers/{producer.org.id}")
    page.fill("#open-quota input[name=year]", "2026")
    page.click("#open-quota button[type=submit]")
    page.wait_for_url(re.compile(r"/app/quota/\d+$"))
    assert "已开立配额账户" in page.locator(".flash.ok").inner_text()
    opened = float(page.locator("#available .n").inner_text().replace(",", ""))
    assert 5200 < opened < 5260  # ~15 mu × 350 kg/mu

    page.fill("#adjust input[name=amount_kg]", "-240")
    page.fill("#adjust input[name=reason]", "复核面积")
    page.click("#adjust button[type=submit]")
    assert float(page.locator("#available .n").inner_text().replace(",", "")) == round(opened - 240, 3)
    fresh(session)
    account = session.scalars(select(QuotaAccount)).one()
    assert account.adjusted_g == -240_000


def test_the_authoritys_menu_takes_one_row_on_a_phone(phone, factory):
    """On a 390×844 phone, does the authority's menu of thirteen places take one row (a small part of the first
    screen instead of three rows), with every place reachable by sliding the menu and the current one in view?"""
    authority = factory.authority("341600")
    page = phone.login(authority)
    nav = page.locator("nav.nav")
    links = nav.locator("a")
    assert links.count() == 13
    boxes = [links.nth(i).bounding_box() for i in range(links.count())]
    assert len({round(b["y"]) for b in boxes}) == 1                       # one row
    height = nav.bounding_box()["height"]
    assert height < 2 * boxes[0]["height"] and height <= 0.08 * 844
    assert nav.bounding_box()["y"] + height <= 0.25 * 844                # header, account and menu together
    assert no_horizontal_scroll(page)                                      # the menu slides, not the page

    def in_view(link) -> bool:
        box, frame = link.bounding_box(), nav.bounding_box()
        return box["x"] >= frame["x"] - 1 and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1

    last = links.nth(12)
    assert not in_view(last)
    nav.evaluate("n => { n.scrollLeft = n.scrollWidth; }")
    assert in_view(last)
    last.click()
    page.wait_for_url(re.compile(r"/app/audit"))
    current = page.locator("nav.nav a[aria-current=page]")
    assert current.get_attribute("href").endswith("/app/audit") and in_view(current)


def test_an_authority_opens_an_account_and_its_owner_sets_a_password_of_their_own(phone, factory, session):
    """On a phone, can an authority go from its accounts page to the new-account form, open an account for a
    producer of its jurisdiction, read the first password once, and does that password lead the account's owner
    straight to choosing a password of their own, then into the service?"""
    authority = factory.authority("341600")
    producer = factory.producer("341602", name="亳州白芍合作社")
    page = phone.login(authority)
    page.goto(phone.base + "/app/users")
    follow(page, "#user-new")
    page.select_option("#user-form select[name=organisation_id]", str(producer.org.id))
    page.fill("#user-form input[name=username]", "zhang.wei")
    page.fill("#user-form input[name=display_name]", "张伟")
    page.click("#user-form button[type=submit]")
    assert "已为亳州白芍合作社创建账号 zhang.wei" in page.locator("#created .flash.ok").inner_text()
    first = page.locator("#first-password").inner_text()
    assert len(first) == 19 and no_horizontal_scroll(page)
    fresh(session)
    assert session.scalar(select(User).where(User.username == "zhang.wei")).must_change_password

    page.click("header .logout button")
    page.wait_for_url(re.compile(r"/login$"))
    page.fill("input[name=username]", "zhang.wei")
    page.fill("input[name=password]", first)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/login/password$"))
    page.fill("#password-form input[name=new_password]", "Zhang-wei-2026!")
    page.fill("#password-form input[name=new_password2]", "Zhang-wei-2026!")
    page.click("#password-form button[type=submit]")
    page.wait_for_url(re.compile(r"/app$"))
    assert "zhang.wei" in page.locator("#who").inner_text()

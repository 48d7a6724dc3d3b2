"""The producer's main flow on a phone: plots on a map, quota, requesting marks, activating a lot,
label downloads, voiding."""
from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from gi_service.codes import parse_serial
from gi_service.models import MarkRequest, MarkState, RequestStatus
from gi_service.services import marks

from .conftest import follow, fresh, no_horizontal_scroll


def _state(session, serial: str) -> MarkState:
    fresh(session)
    return marks.find_mark(session, parse_serial(serial)).state


def test_producer_requests_marks_then_activates_a_lot_on_a_phone(phone, factory, client, session, ledger_world):
    """On a 390-px phone, can a producer request marks, and once they are printed and issued, activate them on a
    tested lot from its stock list and download a label, with the ledger moving exactly as through the API?"""
    world = ledger_world()
    page = phone.login(world.producer)
    assert no_horizontal_scroll(page)
    assert int(page.locator("#count-quota_available .n").inner_text().split()[0].replace(",", "")) > 5000

    follow(page, "a.button[href$='/app/requests#new']")
    page.fill("#request-form input[name=pack_size_g]", "250")
    page.fill("#request-form input[name=quantity]", "50")
    page.fill("#request-form input[name=year]", str(world.year))
    page.click("#request-form button[type=submit]")
    flash = page.locator(".flash.ok").inner_text()
    request_id = int(re.search(r"#(\d+)", flash).group(1))
    assert "等待审批" in flash and no_horizontal_scroll(page)
    fresh(session)
    req = session.get(MarkRequest, request_id)
    assert (req.status, req.quantity, req.pack_size_g) == (RequestStatus.requested, 50, 250)

    batch = world.approve(request_id)
    assert client.post(f"/api/v1/batches/{batch['id']}/printed", headers=world.printer.headers,
                       json={"spoiled": []}).status_code == 200
    assert client.post(f"/api/v1/batches/{batch['id']}/issue", headers=world.printer.headers,
                       json={}).status_code == 200

    follow(page, "nav.nav a[href$='/app/marks']")
    stock = page.locator("#stock li.range.st-issued")
    assert stock.count() == 1 and batch["first_serial"] in stock.inner_text().replace("-", "")
    follow(page, stock.locator("a:has-text('填入启用表单')"))
    form = page.locator("#activate-form")
    assert batch["first_serial"] in form.locator("textarea[name=ranges]").input_value()
    assert form.locator("input[name=pack_size_g]").input_value() == "250"
    assert form.locator("input[name=testing_body]").input_value() == world.testing_body
    form.locator("input[name=lot_no]").fill("BS-2026-001")
    form.locator("input[name=lot_quantity]").fill("50")
    form.locator("input[name=test_report_no]").fill("R-2026-017")
    form.locator("input[name=test_passed]").check()
    form.locator("button[type=submit]").click()
    assert "已在批次 BS-2026-001 上启用 50 枚标志" in page.locator(".flash.ok").inner_text()
    expect(page.locator("#stock li.range.st-activated")).to_have_count(1)
    assert "BS-2026-001" in page.locator("#lots").inner_text()
    assert _state(session, batch["first_serial"]) == MarkState.activated
    assert _state(session, batch["last_serial"]) == MarkState.activated
    assert no_horizontal_scroll(page)

    with page.expect_download() as download:
        page.locator("#stock li.range.st-activated a:has-text('PNG')").click()
    with open(download.value.path(), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_activation_is_refused_when_the_lot_failed_its_test(phone, factory, client, session, ledger_world):
    """Is activation on a lot whose test did not pass refused on the form (422, with the reason in Chinese), the
    values kept, and the marks left in stock?"""
    world = ledger_world()
    batch = world.printed_and_issued(quantity=10)
    page = phone.login(world.producer)
    page.goto(phone.base + f"/app/marks?ranges={batch['first_serial']}~{batch['last_serial']}&pack_size_g=250")
    form = page.locator("#activate-form")
    form.locator("input[name=lot_no]").fill("BS-X")
    form.locator("input[name=lot_quantity]").fill("10")
    form.locator("input[name=test_report_no]").fill("R-FAIL")
    with page.expect_response(re.compile(r"/app/marks/activate$")) as answer:
        form.locator("button[type=submit]").click()  # "test passed" left unticked
    assert answer.value.status == 422
    assert "批次检验不合格" in page.locator("#form-error").inner_text()
    assert page.locator("#activate-form input[name=lot_no]").input_value() == "BS-X"
    assert _state(session, batch["first_serial"]) == MarkState.issued


def test_producer_reports_marks_lost(phone, factory, client, session, ledger_world):
    """Can a producer report part of its stock lost with a reason, leaving the rest in stock?"""
    world = ledger_world()
    batch = world.printed_and_issued(quantity=10)
    seq = parse_serial(batch["first_serial"]).seq + 2
    lost = marks.span_serials(batch["series"], seq, seq)[0]
    page = phone.login(world.producer)
    page.goto(phone.base + "/app/marks#void")
    page.fill("#void textarea[name=void_ranges]", lost)
    page.select_option("#void select[name=kind]", "lost")
    page.fill("#void input[name=void_reason]", "运输途中遗失")
    page.click("#void button[type=submit]")
    assert "已登记 1 枚" in page.locator(".flash.ok").inner_text()
    assert _state(session, lost) == MarkState.lost
    assert _state(session, batch["first_serial"]) == MarkState.issued


def test_producer_sees_its_plots_on_a_map_and_registers_one(phone, factory, client, session, ledger_world):
    """Does the plots page draw the producer's plots on its GI's area (and a close-up), and does a plot drawn
    outside the production area get refused with how much lies outside?"""
    world = ledger_world()
    page = phone.login(world.producer)
    follow(page, "nav.nav a[href$='/app/plots']")
    group = page.locator(f"#plots-gi-{world.gi.id}")
    assert group.locator("svg.map").count() == 2
    assert group.locator("svg.area-map .plot-marker, svg.area-map .plot").count() == 1
    assert group.locator("svg.plots-map .plot path").count() == 1
    assert no_horizontal_scroll(page)

    page.fill("#new-plot input[name=name]", "北京的地")
    page.fill("#new-plot textarea[name=geometry]",
              '{"type":"Polygon","coordinates":[[[116.39,39.90],[116.40,39.90],[116.40,39.91],[116.39,39.90]]]}')
    with page.expect_response(re.compile(r"/app/plots/new$")) as answer:
        page.click("#new-plot button[type=submit]")
    assert answer.value.status == 422
    assert "地块超出产地范围" in page.locator("#form-error").inner_text()


def test_producer_transfers_quota_to_another_holder_of_the_gi(phone, factory, client, session, ledger_world):
    """Can a producer transfer part of its yearly quota to another authorized holder of the same GI from its
    account page, the balance shown going down by exactly that amount?"""
    from gi_service.models import QuotaAccount

    world = ledger_world()
    packer = factory.producer("341602", name="亳州白芍包装厂")
    factory.authorization(packer, world.gi, by=world.authority)
    page = phone.login(world.producer)
    follow(page, "nav.nav a[href$='/app/quota']")
    follow(page, f"#accounts a[href$='/app/quota/{world.account['id']}']")
    before = float(page.locator("#available .n").inner_text().replace(",", ""))
    page.select_option("#transfer select[name=to_producer_id]", str(packer.org.id))
    page.fill("#transfer input[name=amount_kg]", "120.5")
    page.fill("#transfer input[name=reason]", "委托包装")
    page.click("#transfer button[type=submit]")
    assert "已转让 120.5 千克" in page.locator(".flash.ok").inner_text()
    assert float(page.locator("#available .n").inner_text().replace(",", "")) == round(before - 120.5, 3)
    assert no_horizontal_scroll(page)
    fresh(session)
    received = session.scalars(select(QuotaAccount).where(QuotaAccount.producer_id == packer.org.id)).one()
    assert received.transferred_in_g == 120_500

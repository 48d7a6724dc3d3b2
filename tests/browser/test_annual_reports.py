"""Annual usage reports in the browser: the producer declares its output and submits (then the report is locked
and downloads as PDF); the authority sees who reported and downloads the listing and the rollup."""
from __future__ import annotations

from decimal import Decimal

from playwright.sync_api import expect
from sqlalchemy import select

from gi_service.models import AnnualReport, AnnualReportStatus
from tests.annual.conftest import Clock, cst, span
from tests.factories import LedgerWorld

from .conftest import follow, fresh, no_horizontal_scroll

API = "/api/v1"


class Year2025(LedgerWorld):
    """The ledger world in 2025: 300 marks issued in April, 120 of them activated on a tested lot in May."""

    def __init__(self, factory, client, clock: Clock):
        clock.set(cst(2025, 3, 1, 9, 0))
        super().__init__(factory, client, year=2025)
        clock.set(cst(2025, 4, 1, 10, 0))
        self.batch = self.printed_and_issued(300)
        clock.set(cst(2025, 5, 10, 10, 0))
        r = client.post(f"{API}/activations", headers=self.producer.headers, json={
            "ranges": [span(self.batch, 1, 120)], "lot": self.lot("L-2025-1", 120, production_date="2025-05-09")})
        assert r.status_code == 201, r.json
        clock.set(cst(2026, 1, 20, 9, 0))   # reporting season: before the 31 January deadline


def test_producer_declares_its_output_and_submits_its_annual_report_on_a_phone(phone, factory, client, session,
                                                                              monkeypatch):
    """On a phone, does the producer see its 2025 report drafted from the ledger (300 received, 120 activated),
    and can it declare output and value, submit on time (the report then locked, without a form) and download
    the PDF?"""
    clock = Clock(monkeypatch, cst(2025, 3, 1, 9, 0))
    world = Year2025(factory, client, clock)
    page = phone.login(world.producer)
    follow(page, "nav.nav a[href$='/app/annual-report']")
    assert "2025" in page.locator("h1").inner_text()
    assert page.locator("#fig-received").inner_text() == "300"
    assert page.locator("#fig-activated").inner_text().startswith("120")
    assert "草稿" in page.locator("#report-status").inner_text()
    assert no_horizontal_scroll(page)

    page.click("#submit-form button[type=submit]")       # nothing declared yet: refused, still a draft
    assert "请先填写产量和产值" in page.locator("#form-error").inner_text()
    page.fill("#declare-form input[name=output_kg]", "1234.5")
    page.fill("#declare-form input[name=output_value_yuan]", "98765.43")
    page.fill("#declare-form textarea[name=notes]", "含自有基地与社员交售")
    page.click("#declare-form button[type=submit]")
    assert "已保存申报数据" in page.locator(".flash.ok").inner_text()
    assert page.locator("#declare-form input[name=output_kg]").input_value() == "1234.5"
    page.click("#submit-form button[type=submit]")       # the confirmation is accepted
    assert "已提交并锁定" in page.locator(".flash.ok").inner_text()
    status = page.locator("#report-status").inner_text()
    assert "已提交" in status and "逾期" not in status
    assert page.locator("#declare-form").count() == 0
    assert page.locator("#declared-value").inner_text() == "98,765.43"

    with page.expect_download() as download:
        page.click("#report-pdf")
    with open(download.value.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"

    fresh(session)
    report = session.scalars(select(AnnualReport)).one()
    assert (report.year, report.status) == (2025, AnnualReportStatus.submitted)
    assert (report.output_kg, report.output_value_yuan) == (Decimal("1234.500"), Decimal("98765.43"))
    assert report.figures["marks"]["received"] == 300 and report.figures["marks"]["activated"] == 120


def test_authority_sees_who_reported_and_downloads_the_rollup(desktop, factory, client, session, monkeypatch):
    """Does the GI's authority see the producer's submitted report in the 2025 listing and the other authorized
    user as overdue, the output in the rollup per GI, and download the listing as CSV (with a BOM, for Excel) and
    the rollup as PDF?"""
    clock = Clock(monkeypatch, cst(2025, 3, 1, 9, 0))
    world = Year2025(factory, client, clock)
    r = client.patch(f"{API}/annual-reports/2025/mine", headers=world.producer.headers,
                     json={"output_kg": 800, "output_value_yuan": 64000})
    assert r.status_code == 200, r.json
    assert client.post(f"{API}/annual-reports/2025/mine/submit", headers=world.producer.headers).status_code == 200
    clock.set(cst(2025, 6, 1, 9, 0))
    late = factory.producer("341602", name="迟报合作社")
    factory.authorization(late, world.gi, by=world.authority)   # an authorized user in 2025 too
    clock.set(cst(2026, 2, 10, 9, 0))    # after the 31 January deadline: it has not reported

    page = desktop.login(world.authority)
    follow(page, "nav.nav a[href$='/app/annual-reports']")
    row = page.locator(f"#row-{world.producer.org.id}-{world.gi.id}")
    assert "已提交" in row.inner_text() and "800" in row.inner_text()
    assert "逾期未交" in page.locator(f"#row-{late.org.id}-{world.gi.id}").inner_text()
    rollup = page.locator("#rollup")
    assert world.gi.name_zh in rollup.inner_text() and "64,000.00" in rollup.inner_text()
    with page.expect_download() as download:
        page.click("#listing-csv")
    with open(download.value.path(), "rb") as f:
        data = f.read()
    assert data.startswith(b"\xef\xbb\xbf") and world.producer.org.name.encode() in data
    with page.expect_download() as download:
        page.click("#rollup-pdf")
    with open(download.value.path(), "rb") as f:
        assert f.read(5) == b"%PDF-"
    expect(page.locator("#report-counts li").first).to_contain_text("2")   # two users had to report

"""The statistics dashboard in the browser: the figures of the caller's jurisdiction with the charts and the map
drawn inline (no image or script from elsewhere), the breakdown, the downloads, and the API's scope rules."""
from __future__ import annotations

import csv
import re

from playwright.sync_api import expect

from tests.cases.conftest import Story

from .conftest import follow, no_horizontal_scroll


def test_authority_reads_the_dashboard_with_charts_and_the_map_of_findings(desktop, factory, client, app, session):
    """Does the provincial authority's dashboard show this year's figures (its producer's coverage, the marks
    activated, a finding made in 谯城区), the four charts and the map as inline SVG with their titles, the breakdown
    per GI and per region, and a CSV download of the figures?"""
    story = Story(factory, client, app, session)
    batch = story.batch(30)
    story.activate(batch, 1, 10)
    story.finding(story.bozhou_inspection, place=(33.85, 115.7, "341602"), kind="production",
                  violations=("look_alike",), name="谯城区某加工厂")
    page = desktop.login(story.anhui)
    follow(page, "nav.nav a[href$='/app/statistics']")
    assert "安徽省" in page.locator("h1").inner_text()
    assert page.locator("#fig-coverage .n").inner_text().startswith("100")
    assert page.locator("#fig-activated .n").inner_text() == "10"
    assert page.locator("#fig-findings .n").inner_text() == "1"
    for name in ("coverage", "marks-by-month", "findings-by-violation", "checks-by-verdict"):
        chart = page.locator(f"#chart-{name} svg[role=img]")
        expect(chart).to_have_count(1)
        assert chart.locator(":scope > title").count() == 1   # its accessible name
    assert "近似名称" in page.locator("#chart-findings-by-violation").inner_text()
    expect(page.locator("#map svg[role=img]")).to_have_count(1)
    assert "谯城区" in page.locator("#map").inner_text() or "亳州市" in page.locator("#map").inner_text()
    row = page.locator("#breakdown tr", has_text=story.gi.name_zh)
    assert "100.0%" in row.inner_text()

    with page.expect_download() as download:
        page.click("#statistics-csv")
    with open(download.value.path(), encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert len(rows) >= 3 and any(story.gi.name_zh in cell for r in rows for cell in r)

    page.select_option("#statistics-form select[name=group_by]", "region")
    page.click("#statistics-form button[type=submit]")
    assert "亳州市" in page.locator("#breakdown").inner_text()


def test_the_dashboard_keeps_the_scope_rules_on_a_phone(phone, factory, client, app, session):
    """On a phone, does an inspection unit see its own jurisdiction's dashboard without scrolling sideways, and
    asking for another province get the refusal on the page (403), and a producer the 403 page?"""
    story = Story(factory, client, app, session)
    page = phone.login(story.gz)
    follow(page, "nav.nav a[href$='/app/statistics']")
    assert "广州市" in page.locator("h1").inner_text()
    assert no_horizontal_scroll(page)
    response = page.goto(phone.base + "/app/statistics?adcode=340000")
    assert response.status == 403
    assert "超出管辖范围" in page.locator("#form-error").inner_text()
    page.click("header .logout button")
    page = phone.login(story.producer, page)
    assert page.goto(phone.base + "/app/statistics").status == 403
    assert re.search("无权访问", page.locator("h1").inner_text())

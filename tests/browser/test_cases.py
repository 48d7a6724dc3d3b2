"""The authorities' supervision flow in the browser: a case opened from an inspector's finding, referred to the
production place's authority with its evidence, concluded there with the measure taken — and the credit
consequences (the serious-violator list, the producer's credit record, lifting the suspension)."""
from __future__ import annotations

import io
import re

from playwright.sync_api import expect
from PIL import Image

from gi_service.models import (AuthorizationStatus, Case, CaseOutcome, CasePartyRole, CaseStatus, ClueStatus,
                               SeriousViolator)
from gi_service.services import producers
from tests.cases.conftest import Story

from .conftest import follow, fresh, no_horizontal_scroll

API = "/api/v1"
TIANHE = (23.1291, 113.3280)


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 180, 60)).save(out, "JPEG")
    return out.getvalue()


def _file_finding(story: Story, batch, by) -> int:
    """Guangzhou's inspectors file a finding at a Tianhe shop through the API: a copied label, with a photo."""
    r = story.client.post(f"{API}/findings", headers=by.headers, json={
        "client_id": "gz-phone-1:0001", "observed_at": "2026-06-01T10:30:00+08:00", "lat": TIANHE[0],
        "lon": TIANHE[1], "premises": {"name": "天河茶叶市场 A12 档", "kind": "retail"},
        "codes": [batch.code(1)], "violations": ["forged_or_copied_label"], "notes": "同一标签出现在 12 盒上"})
    assert r.status_code == 201, r.json
    finding_id = r.json["id"]
    r = story.client.post(f"{API}/findings/{finding_id}/photos", headers=by.headers,
                          data={"photo": (io.BytesIO(_photo()), "shelf.jpg", "image/jpeg")},
                          content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    return finding_id


def _logout(page) -> None:
    page.click("header .logout button")
    page.wait_for_url(re.compile(r"/login$"))


def test_a_case_goes_from_a_finding_through_referral_to_conclusion(desktop, factory, client, app, session):
    """Can the sales place's authority open a case from an inspector's finding (photo shown), refer it to the
    production place's authority, and can that authority find it in its queue, investigate and conclude it with
    the measure — the event log, the parties, the serious-violator list and the suspension following, and the
    suspension lifted from the producer's credit record?"""
    story = Story(factory, client, app, session)
    batch = story.batch(20)
    story.activate(batch, 1, 10)
    gz_authority = factory.authority("440100", name="广州市市场监督管理局")
    finding_id = _file_finding(story, batch, story.gz)

    page = desktop.login(gz_authority)
    follow(page, "nav.nav a[href$='/app/findings']")
    card = page.locator(f"#finding-{finding_id}")
    assert "天河茶叶市场" in card.inner_text() and "伪造或复制标志" in card.inner_text()
    card.locator("input[name=finding_id]").check()
    page.click("#findings-form button[type=submit]")
    page.wait_for_url(re.compile(r"/app/cases/new\?finding_id="))
    page.fill("#case-form input[name=reason]", "天河区市场检查发现复制标签")
    page.click("#case-form button[type=submit]")
    page.wait_for_url(re.compile(r"/app/cases/\d+$"))
    case_id = int(page.url.rsplit("/", 1)[1])
    assert "已立案" in page.locator(".flash.ok").inner_text()
    evidence = page.locator(f"#evidence-finding-{finding_id}")
    expect(evidence.locator("img")).to_have_count(1)
    # The thumbnail is fetched after the page: wait until it has loaded and decoded (fails if it never does).
    page.wait_for_function("sel => { const i = document.querySelector(sel); return !!i && i.complete && "
                           "i.naturalWidth > 0 }", arg=f"#evidence-finding-{finding_id} img")
    assert "亳州" in page.locator("#refer").inner_text() or str(story.authority.org.name) in page.locator(
        "#refer").inner_text()

    page.fill("#refer input[name=reason]", "生产者在亳州，移送生产地查处")
    page.click("#refer button[type=submit]")
    assert "已移送" in page.locator(".flash.ok").inner_text()
    assert page.locator("#actions").count() == 0          # no longer ours to move on
    assert story.authority.org.name in page.locator("#owner").inner_text()
    assert "销售地" in page.locator("#parties").inner_text()
    page.goto(desktop.base + "/app/cases?queue=party")
    expect(page.locator(f"#case-{case_id}")).to_have_count(1)
    _logout(page)

    page = desktop.login(story.authority, page)
    follow(page, "nav.nav a[href$='/app/cases']")
    follow(page, f"#case-{case_id} h3 a")
    page.fill("#investigate input[name=reason]", "受理移送，开始调查")
    page.click("#investigate button[type=submit]")
    assert "开始调查" in page.locator(".flash.ok").inner_text()
    form = page.locator("#conclude")
    form.locator("input[value=violation_confirmed]").check()
    form.locator("input[name=reason]").fill("经查属实")
    form.locator("button[type=submit]").click()           # no measure: refused, nothing concluded
    assert "认定违法须填写处理措施" in page.locator("#form-error").inner_text()
    fresh(session)
    assert session.get(Case, case_id).status == CaseStatus.investigating
    form = page.locator("#conclude")
    assert form.locator("input[name=reason]").input_value() == "经查属实"   # kept on the form
    form.locator("textarea[name=measure]").fill("责令停止使用，没收标签 1,200 枚，罚款 5 万元")
    form.locator("button[type=submit]").click()
    assert "已结案" in page.locator(".flash.ok").inner_text()
    assert "罚款 5 万元" in page.locator("#measure").inner_text()
    log = page.locator("#events").inner_text()
    for step in ("立案", "移送", "状态变更", "结案", "记入信用"):
        assert step in log, step
    assert "严重违法" in page.locator("#credit").inner_text()
    assert no_horizontal_scroll(page)

    fresh(session)
    case = session.get(Case, case_id)
    assert (case.status, case.outcome, case.serious) == (CaseStatus.concluded, CaseOutcome.violation_confirmed, True)
    assert {(p.organisation_id, p.role) for p in case.parties} >= {
        (gz_authority.org.id, CasePartyRole.sales_place), (story.authority.org.id, CasePartyRole.production_place)}
    assert session.query(SeriousViolator).filter_by(producer_id=story.producer.org.id).count() == 1
    auth = producers.list_authorizations(session, producer_id=story.producer.org.id)[0]
    assert auth.status == AuthorizationStatus.suspended

    follow(page, "nav.nav a[href$='/app/credit']")
    assert story.producer.org.name in page.locator("#violators").inner_text()
    follow(page, f"#violators a:has-text('{story.producer.org.name}')")
    assert page.locator("#listed").inner_text() == "在名单中"
    page.fill(f"#lift-{story.gi.id} input[name=reason]", "整改完成")
    page.click(f"#lift-{story.gi.id} button[type=submit]")
    assert "已恢复使用核准" in page.locator(".flash.ok").inner_text()
    fresh(session)
    assert producers.list_authorizations(session, producer_id=story.producer.org.id)[0].status == \
        AuthorizationStatus.approved
    assert "恢复使用核准" in page.locator("#entries").inner_text()


def test_an_inspector_opens_a_case_from_a_clue_and_handles_the_queue(phone, factory, client, app, session):
    """On a phone, can an inspector acknowledge a copied-label alert from the clue queue with a reason, then open a
    case from it, the clue leaving the open queue as taken into the case?"""
    story = Story(factory, client, app, session)
    clue_id = story.clue(adcode="440106")
    page = phone.login(story.gz)
    follow(page, "nav.nav a[href$='/app/clues']")
    follow(page, f"#clue-{clue_id} h3 a")
    page.select_option("#clue-status select[name=status]", "acknowledged")
    page.fill("#clue-status input[name=reason]", "安排现场核查")
    page.click("#clue-status button[type=submit]")
    assert "处理中" in page.locator(".flash.ok").inner_text()
    page.click("#clue-status a.button")
    page.fill("#case-form input[name=reason]", "预警显示同一码多次被查询")
    page.click("#case-form button[type=submit]")
    page.wait_for_url(re.compile(r"/app/cases/\d+$"))
    assert page.locator(f"#evidence-clue-{clue_id}").count() == 1
    assert no_horizontal_scroll(page)
    fresh(session)
    from gi_service.models import Clue

    assert session.get(Clue, clue_id).status == ClueStatus.referred
    page.goto(phone.base + "/app/clues")
    assert page.locator(f"#clue-{clue_id}").count() == 0

"""The inspector's main flow on a phone: scan a real label through the (fake) camera, see the verdict, file the
finding with a photo and the phone's location — and the same offline, kept on the device and sent once."""
from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import func, select

from gi_service.models import Finding, FindingPhoto, MarkCheck, Scan
from tests.verify.conftest import World

from .camera import label_png, label_video
from .conftest import follow, fresh, no_horizontal_scroll, with_location

TIANHE = (23.1291, 113.3280)   # a market in 广州 天河区 (440106)


def _count(session, model) -> int:
    fresh(session)
    return session.scalar(select(func.count()).select_from(model))


def _jpeg(colour=(160, 60, 40)) -> dict:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), colour).save(out, "JPEG", quality=85)
    return {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


class Shop(World):
    """A GI with an issued batch (marks 1-5 activated on a tested lot) and Guangzhou's inspection unit."""

    def __init__(self, factory, client, app):
        super().__init__(factory, client, app)
        self.marks = self.batch(10)
        self.activate(self.marks, 1, 5)
        self.inspector = factory.inspection("440100")


def test_inspector_scans_a_label_with_the_camera_and_files_a_finding(camera_phone, factory, client, app, session,
                                                                      tmp_path):
    """On a phone whose camera films a real label (a QR of an issued, activated mark), does the scan page read the
    code with the bundled decoder, show 'genuine' at once without counting a consumer check, and does the finding
    filed from it — premises, violation, a photo, the phone's location — reach the database with the code, the
    point's county and the photo?"""
    shop = Shop(factory, client, app)
    serial = shop.marks.serial(2)
    video = label_video(tmp_path / "label.y4m", label_png(client, shop.producer, serial))
    phone = camera_phone(video, geolocation=TIANHE)

    page = phone.login(shop.inspector)
    follow(page, "nav.nav a[href$='/app/scan']")
    expect(page.locator("#scan-stop")).to_be_hidden()         # no "关闭相机" while the camera is off
    expect(page.locator("#scan-start")).to_be_visible()
    expect(page.locator("#scan-start")).to_be_enabled()       # only once scan.js has taken the button
    page.click("#scan-start")
    verdict = page.locator("#scanned li.verdict").first
    expect(verdict).to_have_attribute("data-verdict", "genuine", timeout=20_000)
    expect(page.locator("#camera")).to_have_attribute("data-decoder", "jsqr")  # headless Chromium: no BarcodeDetector
    assert "正品" in verdict.locator(".v-title").inner_text()
    assert shop.marks.data["first_serial"][:4] in verdict.inner_text().replace("-", "")
    assert f"/v/{shop.marks.code(2)}" in verdict.locator(".read").inner_text()
    assert no_horizontal_scroll(page)
    assert (_count(session, Scan), _count(session, MarkCheck)) == (0, 0)  # an inspector's look is no consumer check

    expect(page.locator("#scan-start")).to_be_hidden()
    page.click("#scan-stop")
    expect(page.locator("#scan-stop")).to_be_hidden()
    expect(page.locator("#scan-start")).to_be_visible()
    page.click("#to-finding")
    page.wait_for_url(re.compile(r"/app/findings/new\?code="))
    form = page.locator("#finding-form")
    assert shop.marks.code(2) in form.locator("textarea[name=codes]").input_value()
    expect(form.locator("input[name=lat]")).to_have_value(re.compile(r"^23\.129"))
    expect(form.locator("input[name=lon]")).to_have_value(re.compile(r"^113\.328"))
    form.locator("input[name=premises_name]").fill("天河茶叶市场 A12 档")
    form.locator("input[name=premises_address]").fill("广州市天河区某路 1 号")
    form.locator("input[value=outside_area_or_substandard]").check()
    form.locator("textarea[name=notes]").fill("真标贴在产地外的白芍上")
    form.locator("input[name=photos]").set_input_files(_jpeg())
    assert no_horizontal_scroll(page)
    form.locator("#finding-submit").click()
    page.wait_for_url(re.compile(r"/app/findings/\d+\?sent=1$"))
    finding_id = int(re.search(r"/app/findings/(\d+)", page.url).group(1))
    assert "已提交" in page.locator(".flash.ok").inner_text()
    expect(page.locator("#codes li.verdict[data-verdict=genuine]")).to_have_count(1)
    expect(page.locator("#photos img")).to_have_count(1)
    # The photo is fetched after the page: wait until it has loaded and decoded (fails if it never does).
    page.wait_for_function("sel => { const i = document.querySelector(sel); return !!i && i.complete && "
                           "i.naturalWidth > 0 }", arg="#photos img")
    assert "天河区" in page.locator("#point").inner_text()

    fresh(session)
    finding = session.get(Finding, finding_id)
    assert finding.organisation_id == shop.inspector.org.id
    assert [(c.code, c.verdict) for c in finding.codes] == [(shop.marks.code(2), "genuine")]
    assert finding.adcode == "440106" and (finding.lat, finding.lon) == TIANHE
    assert finding.violations == ["outside_area_or_substandard"]
    assert (finding.gi_id, finding.producer_id) == (shop.gi.id, shop.producer.org.id)  # derived from the code
    assert len(finding.photos) == 1 and finding.photos[0].width == 800
    assert (_count(session, Scan), _count(session, MarkCheck)) == (0, 0)


def test_a_finding_made_offline_is_kept_on_the_phone_and_sent_once_when_back_online(phone, factory, client, app,
                                                                                    session):
    """Without a connection, does the finding page still open (from the service worker), keep a finding with its
    photo on the device as 'waiting to send', and when the connection returns send it by itself — exactly once,
    even if the phone sends the same finding again?"""
    shop = Shop(factory, client, app)
    with_location(phone, *TIANHE)
    page = phone.login(shop.inspector)
    page.goto(phone.base + "/app/findings/new")
    expect(page.locator("#offline-ready")).to_be_visible()   # the service worker controls the page

    phone.context.set_offline(True)
    page.reload()
    expect(page.locator("#finding-form")).to_be_visible()
    assert page.evaluate("navigator.onLine") is False
    form = page.locator("#finding-form")
    expect(form.locator("input[name=lat]")).to_have_value(re.compile(r"^23\.129"))
    form.locator("input[name=premises_name]").fill("天河区某超市")
    form.locator("select[name=premises_kind]").select_option("retail")
    form.locator("textarea[name=codes]").fill(shop.marks.code(7))   # issued, never activated
    assert "未激活" in form.locator("label.check", has=page.locator("input[value=unactivated_label]")).inner_text()
    form.locator("input[value=unactivated_label]").check()
    form.locator("input[name=photos]").set_input_files(_jpeg((30, 90, 160)))
    form.locator("#finding-submit").click()
    expect(page.locator("#finding-status")).to_contain_text("已保存在本机")
    expect(page.locator("#outbox-list li.waiting")).to_have_count(1)
    assert _count(session, Finding) == 0

    page.reload()   # still offline: the page comes from the service worker, the finding from IndexedDB
    expect(page.locator("#outbox-list li.waiting")).to_have_count(1)
    assert "天河区某超市" in page.locator("#outbox-list").inner_text()
    page.evaluate("GIOutbox.all().then(items => { window.keptCopy = items[0]; })")  # as if the answer were lost
    assert _count(session, Finding) == 0

    phone.context.set_offline(False)   # the 'online' event sends it
    expect(page.locator("#outbox-list li.sent")).to_have_count(1)
    expect(page.locator("#outbox-list li.waiting")).to_have_count(0)
    assert (_count(session, Finding), _count(session, FindingPhoto)) == (1, 1)

    page.evaluate("GIOutbox.put(window.keptCopy).then(() => GIOutbox.sync())")   # the same finding sent again
    expect(page.locator("#outbox-list li.waiting")).to_have_count(0)
    page.click("#outbox-send")
    expect(page.locator("#outbox-status")).not_to_have_text("正在发送…")
    assert (_count(session, Finding), _count(session, FindingPhoto)) == (1, 1)
    fresh(session)
    finding = session.scalars(select(Finding)).one()
    assert [(c.code, c.verdict) for c in finding.codes] == [(shop.marks.code(7), "genuine_not_activated")]
    assert finding.violations == ["unactivated_label"] and finding.adcode == "440106"

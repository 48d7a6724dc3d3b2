"""GET /v/{code}: one verdict per fate of a mark, each with its status code, a full page in Chinese (or
English) and a JSON answer; the genuine page shows the GI, the area, the producer, the lot and the
mark's history; no page loads anything from elsewhere and none weighs 50 KB.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from gi_service.codes import format_serial, make_code
from gi_service.models import Authorization, Scan, Verdict
from gi_service.services.verification import DETAIL_TEXTS, STATUS, TEXTS

from .conftest import API, forged

JSON = {"Accept": "application/json"}


def page(r) -> str:
    assert "text/html" in r.content_type, r.content_type
    return r.get_data(as_text=True)


def registered(world) -> None:
    r = world.client.patch(f"{API}/gis/{world.gi.id}", headers=world.authority.headers,
                           json={"registration_no": "国家知识产权局公告第 999 号（演示）", "standard": "DB34/T 0000",
                                 "reason": "announcement recorded"})
    assert r.status_code == 200, r.json


# --- the genuine answer ------------------------------------------------------------------------

def test_genuine_page_in_chinese_shows_gi_area_producer_lot_and_history(world, client):
    """Does an activated mark answer 200 with a Chinese page naming the GI, kind, announcement, producer, USCC,
    lot, test report and testing body, the area as an inline SVG with the plot, and printed → issued → activated?"""
    registered(world)
    b = world.batch(100)
    world.activate(b, 1, 10)
    r = client.get(f"/v/{b.code(3)}")
    assert r.status_code == 200
    html = page(r)
    assert '<html lang="zh-CN">' in html and r.headers["Content-Language"] == "zh-CN"
    for text in ("正品：地理标志专用标志有效", "亳白芍", "地理标志保护产品", "国家知识产权局公告第 999 号（演示）",
                 "DB34/T 0000", world.producer.org.name, world.producer.org.uscc, "L-1", "2026-04-10",
                 "R-2026-001", world.testing_body, "BBSH-26-000000003-", "这是该码的第一次查询。"):
        assert text in html, text
    timeline = html[html.index('id="timeline"'):]
    assert timeline.index("印制") < timeline.index("发放给生产者") < timeline.index("激活") < timeline.index("本次查询")
    svg = re.search(r'<svg[^>]*class="map".*?</svg>', html, re.S)
    assert svg and svg.group(0).count("<circle") == 1        # the producer's one plot
    assert r.headers["Cache-Control"] == "no-store"


def test_english_by_accept_language_or_query(world, client):
    """Is the page English for Accept-Language: en-US or ?lang=en, and Chinese again for ?lang=zh?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    html = page(client.get(f"/v/{b.code(1)}", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert '<html lang="en">' in html and "Genuine GI special mark" in html and "Protected GI product" in html
    assert "Genuine GI special mark" in page(client.get(f"/v/{b.code(1)}?lang=en"))
    html = page(client.get(f"/v/{b.code(1)}?lang=zh", headers={"Accept-Language": "en"}))
    assert "正品" in html and "Genuine GI special mark" not in html
    assert "正品" in page(client.get(f"/v/{b.code(1)}", headers={"Accept-Language": "fr-FR,fr"}))


def test_genuine_json_answer(world, client):
    """Does Accept: application/json give the same answer as data: verdict, GI, producer, lot, timeline, checks?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    r = client.get(f"/v/{b.code(2).lower()}", headers=JSON)
    assert r.status_code == 200 and r.content_type == "application/json"
    doc = r.json
    assert (doc["verdict"], doc["genuine"], doc["serial"]) == ("genuine", True, b.serial(2))
    assert doc["gi"]["name_zh"] == "亳白芍" and doc["gi"]["kind"] == "protected_product"
    assert doc["producer"]["uscc"] == world.producer.org.uscc
    assert doc["lot"]["test_report_no"] == "R-2026-001" and doc["lot"]["testing_body"] == world.testing_body
    assert [e["event"] for e in doc["timeline"]] == ["printed", "issued", "activated"]
    assert doc["checks"]["count"] == 1 and doc["scan"]["location_url"].endswith(f"/v/{b.code(2)}/location")
    assert doc["title"]["zh"] and doc["title"]["en"]


def test_page_is_small_and_self_contained(world, client):
    """Is every verdict page under 50 KB with no external script, stylesheet, font, image or map tile, its one
    link the service's own icon?"""
    b = world.batch(10)
    world.activate(b, 1, 5)
    for code in (b.code(1), b.code(6), "A" * 30, "NOT-A-CODE"):
        for headers in ({}, {"Accept-Language": "en"}):
            r = client.get(f"/v/{code}", headers=headers)
            html = page(r)
            assert len(r.data) < 50 * 1024, (code, len(r.data))
            assert not re.search(r'(src|href|action)=["\']?(https?:)?//', html), code
            assert not re.search(r"<(img|iframe|object|embed)\b", html), code
            assert re.findall(r"<link\b[^>]*>", html) == ['<link rel="icon" href="/favicon.ico">'], code
            assert not re.search(r"url\(|@import", html), code


# --- every other verdict -----------------------------------------------------------------------

def _spoiled(world):
    req = world.request(10)
    batch = world.approve(req["id"])
    r = world.client.post(f"{API}/batches/{batch['id']}/printed", headers=world.printer.headers,
                          json={"spoiled": [{"first": batch["first_serial"]}]})
    assert r.status_code == 200, r.json
    return make_code(world.keyring, batch["first_serial"])


def _suspend(world, to: str = "suspended"):
    def apply(b):
        world.activate(b, 1, 10)
        auth_id = world.factory.session.scalar(select(Authorization.id).where(
            Authorization.producer_id == world.producer.org.id, Authorization.gi_id == world.gi.id))
        r = world.client.post(f"{API}/authorizations/{auth_id}/transitions", headers=world.authority.headers,
                              json={"to": to, "reason": "serious violation found"})
        assert r.status_code == 200, r.json
        return b.code(1)
    return apply


def _recall(world, b):
    lot = world.activate(b, 1, 10)
    lot_id = lot["lot"]["id"] if "lot" in lot else lot["id"]
    r = world.client.post(f"{API}/lots/{lot_id}/recall", headers=world.producer.headers,
                          json={"reason": "pesticide residue above limit"})
    assert r.status_code == 200, r.json
    return b.code(2)


def _voided(kind):
    def apply(world, b):
        world.activate(b, 1, 10)
        world.void(b, 3, kind)
        return b.code(3)
    return apply


CASES = {
    "not_activated": (lambda w, b: b.code(7), Verdict.genuine_not_activated, 409, "警告：此标志尚未激活"),
    "voided": (_voided("voided"), Verdict.voided, 410, "警告：此标志已作废"),
    "spoiled": (lambda w, b: _spoiled(w), Verdict.voided, 410, "此标志在印制时已报废"),
    "lost": (_voided("lost"), Verdict.lost_or_stolen, 410, "警告：此标志已挂失"),
    "stolen": (_voided("stolen"), Verdict.lost_or_stolen, 410, "警告：此标志已挂失"),
    "recalled": (_recall, Verdict.recalled, 410, "警告：该批次产品已召回"),
    "suspended": (lambda w, b: _suspend(w)(b), Verdict.authorization_suspended, 451, "使用资格不在有效期内"),
    "revoked": (lambda w, b: _suspend(w, "revoked")(b), Verdict.authorization_suspended, 451, "使用资格"),
    "bad_mac": (lambda w, b: forged(b.code(1)), Verdict.unknown, 404,
                "无法验证：查无此码"),
    "unknown_key": (lambda w, b: "Z" + b.code(1)[1:], Verdict.unknown, 404, "无法验证：查无此码"),
    "never_issued": (lambda w, b: make_code(w.keyring, format_serial("BBSH", 2026, 999_999)), Verdict.unknown, 404,
                     "无法验证：查无此码"),
    "malformed": (lambda w, b: "ABC123", Verdict.malformed, 400, "无法识别的验证码"),
    "malformed_serial_zero": (lambda w, b: "A" + "BBSH26" + "0" * 9 + "A" * 14, Verdict.malformed, 400,
                              "无法识别的验证码"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_non_genuine_verdict_has_its_status_and_a_full_page(world, client, case):
    """Does each non-genuine fate answer its own status code (never 200) with a full page, and JSON with the verdict
    document at the top level (as a genuine answer has it) plus the `error` code beside `verdict`?"""
    make, verdict, status, words = CASES[case]
    b = world.batch(10)
    code = make(world, b)
    r = client.get(f"/v/{code}")
    assert r.status_code == status == STATUS[verdict]
    html = page(r)
    assert html.lstrip().startswith("<!doctype html>") and words in html
    assert "正品：" not in html and "12315" in html                    # says what to do
    r = client.get(f"/v/{code}", headers=JSON)
    assert r.status_code == status
    doc = r.json
    assert list(doc)[:2] == ["verdict", "error"] and doc["verdict"] == doc["error"] == verdict.value
    assert doc["genuine"] is False and doc["status"] == status and "details" not in doc
    assert doc["title"] == TEXTS[verdict]["title"] and set(doc["message"]) == set(doc["advice"]) == {"zh", "en"}
    assert isinstance(doc["reason"], str) and doc["reason"] and doc["request_id"]
    en = page(client.get(f"/v/{code}?lang=en"))
    assert TEXTS[verdict]["title"]["en"].replace("'", "&#39;") in en


def test_a_real_mark_that_is_not_genuine_still_shows_its_facts(world, client):
    """Does a voided mark's page still show its GI, producer and history, ending with the void?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    world.void(b, 4)
    doc = client.get(f"/v/{b.code(4)}", headers=JSON).json
    assert doc["producer"]["uscc"] == world.producer.org.uscc
    assert [e["event"] for e in doc["timeline"]] == ["printed", "issued", "activated", "voided"]


def test_recalled_history_ends_with_the_recall(world, client):
    """Does a recalled lot's mark show the recall in its history and the lot's status?"""
    b = world.batch(10)
    code = _recall(world, b)
    doc = client.get(f"/v/{code}", headers=JSON).json
    assert doc["timeline"][-1]["event"] == "recalled" and doc["lot"]["status"] == "recalled"


def test_expired_authorization_counts_as_suspended(world, client, session):
    """Is a mark whose producer's authorization passed its valid_until answered 451 (expired)?"""
    import datetime as dt

    b = world.batch(10)
    world.activate(b, 1, 10)
    auth = session.scalar(select(Authorization).where(Authorization.producer_id == world.producer.org.id))
    auth.valid_until = dt.date(2020, 1, 1)
    session.commit()
    r = client.get(f"/v/{b.code(1)}", headers=JSON)
    assert r.status_code == 451 and r.json["detail"] == "expired"


def test_every_verdict_is_worded_in_both_languages():
    """Has every verdict (and every special detail) a title, message and advice in Chinese and in English?"""
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert set(TEXTS) == set(Verdict) == set(STATUS)
    for verdict, words in TEXTS.items():
        for part in ("title", "message", "advice"):
            assert cjk.search(words[part]["zh"]), (verdict, part)
            assert words[part]["en"] and not cjk.search(words[part]["en"]), (verdict, part)
    for words in DETAIL_TEXTS.values():
        assert cjk.search(words["zh"]) and not cjk.search(words["en"])
    assert [v for v, s in STATUS.items() if s == 200] == [Verdict.genuine]


def test_head_answers_the_status_without_logging_a_check(world, client, session):
    """Does HEAD give the verdict's status and headers but log no check and count nothing?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    assert client.head(f"/v/{b.code(1)}").status_code == 200
    assert client.head(f"/v/{b.code(8)}x").status_code == 400
    assert session.scalars(select(Scan)).all() == []
    assert client.get(f"/v/{b.code(1)}", headers=JSON).json["checks"]["count"] == 1


def test_options_and_cors(world, client):
    """Does OPTIONS list GET and HEAD, and does every answer allow any origin (read-only)?"""
    b = world.batch(10)
    r = client.options(f"/v/{b.code(1)}")
    assert r.status_code == 200 and {"GET", "HEAD", "OPTIONS"} <= set(r.headers["Allow"].split(", "))
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = client.get(f"/v/{b.code(1)}", headers=JSON)
    assert r.headers["Access-Control-Allow-Origin"] == "*" and "POST" not in r.headers["Access-Control-Allow-Methods"]
    assert {"Accept", "Accept-Language"} <= set(r.vary)

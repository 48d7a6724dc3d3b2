"""'Report a suspected fake' from the verification page, and the inspectors' queue it lands in."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from gi_service.models import Clue, ConsumerReport
from tests.factories import jpeg_with_exif

from .conftest import forged

JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"
GUANGZHOU_SHOP = (23.1291, 113.3280)   # 天河区 440106


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (200, 100), (0, 128, 0, 128)).save(out, "PNG")
    return out.getvalue()


def checked(client, code: str) -> str:
    """Check a code as a consumer and return the scan token the page carries."""
    r = client.get(f"/v/{code}", headers={"User-Agent": PHONE, **JSON})
    body = r.json
    return body["scan"]["token"]


def form(token: str, **extra) -> dict:
    data = {"token": token, "description": "同一个标签出现在货架上的五盒茶叶上", "shop_name": "天河茶叶市场 A12 档",
            "shop_address": "广州市天河区某路 1 号"}
    data.update(extra)
    return data


def stored_files(app) -> list[Path]:
    root = Path(app.extensions["gi_storage"].root)
    return sorted(p for p in root.rglob("*.jpg")) if root.exists() else []


@pytest.fixture
def guangzhou(factory):
    """The authority and an inspection unit of Guangzhou (where the shop is)."""
    return factory.authority("440100"), factory.inspection("440106")


def test_a_report_with_a_photo_reaches_the_queues_of_the_shop_and_the_producer(world, client, app, session,
                                                                               factory, guangzhou):
    """Does a multipart report with photo and location become a clue that Guangzhou's and Bozhou's supervisors
    see, with the photo re-encoded (EXIF gone, capture time kept) and hashed, and not Beijing's?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    original = jpeg_with_exif()
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**form(token, lat=str(GUANGZHOU_SHOP[0]), lon=str(GUANGZHOU_SHOP[1])),
                          "photo": (io.BytesIO(original), "IMG_0001.jpg", "image/jpeg")})
    assert r.status_code == 201, r.json
    assert r.json["verdict"] == "genuine" and r.json["status"] == "open"
    clue_id = r.json["id"]

    gz_authority, gz_inspection = guangzhou
    for supervisor in (gz_authority, gz_inspection, world.authority):
        queue = client.get("/api/v1/clues", headers=supervisor.headers).json
        assert [c["id"] for c in queue["items"]] == [clue_id], supervisor
    clue = client.get(f"/api/v1/clues/{clue_id}", headers=gz_inspection.headers).json
    report = clue["report"]
    assert report["shop_name"] == "天河茶叶市场 A12 档" and report["adcode"] == "440106"
    assert (report["lat"], report["lon"]) == GUANGZHOU_SHOP
    assert {(p["role"], p["adcode"]) for p in clue["places"]} == {("scan_place", "440106"),
                                                                  ("producer_place", "341602")}
    photo = report["photo"]
    assert photo["taken_at"] == "2026-06-01T10:15:30" and photo["width"] == 640
    assert photo["original_sha256"] == hashlib.sha256(original).hexdigest()

    got = client.get(photo["url"], headers=gz_inspection.headers)
    assert got.status_code == 200 and got.mimetype == "image/jpeg"
    assert hashlib.sha256(got.data).hexdigest() == photo["sha256"]
    stored = Image.open(io.BytesIO(got.data))
    assert dict(stored.getexif()) == {} and b"Exif" not in got.data and b"Zhang San" not in got.data
    assert "exif" not in stored.info and "icc_profile" not in stored.info

    beijing = factory.authority("110000")
    assert client.get("/api/v1/clues", headers=beijing.headers).json["items"] == []
    assert client.get(f"/api/v1/clues/{clue_id}", headers=beijing.headers).status_code == 403
    assert client.get(photo["url"], headers=beijing.headers).status_code == 403
    assert client.get(photo["url"], headers=world.producer.headers).status_code == 403
    assert client.get(photo["url"]).status_code == 401


def test_a_report_of_an_unknown_code_goes_to_the_claimed_gi_authority(world, client, session):
    """A forged code has no producer: does its report reach the authority of the GI it pretends to be?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    fake = forged(b.code(2))
    token = checked(client, fake)
    r = client.post(f"/v/{fake}/report", headers=JSON, json=form(token))
    assert r.status_code == 201, r.json
    assert r.json["verdict"] == "unknown" and r.json["photo"] is None
    clue = client.get(f"/api/v1/clues/{r.json['id']}", headers=world.authority.headers).json
    assert clue["producer_id"] is None and clue["gi_id"] == world.gi.id
    assert [(p["role"], p["adcode"]) for p in clue["places"]] == [("gi_authority", "341600")]


def test_the_html_form_gets_a_page_back(world, client):
    """Does a browser form post get a bilingual thank-you page (201), and an error page it can go back from?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    page = client.get(f"/v/{b.code(1)}", headers={"User-Agent": PHONE}).get_data(as_text=True)
    assert f'action="/v/{b.code(1)}/report"' in page and 'enctype="multipart/form-data"' in page
    token = checked(client, b.code(1))
    r = client.post(f"/v/{b.code(1)}/report", data={**form(token), "lang": "zh"},
                    content_type="multipart/form-data")
    assert r.status_code == 201 and r.mimetype == "text/html"
    assert "感谢您的举报" in r.get_data(as_text=True)
    r = client.post(f"/v/{b.code(1)}/report", data={**form(token), "lang": "en"},
                    content_type="multipart/form-data")
    assert r.status_code == 409 and r.mimetype == "text/html"
    assert "already reported" in r.get_data(as_text=True)


@pytest.mark.parametrize("change, status, code", [
    ({"token": "1.9999999999.AAAA"}, 403, "invalid_scan_token"),
    ({"description": "bad"}, 422, "validation_failed"),
    ({"shop_name": ""}, 422, "validation_failed"),
    ({"description": "x" * 2001}, 422, "validation_failed"),
    ({"lat": "23.1"}, 422, "validation_failed"),               # lat without lon
    ({"lat": "123", "lon": "113"}, 422, "validation_failed"),  # not a latitude
    ({"surprise": "field"}, 422, "validation_failed"),
])
def test_bad_reports_are_refused_and_leave_nothing(world, client, app, session, change, status, code):
    """Is each invalid report refused with a clear 4xx, leaving no clue, no report row and no stored file?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    data = {k: v for k, v in {**form(token), **change}.items() if v != ""}
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**data, "photo": (io.BytesIO(jpeg_with_exif()), "a.jpg", "image/jpeg")})
    assert r.status_code == status and r.json["error"] == code, r.json
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Clue)) == 0
    assert session.scalar(select(func.count()).select_from(ConsumerReport)) == 0
    assert stored_files(app) == []


@pytest.mark.parametrize("photo, status, code", [
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 422, "not_an_image"),
    (b"not an image at all", 422, "not_an_image"),
    (b"", 422, "not_an_image"),
])
def test_a_photo_must_be_a_readable_jpeg_or_png(world, client, app, photo, status, code):
    """Are GIFs, garbage and empty files refused as photos (and nothing stored)?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**form(token), "photo": (io.BytesIO(photo), "x.jpg", "image/jpeg")})
    assert r.status_code == status and r.json["error"] == code, r.json
    assert stored_files(app) == []


def test_a_png_is_accepted_and_stored_as_jpeg(world, client, app):
    """Is a PNG with transparency re-encoded as an opaque JPEG?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**form(token), "photo": (io.BytesIO(png_bytes()), "shelf.png", "image/png")})
    assert r.status_code == 201, r.json
    [path] = stored_files(app)
    assert Image.open(path).format == "JPEG" and hashlib.sha256(path.read_bytes()).hexdigest() == \
        r.json["photo"]["sha256"]


def test_a_photo_over_10_mb_is_refused(world, client, app):
    """Is a photo over 10 MB refused with 413 (and nothing stored)?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    big = jpeg_with_exif() + b"\0" * (10 * 1024 * 1024)
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                    data={**form(token), "photo": (io.BytesIO(big), "big.jpg", "image/jpeg")})
    assert r.status_code == 413 and r.json["error"] == "photo_too_large", r.json
    assert stored_files(app) == []


def test_one_report_per_check_and_the_duplicate_leaves_no_photo(world, client, app, session):
    """Is a second report from the same check refused (409) without leaving its photo behind?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    for expected in (201, 409):
        r = client.post(f"/v/{b.code(1)}/report", headers=JSON, content_type="multipart/form-data",
                        data={**form(token), "photo": (io.BytesIO(jpeg_with_exif()), "a.jpg", "image/jpeg")})
        assert r.status_code == expected, r.json
    assert r.json["error"] == "already_reported"
    assert len(stored_files(app)) == 1


def test_a_token_of_another_code_is_refused(world, client):
    """Can a scan token of one code be used to report another? (No: 403.)"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    r = client.post(f"/v/{b.code(2)}/report", headers=JSON, json=form(token))
    assert r.status_code == 403 and r.json["error"] == "invalid_scan_token"


def test_reports_need_a_form_or_json(world, client):
    """Is a report in another media type refused with 415?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    r = client.post(f"/v/{b.code(1)}/report", headers=JSON, data=b"<xml/>", content_type="application/xml")
    assert r.status_code == 415


# --- the queue -------------------------------------------------------------------------------------

def test_clue_status_is_recorded_with_who_and_why(world, client, guangzhou):
    """Can a supervisor acknowledge and dismiss a clue (who, why, when kept), and are no-op and 'referred'
    transitions refused?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(1))
    clue_id = client.post(f"/v/{b.code(1)}/report", headers=JSON, json=form(token)).json["id"]
    headers = world.authority.headers
    r = client.post(f"/api/v1/clues/{clue_id}/status", headers=headers,
                    json={"status": "acknowledged", "reason": "assigned to the tea team"})
    assert r.status_code == 200 and r.json["status"] == "acknowledged"
    assert r.json["status_reason"] == "assigned to the tea team" and r.json["status_by"] == world.authority.principal.user_id
    r = client.post(f"/api/v1/clues/{clue_id}/status", headers=headers,
                    json={"status": "acknowledged", "reason": "again"})
    assert r.status_code == 409 and r.json["error"] == "no_change"
    r = client.post(f"/api/v1/clues/{clue_id}/status", headers=headers, json={"status": "referred", "reason": "x y"})
    assert r.status_code == 422
    r = client.post(f"/api/v1/clues/{clue_id}/status", headers=headers, json={"status": "dismissed"})
    assert r.status_code == 422
    listed = client.get("/api/v1/clues?status=acknowledged&kind=consumer_report", headers=headers).json
    assert listed["total"] == 1
    assert client.get("/api/v1/clues?status=open", headers=headers).json["total"] == 0


@pytest.mark.parametrize("who, status", [("producer", 403), ("printer", 403), ("anonymous", 401)])
def test_only_supervisors_see_the_queue(world, client, who, status):
    """Are producers, printers and anonymous callers refused the queue?"""
    headers = {"producer": world.producer.headers, "printer": world.printer.headers, "anonymous": {}}[who]
    assert client.get("/api/v1/clues", headers=headers).status_code == status


def test_queue_filters_are_validated(world, client):
    """Is an unknown filter value or parameter refused with a 4xx naming it?"""
    headers = world.authority.headers
    assert client.get("/api/v1/clues?alert_kind=aliens", headers=headers).status_code == 422
    assert client.get("/api/v1/clues?colour=red", headers=headers).status_code == 400
    assert client.get("/api/v1/clues/99999", headers=headers).status_code == 404
    r = client.get("/api/v1/clues?adcode=999999", headers=headers)
    assert r.status_code == 422 and r.json["error"] == "unknown_adcode"


def test_the_reporters_name_and_phone_are_stored_encrypted_and_shown_to_the_inspectors(world, client, session,
                                                                                         guangzhou):
    """May a consumer leave a name and phone to be called back; are they encrypted in the database, shown to the
    inspectors of the clue, and is a phone number that is none refused?"""
    from sqlalchemy import text

    b = world.batch(5)
    world.activate(b, 1, 5)
    token = checked(client, b.code(2))
    r = client.post(f"/v/{b.code(2)}/report", headers=JSON, content_type="multipart/form-data",
                    data=form(token, reporter_phone="call me maybe"))
    assert r.status_code == 422 and r.json["details"][0]["field"] == "reporter_phone"
    r = client.post(f"/v/{b.code(2)}/report", headers=JSON, content_type="multipart/form-data",
                    data=form(token, reporter_name="陈小姐", reporter_phone="+86 139-1234-5678",
                              lat=str(GUANGZHOU_SHOP[0]), lon=str(GUANGZHOU_SHOP[1])))
    assert r.status_code == 201, r.json
    raw = session.execute(text("SELECT reporter_name, reporter_phone FROM consumer_reports")).one()
    assert all(v.startswith("gienc:1:") for v in raw) and "5678" not in raw[1] and "陈" not in raw[0]
    _authority, inspection = guangzhou
    report = client.get(f"/api/v1/clues/{r.json['id']}", headers=inspection.headers).json["report"]
    assert (report["reporter_name"], report["reporter_phone"]) == ("陈小姐", "+86 139-1234-5678")

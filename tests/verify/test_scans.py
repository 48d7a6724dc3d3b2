"""The scan log: one row per check with no raw IP, per-serial counters upserted with it on both backends,
and a location only when the consumer shares it — rounded, with its county, once, with a valid token.
"""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from gi_service.models import MarkCheck, Scan, UAClass, Verdict
from gi_service.services import scans

from .conftest import forged

JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
WECHAT = PHONE + " MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"


def rows(session, model):
    session.commit()  # a fresh snapshot: the test's session may have read before the requests wrote
    out = list(session.scalars(select(model).order_by(*model.__table__.primary_key.columns)))
    session.commit()
    return out


def test_a_check_logs_one_row_without_the_ip(world, client, session):
    """Does one check write one scan row (time, verdict, serial, MAC ok, UA class) whose IP is only a keyed hash?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    env = {"REMOTE_ADDR": "203.0.113.77"}
    client.get(f"/v/{b.code(1)}", headers={"User-Agent": PHONE}, environ_base=env)
    client.get(f"/v/{forged(b.code(1))}", headers={"User-Agent": WECHAT}, environ_base=env)
    client.get("/v/nonsense", environ_base=env)
    first, fake, malformed = rows(session, Scan)
    assert (first.verdict, first.series, first.seq, first.mac_ok, first.ua_class) == \
        (Verdict.genuine, "BBSH26", 1, True, UAClass.mobile)
    assert first.at is not None and first.lat is None and first.adcode is None
    assert (fake.verdict, fake.mac_ok, fake.ua_class, fake.seq) == (Verdict.unknown, False, UAClass.in_app, 1)
    assert (malformed.verdict, malformed.series, malformed.seq) == (Verdict.malformed, None, None)
    assert first.ip_hash == fake.ip_hash == malformed.ip_hash and len(first.ip_hash) == 32
    for scan in (first, fake, malformed):
        assert "203.0.113.77" not in repr({c.name: getattr(scan, c.name) for c in Scan.__table__.columns})
    [counter] = rows(session, MarkCheck)        # the forged and malformed checks count for no serial
    assert (counter.series, counter.seq, counter.count, counter.first_scan_id) == ("BBSH26", 1, 1, first.id)


def test_ip_hash_is_keyed_and_rotates_daily():
    """Is the IP hash stable within a China day, different the next day, and different under another secret?"""
    cst = dt.timezone(dt.timedelta(hours=8))
    morning = dt.datetime(2026, 5, 1, 0, 30, tzinfo=cst)
    evening = dt.datetime(2026, 5, 1, 23, 30, tzinfo=cst)
    tomorrow = dt.datetime(2026, 5, 2, 0, 30, tzinfo=cst)
    h = scans.ip_hash("secret-a", "198.51.100.1", morning)
    assert h == scans.ip_hash("secret-a", "198.51.100.1", evening.astimezone(dt.timezone.utc))
    assert h != scans.ip_hash("secret-a", "198.51.100.1", tomorrow)
    assert h != scans.ip_hash("secret-b", "198.51.100.1", morning)
    assert h != scans.ip_hash("secret-a", "198.51.100.2", morning)
    assert scans.ip_hash("secret-a", None, morning) is None


@pytest.mark.parametrize("ua, expected", [
    (PHONE, UAClass.mobile), (WECHAT, UAClass.in_app),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124 Mobile Safari/537.36", UAClass.mobile),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124 Safari/537.36", UAClass.desktop),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", UAClass.bot),
    ("facebookexternalhit/1.1", UAClass.bot), ("curl/8.5.0", UAClass.bot), ("python-requests/2.31", UAClass.bot),
    ("", UAClass.other), (None, UAClass.other),
])
def test_user_agent_classes(ua, expected):
    """Is a User-Agent reduced to the right coarse class?"""
    assert scans.ua_class(ua) == expected


def test_checks_are_counted_with_the_first_date(world, client):
    """Does each check of a real mark raise its count, keeping the first check's date, on the page and in JSON?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    for n in range(1, 4):
        doc = client.get(f"/v/{b.code(5)}", headers=JSON).json
        assert doc["checks"]["count"] == n
    html = client.get(f"/v/{b.code(5)}").get_data(as_text=True)
    assert f"该码已被查询 4 次，首次查询于 {doc['checks']['first_date']}。" in html
    assert "多次查询可能意味着标签被复制" in html
    en = client.get(f"/v/{b.code(5)}?lang=en").get_data(as_text=True)
    assert "This code has been checked 5 times, first on " in en
    assert client.get(f"/v/{b.code(6)}", headers=JSON).json["checks"]["count"] == 1  # per serial


def test_bots_are_logged_but_not_counted(world, client, session):
    """Is a link-preview bot's fetch logged (ua_class bot) without raising the consumer-facing count?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    client.get(f"/v/{b.code(1)}", headers={"User-Agent": PHONE})
    doc = client.get(f"/v/{b.code(1)}", headers={"User-Agent": "facebookexternalhit/1.1", **JSON}).json
    assert doc["checks"]["count"] == 1
    assert [s.ua_class for s in rows(session, Scan)] == [UAClass.mobile, UAClass.bot]


def test_concurrent_checks_are_all_counted(world, app):
    """Do 40 checks of one code from 8 threads at once make 40 scan rows and a count of exactly 40?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    code, failures = b.code(1), []

    def worker():
        client = app.test_client()
        for _ in range(5):
            r = client.get(f"/v/{code}", headers=JSON)
            if r.status_code != 200:
                failures.append((r.status_code, r.get_data(as_text=True)[:200]))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    session = world.factory.session
    assert session.scalar(select(func.count()).select_from(Scan)) == 40
    assert session.scalar(select(MarkCheck.count)) == 40
    session.commit()


def _share(client, code: str, token: str, lat: float, lon: float):
    return client.post(f"/v/{code}/location", json={"token": token, "lat": lat, "lon": lon})


def test_shared_location_is_rounded_with_its_county_and_names_the_first_city(world, client, session, factory):
    """Is a shared location stored rounded to 0.01° with its county, and shown as the first check's city?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    p = factory.inside_point(world.gi)                   # inside 谯城区 (341602), 亳州市
    doc = client.get(f"/v/{b.code(1)}", headers=JSON).json
    r = _share(client, b.code(1), doc["scan"]["token"], p.y + 0.0012345, p.x - 0.0012345)
    assert r.status_code == 200, r.json
    assert (r.json["lat"], r.json["lon"]) == (round(p.y + 0.0012345, 2), round(p.x - 0.0012345, 2))
    assert r.json["adcode"] == "341602" and r.json["place"]["city_name"] == "亳州市"
    [scan] = rows(session, Scan)
    assert (scan.lat, scan.lon, scan.adcode) == (r.json["lat"], r.json["lon"], "341602") and scan.located_at
    [counter] = rows(session, MarkCheck)
    assert (counter.first_adcode, counter.last_adcode) == ("341602", "341602")
    html = client.get(f"/v/{b.code(1)}").get_data(as_text=True)
    assert "首次查询于" in html and "地点：亳州市" in html
    assert "in 亳州市" in client.get(f"/v/{b.code(1)}?lang=en").get_data(as_text=True)


def test_a_later_location_does_not_move_the_first_city(world, client, session, factory):
    """When the first checker shared nothing, is a later location only the last place, not the first?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    client.get(f"/v/{b.code(1)}", headers=JSON)
    token = client.get(f"/v/{b.code(1)}", headers=JSON).json["scan"]["token"]
    assert _share(client, b.code(1), token, 30.25, 120.15).status_code == 200      # 杭州
    [counter] = rows(session, MarkCheck)
    assert counter.first_adcode is None and counter.last_adcode == "330106"
    doc = client.get(f"/v/{b.code(1)}", headers=JSON).json
    assert doc["checks"]["first_place"] is None and doc["checks"]["last_place"]["city_name"] == "杭州市"


def test_location_is_refused_without_a_valid_token_or_twice(world, client, session):
    """Is a location refused for a wrong, foreign or forged-expiry token (403), twice (409) or off the globe (422)?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    token = client.get(f"/v/{b.code(1)}", headers=JSON).json["scan"]["token"]
    other = client.get(f"/v/{b.code(2)}", headers=JSON).json["scan"]["token"]
    scan_id, expires, mac = token.split(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (f"{scan_id}.{expires}.{flipped}", f"{int(scan_id) + 1}.{expires}.{mac}",
                f"{scan_id}.{int(expires) + 3600}.{mac}", other, "garbage"):
        r = _share(client, b.code(1), bad, 33.8, 115.8)
        assert (r.status_code, r.json["error"]) == (403, "invalid_scan_token"), bad
    r = _share(client, b.code(1), token, 95, 115.8)
    assert (r.status_code, r.json["error"]) == (422, "validation_failed")
    assert _share(client, b.code(1), token, 33.8, 115.8).status_code == 200
    r = _share(client, b.code(1), token, 33.9, 115.9)
    assert (r.status_code, r.json["error"]) == (409, "already_located")
    assert [(s.lat, s.lon) for s in rows(session, Scan)] == [(33.8, 115.8), (None, None)]


def test_scan_token_expires(world):
    """Does a scan token stop working an hour after its check?"""
    scan = Scan(id=7, at=dt.datetime(2026, 5, 1, 8, tzinfo=dt.timezone.utc))
    token = scans.scan_token("s", scan, "CODE")
    assert scans.read_scan_token("s", token, "CODE", now=scan.at + dt.timedelta(minutes=59)) == 7
    with pytest.raises(Exception) as exc:
        scans.read_scan_token("s", token, "CODE", now=scan.at + dt.timedelta(minutes=61))
    assert getattr(exc.value, "code", None) == "invalid_scan_token"


def test_a_forged_code_may_be_located_but_counts_for_no_serial(world, client, session):
    """Can the place where a forged code was seen be shared (useful to inspectors) without creating counters?"""
    b = world.batch(10)
    fake = forged(b.code(1))
    r = client.get(f"/v/{fake}", headers=JSON)
    assert r.status_code == 404
    assert _share(client, fake, r.json["scan"]["token"], 33.85, 115.78).status_code == 200
    assert rows(session, MarkCheck) == []
    [scan] = rows(session, Scan)
    assert (scan.verdict, scan.adcode) == (Verdict.unknown, "341602")


def test_the_page_offers_location_sharing_only_by_a_button(world, client):
    """Does the page ask for the location only behind a button (browser geolocation), posting to its own site?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    html = client.get(f"/v/{b.code(1)}").get_data(as_text=True)
    assert '<button id="share"' in html and "navigator.geolocation.getCurrentPosition" in html
    script = html[html.index("<script nonce="):]
    assert script.index("b.onclick") < script.index("getCurrentPosition")       # nothing asked on load
    assert f'"/v/{b.code(1)}/location"' in script and "Math.round(v*100)/100" in script

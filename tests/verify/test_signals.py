"""Copied-label signals: each signal raises one alert, routed to the right queues, and the page warns."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select

import gi_service.clock as service_clock
from gi_service.models import Clue, MarkCheck, Scan
from gi_service.services import signals

from .conftest import forged

JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1)"

HANGZHOU = (30.26, 120.13)     # 330106 西湖区
BEIJING = (39.93, 116.42)      # 110101 东城区
GUANGZHOU = (23.13, 113.33)    # 440106 天河区
NINGBO = (29.87, 121.55)       # 浙江宁波


class Clock:
    """Scan times under test control (scans and tokens read the service clock, `gi_service.clock.now`)."""

    def __init__(self, monkeypatch, start: dt.datetime):
        self.now = start
        monkeypatch.setattr(service_clock, "now", lambda: self.now)

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.timezone.utc))


def settings_with(app, **changes):
    app.config["GI_SETTINGS"] = dataclasses.replace(app.config["GI_SETTINGS"], **changes)


def check(client, code: str, *, ip: str = "198.51.100.1", ua: str = PHONE):
    return client.get(f"/v/{code}", headers={"User-Agent": ua, **JSON}, environ_base={"REMOTE_ADDR": ip})


def check_at(client, code: str, where: tuple[float, float], **kw) -> dict:
    """Check a code and share the location, as a consumer pressing the button would."""
    r = check(client, code, **kw)
    body = r.json
    loc = client.post(f"/v/{code}/location", headers=JSON,
                      json={"token": body["scan"]["token"], "lat": where[0], "lon": where[1]})
    assert loc.status_code == 200, loc.json
    return loc.json


def alerts(session, kind: str | None = None) -> list[Clue]:
    session.rollback()  # a fresh snapshot: the app committed in other connections
    stmt = select(Clue).where(Clue.kind == "alert")
    if kind:
        stmt = stmt.where(Clue.alert_kind == kind)
    return list(session.scalars(stmt.order_by(Clue.id)))


def place_codes(clue: Clue) -> set[tuple[str, str]]:
    return {(p.role.value, p.adcode) for p in clue.places}


def set_threshold(world, client, n: int | None):
    r = client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                     json={"check_alert_threshold": n, "reason": "copied-label threshold for tea packs"})
    assert r.status_code == 200, r.json


# --- too many checks ----------------------------------------------------------------------------

def test_too_many_checks_raise_one_alert_and_the_page_warns(world, client, session):
    """Does the GI's threshold of checks raise exactly one alert (repeats counted) and a page warning?"""
    set_threshold(world, client, 3)
    b = world.batch(10)
    world.activate(b, 1, 10)
    for _ in range(2):
        assert "suspect" not in check(client, b.code(1)).json
    doc = check(client, b.code(1)).json
    assert doc["verdict"] == "genuine" and doc["checks"]["count"] == 3
    assert doc["suspect"]["reasons"] == ["too_many_checks"]
    assert doc["suspect"]["title"]["zh"].startswith("注意")
    check(client, b.code(1))
    [alert] = alerts(session)
    assert alert.alert_kind.value == "too_many_checks" and alert.occurrences == 2
    assert alert.details["count"] == 4 and alert.details["threshold"] == 3
    assert alert.gi_id == world.gi.id and alert.producer_id == world.producer.org.id
    assert place_codes(alert) == {("producer_place", "341602")}
    page = client.get(f"/v/{b.code(1)}").get_data(as_text=True)
    assert "此标签可能被复制" in page and "查询次数异常多" in page
    # Another mark of the same batch is not suspect.
    assert "suspect" not in check(client, b.code(2)).json


def test_the_default_threshold_applies_without_a_gi_setting(world, client, session, app):
    """Without a GI threshold, is GI_CHECK_ALERT_THRESHOLD used?"""
    settings_with(app, check_alert_threshold=4)
    b = world.batch(5)
    world.activate(b, 1, 5)
    for _ in range(3):
        check(client, b.code(1))
    assert alerts(session) == []
    check(client, b.code(1))
    assert [a.alert_kind.value for a in alerts(session)] == ["too_many_checks"]


def test_bots_do_not_make_a_code_suspect(world, client, session):
    """Do link-preview fetches neither count towards the threshold nor raise an alert?"""
    set_threshold(world, client, 2)
    b = world.batch(5)
    world.activate(b, 1, 5)
    for _ in range(5):
        check(client, b.code(1), ua=BOT)
    assert alerts(session) == []
    check(client, b.code(1))
    assert alerts(session) == []


# --- impossible travel ---------------------------------------------------------------------------

def test_impossible_travel_between_two_located_checks(world, client, session, clock):
    """Hangzhou then Beijing (1,100 km) 30 minutes apart: is it an alert routed to both places and the producer?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    first = check_at(client, b.code(1), HANGZHOU)
    assert first["suspect"] is False
    clock.advance(minutes=30)
    second = check_at(client, b.code(1), BEIJING)
    assert second["suspect"] is True
    [alert] = alerts(session, "impossible_travel")
    assert alert.details["km"] > 1000 and alert.details["kmh"] > 2000
    assert {c["place"] for c in alert.details["checks"]} == {"杭州市", "北京市"}
    assert place_codes(alert) == {("scan_place", "330106"), ("scan_place", "110101"), ("producer_place", "341602")}
    session.rollback()
    row = session.get(MarkCheck, (b.data["first_serial"][:6], alert.seq))
    assert row.suspect_reasons == "impossible_travel"
    assert check(client, b.code(1)).json["suspect"]["reasons"] == ["impossible_travel"]


@pytest.mark.parametrize("gap, where, flagged", [
    (dict(days=1), BEIJING, False),          # a day for 1,100 km: a parcel does that
    (dict(minutes=1), (30.30, 120.16), False),  # 5 km apart: location noise, not travel
    (dict(hours=2), NINGBO, False),           # 150 km in 2 hours: a car
    (dict(minutes=20), NINGBO, True),         # 150 km in 20 minutes: 450 km/h, over the lowered limit
])
def test_travel_that_a_pack_can_make_is_not_flagged(world, client, session, clock, app, gap, where, flagged):
    """Are plausible journeys (and nearby checks within location noise) left alone, and only impossible ones
    flagged? (With GI_TRAVEL_MAX_KMH lowered to 400 for the last case, 450 km/h is impossible.)"""
    settings_with(app, travel_max_kmh=400)
    b = world.batch(5)
    world.activate(b, 1, 5)
    check_at(client, b.code(1), HANGZHOU)
    clock.advance(**gap)
    check_at(client, b.code(1), where)
    assert bool(alerts(session, "impossible_travel")) is flagged


def test_a_late_shared_location_does_not_replace_a_newer_one(world, client, session, clock):
    """When an older check's location arrives after a newer check's, does 'latest place' stay the newer one?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    old = check(client, b.code(1)).json["scan"]["token"]
    clock.advance(minutes=30)
    check_at(client, b.code(1), BEIJING)
    r = client.post(f"/v/{b.code(1)}/location", headers=JSON, json={"token": old, "lat": HANGZHOU[0],
                                                                    "lon": HANGZHOU[1]})
    assert r.status_code == 200
    session.rollback()
    row = session.scalars(select(MarkCheck)).one()
    assert row.last_adcode == "110101" and row.first_adcode == "330106"


# --- sales regions ---------------------------------------------------------------------------------

def test_checks_outside_the_declared_sales_regions(world, client, session):
    """With Zhejiang as the only sales region: is Guangzhou an alert, Hangzhou not, and a GI without regions
    never?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    check_at(client, b.code(1), GUANGZHOU)
    assert alerts(session) == []                      # no regions declared: no signal
    r = client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                     json={"sales_adcodes": ["330000"], "reason": "sold through Zhejiang tea markets only"})
    assert r.status_code == 200 and r.json["sales_adcodes"] == ["330000"], r.json
    check_at(client, b.code(2), HANGZHOU)
    assert alerts(session) == []
    check_at(client, b.code(3), GUANGZHOU)
    [alert] = alerts(session, "outside_sales_regions")
    assert alert.details["km_outside"] > 500 and alert.details["sales_adcodes"] == ["330000"]
    assert place_codes(alert) == {("scan_place", "440106"), ("producer_place", "341602")}


def test_a_check_just_across_the_border_is_within_the_tolerance(world, client, session):
    """A check in Shanghai a few km from Zhejiang: outside the region but inside the tolerance — no alert?"""
    client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                 json={"sales_adcodes": ["330000"], "reason": "Zhejiang only"})
    jinshan = (30.73, 121.34)      # 上海市金山区, 7 km from 浙江平湖
    scan = Scan(lat=jinshan[0], lon=jinshan[1], adcode="310116")
    km = signals._outside_sales_regions(["330000"], scan, 0)
    assert km is not None and 0 < km < 50
    b = world.batch(5)
    world.activate(b, 1, 5)
    check_at(client, b.code(1), jinshan)
    assert alerts(session) == []


def test_unknown_sales_region_adcode_is_refused(world, client):
    """Is a sales region that is not a known division refused with a 422 naming the field?"""
    r = client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                     json={"sales_adcodes": ["999999"], "reason": "typo"})
    assert r.status_code == 422 and r.json["details"][0]["field"] == "sales_adcodes", r.json


# --- bursts of unknown codes ---------------------------------------------------------------------------

def test_a_burst_of_unknown_codes_from_one_client(world, client, session, app, clock):
    """Five forged codes from one address within ten minutes: one alert for the GI they claim; from five
    addresses, or spread over hours, none?"""
    settings_with(app, unknown_burst_count=5, unknown_burst_minutes=10)
    b = world.batch(20)
    world.activate(b, 1, 20)
    for n in range(1, 5):
        check(client, forged(b.code(n)), ip=f"198.51.100.{n}")     # five clients
        check(client, forged(b.code(n + 5)), ip="203.0.113.9")
        clock.advance(hours=1)                                       # one client, but slowly
    check(client, forged(b.code(10)), ip=f"198.51.100.{10}")
    assert alerts(session) == []
    for n in range(11, 16):
        check(client, forged(b.code(n)), ip="192.0.2.200")
        clock.advance(minutes=1)
    check(client, forged(b.code(16)), ip="192.0.2.200")
    [alert] = alerts(session, "unknown_burst")
    assert alert.occurrences == 2 and alert.details["count"] == 6
    assert alert.details["claimed_series"][0]["checks"] == 6
    assert alert.gi_id == world.gi.id and alert.producer_id is None
    assert place_codes(alert) == {("gi_authority", "341600")}
    assert "192.0.2.200" not in str(alert.details)


def test_concurrent_first_occurrences_make_one_alert(world, app, session):
    """Do racing first occurrences of one signal make one alert row with every occurrence counted?"""
    import threading

    from sqlalchemy.orm import Session

    from gi_service.models import AlertKind, PlaceRole

    engine = app.extensions["gi_engine"]
    errors = []
    at = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)

    def worker():
        try:
            with Session(engine) as s:
                if engine.dialect.name == "sqlite":
                    s.connection(execution_options={"gi_write": True})
                signals.raise_alert(s, AlertKind.unknown_burst, subject="race", at=at, summary="race",
                                    details={}, places=[(PlaceRole.gi_authority, "100000")])
                s.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [alert] = alerts(session)
    assert alert.occurrences == 6
    assert session.scalar(select(func.count()).select_from(Clue)) == 1

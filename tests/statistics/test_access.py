"""Who may read the statistics, of which region, and the refusals of bad requests."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from .conftest import API, cst

URLS = [f"{API}/statistics", f"{API}/statistics/charts/coverage.svg", f"{API}/statistics/map.svg"]


@pytest.fixture
def people(factory, clock, reused_world):
    """Supervisors in 亳州 and 广州, and a producer and a printer, on 1 July 2026.

    Made once per test process and database, then restored for each test (`reused_world`); every test's clock is
    set to that moment (the year in the future is judged by it)."""
    moment = cst(2026, 7, 1, 9, 0)

    def build():
        clock.set(moment)
        return SimpleNamespace(
            bozhou=factory.authority("341600"),
            qiaocheng=factory.authority("341602"),
            inspection=factory.inspection("341600"),
            guangzhou=factory.inspection("440100"),
            national=factory.authority("100000"),
            producer=factory.producer("341602"),
            printer=factory.printer(),
        )

    return reused_world("statistics-people", build, lambda _people: clock.set(moment))


def get(client, url: str, actor=None, **params):
    return client.get(url, headers=actor.headers if actor else {}, query_string=params)


@pytest.mark.parametrize("url", URLS)
def test_signed_out_callers_are_asked_to_sign_in(client, people, url):
    """Does every statistics endpoint answer 401 without a token?"""
    r = get(client, url, year=2026)
    assert r.status_code == 401 and r.json["error"] == "unauthenticated"


@pytest.mark.parametrize("url", URLS)
def test_producers_and_printers_are_refused(client, people, url):
    """Are producers and printers refused (403 wrong_role) on every statistics endpoint?"""
    for actor in (people.producer, people.printer):
        r = get(client, url, actor, year=2026)
        assert r.status_code == 403 and r.json["error"] == "wrong_role", r.json


@pytest.mark.parametrize("url", URLS)
def test_supervisors_read_their_jurisdiction_and_nothing_outside(client, people, url):
    """May authorities and inspection units read their own jurisdiction and divisions inside it, and are they
    refused (403 outside_jurisdiction) outside it, while the national authority reads any division?"""
    for actor, inside in ((people.bozhou, "341621"), (people.inspection, "341602"), (people.qiaocheng, "341602"),
                          (people.guangzhou, "440106"), (people.national, "440106")):
        assert get(client, url, actor, year=2026).status_code == 200
        assert get(client, url, actor, year=2026, adcode=inside).status_code == 200
    for actor, outside in ((people.bozhou, "440100"), (people.qiaocheng, "341621"), (people.qiaocheng, "341600"),
                           (people.guangzhou, "341602"), (people.inspection, "340000")):
        r = get(client, url, actor, year=2026, adcode=outside)
        assert r.status_code == 403 and r.json["error"] == "outside_jurisdiction", (actor.org.adcode, outside)


def test_a_county_sees_its_county_and_a_province_sees_both(world, client):
    """Does the county authority of 谯城区 see only its county's figures, and 安徽's provincial authority the sum of
    both counties (亳州's figures)?"""
    county = world.stats(world.qiaocheng, year=2026)
    assert county["scope"]["region"]["adcode"] == "341602"
    split = {g["key"]["region"]["adcode"]: g["figures"]
             for g in world.stats(world.authority, year=2026, group_by="region")["groups"]}
    assert county["total"] == split["341602"]
    assert county["total"]["checks"]["total"] == 8 and county["total"]["findings"]["total"] == 1
    # A county has nothing below it: group_by=region gives the county itself.
    groups = world.stats(world.qiaocheng, year=2026, group_by="region")["groups"]
    assert len(groups) == 1 and groups[0]["key"]["direct"] is True and groups[0]["figures"] == county["total"]

    province = world.stats(world.anhui, year=2026, group_by="region")
    bozhou = world.stats(world.authority, year=2026)["total"]
    assert province["total"] == bozhou
    cities = {g["key"]["region"]["adcode"]: g["figures"] for g in province["groups"]}
    assert cities["341600"] == bozhou and cities["340100"]["checks"]["total"] == 0
    # 广东 sees the shop in 广州 and its case, none of 亳州's figures.
    guangdong = world.stats(world.guangdong, year=2026)["total"]
    assert guangdong["findings"]["total"] == 1 and guangdong["cases"]["referred"] == 1
    assert guangdong["checks"]["total"] == 0 and guangdong["coverage"]["eligible"] == 0


@pytest.mark.parametrize("params, status, code", [
    ({}, 422, "year_required"),
    ({"from_year": 2025}, 422, "year_required"),
    ({"year": 2026, "from_year": 2025, "to_year": 2026}, 422, "period_conflict"),
    ({"from_year": 2026, "to_year": 2025}, 422, "period_reversed"),
    ({"from_year": 2000, "to_year": 2026}, 422, "period_too_long"),
    ({"year": 2027}, 422, "year_in_future"),
    ({"year": 1999}, 422, "validation_failed"),
    ({"year": "last"}, 422, "validation_failed"),
    ({"year": 2026, "adcode": "999999"}, 422, "unknown_adcode"),
    ({"year": 2026, "adcode": "3416"}, 422, "validation_failed"),
    ({"year": 2026, "gi_id": 999}, 422, "gi_not_found"),
    ({"year": 2026, "group_by": "producer"}, 422, "validation_failed"),
    ({"year": 2026, "format": "ods"}, 422, "validation_failed"),      # json, csv and xlsx only
    ({"year": 2026, "region": "341600"}, 400, "unknown_parameter"),
])
def test_bad_requests_say_what_to_fix(client, people, params, status, code):
    """Is each malformed or impossible request refused with its stable code and a message naming the field?"""
    r = get(client, f"{API}/statistics", people.bozhou, **params)
    assert r.status_code == status and r.json["error"] == code, r.json
    assert r.json["message"]
    if status == 422 and code != "validation_failed":
        assert r.json["details"][0]["field"] in ("year", "from_year", "to_year", "adcode", "gi_id")


def test_chart_and_map_refusals(client, people):
    """Are an unknown chart (404, listing the charts), a monthly chart over several years and an unknown map layer
    (422) refused?"""
    r = get(client, f"{API}/statistics/charts/pie.svg", people.bozhou, year=2026)
    assert r.status_code == 404 and r.json["error"] == "chart_not_found"
    assert "coverage" in r.json["details"]["charts"]
    r = get(client, f"{API}/statistics/charts/marks-by-month.svg", people.bozhou, from_year=2025, to_year=2026)
    assert r.status_code == 422 and r.json["error"] == "single_year_required"
    r = get(client, f"{API}/statistics/map.svg", people.bozhou, year=2026, layers="findings,heat")
    assert r.status_code == 422 and r.json["error"] == "unknown_layer" and "heat" in r.json["message"]

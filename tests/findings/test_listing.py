"""Reading findings: who sees which (place found, producer's place, GI authority), filters, paging."""
from __future__ import annotations

import datetime as dt

import pytest

from .conftest import API, CST, DONGCHENG, body

DAY = 24


def file_three(fw) -> dict:
    """F1: Tianhe, 3 days ago, genuine codes of the 亳州 producer (producer derived), a retail shop.
    F2: Tianhe, 1 day ago, a look-alike at a wholesale market, GI named, no producer.
    F3: filed from Beijing 1 hour ago about a web shop, GI named, no producer."""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    f1 = fw.file(body("f1", hours_ago=3 * DAY, codes=[b.code(1), b.code(2)], violations=["unauthorized_use"])).json
    f2 = fw.file(body("f2", hours_ago=DAY, gi_id=fw.gi.id, violations=["look_alike"],
                      premises={"name": "江南果菜批发市场", "kind": "wholesale"})).json
    f3 = fw.file(body("f3", point=DONGCHENG, gi_id=fw.gi.id, violations=["look_alike", "mark_without_uscc"],
                      premises={"name": "某网店", "kind": "e_commerce", "url": "https://shop.example/1"}),
                 by=fw.places.beijing).json
    assert f1["producer"]["id"] == fw.producer.org.id and f2["producer"] is None
    return {"f1": f1["id"], "f2": f2["id"], "f3": f3["id"]}


@pytest.fixture
def three(filed) -> dict:
    """`file_three`, filed once per test process, database and day, then restored. Their times are counted back
    from the moment they were filed, and test_filters names F1's day (3 days before its own now, in China): a
    world whose F1 fell on another day is not reused (its key holds that day); hours apart are far from the
    filters' margins (a day)."""
    f1_day = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3 * DAY)).astimezone(CST).date()
    return filed(f"three-{f1_day.isoformat()}", file_three)


def names(client, actor, three, **query) -> list[str]:
    r = client.get(f"{API}/findings", headers=actor.headers, query_string=query)
    assert r.status_code == 200, r.json
    by_id = {v: k for k, v in three.items()}
    return [by_id[item["id"]] for item in r.json["items"]]


def test_who_sees_which_finding(fw, client, three):
    """Does each supervisor see exactly the findings found in, naming a producer of, or about a GI registered in
    its jurisdiction (and its own), newest first?"""
    p = fw.places
    expected = {
        "tianhe (found there, filed them)": (p.tianhe, ["f2", "f1"]),
        "guangzhou (found in its city)": (p.guangzhou, ["f2", "f1"]),
        "bozhou authority (producer's city, the GI's authority)": (fw.authority, ["f3", "f2", "f1"]),
        "qiaocheng (the producer's county only)": (p.qiaocheng, ["f1"]),
        "beijing (filed it)": (p.beijing, ["f3"]),
        "shanghai (nothing to do with it)": (p.shanghai, []),
        "national": (p.national, ["f3", "f2", "f1"]),
    }
    for label, (actor, want) in expected.items():
        assert names(client, actor, three) == want, label


def test_details_follow_the_same_rule(fw, client, three):
    """Is one finding served to those who see it and refused 403 to other supervisors, 403 to producers and
    printers, 401 to the public, and 404 when it does not exist?"""
    url = f"{API}/findings/{three['f1']}"
    for actor in (fw.places.tianhe, fw.places.qiaocheng, fw.authority):
        r = client.get(url, headers=actor.headers)
        assert r.status_code == 200 and len(r.json["codes"]) == 2
    for actor, code in ((fw.places.beijing, "outside_jurisdiction"), (fw.places.shanghai, "outside_jurisdiction"),
                        (fw.producer, "wrong_role"), (fw.printer, "wrong_role")):
        r = client.get(url, headers=actor.headers)
        assert (r.status_code, r.json["error"]) == (403, code)
    assert client.get(url).status_code == 401
    r = client.get(f"{API}/findings/{three['f3'] + 100}", headers=fw.places.national.headers)
    assert (r.status_code, r.json["error"]) == (404, "finding_not_found")
    for actor in (fw.producer, fw.printer):
        r = client.get(f"{API}/findings", headers=actor.headers)
        assert (r.status_code, r.json["error"]) == (403, "wrong_role")
    assert client.get(f"{API}/findings").status_code == 401


def test_filters(fw, client, three):
    """Do the filters (GI, producer, place subtree, violation kind, premises kind, filing organisation, observed
    from/to as dates or times) select the right findings on top of visibility?"""
    n = fw.places.national
    now = dt.datetime.now(dt.timezone.utc)
    f1_day = (now - dt.timedelta(hours=3 * DAY)).astimezone(CST).date().isoformat()
    assert names(client, n, three, gi_id=fw.gi.id) == ["f3", "f2", "f1"]
    assert names(client, n, three, gi_id=fw.gi.id + 1) == []
    assert names(client, n, three, producer_id=fw.producer.org.id) == ["f1"]
    assert names(client, n, three, adcode="440100") == ["f2", "f1"]
    assert names(client, n, three, adcode="440106") == ["f2", "f1"]
    assert names(client, n, three, adcode="110000") == ["f3"]
    assert names(client, n, three, adcode="100000") == ["f3", "f2", "f1"]
    assert names(client, n, three, violation="look_alike") == ["f3", "f2"]
    assert names(client, n, three, violation="mark_without_uscc") == ["f3"]
    assert names(client, n, three, violation="unauthorized_use") == ["f1"]
    assert names(client, n, three, violation="authorization_not_in_force") == []
    assert names(client, n, three, premises_kind="e_commerce") == ["f3"]
    assert names(client, n, three, premises_kind="wholesale") == ["f2"]
    assert names(client, n, three, organisation_id=fw.places.beijing.org.id) == ["f3"]
    two_days_ago = (now - dt.timedelta(hours=2 * DAY)).isoformat()
    assert names(client, n, three, observed_from=two_days_ago) == ["f3", "f2"]
    assert names(client, n, three, observed_to=two_days_ago) == ["f1"]
    assert names(client, n, three, observed_to=f1_day) == ["f1"]
    assert names(client, n, three, observed_from=f1_day, observed_to=f1_day) == ["f1"]
    assert names(client, fw.places.tianhe, three, violation="look_alike") == ["f2"]


def test_paging_and_list_items(fw, client, three):
    """Does paging keep newest-first order and the total, and does a list item summarise codes and photos instead
    of listing them?"""
    r = client.get(f"{API}/findings", headers=fw.authority.headers, query_string={"limit": 1, "offset": 1})
    assert r.json["total"] == 3 and [i["id"] for i in r.json["items"]] == [three["f2"]]
    item = client.get(f"{API}/findings", headers=fw.authority.headers,
                      query_string={"producer_id": fw.producer.org.id}).json["items"][0]
    assert "codes" not in item and item["codes_checked"] == 2 and item["verdicts"] == {"genuine": 2}
    assert item["photo_count"] == 0 and item["gi"] == {"id": fw.gi.id, "name": "亳白芍"}
    assert item["producer"]["name"] == fw.producer.org.name


@pytest.mark.parametrize("query, status, code", [
    ({"adcode": "999999"}, 422, "unknown_adcode"),
    ({"adcode": "4401"}, 422, "validation_failed"),
    ({"violation": "bad_taste"}, 422, "validation_failed"),
    ({"observed_from": "last week"}, 422, "validation_failed"),
    ({"observed_to": "2026-13-01"}, 422, "validation_failed"),
    ({"limit": 501}, 422, "validation_failed"),
    ({"offset": -1}, 422, "validation_failed"),
    ({"sort": "oldest"}, 400, "unknown_parameter"),
])
def test_bad_filters_are_refused(fw, client, query, status, code):
    """Is each malformed filter answered with a 4xx naming it?"""
    r = client.get(f"{API}/findings", headers=fw.places.tianhe.headers, query_string=query)
    assert (r.status_code, r.json["error"]) == (status, code), r.json


def test_the_place_of_a_producer_whose_label_was_checked_sees_it(fw, client, factory):
    """When the finding names another producer (a Hangzhou packer) but a genuine label of the 亳州 producer was
    checked in it, do the supervisors of both producers' places see it?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    packer = factory.producer("330106")
    hangzhou = factory.inspection("330100")
    f = fw.file(body("mixed", codes=[b.code(1)], producer_id=packer.org.id, violations=["unauthorized_use"])).json
    assert f["producer"]["id"] == packer.org.id and f["codes"][0]["producer_id"] == fw.producer.org.id
    for actor in (hangzhou, fw.places.qiaocheng):
        assert [i["id"] for i in client.get(f"{API}/findings", headers=actor.headers).json["items"]] == [f["id"]]
        assert client.get(f"{API}/findings/{f['id']}", headers=actor.headers).status_code == 200
    assert client.get(f"{API}/findings", headers=fw.places.shanghai.headers).json["items"] == []

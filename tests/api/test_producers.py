"""Producers, plots and authorizations through the API."""
from __future__ import annotations

import pytest
import shapely
from sqlalchemy import func, select

from gi_service.models import Plot
from tests.factories import square


def test_authority_registers_a_producer_with_a_validated_uscc(client, factory):
    """Does an authority register a producer whose USCC is checked and whose place comes from the code?"""
    a = factory.authority("341600")
    uscc = factory.uscc("341602", "3")
    r = client.post("/api/v1/producers", json={"name": "谯城区芍药合作社", "uscc": uscc}, headers=a.headers)
    assert r.status_code == 201, r.json
    assert r.json["uscc"] == uscc and r.json["adcode"] == "341602" and r.json["kind"] == "producer"
    bad = uscc[:-1] + ("0" if uscc[-1] != "0" else "1")
    r = client.post("/api/v1/producers", json={"name": "另一家", "uscc": bad}, headers=a.headers)
    assert r.status_code == 422 and r.json["error"] == "invalid_uscc" and r.json["details"]["position"] == 18
    public = client.get("/api/v1/producers?adcode=341600").json
    assert public["total"] == 1 and "contact" not in public["items"][0]


def test_plot_inside_the_area_is_stored_with_its_area_in_mu(client, factory):
    """Is a plot inside the GI's area stored with its geodesic area in mu, survey year and county?"""
    a = factory.authority("341600")
    gi = factory.gi(a)
    p = factory.producer("341602")
    c = factory.inside_point(gi)
    geometry = shapely.geometry.mapping(square(c.x, c.y, 100))
    r = client.post(f"/api/v1/producers/{p.org.id}/plots", headers=p.headers,
                    json={"gi_id": gi.id, "name": "东地块", "geometry": geometry, "survey_year": 2025})
    assert r.status_code == 201, r.json
    assert r.json["area_mu"] == pytest.approx(10000 / 666.67, rel=0.01)
    assert r.json["adcode"] == "341602" and r.json["survey_year"] == 2025
    listing = client.get(f"/api/v1/producers/{p.org.id}/plots", headers=p.headers).json
    assert listing["type"] == "FeatureCollection" and len(listing["features"]) == 1


def test_plot_outside_says_how_much_lies_outside(client, factory, session):
    """Is a plot reaching outside the area refused with the mu outside, and nothing stored?"""
    a = factory.authority("330100")
    gi = factory.gi(a, name_zh="西湖龙井", area_adcodes=["330106"])
    p = factory.producer("330106")
    area = client.get(f"/api/v1/gis/{gi.id}/area").json
    west = area["bbox"][0]
    ring = shapely.geometry.shape(area["geometry"])
    # A 200 m square centred on the area's westernmost vertex: roughly 3/4 of it lies outside.
    vertex = min(shapely.get_coordinates(ring), key=lambda xy: xy[0])
    assert vertex[0] == pytest.approx(west)
    geometry = shapely.geometry.mapping(square(vertex[0], vertex[1], 200))
    r = client.post(f"/api/v1/producers/{p.org.id}/plots", headers=p.headers,
                    json={"gi_id": gi.id, "name": "边界地块", "geometry": geometry, "survey_year": 2024})
    assert r.status_code == 422 and r.json["error"] == "plot_outside_area"
    assert 20 < r.json["details"]["outside_mu"] < 60      # the square is 60 mu
    assert "mu of the plot" in r.json["message"]
    assert session.scalar(select(func.count()).select_from(Plot)) == 0


def test_plot_update_rechecks_the_area_and_retire_hides_it(client, factory):
    """Is a moved plot re-checked against the area, and a retired plot no longer listed?"""
    a = factory.authority("341600")
    gi = factory.gi(a)
    p = factory.producer("341602")
    plot = factory.plot(p, gi)
    far = shapely.geometry.mapping(square(120.13, 30.25, 100))
    r = client.patch(f"/api/v1/plots/{plot.id}", json={"geometry": far}, headers=p.headers)
    assert r.status_code == 422 and r.json["error"] == "plot_outside_area"
    r = client.patch(f"/api/v1/plots/{plot.id}", json={"name": "改名", "survey_year": 2024}, headers=p.headers)
    assert r.status_code == 200 and r.json["name"] == "改名" and r.json["survey_year"] == 2024
    assert client.delete(f"/api/v1/plots/{plot.id}", headers=p.headers).status_code == 200
    assert client.get(f"/api/v1/plots/{plot.id}", headers=p.headers).status_code == 404
    assert client.get(f"/api/v1/producers/{p.org.id}/plots", headers=p.headers).json["features"] == []


def test_authorization_lifecycle_keeps_its_history(client, factory):
    """Does an authorization go pending -> approved -> suspended -> approved -> revoked, all recorded?"""
    a = factory.authority("341600")
    gi = factory.gi(a)
    p = factory.producer("341602")
    r = client.post("/api/v1/authorizations", headers=p.headers,
                    json={"producer_id": p.org.id, "gi_id": gi.id, "basis": "approved_producer"})
    assert r.status_code == 201 and r.json["status"] == "pending"
    auth_id = r.json["id"]
    steps = [("approved", "公告 2025 第 12 号", "2025-12"), ("suspended", "抽检不合格", None),
             ("approved", "整改完成", None), ("revoked", "严重违法", None)]
    for to, reason, number in steps:
        body = {"to": to, "reason": reason, **({"announcement_no": number} if number else {})}
        r = client.post(f"/api/v1/authorizations/{auth_id}/transitions", json=body, headers=a.headers)
        assert r.status_code == 200, r.json
        assert r.json["status"] == to
    history = client.get(f"/api/v1/authorizations/{auth_id}").json["history"]
    assert [(h["from"], h["to"]) for h in history] == [
        (None, "pending"), ("pending", "approved"), ("approved", "suspended"), ("suspended", "approved"),
        ("approved", "revoked")]
    assert history[1]["announcement_no"] == "2025-12"
    r = client.post(f"/api/v1/authorizations/{auth_id}/transitions", json={"to": "approved", "reason": "again"},
                    headers=a.headers)
    assert r.status_code == 409 and r.json["error"] == "invalid_transition"


def test_approval_needs_an_announcement_number_and_the_right_basis(client, factory):
    """Is an approval without announcement number, or with a basis that does not fit the GI's kind, refused?"""
    a = factory.authority("341600")
    gi = factory.gi(a)
    p = factory.producer("341602")
    r = client.post("/api/v1/authorizations", headers=a.headers,
                    json={"producer_id": p.org.id, "gi_id": gi.id, "basis": "collective_member"})
    assert r.status_code == 422 and r.json["error"] == "wrong_basis"
    r = client.post("/api/v1/authorizations", headers=a.headers,
                    json={"producer_id": p.org.id, "gi_id": gi.id, "basis": "approved_producer", "approve": True})
    assert r.status_code == 422 and "announcement" in r.json["message"]
    r = client.post("/api/v1/authorizations", headers=a.headers,
                    json={"producer_id": p.org.id, "gi_id": gi.id, "basis": "approved_producer", "approve": True,
                          "announcement_no": "2025-1"})
    assert r.status_code == 201 and r.json["status"] == "approved" and r.json["valid_from"]
    r = client.post("/api/v1/authorizations", headers=p.headers,
                    json={"producer_id": p.org.id, "gi_id": gi.id, "basis": "approved_producer"})
    assert r.status_code == 409 and r.json["error"] == "duplicate_authorization"


def test_jurisdiction_lookup_single_and_batch(client):
    """Does the API name county, city and province for points, and nothing for a point at sea?"""
    r = client.get("/api/v1/jurisdiction?lon=120.13&lat=30.25").json
    assert (r["county"]["adcode"], r["city"]["adcode"], r["province"]["adcode"]) == ("330106", "330100", "330000")
    r = client.post("/api/v1/jurisdiction", json={"points": [[115.78, 33.85], [127.15, 44.92], [125.0, 25.0]]})
    counties = [x["county"]["adcode"] if x["county"] else None for x in r.json["results"]]
    assert counties == ["341602", "230184", None]
    assert client.get("/api/v1/admin-units/341602").json["ancestors"][0]["adcode"] == "341600"


def test_jurisdiction_of_special_units(client):
    """Do cities without counties (Dongguan) and province-administered counties (Xiantao) get all three tiers?"""
    r = client.post("/api/v1/jurisdiction", json={"points": [[113.75, 23.02], [113.45, 30.36]]}).json["results"]
    dongguan, xiantao = r
    assert dongguan["county"]["adcode"] == "441900" and dongguan["city"]["adcode"] == "441900"
    assert dongguan["province"]["adcode"] == "440000"
    assert xiantao["county"]["adcode"] == "429004" and xiantao["city"] is not None
    assert xiantao["province"]["adcode"] == "420000"

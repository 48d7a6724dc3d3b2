"""OGC API - Features for production areas, read by the test client and by GDAL itself."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import geopandas as gpd
import pyogrio
import pytest
import shapely

from tests.conftest import CACHE_DIR

OGC_CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"


@pytest.fixture
def three_gis(factory):
    bozhou, hangzhou, harbin = factory.authority("341600"), factory.authority("330100"), factory.authority("230100")
    return [factory.gi(bozhou), factory.gi(hangzhou, name_zh="西湖龙井", area_adcodes=["330106"]),
            factory.gi(harbin, name_zh="五常大米", area_adcodes=["230184"])]


@pytest.fixture
def live_server(app, database, tmp_path):
    """The service in its own process (GDAL holds the GIL while it reads, so not a thread)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path / "live"),
           "GI_CACHE_DIR": str(CACHE_DIR), "GI_PORT": str(port), "GI_ENV": "test"}
    proc = subprocess.Popen([sys.executable, "-m", "gi_service.cli", "serve", "--threads", "4"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("live server did not start: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


def test_landing_conformance_and_collections(client, three_gis):
    """Do the landing page, conformance and collection documents link together as OGC API requires?"""
    landing = client.get("/?f=json").json
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    assert OGC_CORE in client.get("/conformance").json["conformsTo"]
    coll = client.get("/collections").json["collections"]
    assert [c["id"] for c in coll] == ["origin-areas"]
    minx, miny, maxx, maxy = coll[0]["extent"]["spatial"]["bbox"][0]
    assert minx < 116 and maxx > 127 and miny < 30.3 and maxy > 44.5
    assert "text/html" in client.get("/", headers={"Accept": "text/html"}).content_type


def test_items_are_rfc7946_geojson_with_paging(client, three_gis):
    """Are items a FeatureCollection in WGS-84 with right-hand winding, bbox, counts and next/prev links?"""
    r = client.get("/collections/origin-areas/items?limit=2")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    page = r.json
    assert page["numberMatched"] == 3 and page["numberReturned"] == 2
    for feature in page["features"]:
        geom = shapely.geometry.shape(feature["geometry"])
        for polygon in geom.geoms:
            assert polygon.exterior.is_ccw
            assert all(not hole.is_ccw for hole in polygon.interiors)
        assert len(feature["bbox"]) == 4
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    page2 = client.get(nxt).json
    assert page2["numberReturned"] == 1 and not any(link["rel"] == "next" for link in page2["links"])
    assert any(link["rel"] == "prev" for link in page2["links"])
    ids = [f["id"] for f in page["features"] + page2["features"]]
    assert sorted(ids) == sorted(g.id for g in three_gis)


def test_bbox_filter_and_single_item(client, three_gis):
    """Does bbox= keep only intersecting areas, and does /items/{id} return one Feature?"""
    around_hangzhou = "119.9,30.0,120.3,30.4"
    page = client.get(f"/collections/origin-areas/items?bbox={around_hangzhou}").json
    assert [f["properties"]["name_zh"] for f in page["features"]] == ["西湖龙井"]
    empty = client.get("/collections/origin-areas/items?bbox=0,0,1,1").json
    assert empty["numberMatched"] == 0 and empty["features"] == []
    item = client.get(f"/collections/origin-areas/items/{three_gis[2].id}")
    assert item.status_code == 200 and item.json["properties"]["name_zh"] == "五常大米"
    assert item.json["properties"]["area_km2"] > 7000
    assert client.get("/collections/origin-areas/items/999999").status_code == 404
    assert client.get("/collections/nope/items").status_code == 404


def test_gdal_reads_the_collection_over_http(live_server, three_gis):
    """Can GDAL's OAPIF driver and geopandas read the production areas straight from the service?"""
    layers = pyogrio.list_layers(f"OAPIF:{live_server}")
    assert [name for name, _ in layers] == ["origin-areas"]
    frame = gpd.read_file(f"OAPIF:{live_server}", layer="origin-areas")
    assert sorted(frame["name_zh"]) == ["五常大米", "亳白芍", "西湖龙井"]
    assert frame.crs.to_epsg() == 4326
    direct = gpd.read_file(f"{live_server}/collections/origin-areas/items?limit=100")
    assert len(direct) == 3 and direct.geometry.is_valid.all()


def test_landing_page_names_the_api_description_as_openapi_3_1(client):
    """Does the landing page's service-desc link give the media type of the OpenAPI version /openapi.json is
    (3.1, it said 3.0)?"""
    links = client.get("/?f=json").get_json()["links"]
    desc = next(link for link in links if link["rel"] == "service-desc")
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.1"
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.1")


@pytest.mark.parametrize("url", ["/collections/origin-areas/items?f=html", "/collections/origin-areas?f=html",
                                 "/collections?f=html", "/conformance?f=html"])
def test_html_format_is_not_offered_beyond_the_landing_page(client, url):
    """Is f=html on a resource without an HTML view answered 406 not_acceptable (JSON), not with GeoJSON?"""
    resp = client.get(url)
    assert resp.status_code == 406 and resp.get_json()["error"] == "not_acceptable"
    assert client.get("/?f=html").mimetype == "text/html"


def test_bbox_crossing_the_antimeridian_is_two_boxes(client, three_gis):
    """Does a bbox with minLon > maxLon (crossing the antimeridian, as OGC API - Features allows) select the
    areas on either side of it, where it was refused before?"""
    resp = client.get("/collections/origin-areas/items?bbox=118,25,-170,50")   # 118°E eastwards round to 170°W
    assert resp.status_code == 200, resp.get_json()
    ids = {f["id"] for f in resp.get_json()["features"]}
    assert ids == {three_gis[1].id, three_gis[2].id}      # Hangzhou and Wuchang, not Bozhou (115.8°E)
    resp = client.get("/collections/origin-areas/items?bbox=179,-10,-179,10")
    assert resp.status_code == 200 and resp.get_json()["features"] == []


def test_ogc_errors_are_json_for_clients_that_do_not_ask_for_html(client):
    """Is a 404 on an OGC path (a feature id beyond 32 bits) JSON for a client sending Accept: */*, as the API
    description says, and HTML only for a browser that prefers it?"""
    resp = client.get(f"/collections/origin-areas/items/{2**40}", headers={"Accept": "*/*"})
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"
    resp = client.get(f"/collections/origin-areas/items/{2**40}", headers={"Accept": "text/html"})
    assert resp.status_code == 404 and resp.mimetype == "text/html"

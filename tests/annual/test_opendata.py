"""Open data: the registry as CSV (UTF-8 with BOM) and the production areas as a GeoPackage, public,
records in force only, `as_of` from the version history, and cacheable (ETag, Last-Modified, 304).

The registry (`registry`), all by 亳州's authority (341600):

* 亳白芍, registered 1 May 2024 for 谯城区 (341602); on 1 June 2025 its area grows by 利辛县 (341623) and it gets
  an English name (version 2);
* 亳菊, registered 1 May 2024 (谯城区);
* 涡阳苔干, registered 1 May 2024 and revoked on 1 March 2025;
* 蒙城黄牛, an application (status applied) since 1 May 2024.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

import geopandas as gpd
import pyogrio
import pytest
import shapely

from gi_service.models import GICategory, GIStatus
from gi_service.services import registry as registry_service
from geodata.areas import geodesic_area_m2

from ..xlsx import read_download
from .conftest import API, cst, ok

CSV = f"{API}/open-data/registry.csv"
GPKG = f"{API}/open-data/areas.gpkg"


@dataclass
class Registry:
    baishao: object
    chrysanthemum: object
    revoked: object
    applied: object


@pytest.fixture
def reg(factory, clock) -> Registry:
    clock.set(cst(2024, 5, 1, 9, 0))
    authority = factory.authority("341600", name="亳州市市场监督管理局")
    baishao = factory.gi(authority, name_zh="亳白芍", registration_no="2024年第12号", managing_body="亳州市中药材商会",
                         standard="DB34/T 2424-2024", sales_adcodes=["110000", "310000"],
                         testing_body="亳州市检验中心", quality_requirements={"sensory": "断面类白色"})
    chrysanthemum = factory.gi(authority, name_zh="亳菊", category=GICategory.herbal_medicine)
    revoked = factory.gi(authority, name_zh="涡阳苔干", category=GICategory.vegetable, area_adcodes=("341621",))
    applied = factory.gi(authority, name_zh="蒙城黄牛", category=GICategory.meat, area_adcodes=("341622",),
                         status=GIStatus.applied)
    clock.set(cst(2025, 3, 1, 9, 0))
    registry_service.amend_gi(factory.session, revoked.id, {"status": GIStatus.revoked}, by=authority.principal,
                              reason="撤销")
    clock.set(cst(2025, 6, 1, 9, 0))
    registry_service.amend_gi(factory.session, baishao.id, {"area_adcodes": ["341602", "341623"],
                                                            "name_en": "Bozhou White Peony Root"},
                              by=authority.principal, reason="产地范围变更")
    factory.session.commit()
    return Registry(baishao, chrysanthemum, revoked, applied)


def parse(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_registry_csv_has_the_records_in_force(client, reg):
    """Does anyone, without signing in, get every record in force (not the application nor the revoked one) with
    its public fields in Chinese, and none of the internal ones?"""
    r = client.get(CSV)
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.mimetype_params.get("charset") == "utf-8"
    rows = parse(r.data)
    assert [row["name_zh"] for row in rows] == ["亳白芍", "亳菊"]
    b = rows[0]
    current = ok(client.get(f"{API}/gis/{reg.baishao.id}"))
    assert (b["gi_id"], b["version"], b["name_en"], b["kind"], b["kind_zh"]) == \
        (str(reg.baishao.id), "2", "Bozhou White Peony Root", "protected_product", "地理标志保护产品")
    assert (b["category"], b["category_zh"], b["status"], b["status_zh"]) == \
        ("herbal_medicine", "中药材", "registered", "已登记")
    assert (b["registration_no"], b["managing_body"], b["standard"]) == \
        ("2024年第12号", "亳州市中药材商会", "DB34/T 2424-2024")
    assert b["area_adcodes"] == "341602;341623" and "谯城区" in b["area_units_zh"] and "利辛县" in b["area_units_zh"]
    assert float(b["area_km2"]) == pytest.approx(current["origin_area"]["area_km2"])
    assert b["area_source_crs"] == current["origin_area"]["source_crs"]
    assert b["sales_adcodes"] == "110000;310000" and "北京" in b["sales_regions_zh"]
    assert b["record_changed_at"] == "2025-06-01T09:00:00+08:00"
    for internal in ("testing_body", "quality_requirements", "check_alert_threshold", "mark_prefix",
                     "standard_yield_kg_per_mu", "authority_id"):
        assert internal not in b
    assert "断面类白色" not in r.data.decode("utf-8-sig")


def test_registry_csv_as_of_a_day(client, reg):
    """Does ?as_of= give the records in force at the end of that day (China time): the revoked one while it was
    in force, the versions and areas of then, and nothing before the first registration?"""
    rows = parse(ok_bytes(client.get(CSV, query_string={"as_of": "2024-12-31"})))
    assert [row["name_zh"] for row in rows] == ["亳白芍", "亳菊", "涡阳苔干"]
    assert (rows[0]["version"], rows[0]["name_en"], rows[0]["area_adcodes"]) == ("1", "", "341602")
    assert float(rows[0]["area_km2"]) < float(parse(client.get(CSV).data)[0]["area_km2"])
    assert parse(ok_bytes(client.get(CSV, query_string={"as_of": "2024-04-30"}))) == []
    r = client.get(CSV, query_string={"as_of": "31/12/2024"})
    assert (r.status_code, r.json["error"]) == (422, "validation_failed")
    r = client.get(CSV, query_string={"since": "2024-01-01"})
    assert (r.status_code, r.json["error"]) == (400, "unknown_parameter")


def test_registry_as_excel(client, reg, factory):
    """Does /open-data/registry.xlsx hold the CSV's records under Chinese headers, with the registration date a date,
    the area a number, the change a China-time date-time, ?as_of= as the CSV, and a weak ETag that revalidates?"""
    factory.gi(factory.authority("341600"), name_zh="亳花粉", registration_date=dt.date(2025, 3, 1),
               area_adcodes=("341623",))
    r = client.get(f"{API}/open-data/registry.xlsx")
    sheet = read_download(r)
    assert r.headers["Content-Disposition"] == 'attachment; filename="gi-registry.xlsx"'
    assert sheet.header[:3] == ["记录编号 (gi_id)", "版本 (version)", "名称 (name_zh)"]
    csv_rows = parse(client.get(CSV).data)
    rows = [dict(zip([h[h.rindex("(") + 1:-1] for h in sheet.header], row)) for row in sheet.rows]
    assert [row["name_zh"] for row in rows] == [row["name_zh"] for row in csv_rows] == ["亳白芍", "亳菊", "亳花粉"]
    b = rows[0]
    assert b["gi_id"] == reg.baishao.id and b["area_km2"] == pytest.approx(float(csv_rows[0]["area_km2"]))
    assert csv_rows[2]["registration_date"] == "2025-03-01" and rows[2]["registration_date"] == dt.datetime(2025, 3, 1)
    assert sheet.cell(2, "registration_date").is_date and rows[0]["registration_date"] is None
    assert b["record_changed_at"] == dt.datetime(2025, 6, 1, 9, 0)
    assert b["area_adcodes"] == "341602;341623" and b["name_en"] == "Bozhou White Peony Root"
    assert rows[1]["name_en"] is None   # empty in the CSV, an empty cell here
    old = read_download(client.get(f"{API}/open-data/registry.xlsx", query_string={"as_of": "2024-12-31"}))
    assert [row[2] for row in old.rows] == ["亳白芍", "亳菊", "涡阳苔干"]
    etag = r.headers["ETag"]
    assert etag.startswith("W/")
    assert client.get(f"{API}/open-data/registry.xlsx", headers={"If-None-Match": etag}).status_code == 304
    catalogue = ok(client.get(f"{API}/open-data"))
    assert catalogue["datasets"][0]["xlsx_href"].endswith("/open-data/registry.xlsx")


def ok_bytes(r) -> bytes:
    assert r.status_code == 200, r.data[:300]
    return r.data


def test_registry_csv_is_cacheable(client, reg, factory, clock):
    """Does the CSV carry an ETag and Last-Modified, answer 304 to a client whose copy is current (either
    validator), and a new ETag once a record changes?"""
    r = client.get(CSV)
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    assert r.headers["Cache-Control"].startswith("public")
    assert modified == "Sun, 01 Jun 2025 01:00:00 GMT"      # 09:00 China time, the last amendment
    again = client.get(CSV, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get(CSV, headers={"If-Modified-Since": modified}).status_code == 304
    clock.set(cst(2025, 7, 1, 9, 0))
    registry_service.amend_gi(factory.session, reg.chrysanthemum.id, {"standard": "GB/T 99999"},
                              by=factory.authority("341600").principal, reason="标准")
    factory.session.commit()
    changed = client.get(CSV, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert parse(changed.data)[1]["standard"] == "GB/T 99999"


def read_back(tmp_path, data: bytes, name: str = "areas.gpkg"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("reader", ["pyogrio", "geopandas"])
def test_areas_geopackage_reads_back(client, reg, tmp_path, reader):
    """Does the GeoPackage hold one layer origin_areas of valid EPSG:4326 MultiPolygons, one per record in force
    with an area, with the ids, Chinese names, kind, status, area, source and source CRS — read back by GDAL
    (pyogrio) and by geopandas?"""
    r = client.get(GPKG)
    assert r.status_code == 200 and r.mimetype == "application/geopackage+sqlite3"
    assert int(r.headers["Content-Length"]) == len(r.data) and r.data.startswith(b"SQLite format 3\x00")
    path = read_back(tmp_path, r.data)
    assert [list(layer) for layer in pyogrio.list_layers(path)] == [["origin_areas", "MultiPolygon"]]
    if reader == "pyogrio":
        info = pyogrio.read_info(path, layer="origin_areas")
        assert (info["crs"], info["features"], info["geometry_type"]) == ("EPSG:4326", 2, "MultiPolygon")
        frame = pyogrio.read_dataframe(path, layer="origin_areas")
    else:
        frame = gpd.read_file(path, layer="origin_areas")
        assert frame.crs.to_epsg() == 4326
    assert list(frame["name_zh"]) == ["亳白芍", "亳菊"]
    assert list(frame["gi_id"]) == [reg.baishao.id, reg.chrysanthemum.id]
    assert set(frame["status"]) == {"registered"} and set(frame["kind"]) == {"protected_product"}
    assert {"area_km2", "area_mu", "source", "source_crs", "gi_version", "adcodes", "name_pinyin"} <= set(frame.columns)
    assert frame.geometry.is_valid.all() and set(frame.geom_type) == {"MultiPolygon"}
    current = ok(client.get(f"{API}/gis/{reg.baishao.id}"))["origin_area"]
    row = frame.iloc[0]
    assert (row["source"], row["source_crs"], row["adcodes"]) == (current["source"], current["source_crs"],
                                                                 "341602;341623")
    # Coordinates are longitude, latitude around 亳州, and the stated area is the geometry's.
    minx, miny, maxx, maxy = frame.geometry.iloc[0].bounds
    assert 115 < minx < maxx < 117 and 32.5 < miny < maxy < 34.5
    assert row["area_km2"] == pytest.approx(geodesic_area_m2(frame.geometry.iloc[0]) / 1e6, rel=1e-3)
    assert row["area_km2"] == pytest.approx(current["area_km2"])


def test_areas_geopackage_as_of_and_empty(client, reg, tmp_path):
    """Does ?as_of= give the areas in force then (the revoked GI's included, the smaller 亳白芍 area), and a day
    before any registration a valid GeoPackage with the empty layer?"""
    frame = gpd.read_file(read_back(tmp_path, client.get(GPKG, query_string={"as_of": "2024-12-31"}).data))
    assert list(frame["name_zh"]) == ["亳白芍", "亳菊", "涡阳苔干"]
    now = gpd.read_file(read_back(tmp_path, client.get(GPKG).data, "now.gpkg"))
    assert frame["area_km2"].iloc[0] < now["area_km2"].iloc[0] and frame["gi_version"].iloc[0] == 1
    assert shapely.within(frame.geometry.iloc[0], now.geometry.iloc[0].buffer(1e-6))
    empty = read_back(tmp_path, client.get(GPKG, query_string={"as_of": "2020-01-01"}).data, "empty.gpkg")
    info = pyogrio.read_info(empty, layer="origin_areas")
    assert (info["features"], info["crs"], info["geometry_type"]) == (0, "EPSG:4326", "MultiPolygon")


def test_areas_geopackage_is_cacheable(client, reg):
    """Does the GeoPackage carry a (weak) ETag and Last-Modified and answer 304 to a current copy, per as_of?"""
    r = client.get(GPKG)
    etag = r.headers["ETag"]
    assert etag.startswith('W/"') and r.headers["Last-Modified"] == "Sun, 01 Jun 2025 01:00:00 GMT"
    again = client.get(GPKG, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get(GPKG, headers={"If-Modified-Since": r.headers["Last-Modified"]}).status_code == 304
    older = client.get(GPKG, query_string={"as_of": "2024-12-31"}, headers={"If-None-Match": etag})
    assert older.status_code == 200 and older.headers["ETag"] != etag
    assert older.headers["Last-Modified"] == "Wed, 01 May 2024 01:00:00 GMT"


def test_catalogue_describes_the_data_sets(client, reg):
    """Does /open-data list both data sets, with their links, record counts and data dictionaries?"""
    data = ok(client.get(f"{API}/open-data"))
    assert data["records_in_force"] == 2 and data["statuses_published"] == ["registered", "amended"]
    registry_set, areas = data["datasets"]
    assert registry_set["href"].endswith("/api/v1/open-data/registry.csv")
    assert areas["href"].endswith("/api/v1/open-data/areas.gpkg")
    assert areas["features"] == 2 and areas["layer"] == "origin_areas" and areas["crs"] == "EPSG:4326"
    assert [c["name"] for c in registry_set["columns"]][:3] == ["gi_id", "version", "name_zh"]
    assert ok_bytes(client.get(registry_set["href"])).startswith(b"\xef\xbb\xbf")



def test_head_of_the_geopackage(client, reg):
    """Does a HEAD request answer with the GeoPackage's headers (length, validators) and no body?"""
    full = client.get(GPKG)
    r = client.head(GPKG)
    assert r.status_code == 200 and r.data == b""
    assert (r.headers["Content-Length"], r.headers["ETag"]) == (full.headers["Content-Length"], full.headers["ETag"])

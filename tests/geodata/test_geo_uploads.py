"""Reading uploaded production areas: GeoJSON, GeoPackage, zipped Shapefile."""

from __future__ import annotations

import io
import json
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box, mapping

from geodata.areas import AreaError, read_area_upload, sniff_format

# Two adjacent fields in Qiaocheng, Bozhou (WGS-84).
FIELD_A = box(115.78, 33.85, 115.79, 33.86)
FIELD_B = box(115.79, 33.85, 115.80, 33.86)
BOTH = box(115.78, 33.85, 115.80, 33.86)


def _assert_same_area(geom, expected, tol=1e-7):
    """Same shape to within `tol` degrees (about 1 cm)."""
    assert geom.geom_type == "MultiPolygon"
    assert shapely.hausdorff_distance(geom, expected) < tol


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


def _shapefile_parts(tmp_path, frame: gpd.GeoDataFrame, stem: str = "fields") -> dict[str, bytes]:
    frame.to_file(tmp_path / f"{stem}.shp", driver="ESRI Shapefile", engine="pyogrio")
    return {p.name: p.read_bytes() for p in tmp_path.glob(f"{stem}.*")}


# -- GeoJSON -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        mapping(FIELD_A),
        {"type": "Feature", "properties": {"name": "a"}, "geometry": mapping(FIELD_A)},
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": mapping(FIELD_A)}]},
    ],
    ids=["geometry", "feature", "collection"],
)
def test_geojson_without_crs_is_wgs84(doc):
    """Is GeoJSON without a crs member read as WGS-84 lon/lat (RFC 7946), whatever its top-level type?"""
    result = read_area_upload("field.geojson", json.dumps(doc).encode())
    _assert_same_area(result.geometry, FIELD_A)
    assert result.source_crs == "EPSG:4326"
    assert result.target_crs == "EPSG:4326"
    assert result.source == "upload field.geojson (GeoJSON, 1 feature)"


def test_geojson_with_projected_crs_is_reprojected(to_crs):
    """Is GeoJSON with a crs member in CGCS2000 / 3-degree GK (EPSG:4547) reprojected to WGS-84?"""
    projected = to_crs(FIELD_A.segmentize(0.001), "EPSG:4547")
    assert projected.bounds[0] > 100_000  # really metres
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(projected)}],
    }
    result = read_area_upload("field.json", json.dumps(doc).encode())
    assert result.source_crs == "EPSG:4547"
    _assert_same_area(result.geometry, FIELD_A.segmentize(0.001))


def test_feature_collection_features_are_unioned():
    """Are all features of a collection unioned into one area, with the feature count recorded?"""
    doc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(g)} for g in (FIELD_A, FIELD_B)],
    }
    result = read_area_upload("fields.geojson", json.dumps(doc).encode())
    assert shapely.equals(result.geometry, BOTH)
    assert "2 features" in result.source


def test_geojson_with_utf8_bom():
    """Is a GeoJSON file starting with a UTF-8 byte-order mark read?"""
    data = b"\xef\xbb\xbf" + json.dumps(mapping(FIELD_A)).encode()
    _assert_same_area(read_area_upload("bom.geojson", data).geometry, FIELD_A)


# -- GeoPackage -----------------------------------------------------------------


def test_geopackage_in_utm_is_reprojected(tmp_path, to_crs):
    """Is a GeoPackage in WGS 84 / UTM 50N (EPSG:32650) read back in WGS-84 at the right place?"""
    frame = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[to_crs(FIELD_A, "EPSG:32650"), to_crs(FIELD_B, "EPSG:32650")], crs="EPSG:32650")
    frame.to_file(tmp_path / "fields.gpkg", driver="GPKG", engine="pyogrio")
    result = read_area_upload("fields.gpkg", (tmp_path / "fields.gpkg").read_bytes())
    assert result.source_crs == "EPSG:32650"
    assert result.source == "upload fields.gpkg (GeoPackage, 2 features)"
    _assert_same_area(result.geometry, BOTH)


def test_geopackage_without_crs_is_refused(tmp_path, to_crs):
    """Is a GeoPackage layer with no coordinate system refused as 'no_crs'?"""
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[to_crs(FIELD_A, "EPSG:4547")])
    with pytest.warns(UserWarning):
        frame.to_file(tmp_path / "nocrs.gpkg", driver="GPKG", engine="pyogrio")
    with pytest.raises(AreaError) as info:
        read_area_upload("nocrs.gpkg", (tmp_path / "nocrs.gpkg").read_bytes())
    assert info.value.code == "no_crs"


def test_geopackage_layers_are_combined(tmp_path, to_crs):
    """Are the features of every spatial layer combined, each reprojected from its own CRS?"""
    path = tmp_path / "two.gpkg"
    gpd.GeoDataFrame(geometry=[to_crs(FIELD_A, "EPSG:4547")], crs="EPSG:4547").to_file(path, layer="a", engine="pyogrio")
    gpd.GeoDataFrame(geometry=[FIELD_B], crs="EPSG:4326").to_file(path, layer="b", engine="pyogrio")
    result = read_area_upload("two.gpkg", path.read_bytes())
    _assert_same_area(result.geometry, BOTH)
    assert result.source_crs == "EPSG:4547, EPSG:4326"
    assert any("2 layers" in w for w in result.warnings)


# -- Shapefile ------------------------------------------------------------------


def test_zipped_shapefile_in_gauss_kruger_is_reprojected(tmp_path, to_crs):
    """Is a zipped Shapefile in EPSG:4547, inside a folder of the zip, read back in WGS-84?"""
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[to_crs(FIELD_A, "EPSG:4547")], crs="EPSG:4547")
    parts = _shapefile_parts(tmp_path, frame)
    assert {"fields.shp", "fields.shx", "fields.dbf", "fields.prj"} <= set(parts)
    data = _zip({f"export/{name}": content for name, content in parts.items()})
    result = read_area_upload("fields.zip", data)
    assert result.source_crs == "EPSG:4547"
    assert result.source == "upload fields.zip (ESRI Shapefile, 1 feature)"
    _assert_same_area(result.geometry, FIELD_A)


def test_shapefile_without_prj_is_refused(tmp_path, to_crs):
    """Is a zipped Shapefile lacking its .prj refused as 'no_crs', not guessed?"""
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[to_crs(FIELD_A, "EPSG:4547")], crs="EPSG:4547")
    parts = _shapefile_parts(tmp_path, frame)
    del parts["fields.prj"]
    with pytest.raises(AreaError) as info:
        read_area_upload("fields.zip", _zip(parts))
    assert info.value.code == "no_crs"
    assert ".prj" in info.value.message


def test_shapefile_missing_parts_is_unreadable(tmp_path):
    """Is a zipped Shapefile without its .shx refused, naming the missing part?"""
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[FIELD_A], crs="EPSG:4326")
    parts = _shapefile_parts(tmp_path, frame)
    del parts["fields.shx"]
    with pytest.raises(AreaError) as info:
        read_area_upload("fields.zip", _zip(parts))
    assert info.value.code == "unreadable"
    assert ".shx" in info.value.message


def test_zip_member_paths_cannot_escape(tmp_path):
    """Is a zip whose members have '../' paths read without writing outside a temporary directory?"""
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[FIELD_A], crs="EPSG:4326")
    src = tmp_path / "src"
    src.mkdir()
    parts = _shapefile_parts(src, frame)
    data = _zip({f"../../escape/{name}": content for name, content in parts.items()})
    result = read_area_upload("evil.zip", data)
    _assert_same_area(result.geometry, FIELD_A)
    assert not (tmp_path.parent / "escape").exists()


def test_zipped_geopackage_is_read(tmp_path):
    """Is a GeoPackage that arrives zipped read too?"""
    gpd.GeoDataFrame(geometry=[FIELD_A], crs="EPSG:4326").to_file(tmp_path / "a.gpkg", engine="pyogrio")
    result = read_area_upload("a.zip", _zip({"a.gpkg": (tmp_path / "a.gpkg").read_bytes()}))
    _assert_same_area(result.geometry, FIELD_A)


# -- format sniffing and refusals ------------------------------------------------


def test_sniff_format():
    """Is the format recognized from content: zip, SQLite (GeoPackage), JSON?"""
    assert sniff_format(b"PK\x03\x04rest") == "zip"
    assert sniff_format(b"SQLite format 3\x00rest") == "gpkg"
    assert sniff_format(b'  \n{"type": "Point"}') == "geojson"
    assert sniff_format(b"\x00\x01garbage") is None


def test_content_wins_over_extension(tmp_path):
    """Is a GeoPackage named .json still read as a GeoPackage, with a warning?"""
    gpd.GeoDataFrame(geometry=[FIELD_A], crs="EPSG:4326").to_file(tmp_path / "a.gpkg", engine="pyogrio")
    result = read_area_upload("mislabelled.json", (tmp_path / "a.gpkg").read_bytes())
    _assert_same_area(result.geometry, FIELD_A)
    assert any("gpkg" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("field.geojson", b"\x00\x01\x02 definitely not json", "unreadable"),
        ("field.geojson", b"{not json at all", "unreadable"),
        ("field.gpkg", b"SQLite format 3\x00" + b"\x00" * 200, "unreadable"),
        ("field.zip", b"PK\x03\x04 truncated zip", "unreadable"),
        ("field.kml", b"<kml></kml>", "unsupported_format"),
        ("field.shp", b"\x00\x00\x27\x0a shapefile main file alone", "unsupported_format"),
        ("topo.json", b'{"type": "Topology", "objects": {}}', "unsupported_format"),
        ("empty.geojson", b"", "empty"),
    ],
)
def test_bad_uploads_are_refused(name, data, code):
    """Are garbage, truncated, unsupported and empty files refused with the right stable code?"""
    with pytest.raises(AreaError) as info:
        read_area_upload(name, data)
    assert info.value.code == code
    assert info.value.message


def test_zip_without_geodata_is_unsupported():
    """Is a zip holding no Shapefile, GeoPackage or GeoJSON refused as 'unsupported_format'?"""
    with pytest.raises(AreaError) as info:
        read_area_upload("docs.zip", _zip({"readme.txt": b"hello"}))
    assert info.value.code == "unsupported_format"


def test_uploaded_area_is_validated(tmp_path):
    """Does an upload go through validate_area (a polygon in the Atlantic is 'outside_china')?"""
    gpd.GeoDataFrame(geometry=[box(-30.0, 40.0, -29.99, 40.01)], crs="EPSG:4326").to_file(tmp_path / "sea.gpkg", engine="pyogrio")
    with pytest.raises(AreaError) as info:
        read_area_upload("sea.gpkg", (tmp_path / "sea.gpkg").read_bytes())
    assert info.value.code == "outside_china"


def test_uploaded_points_are_wrong_type():
    """Is an upload of points only refused as 'wrong_type'?"""
    doc = {"type": "MultiPoint", "coordinates": [[115.78, 33.85], [115.79, 33.86]]}
    with pytest.raises(AreaError) as info:
        read_area_upload("points.geojson", json.dumps(doc).encode())
    assert info.value.code == "wrong_type"


def test_uploaded_bow_tie_is_rejected_with_location():
    """Is a self-crossing uploaded polygon rejected with the crossing's location?"""
    doc = {"type": "Polygon", "coordinates": [[[115.78, 33.85], [115.79, 33.86], [115.79, 33.85], [115.78, 33.86], [115.78, 33.85]]]}
    with pytest.raises(AreaError) as info:
        read_area_upload("bowtie.geojson", json.dumps(doc).encode())
    assert info.value.code == "self_intersection"
    assert np.allclose(info.value.details["location"], [115.785, 33.855])


# -- the uploader's stated CRS ---------------------------------------------------


def test_gcj02_geojson_is_shifted_back_to_wgs84():
    """Is lon/lat copied from a Chinese web map (GCJ-02), when stated, shifted back to WGS-84?"""
    from geodata.crs import geometry_wgs84_to_gcj02

    shifted = geometry_wgs84_to_gcj02(FIELD_A.segmentize(0.001))
    result = read_area_upload("amap.geojson", json.dumps(mapping(shifted)).encode(), assume_crs="GCJ-02")
    assert result.source_crs == "GCJ-02"
    _assert_same_area(result.geometry, FIELD_A.segmentize(0.001))
    # Without the statement the same file is taken as WGS-84: a few hundred metres off.
    plain = read_area_upload("amap.geojson", json.dumps(mapping(shifted)).encode())
    assert shapely.hausdorff_distance(plain.geometry, FIELD_A) > 0.001


def test_stated_crs_fills_in_a_missing_prj(tmp_path, to_crs):
    """Is a Shapefile without .prj read when the uploader states its CRS, with a warning?"""
    frame = gpd.GeoDataFrame({"name": ["a"]}, geometry=[to_crs(FIELD_A, "EPSG:4547")], crs="EPSG:4547")
    parts = _shapefile_parts(tmp_path, frame)
    del parts["fields.prj"]
    result = read_area_upload("fields.zip", _zip(parts), assume_crs="EPSG:4547")
    assert result.source_crs == "EPSG:4547"
    _assert_same_area(result.geometry, FIELD_A)
    assert any("declares no coordinate system" in w for w in result.warnings)


def test_declared_crs_wins_over_stated_crs(tmp_path, to_crs):
    """Does a file's own CRS declaration win over a different stated CRS, with a warning?"""
    frame = gpd.GeoDataFrame(geometry=[to_crs(FIELD_A, "EPSG:32650")], crs="EPSG:32650")
    frame.to_file(tmp_path / "a.gpkg", engine="pyogrio")
    result = read_area_upload("a.gpkg", (tmp_path / "a.gpkg").read_bytes(), assume_crs="EPSG:4547")
    assert result.source_crs == "EPSG:32650"
    _assert_same_area(result.geometry, FIELD_A)
    assert any("EPSG:32650" in w and "EPSG:4547" in w for w in result.warnings)


def test_gcj02_refused_for_projected_files(tmp_path, to_crs):
    """Is 'GCJ-02' refused for a file in metres, where it cannot apply?"""
    frame = gpd.GeoDataFrame(geometry=[to_crs(FIELD_A, "EPSG:4547")], crs="EPSG:4547")
    frame.to_file(tmp_path / "a.gpkg", engine="pyogrio")
    with pytest.raises(AreaError) as info:
        read_area_upload("a.gpkg", (tmp_path / "a.gpkg").read_bytes(), assume_crs="GCJ-02")
    assert info.value.code == "bad_crs"


def test_unintelligible_stated_crs_is_refused():
    """Is a stated CRS that pyproj cannot parse refused as 'bad_crs'?"""
    with pytest.raises(AreaError) as info:
        read_area_upload("a.geojson", json.dumps(mapping(FIELD_A)).encode(), assume_crs="EPSG:not-a-code")
    assert info.value.code == "bad_crs"

"""Reading an import's file, without a database: the CSV encodings, the boundary's forms, and the two layers
against XML entities (the service's own check of the zip, and openpyxl parsing through defusedxml)."""
from __future__ import annotations

import json

import pytest

from gi_service.services import imports

from .conftest import csv_bytes, with_member, xlsx

LIMITS = imports.Limits()
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
          b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
          b'<c r="A1" t="inlineStr"><is><t>&lol2;</t></is></c></row></sheetData></worksheet>')


def test_csv_encodings():
    """Is UTF-8 read with or without its BOM, GB18030 when it is not UTF-8, and anything else refused?"""
    text = "名称,统一社会信用代码\n亳州,x\n"
    assert imports.decode_csv(text.encode("utf-8-sig")) == (text, "utf-8-sig")
    assert imports.decode_csv(text.encode("utf-8")) == (text, "utf-8")
    assert imports.decode_csv(text.encode("gb18030")) == (text, "gb18030")
    with pytest.raises(imports.ImportRefused) as refused:
        imports.decode_csv(b"\x81\x20\xff\xff")
    assert refused.value.code == "unreadable_file"


def test_boundaries_as_geojson_or_wkt():
    """Are a GeoJSON Polygon, a Feature and WKT read, and a non-polygon, a non-WGS-84 "crs", and text that is
    neither refused with what to fix?"""
    ring = [[115.78, 33.84], [115.781, 33.84], [115.781, 33.841], [115.78, 33.84]]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    assert imports.parse_boundary(json.dumps(polygon)).geom_type == "Polygon"
    feature = {"type": "Feature", "properties": {}, "geometry": polygon}
    assert imports.parse_boundary(json.dumps(feature)).geom_type == "Polygon"
    assert imports.parse_boundary("MULTIPOLYGON(((115.78 33.84, 115.781 33.84, 115.781 33.841, 115.78 33.84)))") \
        .geom_type == "MultiPolygon"
    wgs84 = {**polygon, "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}}
    assert imports.parse_boundary(json.dumps(wgs84)).geom_type == "Polygon"
    for text, code in ((json.dumps({"type": "Point", "coordinates": [115.78, 33.84]}), "invalid_geometry"),
                       (json.dumps({**polygon, "crs": {"type": "name", "properties": {"name": "EPSG:4490"}}}),
                        "not_wgs84"),
                       ("{not json", "invalid_geometry"), ("LINESTRING(0 0, 1 1)", "invalid_geometry"),
                       ("亳州市谯城区", "invalid_geometry")):
        with pytest.raises(imports.CellError) as refused:
            imports.parse_boundary(text)
        assert refused.value.code == code, text


def test_openpyxl_refuses_entities_by_itself(monkeypatch):
    """With the service's own DTD check switched off, does openpyxl (through defusedxml) still refuse a sheet that
    declares entities, so the two layers each hold?"""
    data = with_member(xlsx([["名称", "统一社会信用代码"]]), "xl/worksheets/sheet1.xml", LAUGHS)
    with pytest.raises(imports.ImportRefused) as refused:
        imports.read_file("laughs.xlsx", data, "producers", LIMITS)
    assert refused.value.details["reason"] == "xml_entities"
    monkeypatch.setattr(imports, "DTD", type("Never", (), {"search": staticmethod(lambda _: None)})())
    with pytest.raises(imports.ImportRefused) as refused:
        imports.read_file("laughs.xlsx", data, "producers", LIMITS)
    assert (refused.value.code, refused.value.details["reason"]) == ("unsafe_file", "xml_entities")


def test_rows_are_counted_without_reading_past_the_limit():
    """Are blank rows skipped (their numbers kept), and is a file refused as soon as it has one row too many?"""
    sheet = imports.read_csv(csv_bytes([["名称"], ["a"], [""], ["b"]]), LIMITS)
    assert sheet.rows == [(2, ["a"]), (4, ["b"])]
    with pytest.raises(imports.ImportRefused) as refused:
        imports.read_csv(csv_bytes([["名称"], *[[str(i)] for i in range(5)]]), imports.Limits(max_rows=4))
    assert refused.value.code == "too_many_rows"
    plots = csv_bytes([["uscc"], *[[str(i)] for i in range(3)]])
    assert len(imports.read_csv(plots, imports.Limits(max_rows=2, max_plot_rows=3), "plots").rows) == 3
    with pytest.raises(imports.ImportRefused) as refused:
        imports.read_csv(plots, imports.Limits(max_rows=5, max_plot_rows=2), "plots")
    assert refused.value.details == {"max_rows": 2}

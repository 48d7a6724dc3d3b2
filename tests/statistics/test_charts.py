"""The pure SVG renderers (gi_service/render/charts.py and maps.py): axes, escaping, empty data, projection and
simplification."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import shapely

from gi_service.i18n import Label
from gi_service.render import charts, maps
from gi_service.render.charts import Series
from gi_service.render.maps import MapFrame

SVG = "{http://www.w3.org/2000/svg}"


def test_axis_ends_are_readable_numbers():
    """Does the axis end at the next 1, 2, 2.5 or 5 × 10^k at or above the largest value?"""
    assert [charts.nice_max(v) for v in (0, 0.3, 1, 7, 11, 60, 230, 999, 1001)] == \
        [1.0, 0.5, 1.0, 10.0, 20.0, 100.0, 250.0, 1000.0, 2000.0]


def test_text_is_escaped_and_the_output_is_deterministic():
    """Are names with markup characters escaped (the document still parses), and is the same chart the same bytes?"""
    kwargs = dict(ident="t", title=Label("标题 <b>&", "Title"), description='say "hi" & <go>',
                  categories=[Label("甲 & 乙", "A<B"), Label("丙", "C")],
                  series=[Series(Label("一", "one"), (3.0, 0.0)), Series(Label("二", "two"), (1.5, 2.0))],
                  decimals=1)
    first = charts.bar_chart(**kwargs)
    assert first == charts.bar_chart(**kwargs)
    root = ET.fromstring(first)
    assert root.find(f"{SVG}title").text == "标题 <b>& Title"
    assert root.find(f"{SVG}desc").text.startswith('say "hi" & <go> 甲 & 乙 A<B: 一 one 3.0, 二 two 1.5')
    labels = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert "甲 & 乙" in labels and "A<B" in labels and "一 one" in labels
    # Grouped bars: a zero is in the bar's title, not written on the axis.
    assert "0.0" not in labels and "甲 & 乙 A<B — 一 one: 3.0" in [t.text for t in root.iter(f"{SVG}title")]


def test_empty_charts_say_so():
    """Does a chart without categories still draw a complete document that says there is no data?"""
    for svg in (charts.bar_chart(ident="e", title=Label("空"), description="nothing", categories=[], series=[]),
                charts.hbar_chart(ident="h", title=Label("空"), description="nothing", categories=[], values=[])):
        root = ET.fromstring(svg)
        assert "无数据 No data" in ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_map_frame_and_outline():
    """Does the frame fit a box into the map keeping distances true at its latitude, and does an outline drop rings
    smaller than a pixel?"""
    frame = MapFrame.fit((115.0, 33.0, 117.0, 34.0), width=800, max_height=640)
    assert frame.width <= 800.01 and frame.height <= 640.01
    x0, y0 = frame.project(115.0, 34.0)
    x1, y1 = frame.project(117.0, 33.0)
    assert 0 < x0 < x1 < frame.width and 0 < y0 < y1 < frame.height
    # A degree of longitude at 33.5° N is cos(33.5°) of a degree of latitude.
    assert abs((x1 - x0) / 2 / ((y1 - y0) / 1) - 0.8339) < 0.001
    big = shapely.box(115.2, 33.2, 116.0, 33.8)
    speck = shapely.box(116.5, 33.5, 116.5 + frame.pixel_degrees / 10, 33.5 + frame.pixel_degrees / 10)
    path = maps.outline_path(shapely.MultiPolygon([big, speck]), frame)
    assert path.count("M") == 1 and path.endswith("Z")
    assert maps.outline_path(shapely.Polygon(), frame) == ""

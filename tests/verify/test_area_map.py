"""The production area drawn as an inline SVG: lon/lat projected with the latitude's shrink of longitude,
simplified to about a pixel so even an archipelago stays small, with the producer's plots marked.
"""
from __future__ import annotations

import math
import re

import shapely

from geodata.admin import get_registry
from gi_service.models import GIProduct
from gi_service.render import maps
from gi_service.render.maps import AREA_MAX_HEIGHT, AREA_WIDTH, area_frame, outline


def test_projection_keeps_shapes_and_fits_the_map():
    """Does a square kilometre stay square (longitude shrunk by cos(latitude)) and the bbox fit the map?"""
    lat = 45.0
    frame = area_frame((120.0, lat, 121.0, lat + 0.5))
    x0, y0 = frame.project(120.0, lat)
    x1, y1 = frame.project(121.0, lat + 0.5)
    assert 0 < x0 < x1 <= frame.width and 0 < y1 < y0 <= frame.height          # north is up
    assert frame.width <= AREA_WIDTH + 0.1 and frame.height <= AREA_MAX_HEIGHT + 0.1
    width_per_deg, height_per_deg = (x1 - x0), (y0 - y1) / 0.5
    assert math.isclose(width_per_deg / height_per_deg, math.cos(math.radians(lat + 0.25)), rel_tol=0.01)


def test_an_archipelago_stays_small():
    """Is Zhoushan (舟山市, 12,000+ vertices, hundreds of islands) drawn in under 16 KB of path?"""
    geom = get_registry().boundary("330900")
    frame, path = outline(geom, geom.bounds)
    assert shapely.get_num_coordinates(geom) > 10_000
    assert 0 < len(path) < 16_000
    assert path.count("M") < len(geom.geoms)                # islands below a pixel are left out


def test_a_dense_outline_is_simplified_to_about_a_pixel():
    """Does a 100,000-vertex circle come out as a few hundred points at most?"""
    circle = shapely.Point(116.0, 40.0).buffer(0.5, quad_segs=25_000)
    _, path = outline(circle, circle.bounds)
    points = path.count("L") + 1
    assert 20 < points < 600


def test_map_marks_plots_only_roughly(world, session, factory):
    """Does the public map mark where the producer's plots are only on a coarse grid, never their outlines?"""
    factory.plot(world.producer, world.gi, side_m=3000, name="big")
    other = factory.producer("341602")
    factory.plot(other, world.gi)
    svg = maps.public_area_map(session, world.gi.id, world.producer.org.id, title="产地范围", plots_label="地块")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and "<title>产地范围</title>" in svg
    marks = svg[svg.index("<g "):]
    assert marks.count("<path") == 0                       # plots are private: no outlines
    # The two nearby plots of this producer fall in one grid cell; the other producer's plot is not shown.
    assert svg.count("<circle") == 1
    for cx, cy in re.findall(r'cx="([\d.]+)" cy="([\d.]+)"', svg):
        assert float(cx) % maps.PLOT_GRID_PX == 0 and float(cy) % maps.PLOT_GRID_PX == 0
    width, height = map(float, re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg).groups())
    for cx, cy in re.findall(r'cx="([\d.]+)" cy="([\d.]+)"', svg):
        assert 0 < float(cx) < width and 0 < float(cy) < height


def test_no_area_no_map(world, session):
    """Is there no map (None) for a GI without a production-area geometry?"""
    session.get(GIProduct, world.gi.id).origin_area_id = None
    session.commit()
    assert maps.public_area_map(session, world.gi.id, world.producer.org.id, title="t", plots_label="p") is None

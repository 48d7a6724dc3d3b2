"""GCJ-02 <-> WGS-84 conversion."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from geodata.crs import (
    CRS_GCJ02,
    WGS84,
    gcj02_to_wgs84,
    geometry_gcj02_to_wgs84,
    geometry_wgs84_to_gcj02,
    wgs84_to_gcj02,
)

# Published test vectors of the open eviltransform library (WGS-84 -> GCJ-02), lon/lat.
REFERENCE = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]

GEOD = pyproj.Geod(ellps="WGS84")


def test_constants():
    """Are the CRS labels the ones stored with geometries?"""
    assert WGS84 == "EPSG:4326"
    assert CRS_GCJ02 == "GCJ-02"


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_forward_matches_published_vectors(wgs, gcj):
    """Does WGS-84 -> GCJ-02 reproduce independent published conversions?"""
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-9)
    assert lat == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_inverse_recovers_published_vectors(wgs, gcj):
    """Does GCJ-02 -> WGS-84 invert the published vectors to better than 1e-7 degrees?"""
    lon, lat = gcj02_to_wgs84(*gcj)
    assert abs(lon - wgs[0]) < 1e-7 and abs(lat - wgs[1]) < 1e-7


def test_hangzhou_offset_is_a_few_hundred_metres():
    """Is the GCJ-02 shift at West Lake, Hangzhou, the expected 300-600 m?"""
    lon, lat = wgs84_to_gcj02(120.13, 30.25)
    _az1, _az2, metres = GEOD.inv(120.13, 30.25, lon, lat)
    assert 300 < metres < 600


def test_round_trip_precision_over_china():
    """Does gcj02_to_wgs84(wgs84_to_gcj02(p)) return p within 1e-7 degrees everywhere inside China?"""
    rng = np.random.default_rng(7)
    lon = rng.uniform(74.0, 134.5, 20_000)
    lat = rng.uniform(4.0, 53.5, 20_000)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.abs(back_lon - lon).max() < 1e-7
    assert np.abs(back_lat - lat).max() < 1e-7


def test_inverse_beats_one_step_approximation():
    """Is the iterative inverse far more exact than subtracting the offset once?"""
    g_lon, g_lat = 121.531541859215, 31.17530398364597
    lon1, lat1 = wgs84_to_gcj02(g_lon, g_lat)
    one_step = (2 * g_lon - lon1, 2 * g_lat - lat1)
    exact = gcj02_to_wgs84(g_lon, g_lat)
    err_one = GEOD.inv(*one_step, 121.5272106, 31.1774276)[2]
    err_exact = GEOD.inv(*exact, 121.5272106, 31.1774276)[2]
    assert err_exact < 0.01 < err_one


def test_points_outside_china_unchanged():
    """Are points outside China's GCJ-02 rectangle left exactly as they are, both ways?"""
    lon = np.array([-0.1276, 2.35, 139.69, -74.0, 151.2])
    lat = np.array([51.507, 48.85, 35.69, 40.7, -33.87])
    for fn in (wgs84_to_gcj02, gcj02_to_wgs84):
        out_lon, out_lat = fn(lon, lat)
        np.testing.assert_array_equal(out_lon, lon)
        np.testing.assert_array_equal(out_lat, lat)


def test_scalars_give_floats_and_arrays_give_arrays():
    """Do the converters accept scalars and arrays alike and return the same kind?"""
    lon, lat = gcj02_to_wgs84(120.0, 30.0)
    assert isinstance(lon, float) and isinstance(lat, float)
    lons, lats = gcj02_to_wgs84(np.array([120.0, 121.0]), np.array([30.0, 31.0]))
    assert lons.shape == (2,) and lats.shape == (2,)
    assert lons[0] == pytest.approx(lon) and lats[0] == pytest.approx(lat)


def test_inputs_are_not_modified():
    """Do the converters leave the caller's arrays untouched?"""
    lon = np.array([120.0, 121.0])
    lat = np.array([30.0, 31.0])
    gcj02_to_wgs84(lon, lat)
    wgs84_to_gcj02(lon, lat)
    np.testing.assert_array_equal(lon, [120.0, 121.0])
    np.testing.assert_array_equal(lat, [30.0, 31.0])


def test_geometry_conversion_moves_every_vertex_and_drops_z():
    """Does geometry_gcj02_to_wgs84 convert each vertex like the point function and drop Z?"""
    poly = shapely.Polygon([(120.1, 30.2, 5), (120.2, 30.2, 5), (120.2, 30.3, 5), (120.1, 30.2, 5)])
    out = geometry_gcj02_to_wgs84(poly)
    assert not out.has_z
    coords = shapely.get_coordinates(poly)
    lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    np.testing.assert_allclose(shapely.get_coordinates(out), np.column_stack([lon, lat]), atol=0, rtol=0)
    back = geometry_wgs84_to_gcj02(out)
    np.testing.assert_allclose(shapely.get_coordinates(back), coords[:, :2], atol=1e-7)

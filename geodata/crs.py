"""Coordinate reference systems: the GCJ-02 offset used by Chinese web maps.

GCJ-02 is WGS-84 plus a deterministic, non-linear offset of a few hundred
metres, applied only inside a rectangle around China. It is not an EPSG CRS,
so pyproj cannot do it; the forward formula below is the public one (Krasovsky
ellipsoid constants) and the inverse is solved iteratively to sub-centimetre
precision instead of the usual one-step approximation, which is off by up to
a couple of metres.
"""

from __future__ import annotations

import numpy as np
import shapely

WGS84 = "EPSG:4326"
CRS_GCJ02 = "GCJ-02"

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323

# The rectangle outside which GCJ-02 applies no offset (the conventional test).
_LON_MIN, _LON_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271

# The inverse iterates until every point moves less than this many degrees
# (about 1 mm), well below the 1e-7 degrees promised to callers.
_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_ITERATIONS = 30


def _in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon >= _LON_MIN) & (lon <= _LON_MAX) & (lat >= _LAT_MIN) & (lat <= _LAT_MAX)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS-84 positions; zero outside China."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0

    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat = dlat + common
    dlat = dlat + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0

    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon = dlon + common
    dlon = dlon + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0

    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * pi)

    outside = ~_in_china(lon, lat)
    dlat[outside] = 0.0
    dlon[outside] = 0.0
    return dlon, dlat


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.atleast_1d(lon_a).astype(float, copy=True), np.atleast_1d(lat_a).astype(float, copy=True), scalar


def _result(lon: np.ndarray, lat: np.ndarray, scalar: bool):
    if scalar:
        return float(lon[0]), float(lat[0])
    return lon, lat


def wgs84_to_gcj02(lon, lat):
    """Shift WGS-84 lon/lat (scalars or arrays) to GCJ-02; points outside China are unchanged."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    dlon, dlat = _offset(lon_a, lat_a)
    return _result(lon_a + dlon, lat_a + dlat, scalar)


def gcj02_to_wgs84(lon, lat):
    """Exact inverse of wgs84_to_gcj02 (fixed-point iteration), vectorized over arrays."""
    g_lon, g_lat, scalar = _as_arrays(lon, lat)
    # Start from the one-step approximation and refine: w <- w - (gcj(w) - g).
    # The offset's derivative is tiny (metres per degree), so this contracts fast.
    d_lon, d_lat = _offset(g_lon, g_lat)
    w_lon = g_lon - d_lon
    w_lat = g_lat - d_lat
    active = np.ones(g_lon.shape, dtype=bool)
    for _ in range(_INVERSE_MAX_ITERATIONS):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        off_lon, off_lat = _offset(w_lon[idx], w_lat[idx])
        err_lon = w_lon[idx] + off_lon - g_lon[idx]
        err_lat = w_lat[idx] + off_lat - g_lat[idx]
        w_lon[idx] -= err_lon
        w_lat[idx] -= err_lat
        done = (np.abs(err_lon) < _INVERSE_TOLERANCE_DEG) & (np.abs(err_lat) < _INVERSE_TOLERANCE_DEG)
        active[idx[done]] = False
    return _result(w_lon, w_lat, scalar)


def _transform_coords(func, coords: np.ndarray) -> np.ndarray:
    lon, lat = func(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def geometry_gcj02_to_wgs84(geom):
    """Convert every vertex of a shapely geometry from GCJ-02 to WGS-84 (drops Z)."""
    return shapely.transform(shapely.force_2d(geom), lambda c: _transform_coords(gcj02_to_wgs84, c))


def geometry_wgs84_to_gcj02(geom):
    """Convert every vertex of a shapely geometry from WGS-84 to GCJ-02 (drops Z)."""
    return shapely.transform(shapely.force_2d(geom), lambda c: _transform_coords(wgs84_to_gcj02, c))

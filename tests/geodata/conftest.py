"""Fixtures for the geodata library tests (no Flask app, no database)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from geodata.admin import AdminRegistry, get_registry
from geodata.lookup import get_index


@pytest.fixture(scope="session")
def registry() -> AdminRegistry:
    """The process-wide administrative registry."""
    return get_registry()


@pytest.fixture(scope="session")
def county_index():
    """The process-wide county index; built once into the default cache ($GI_CACHE_DIR honoured)."""
    return get_index()


class SubsetRegistry(AdminRegistry):
    """A registry whose county partition is only the counties under some units (cheap cache builds)."""

    def __init__(self, roots: list[str], version_suffix: str = "subset-test"):
        super().__init__()
        self._roots = roots
        self._suffix = version_suffix

    @property
    def data_version(self) -> str:
        return f"{super().data_version}+{self._suffix}"

    def counties(self):
        return [u for root in self._roots for u in self.counties_under(root)]


@pytest.fixture
def subset_registry() -> SubsetRegistry:
    """Registry limited to the four counties of Bozhou (341600), for cache tests."""
    return SubsetRegistry(["341600"])


def _project(geom, crs: str):
    """Reproject a WGS-84 shapely geometry to `crs` (x = easting)."""
    transformer = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)

    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)


def _local_box(lon: float, lat: float, x0: float, y0: float, x1: float, y1: float):
    """A box given in metres east/north of lon/lat (local AEQD), returned in WGS-84."""
    local = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +ellps=WGS84 +units=m"
    back = pyproj.Transformer.from_crs(local, "EPSG:4326", always_xy=True)
    b = shapely.box(x0, y0, x1, y1).segmentize(1.0)
    return shapely.transform(b, lambda c: np.column_stack(back.transform(c[:, 0], c[:, 1])))


@pytest.fixture
def to_crs():
    """Function reprojecting a WGS-84 geometry to another CRS."""
    return _project


@pytest.fixture
def local_box():
    """Function making a WGS-84 box from metre offsets around a lon/lat."""
    return _local_box

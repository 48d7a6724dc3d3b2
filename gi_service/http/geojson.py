"""Read GeoJSON geometries sent to the service (API bodies and uploads, the pages' plot forms), with errors
that say what to fix."""
from __future__ import annotations

import json
from typing import Any

import shapely
from shapely.geometry import shape

from geodata.areas import AreaError, AreaResult, read_area_upload, validate_area

from ..errors import InvalidGeometry


def polygon_from_geojson(obj: dict[str, Any], field: str = "geometry") -> shapely.Geometry:
    """A Polygon/MultiPolygon (bare, or inside a Feature) as shapely, refusing anything else."""
    if obj.get("type") == "Feature":
        obj = obj.get("geometry") or {}
    gtype = obj.get("type")
    if gtype not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometry(f"{field} must be a GeoJSON Polygon or MultiPolygon, got {gtype!r}",
                              details={"reason": "wrong_type", "field": field})
    try:
        geom = shape(obj)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InvalidGeometry(f"{field} is not valid GeoJSON: {exc}",
                              details={"reason": "bad_geojson", "field": field}) from None
    return geom


def area_from_json(obj: dict[str, Any]) -> AreaResult:
    """A production area from a GeoJSON Geometry/Feature/FeatureCollection body."""
    try:
        return read_area_upload("area.geojson", json.dumps(obj).encode())
    except AreaError as exc:
        raise InvalidGeometry(exc.message, details={"reason": exc.code, **(exc.details or {})}) from None


def area_from_upload(filename: str, data: bytes) -> AreaResult:
    try:
        return read_area_upload(filename, data)
    except AreaError as exc:
        raise InvalidGeometry(exc.message, details={"reason": exc.code, **(exc.details or {})}) from None


__all__ = ["polygon_from_geojson", "area_from_json", "area_from_upload", "validate_area"]

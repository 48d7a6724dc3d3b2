"""The open data's production areas as a GeoPackage: layer origin_areas, EPSG:4326 MultiPolygons.

Written with geopandas and pyogrio (imported when a file is made) to a private temporary file.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from typing import BinaryIO

import shapely

from ..services import opendata


def _multipolygon(geom) -> shapely.MultiPolygon:
    """A valid MultiPolygon (areas are stored valid; repair defensively rather than publish a broken one)."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if isinstance(geom, shapely.MultiPolygon):
        return geom
    if isinstance(geom, shapely.Polygon):
        return shapely.MultiPolygon([geom])
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, (shapely.Polygon, shapely.MultiPolygon))]
    parts = [q for g in polys for q in (g.geoms if isinstance(g, shapely.MultiPolygon) else [g])]
    return shapely.MultiPolygon(parts)


def areas_frame(items: list[opendata.Published]):
    """The origin_areas layer as a GeoDataFrame (EPSG:4326, MultiPolygon)."""
    import geopandas
    import pandas

    rows, geoms = [], []
    for p in items:
        if p.area is None or p.area.geom is None:
            continue
        r, a = p.record, p.area
        rows.append({"gi_id": p.gi_id, "gi_version": p.version, "name_zh": r.name_zh, "name_pinyin": r.name_pinyin,
                     "name_en": r.name_en, "kind": r.kind.value, "category": r.category.value,
                     "status": r.status.value, "registration_no": r.registration_no, "area_id": a.id,
                     "area_km2": round(a.area_m2 / 1e6, 3), "area_mu": round(a.area_mu, 1),
                     "adcodes": ";".join(a.adcodes or []), "source": a.source, "source_crs": a.source_crs})
        geoms.append(_multipolygon(a.geom))
    dtypes = {"gi_id": "int64", "gi_version": "int64", "area_id": "int64", "area_km2": "float64",
              "area_mu": "float64"}
    frame = pandas.DataFrame(rows, columns=[name for name, _ in opendata.AREA_COLUMNS])
    frame = frame.astype({k: v for k, v in dtypes.items()})
    for name, _ in opendata.AREA_COLUMNS:
        if name not in dtypes:
            frame[name] = frame[name].astype(object)
    return geopandas.GeoDataFrame(frame, geometry=geopandas.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")


def write_gpkg(items: list[opendata.Published], path: str, *, as_of: dt.date | None = None) -> None:
    import pyogrio

    frame = areas_frame(items)
    stamp = f"as of the end of {as_of.isoformat()} (China Standard Time)" if as_of else "current records"
    pyogrio.write_dataframe(
        frame, path, layer=opendata.LAYER, driver="GPKG", geometry_type="MultiPolygon", promote_to_multi=True,
        layer_metadata={"DESCRIPTION": f"Production areas (产地范围) of the GIs in force, {stamp}; WGS-84",
                        "IDENTIFIER": "GI production areas"},
    )


def gpkg_file(items: list[opendata.Published], *, as_of: dt.date | None = None) -> tuple[BinaryIO, int]:
    """Write the GeoPackage to a private temporary file; return it open for reading, and its size.

    The file is unlinked at once (an open handle keeps it readable on POSIX), so nothing is left
    behind whether or not the client reads it to the end.
    """
    tmpdir = tempfile.mkdtemp(prefix="gi-opendata-")
    path = os.path.join(tmpdir, "areas.gpkg")
    try:
        write_gpkg(items, path, as_of=as_of)
        handle = open(path, "rb")
        size = os.fstat(handle.fileno()).st_size
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return handle, size

"""Spatial questions, answered by PostGIS on PostgreSQL and by shapely elsewhere.

Services call these functions and never care which backend answers; the tests
run both paths against the same expectations.
"""
from __future__ import annotations

from typing import Sequence

import shapely
from shapely.prepared import prep
from sqlalchemy import and_, select, text
from sqlalchemy.orm import Session

from geodata.areas import outside_area_m2

from ..db import is_postgres
from ..models import GIProduct, OriginArea

PLOT_TOLERANCE_M = 1.0

_PG_OUTSIDE_SQL = text("""
WITH p AS (SELECT ST_SetSRID(ST_GeomFromWKB(:wkb), 4326) AS g),
     a AS (SELECT ST_Intersection(o.geom, ST_Expand(p.g, 0.01)) AS g
           FROM origin_areas o, p WHERE o.id = :area_id)
SELECT CASE
         WHEN ST_CoveredBy(p.g, a.g) THEN 0.0
         WHEN ST_IsEmpty(a.g) THEN ST_Area(p.g::geography)
         ELSE ST_Area(ST_Difference(p.g, ST_Buffer(a.g::geography, :tol)::geometry)::geography)
       END
FROM p, a
""")


def outside_m2(session: Session, area: OriginArea, geom: shapely.Geometry,
               tolerance_m: float = PLOT_TOLERANCE_M) -> float:
    """How many m² of `geom` lie outside the production area, beyond the tolerance."""
    if is_postgres(session):
        value = session.execute(_PG_OUTSIDE_SQL, {"wkb": shapely.to_wkb(geom), "area_id": area.id,
                                                  "tol": tolerance_m}).scalar_one()
        return float(value or 0.0)
    return float(outside_area_m2(geom, area.geom, tolerance_m=tolerance_m))


def current_areas_intersecting(session: Session, bbox: Sequence[float] | None,
                               gi_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of GIs whose current production area intersects the bbox (lon/lat), in id order."""
    stmt = select(GIProduct.id).join(OriginArea, OriginArea.id == GIProduct.origin_area_id)
    if gi_ids is not None:
        stmt = stmt.where(GIProduct.id.in_(gi_ids))
    if bbox is None:
        return list(session.scalars(stmt.order_by(GIProduct.id)))
    minx, miny, maxx, maxy = bbox
    stmt = stmt.where(and_(OriginArea.max_x >= minx, OriginArea.min_x <= maxx,
                           OriginArea.max_y >= miny, OriginArea.min_y <= maxy))
    if is_postgres(session):
        stmt = stmt.where(text("ST_Intersects(origin_areas.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))")
                          .bindparams(x0=minx, y0=miny, x1=maxx, y1=maxy))
        return list(session.scalars(stmt.order_by(GIProduct.id)))
    box = shapely.box(minx, miny, maxx, maxy)
    rows = session.execute(stmt.add_columns(OriginArea.geom).order_by(GIProduct.id)).all()
    prepared = prep(box)
    return [gi_id for gi_id, geom in rows if prepared.intersects(geom)]

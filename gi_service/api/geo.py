"""Administrative units and point -> jurisdiction lookup."""
from __future__ import annotations

from pydantic import Field

from geodata.admin import get_registry

from ..errors import NotFound
from ..http.access import public
from ..http.contract import endpoint
from ..http.schemas import Query
from ..services import jurisdiction
from . import bp
from .schemas import PointQuery, PointsBody


def _unit(u) -> dict:
    return {"adcode": u.adcode, "name": u.name, "level": u.level, "parent": u.parent, "full_name": u.full_name}


class UnitSearchQuery(Query):
    q: str = Field(min_length=1, max_length=50, description="name or part of it, e.g. 谯城")


@endpoint(bp, "/admin-units", access=public(), query=UnitSearchQuery, tags=["geo"],
          summary="Search administrative divisions by name")
def search_units(principal, query: UnitSearchQuery):
    return {"items": [_unit(u) for u in get_registry().search(query.q)[:100]]}


@endpoint(bp, "/admin-units/<adcode>", access=public(), tags=["geo"], responses={404: "unknown adcode"},
          summary="One administrative division with its parents and children")
def get_unit(principal, adcode: str):
    registry = get_registry()
    unit = registry.get(adcode)
    if unit is None:
        raise NotFound(f"adcode {adcode} is not a known administrative division", code="unknown_adcode")
    return {**_unit(unit), "ancestors": [_unit(u) for u in registry.ancestors(adcode)],
            "children": [_unit(u) for u in registry.children(adcode)]}


@endpoint(bp, "/jurisdiction", access=public(), query=PointQuery, tags=["geo"],
          summary="Which county, city and province a WGS-84 point lies in")
def point_jurisdiction(principal, query: PointQuery):
    return {"lon": query.lon, "lat": query.lat, **jurisdiction.classify([query.lon], [query.lat])[0]}


@endpoint(bp, "/jurisdiction", methods=["POST"], access=public(), body=PointsBody, tags=["geo"],
          summary="Classify a batch of WGS-84 points (up to 100,000) into county, city and province")
def batch_jurisdiction(principal, body: PointsBody):
    lons = [p[0] for p in body.points]
    lats = [p[1] for p in body.points]
    return {"results": jurisdiction.classify(lons, lats)}

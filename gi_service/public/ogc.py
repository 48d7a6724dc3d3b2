"""OGC API - Features (Part 1: Core, GeoJSON) for the production areas.

QGIS, GDAL's OAPIF driver and geopandas read ``/collections/origin-areas/items``
directly. One feature per GI, carrying its current production area.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import undefer

from geodata.areas import to_geojson_geometry

from ..db import get_session
from ..errors import GIError, MalformedRequest, NotFound
from ..http.access import Access, current_principal, public
from ..http.contract import EndpointSpec, SPECS
from ..models import GIProduct, OriginArea
from ..services import spatial

bp = Blueprint("ogc", __name__)

COLLECTION = "origin-areas"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
]
DEFAULT_LIMIT, MAX_LIMIT = 10, 1000


def _link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


def _url(endpoint: str, **values: Any) -> str:
    return url_for(endpoint, _external=True, **values)


def _check_params(allowed: set[str], *, html: bool = False) -> None:
    """Refuse unknown parameters (400) and a format `f` this resource does not offer (406): only the
    landing page has an HTML view; every other resource is JSON (GeoJSON for features)."""
    unknown = sorted(set(request.args) - allowed - {"f"})
    if unknown:
        raise MalformedRequest(f"unknown query parameter(s): {', '.join(unknown)}; "
                               f"supported: {', '.join(sorted(allowed | {'f'}))}", code="unknown_parameter")
    fmt = request.args.get("f")
    offered = ("json", "geojson", "html") if html else ("json", "geojson")
    if fmt is not None and fmt not in offered:
        raise GIError(f"format {fmt!r} is not offered here; use {' or '.join('f=' + f for f in offered)}",
                      code="not_acceptable", status=406)


def _wants_html() -> bool:
    if request.args.get("f") == "html":
        return True
    if request.args.get("f") in ("json", "geojson"):
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json", "application/geo+json"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]


LON = r"-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)"
LAT = r"-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)"
BBOX_PARAM = ("minLon,minLat,maxLon,maxLat (CRS84), minLat <= maxLat; minLon > maxLon crosses the antimeridian",
              {"type": "string", "pattern": f"^{LON},{LAT},{LON},{LAT}$"})


def _register(rule: str, name: str, summary: str, access: Access, query: dict[str, Any] | None = None,
              content_type: str = "application/json", html: bool = False):
    def decorate(view):
        bp.add_url_rule(rule, endpoint=name, view_func=view, methods=["GET"])
        view.gi_access = access
        formats = ["json", "geojson"] + (["html"] if html else [])
        spec = EndpointSpec(rule=rule, methods=("GET",), endpoint=f"ogc.{name}", summary=summary, access=access,
                            tags=("ogc-api-features",), success_content_type=content_type,
                            alt_content_types=("text/html",) if html else (),
                            responses={400: "unknown or malformed query parameter",
                                       406: "a format (f) this resource does not offer"})
        spec.query_params = {**(query or {}), "f": ("the format: " + ", ".join(formats) + " (default: by Accept)",
                                                    {"type": "string", "enum": formats})}
        SPECS.append(spec)
        return view
    return decorate


@_register("/", "landing", "Landing page (OGC API): HTML for people, JSON for clients", public(), html=True)
def landing():
    _check_params(set(), html=True)
    if _wants_html():
        return render_template("home.html", principal=current_principal())
    return jsonify({
        "title": "gi-service: geographical indications of China",
        "description": "GI registry, production areas, special-mark ledger and supervision",
        "links": [
            _link(_url("ogc.landing"), "self", "application/json", "this document"),
            _link(_url("openapi.openapi_json"), "service-desc", "application/vnd.oai.openapi+json;version=3.1",
                  "the API definition"),
            _link(_url("openapi.docs"), "service-doc", "text/html", "the API documentation"),
            _link(_url("ogc.conformance"), "conformance", "application/json", "conformance classes"),
            _link(_url("ogc.collections"), "data", "application/json", "feature collections"),
        ],
    })


@_register("/conformance", "conformance", "OGC API conformance classes", public())
def conformance():
    _check_params(set())
    return jsonify({"conformsTo": CONFORMANCE})


def _collection() -> dict[str, Any]:
    session = get_session()
    extent = session.execute(select(func.min(OriginArea.min_x), func.min(OriginArea.min_y),
                                    func.max(OriginArea.max_x), func.max(OriginArea.max_y))
                             .join(GIProduct, GIProduct.origin_area_id == OriginArea.id)).one()
    bbox = [list(extent)] if extent[0] is not None else [[73.0, 3.0, 136.0, 54.0]]
    return {
        "id": COLLECTION,
        "title": "GI production areas",
        "description": "The current production (protected) area of each geographical indication, WGS-84",
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": bbox, "crs": CRS84}},
        "links": [
            _link(_url("ogc.collection", collection_id=COLLECTION), "self", "application/json", "this collection"),
            _link(_url("ogc.items", collection_id=COLLECTION), "items", "application/geo+json", "the areas"),
        ],
    }


@_register("/collections", "collections", "Feature collections", public())
def collections():
    _check_params(set())
    return jsonify({"links": [_link(_url("ogc.collections"), "self", "application/json", "this document")],
                    "collections": [_collection()]})


def _require_collection(collection_id: str) -> None:
    if collection_id != COLLECTION:
        raise NotFound(f"no collection {collection_id!r}; the only one is {COLLECTION!r}", code="no_collection")


@_register("/collections/<collection_id>", "collection", "The origin-areas collection", public())
def collection(collection_id: str):
    _check_params(set())
    _require_collection(collection_id)
    return jsonify(_collection())


def _parse_bbox(raw: str | None) -> list[float] | None:
    if raw is None:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        raise MalformedRequest("bbox must be four numbers: minLon,minLat,maxLon,maxLat", code="bad_bbox") from None
    if len(values) != 4:
        raise MalformedRequest("bbox must have four numbers (2D): minLon,minLat,maxLon,maxLat", code="bad_bbox")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise MalformedRequest("bbox is outside WGS-84 lon/lat ranges or has minLat > maxLat", code="bad_bbox")
    return values


def _areas_in(session, bbox: list[float] | None) -> list[int]:
    """Ids of the areas meeting the bbox; one with minLon > maxLon crosses the antimeridian (OGC API -
    Features): the part east of minLon and the part west of maxLon."""
    if bbox is None or bbox[0] <= bbox[2]:
        return spatial.current_areas_intersecting(session, bbox)
    minx, miny, maxx, maxy = bbox
    east = spatial.current_areas_intersecting(session, [minx, miny, 180.0, maxy])
    west = spatial.current_areas_intersecting(session, [-180.0, miny, maxx, maxy])
    return sorted(set(east) | set(west))


def _int_param(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MalformedRequest(f"{name} must be an integer", code=f"bad_{name}") from None
    if value < lo:
        raise MalformedRequest(f"{name} must be >= {lo}", code=f"bad_{name}")
    return min(value, hi)


def _feature(gi: GIProduct, area: OriginArea) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": gi.id,
        "bbox": [area.min_x, area.min_y, area.max_x, area.max_y],
        "geometry": to_geojson_geometry(area.geom),
        "properties": {
            "name_zh": gi.name_zh, "name_pinyin": gi.name_pinyin, "name_en": gi.name_en,
            "kind": gi.kind.value, "status": gi.status.value, "category": gi.category.value,
            "registration_no": gi.registration_no, "area_description": gi.area_description,
            "area_km2": round(area.area_m2 / 1e6, 3), "area_mu": round(area.area_mu, 1),
            "adcodes": area.adcodes, "source": area.source, "source_crs": area.source_crs,
            "gi_version": gi.version, "updated_at": gi.updated_at.isoformat(),
        },
        "links": [_link(_url("ogc.item", collection_id=COLLECTION, feature_id=gi.id), "self",
                        "application/geo+json", gi.name_zh),
                  _link(_url("api.get_gi", gi_id=gi.id), "describedby", "application/json", "the GI record")],
    }


def _with_area():
    return (select(GIProduct, OriginArea).join(OriginArea, OriginArea.id == GIProduct.origin_area_id)
            .options(undefer(OriginArea.geom)))


def _geojson(body: dict[str, Any]):
    resp = jsonify(body)
    resp.mimetype = "application/geo+json"
    return resp


@_register("/collections/<collection_id>/items", "items", "Production areas as GeoJSON, paged, with bbox filter",
           public(), query={"limit": ("features per page, default 10; more than 1000 is taken as 1000",
                                      {"type": "integer", "minimum": 1}),
                            "offset": ("start index", {"type": "integer", "minimum": 0}),
                            "bbox": BBOX_PARAM}, content_type="application/geo+json")
def items(collection_id: str):
    _require_collection(collection_id)
    _check_params({"limit", "offset", "bbox"})
    limit = _int_param("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param("offset", 0, 0, 10**9)
    bbox = _parse_bbox(request.args.get("bbox"))
    session = get_session()
    ids = _areas_in(session, bbox)
    page_ids = ids[offset:offset + limit]
    rows = session.execute(_with_area().where(GIProduct.id.in_(page_ids)).order_by(GIProduct.id)).all() \
        if page_ids else []
    args = {k: v for k, v in request.args.items() if k not in ("offset", "limit")}
    links = [_link(_url("ogc.items", collection_id=COLLECTION, limit=limit, offset=offset, **args), "self",
                   "application/geo+json", "this page"),
             _link(_url("ogc.collection", collection_id=COLLECTION), "collection", "application/json",
                   "the collection")]
    if offset + limit < len(ids):
        links.append(_link(_url("ogc.items", collection_id=COLLECTION, limit=limit, offset=offset + limit, **args),
                           "next", "application/geo+json", "next page"))
    if offset > 0:
        links.append(_link(_url("ogc.items", collection_id=COLLECTION, limit=limit,
                                offset=max(0, offset - limit), **args), "prev", "application/geo+json",
                           "previous page"))
    features = [_feature(gi, area) for gi, area in rows]
    body: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if features:
        body["bbox"] = [min(f["bbox"][0] for f in features), min(f["bbox"][1] for f in features),
                        max(f["bbox"][2] for f in features), max(f["bbox"][3] for f in features)]
    body.update(numberMatched=len(ids), numberReturned=len(features),
                timeStamp=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                links=links)
    return _geojson(body)


@_register("/collections/<collection_id>/items/<id:feature_id>", "item", "One production area (GeoJSON Feature)",
           public(), content_type="application/geo+json")
def item(feature_id: int, collection_id: str = COLLECTION):
    _require_collection(collection_id)
    _check_params(set())
    session = get_session()
    row = session.execute(_with_area().where(GIProduct.id == feature_id)).first()
    if row is None:
        raise NotFound(f"no feature {feature_id} in {COLLECTION}", code="feature_not_found")
    feature = _feature(*row)
    feature["links"].append(_link(_url("ogc.collection", collection_id=COLLECTION), "collection",
                                  "application/json", "the collection"))
    return _geojson(feature)

"""The GI registry: search, records, versions and production areas."""
from __future__ import annotations

from flask import request, url_for

from geodata.areas import to_geojson_geometry

from .. import clock
from ..db import get_session
from ..errors import MalformedRequest, NotFound, ValidationFailed
from ..http.access import public, signed_in
from ..http.contract import endpoint
from ..http.geojson import area_from_json, area_from_upload
from ..models import OrgKind
from ..services import registry
from . import bp, serialize
from .schemas import AreaBody, AsOfQuery, GIAmendBody, GICreateBody, GISearchQuery

GI_ERRORS = {404: "no such GI"}


@endpoint(bp, "/gis", access=public(), query=GISearchQuery, tags=["registry"],
          summary="Search the GI registry by name (Chinese, pinyin, English), category, kind, status and region")
def search_gis(principal, query: GISearchQuery):
    session = get_session()
    rows, total = registry.search_gis(session, q=query.q, category=query.category, kind=query.kind,
                                      status=query.status, region=query.region, limit=query.limit,
                                      offset=query.offset)
    areas = registry.areas_by_id(session, (r.origin_area_id for r in rows))
    items = [serialize.gi(r, areas.get(r.origin_area_id)) for r in rows]
    result = {"items": items, "total": total, "limit": query.limit, "offset": query.offset, "links": {}}
    args = {k: v for k, v in request.args.items() if k != "offset"}
    if query.offset + len(rows) < total:
        result["links"]["next"] = url_for("api.search_gis", offset=query.offset + query.limit, **args)
    return result


@endpoint(bp, "/gis", methods=["POST"], access=signed_in(OrgKind.authority, note="area units inside its "
                                                                               "jurisdiction"),
          body=GICreateBody, status=201, tags=["registry"],
          summary="Register a GI; its production area is built from area_adcodes when given",
          responses={403: "area outside jurisdiction", 422: "invalid fields or adcodes"})
def create_gi(principal, body: GICreateBody):
    session = get_session()
    values = body.values()
    values.pop("reason", None)
    gi = registry.create_gi(session, values, by=principal, reason=body.reason)
    session.commit()
    return serialize.gi(gi, registry.area_by_id(session, gi.origin_area_id))


@endpoint(bp, "/gis/<id:gi_id>", access=public(), query=AsOfQuery, tags=["registry"], responses=GI_ERRORS,
          summary="A GI record: the current version, or ?as_of=YYYY-MM-DD for the one in force on that day")
def get_gi(principal, gi_id: int, query: AsOfQuery):
    session = get_session()
    if query.as_of is None:
        gi = registry.get_gi(session, gi_id)
        return serialize.gi(gi, registry.area_by_id(session, gi.origin_area_id))
    version = registry.gi_version_as_of(session, gi_id, clock.end_of_day(query.as_of))
    data = serialize.gi_version(version)
    area = registry.area_by_id(session, version.origin_area_id)
    data["origin_area"] = serialize.origin_area_summary(area) if area else None
    data["as_of"] = query.as_of.isoformat()
    return data


@endpoint(bp, "/gis/<id:gi_id>", methods=["PATCH"], body=GIAmendBody, tags=["registry"],
          access=signed_in(OrgKind.authority, note="the registering authority or one covering the whole area"),
          summary="Amend a GI record; every change is a new version with who, when and why",
          responses={**GI_ERRORS, 403: "outside jurisdiction", 409: "expected_version is stale",
                     422: "invalid fields, or nothing changed"})
def amend_gi(principal, gi_id: int, body: GIAmendBody):
    session = get_session()
    gi = registry.amend_gi(session, gi_id, body.values(), by=principal, reason=body.reason,
                           expected_version=body.expected_version)
    session.commit()
    return serialize.gi(gi, registry.area_by_id(session, gi.origin_area_id))


@endpoint(bp, "/gis/<id:gi_id>/versions", access=public(), tags=["registry"], responses=GI_ERRORS,
          summary="The full history of a GI record, oldest first")
def list_gi_versions(principal, gi_id: int):
    versions = registry.list_versions(get_session(), gi_id)
    return {"gi_id": gi_id, "versions": [serialize.gi_version(v) for v in versions]}


@endpoint(bp, "/gis/<id:gi_id>/versions/<id:version>", access=public(), tags=["registry"],
          responses={404: "no such GI or version"}, summary="One version of a GI record")
def get_gi_version(principal, gi_id: int, version: int):
    return serialize.gi_version(registry.get_version(get_session(), gi_id, version))


@endpoint(bp, "/gis/<id:gi_id>/area", access=public(), query=AsOfQuery, tags=["registry"],
          responses={404: "no such GI, or it has no area"}, content_type="application/geo+json",
          summary="The production area as a GeoJSON Feature (WGS-84), current or ?as_of")
def get_gi_area(principal, gi_id: int, query: AsOfQuery):
    session = get_session()
    if query.as_of is None:
        record = registry.get_gi(session, gi_id)
    else:
        record = registry.gi_version_as_of(session, gi_id, clock.end_of_day(query.as_of))
    area = registry.area_by_id(session, record.origin_area_id)
    if area is None:
        raise NotFound(f"GI {gi_id} has no production area geometry", code="no_area")
    from flask import jsonify
    resp = jsonify({"type": "Feature", "id": gi_id, "bbox": [area.min_x, area.min_y, area.max_x, area.max_y],
                    "geometry": to_geojson_geometry(area.geom),
                    "properties": {"gi_id": gi_id, "name_zh": record.name_zh,
                                   **serialize.origin_area_summary(area)}})
    resp.mimetype = "application/geo+json"
    return resp


@endpoint(bp, "/gis/<id:gi_id>/area", methods=["PUT"], body=AreaBody, tags=["registry"],
          access=signed_in(OrgKind.authority, note="the GI's managing authority"),
          summary="Replace the production area with a GeoJSON geometry (a new version)",
          responses={**GI_ERRORS, 403: "outside jurisdiction", 422: "invalid geometry, with the reason"})
def put_gi_area(principal, gi_id: int, body: AreaBody):
    session = get_session()
    registry.require_manage(session, principal, registry.get_gi(session, gi_id))
    result = area_from_json(body.geometry)
    gi = registry.replace_area(session, gi_id, result, by=principal, reason=body.reason,
                               description=body.description)
    session.commit()
    return serialize.gi(gi, registry.area_by_id(session, gi.origin_area_id))


@endpoint(bp, "/gis/<id:gi_id>/area/upload", methods=["POST"], body_content_type="multipart/form-data",
          access=signed_in(OrgKind.authority, note="the GI's managing authority"), tags=["registry"],
          summary="Replace the production area from an uploaded GeoJSON, GeoPackage or zipped Shapefile "
                  "(form fields: file, reason, description); reprojected to WGS-84",
          responses={**GI_ERRORS, 403: "outside jurisdiction", 413: "file too large",
                     422: "unreadable file, missing CRS or invalid geometry"})
def upload_gi_area(principal, gi_id: int):
    session = get_session()
    registry.require_manage(session, principal, registry.get_gi(session, gi_id))
    if not request.mimetype.startswith("multipart/form-data"):
        raise MalformedRequest("upload the file as multipart/form-data with a `file` field",
                               code="unsupported_media_type", status=415)
    upload = request.files.get("file")
    reason = (request.form.get("reason") or "").strip()
    unknown = sorted(set(request.form) - {"reason", "description"}) + sorted(set(request.files) - {"file"})
    problems = []
    if upload is None or not upload.filename:
        problems.append({"field": "file", "problem": "required field is missing"})
    if len(reason) < 2 or len(reason) > 1000:
        problems.append({"field": "reason", "problem": "give the reason for the change (2-1000 characters)"})
    problems += [{"field": f, "problem": "unknown field; remove it"} for f in unknown]
    if problems:
        raise ValidationFailed(f"invalid upload: {problems[0]['field']}: {problems[0]['problem']}", details=problems)
    description = request.form.get("description")
    result = area_from_upload(upload.filename, upload.read())
    gi = registry.replace_area(session, gi_id, result, by=principal, reason=reason, description=description)
    session.commit()
    return serialize.gi(gi, registry.area_by_id(session, gi.origin_area_id))

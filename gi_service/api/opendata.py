"""Open data downloads (公开数据): the registry as CSV and the production areas as a GeoPackage.

Public and cacheable: each answer carries an ETag and Last-Modified, and a conditional request
whose validator still matches is answered 304 — for the GeoPackage before it is built.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Optional

from flask import Response, request, url_for
from pydantic import Field

from ..db import get_session
from ..http.access import public
from ..http.contract import endpoint
from ..http.files import XLSX, file_download
from ..http.schemas import Query
from ..render.csv import registry_csv
from ..render.geopackage import gpkg_file
from ..render.sheets import registry_table
from ..render.xlsx import xlsx_file
from ..services import opendata
from . import bp

TAG = ["open-data"]
CACHE = "public, max-age=300"


class OpenDataQuery(Query):
    as_of: Optional[dt.date] = Field(default=None, description="YYYY-MM-DD: the records in force at the end of that "
                                                               "day (China Standard Time)")


def _conditional(resp: Response, etag: str, modified: dt.datetime | None, *, weak: bool = False) -> Response:
    resp.set_etag(etag, weak=weak)
    if modified is not None:
        resp.last_modified = modified
    resp.headers["Cache-Control"] = CACHE
    return resp.make_conditional(request)


@endpoint(bp, "/open-data", access=public(), tags=TAG,
          summary="The open data sets (registry CSV, production areas GeoPackage) with their data dictionaries")
def open_data_catalogue(principal):
    data = opendata.catalogue(get_session())
    links = {"registry": url_for("api.open_data_registry", _external=True),
             "areas": url_for("api.open_data_areas", _external=True)}
    for d in data["datasets"]:
        d["href"] = links[d["id"]]
        if d["id"] == "registry":   # the same records as an Excel workbook
            d["xlsx_href"] = url_for("api.open_data_registry_xlsx", _external=True)
    return data


@endpoint(bp, "/open-data/registry.csv", access=public(), query=OpenDataQuery, tags=TAG,
          content_type="text/csv", responses={304: "not modified", 400: "malformed as_of"},
          summary="Every GI record in force (public fields, areas as adcodes and km², sales regions) as CSV, UTF-8 "
                  "with BOM; ?as_of=YYYY-MM-DD for the records in force at the end of that day")
def open_data_registry(principal, query: OpenDataQuery):
    session = get_session()
    body = registry_csv(opendata.records(session, query.as_of))
    name = f"gi-registry-{query.as_of.isoformat()}.csv" if query.as_of else "gi-registry.csv"
    resp = Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return _conditional(resp, hashlib.sha256(body).hexdigest()[:32], opendata.last_modified(session, query.as_of))


@endpoint(bp, "/open-data/registry.xlsx", access=public(), query=OpenDataQuery, tags=TAG,
          content_type=XLSX, responses={304: "not modified", 400: "malformed as_of"},
          summary="The registry.csv's records as an Excel workbook: Chinese headers, dates as dates, areas as "
                  "numbers; ?as_of=YYYY-MM-DD as for the CSV")
def open_data_registry_xlsx(principal, query: OpenDataQuery):
    session = get_session()
    items = opendata.records(session, query.as_of)
    # Weak, as the CSV's strong one is of its bytes: two workbooks of the same records differ in their timestamps.
    etag = opendata.validator(items, query.as_of, "registry-xlsx")
    modified = opendata.last_modified(session, query.as_of)
    probe = _conditional(Response(status=200), etag, modified, weak=True)
    if probe.status_code == 304:
        return probe
    name = f"gi-registry-{query.as_of.isoformat()}.xlsx" if query.as_of else "gi-registry.xlsx"
    return _published_file(file_download(*xlsx_file(registry_table(items)), XLSX, name), etag, modified)


@endpoint(bp, "/open-data/areas.gpkg", access=public(), query=OpenDataQuery, tags=TAG,
          content_type="application/geopackage+sqlite3", responses={304: "not modified", 400: "malformed as_of"},
          summary="The production areas of the GIs in force as a GeoPackage: layer origin_areas, EPSG:4326 "
                  "MultiPolygons with gi_id, names, kind, status, area_km2, source, source_crs")
def open_data_areas(principal, query: OpenDataQuery):
    session = get_session()
    items = opendata.records(session, query.as_of)
    # The validator comes from the record versions: a client that has the current file gets its 304
    # without the service building the GeoPackage. Weak, as two builds differ in their timestamps.
    etag = opendata.validator(items, query.as_of, "areas")
    modified = opendata.last_modified(session, query.as_of)
    probe = _conditional(Response(status=200), etag, modified, weak=True)
    if probe.status_code == 304:
        return probe
    items = opendata.records(session, query.as_of, with_geometry=True)
    name = f"gi-areas-{query.as_of.isoformat()}.gpkg" if query.as_of else "gi-areas.gpkg"
    return _published_file(file_download(*gpkg_file(items, as_of=query.as_of), "application/geopackage+sqlite3", name),
                           etag, modified)


def _published_file(resp: Response, etag: str, modified) -> Response:
    """A built file of the open data with its weak validator (two builds differ in their timestamps), its last
    change and the open data's caching."""
    resp.set_etag(etag, weak=True)
    if modified is not None:
        resp.last_modified = modified
    resp.headers["Cache-Control"] = CACHE
    return resp

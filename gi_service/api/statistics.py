"""Statistics of the special mark and its supervision: JSON, CSV, SVG charts and an SVG map.

See services/statistics.py for what each figure counts (every JSON answer also carries these
``definitions``). Authorities and inspection units read their own jurisdiction, or a division
inside it (``adcode``); a national unit (100000) reads all of China.
"""
from __future__ import annotations

import hashlib
from typing import Literal, Optional

from flask import Response, request
from pydantic import Field

from ..db import get_session
from ..models import OrgKind
from ..render.charts import statistics_chart_svg
from ..render.csv import statistics_csv
from ..render.maps import statistics_map_svg
from ..services import statistics as stats
from . import bp
from .framework import endpoint, signed_in
from .schemas import Adcode, Id, Query, Year

TAG = ["statistics"]
ACCESS = signed_in(OrgKind.authority, OrgKind.inspection,
                   note="the caller's jurisdiction, or a division inside it; a national unit (100000) sees all")
ERRORS = {
    403: "not an authority or inspection unit (wrong_role), or adcode outside your jurisdiction "
         "(outside_jurisdiction)",
    422: "year_required, period_conflict, period_reversed, period_too_long, year_in_future, unknown_adcode, "
         "gi_not_found",
}
# A drawing needs nothing from elsewhere: forbid everything but its own inline styles.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"


class ScopeQuery(Query):
    year: Optional[Year] = Field(default=None, description="the calendar year (China Standard Time); give it, or "
                                                           "from_year and to_year for a series")
    from_year: Optional[Year] = Field(default=None, description="first year of a series (with to_year)")
    to_year: Optional[Year] = Field(default=None, description=f"last year of a series (at most {stats.MAX_YEARS} "
                                                              "years)")
    gi_id: Optional[Id] = Field(default=None, description="one GI only")
    adcode: Optional[Adcode] = Field(default=None, description="a province, city or county inside your "
                                                               "jurisdiction (default: your jurisdiction)")


class StatisticsQuery(ScopeQuery):
    group_by: Optional[Literal["gi", "region", "year"]] = Field(
        default=None, description="breakdown: per GI, per region one level down (a province's cities, a city's "
                                  "counties), or per year of the series")
    format: Literal["json", "csv"] = Field(default="json", description="csv: UTF-8 with BOM, one row per group "
                                                                       "and a total row")


class ChartQuery(ScopeQuery):
    group_by: Optional[Literal["gi", "region", "year"]] = Field(
        default=None, description="coverage chart only: bars per GI (default), region or year")


class MapQuery(ScopeQuery):
    layers: Optional[str] = Field(default=None, max_length=40,
                                  description="comma-separated: findings, alerts (default both)")


_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
FIGURES_SCHEMA = {
    "type": "object",
    "properties": {
        "coverage": {"type": "object", "properties": {
            "eligible": {"type": "integer"}, "users": {"type": "integer"}, "non_users": {"type": "integer"},
            "rate": {"type": "number", "nullable": True}, "percent": {"type": "number", "nullable": True},
            "target": {"type": "number"}, "meets_target": {"type": "boolean", "nullable": True},
            "users_needed_for_target": {"type": "integer"}}},
        "marks": _COUNTS,
        "checks": {"type": "object", "properties": {"total": {"type": "integer"}, "by_verdict": _COUNTS,
                                                    "located": {"type": "integer"}, "bots": {"type": "integer"}}},
        "alerts": {"type": "object", "properties": {"total": {"type": "integer"}, "by_kind": _COUNTS,
                                                    "occurrences": {"type": "integer"}}},
        "consumer_reports": {"type": "integer"},
        "findings": {"type": "object", "properties": {
            "total": {"type": "integer"}, "with_violations": {"type": "integer"},
            "without_violations": {"type": "integer"}, "by_violation": _COUNTS, "by_premises": _COUNTS}},
        "cases": {"type": "object", "properties": {
            "opened": {"type": "integer"}, "referred": {"type": "integer"}, "concluded": {"type": "integer"},
            "by_outcome": _COUNTS, "serious": {"type": "integer"}}},
        "output": {"type": "object", "properties": {
            "reports_due": {"type": "integer"}, "reports_submitted": {"type": "integer"},
            "reports_missing": {"type": "integer"}, "reports_late": {"type": "integer"},
            "output_kg": {"type": "number"}, "output_value_yuan": {"type": "number"}}},
    },
}
STATISTICS_SCHEMA = {
    "type": "object",
    "properties": {
        "period": {"type": "object", "description": "from_year, to_year, from/until (UTC instants), timezone, "
                                                    "complete (the period is over)"},
        "scope": {"type": "object", "description": "region {adcode, name, full_name, level} and gi (or null)"},
        "group_by": {"type": "string", "nullable": True, "enum": ["gi", "region", "year"]},
        "total": FIGURES_SCHEMA,
        "groups": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "object", "description": "{gi: {id, name_zh, name_en}} | {region: {...}, direct?, "
                                                     "label?} | {year}"},
            "figures": FIGURES_SCHEMA}}},
        "definitions": {"type": "object", "description": "what each figure counts, in Chinese (zh) and English (en)"},
        "labels": {"type": "object", "description": "Chinese and English names of every breakdown key"},
        "generated_at": {"type": "string", "format": "date-time"},
    },
}


def _scope(session, principal, query: ScopeQuery) -> stats.Scope:
    return stats.resolve_scope(session, principal, year=query.year, from_year=query.from_year,
                               to_year=query.to_year, gi_id=query.gi_id, adcode=query.adcode)


def _svg(body: str) -> Response:
    resp = Response(body, mimetype="image/svg+xml")
    resp.headers["Cache-Control"] = "private, no-cache"
    resp.headers["Content-Security-Policy"] = SVG_CSP
    # The drawing is deterministic: the same figures give the same bytes, so a dashboard can revalidate.
    resp.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    return resp.make_conditional(request)


@endpoint(bp, "/statistics", access=ACCESS, query=StatisticsQuery, tags=TAG, responses=ERRORS,
          response_schema=STATISTICS_SCHEMA,
          summary="Coverage of the special mark (against 90%), marks printed/issued/activated/voided, checks, alerts, "
                  "findings, cases and declared output, per GI, region (adcode tree) and year; JSON or ?format=csv")
def statistics(principal, query: StatisticsQuery):
    session = get_session()
    scope = _scope(session, principal, query)
    data = stats.compute(session, scope, query.group_by).to_dict()
    if query.format == "csv":
        years = str(scope.from_year) if scope.from_year == scope.to_year else f"{scope.from_year}-{scope.to_year}"
        name = f"statistics-{years}-{scope.region.adcode}{f'-gi{scope.gi_id}' if scope.gi_id else ''}" \
               f"{f'-by-{query.group_by}' if query.group_by else ''}.csv"
        return Response(statistics_csv(data), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "private, no-store"})
    return data


@endpoint(bp, "/statistics/charts/<name>.svg", access=ACCESS, query=ChartQuery, tags=TAG,
          content_type="image/svg+xml",
          responses={**ERRORS, 404: "no chart of that name (chart_not_found); charts: " + ", ".join(stats.CHARTS),
                     422: ERRORS[422] + "; single_year_required (marks-by-month)"},
          summary="A chart as an accessible, self-contained SVG: "
                  + "; ".join(f"{k} — {v}" for k, v in stats.CHARTS.items()))
def statistics_chart(principal, name: str, query: ChartQuery):
    session = get_session()
    stats.require_chart(name)   # before the scope: an unknown chart is wrong whatever the period
    scope = _scope(session, principal, query)
    return _svg(statistics_chart_svg(session, scope, name, group_by=query.group_by))


@endpoint(bp, "/statistics/map.svg", access=ACCESS, query=MapQuery, tags=TAG, content_type="image/svg+xml",
          responses={**ERRORS, 422: ERRORS[422] + "; unknown_layer"},
          summary="An SVG map of the region (its outline and the next level down, from the service's own boundary "
                  "data, no map tiles) with findings at their points and copied-label alerts at their check's "
                  "rounded location or county centre; more than 300 points of a layer are shown per county")
def statistics_map(principal, query: MapQuery):
    session = get_session()
    layers = stats.parse_layers(query.layers)
    scope = _scope(session, principal, query)
    return _svg(statistics_map_svg(session, scope, layers))

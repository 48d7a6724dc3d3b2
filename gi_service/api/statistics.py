"""Statistics of the special mark and its supervision: JSON, CSV, SVG charts and an SVG map.

See services/statistics.py for what each figure counts (every JSON answer also carries these
``definitions``). Authorities and inspection units read their own jurisdiction, or a division
inside it (``adcode``); a national unit (100000) reads all of China.
"""
from __future__ import annotations

from ..http.access import signed_in
from ..http.answers import statistics as answers
from ..http.answers.statistics import ChartQuery, MapQuery, StatisticsQuery
from ..http.contract import endpoint
from ..models import OrgKind
from ..services import statistics as stats
from . import bp

TAG = ["statistics"]
ACCESS = signed_in(OrgKind.authority, OrgKind.inspection, standby_reads=True,
                   note="the caller's jurisdiction, or a division inside it; a national unit (100000) sees all")
ERRORS = {
    403: "not an authority or inspection unit (wrong_role), or adcode outside your jurisdiction "
         "(outside_jurisdiction)",
    422: "year_required, period_conflict, period_reversed, period_too_long, year_in_future, unknown_adcode, "
         "gi_not_found",
}


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


@endpoint(bp, "/statistics", access=ACCESS, query=StatisticsQuery, tags=TAG, responses=ERRORS,
          response_schema=STATISTICS_SCHEMA,
          summary="Coverage of the special mark (against 90%), marks printed/issued/activated/voided, checks, alerts, "
                  "findings, cases and declared output, per GI, region (adcode tree) and year; JSON or ?format=csv")
def statistics(principal, query: StatisticsQuery):
    return answers.figures(principal, query)


@endpoint(bp, "/statistics/charts/<name>.svg", access=ACCESS, query=ChartQuery, tags=TAG,
          content_type="image/svg+xml",
          responses={**ERRORS, 404: "no chart of that name (chart_not_found); charts: " + ", ".join(stats.CHARTS),
                     422: ERRORS[422] + "; single_year_required (marks-by-month)"},
          summary="A chart as an accessible, self-contained SVG: "
                  + "; ".join(f"{k} — {v}" for k, v in stats.CHARTS.items()))
def statistics_chart(principal, name: str, query: ChartQuery):
    return answers.chart(principal, name, query)


@endpoint(bp, "/statistics/map.svg", access=ACCESS, query=MapQuery, tags=TAG, content_type="image/svg+xml",
          responses={**ERRORS, 422: ERRORS[422] + "; unknown_layer"},
          summary="An SVG map of the region (its outline and the next level down, from the service's own boundary "
                  "data, no map tiles) with findings at their points and copied-label alerts at their check's "
                  "rounded location or county centre; more than 300 points of a layer are shown per county")
def statistics_map(principal, query: MapQuery):
    return answers.region_map(principal, query)

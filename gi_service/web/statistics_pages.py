"""The statistics dashboard: the figures of the special mark and its supervision for the caller's jurisdiction
(or a division inside it, one GI, a year or a series of years), the breakdown per GI, region or year, the charts
and the map of findings and alerts.

Everything comes from ``services.statistics`` — the functions behind ``GET /api/v1/statistics``, its charts and
its map — called with the signed-in user, so the scope rules (403 outside the jurisdiction, 422 for a bad
period) are the API's. The SVG drawings are embedded in the page as they are (they use presentation attributes
only, so the page's CSP needs nothing more); each is also a download through ``/app/statistics/…``, answered
by ``http.answers.statistics`` from the same queries as the API's, so the files are the API's byte for byte.
"""
from __future__ import annotations

from flask import request
from sqlalchemy import select

from ..db import get_session
from ..errors import GIError, ValidationFailed
from ..http.answers import statistics as answers
from ..http.answers.statistics import ChartQuery, MapQuery, StatisticsQuery
from ..http.files import XLSX
from ..http.parsing import parse_model
from .. import clock
from ..i18n import current_lang, t
from ..models import GIProduct
from ..render.charts import statistics_chart_svg
from ..render.maps import statistics_map_svg
from ..services import statistics as stats
from .framework import AUTHORITY, INSPECTION, page, problem, render, rollback

SUPERVISORS = (AUTHORITY, INSPECTION)
SERIES_YEARS = 5
GROUPS = ("gi", "region", "year")


def _int(name: str) -> int | None:
    raw = (request.args.get(name) or "").strip()
    return int(raw) if raw.isdecimal() else None  # isdigit() would let ² through to int()


def _choices() -> dict:
    """What the dashboard's form asks: year, GI, division and breakdown (per year: the last five years)."""
    current = clock.china_year(clock.now())
    year = _int("year") or current
    group_by = request.args.get("group_by") or "gi"
    if group_by not in GROUPS:
        group_by = "gi"
    args = {"gi_id": _int("gi_id"), "adcode": (request.args.get("adcode") or "").strip() or None}
    if group_by == "year":
        args.update(from_year=max(2000, year - SERIES_YEARS + 1), to_year=year)
    else:
        args["year"] = year
    return {"year": year, "current": current, "group_by": group_by, "args": args}


def _link_args(choice: dict) -> dict[str, str]:
    """The dashboard's own parameters (for its download links): the same choice again."""
    return {k: str(v) for k, v in (("year", choice["year"]), ("gi_id", choice["args"]["gi_id"]),
                                   ("adcode", choice["args"]["adcode"])) if v is not None}


def _query_args(choice: dict) -> dict[str, str]:
    """The API's query parameters for the same scope."""
    return {k: str(v) for k, v in choice["args"].items() if v is not None}


@page("/app/statistics", "statistics", kinds=SUPERVISORS, standby_reads=True,
      summary="The statistics dashboard: coverage against 90%, marks, checks, alerts, findings, cases and declared "
              "output for the jurisdiction (or a division, a GI, a year or five), with charts and the map of findings",
      note="the caller's jurisdiction, or a division inside it")
def dashboard(principal):
    db = get_session()
    choice = _choices()
    gis = list(db.scalars(select(GIProduct).order_by(GIProduct.name_zh)))
    data = charts = region_map = None
    error, status = None, 200
    try:
        scope = stats.resolve_scope(db, principal, **choice["args"])
        data = stats.compute(db, scope, choice["group_by"]).to_dict()
        names = ["coverage", "findings-by-violation", "checks-by-verdict"]
        if scope.from_year == scope.to_year:
            names.insert(1, "marks-by-month")
        charts = [(name, statistics_chart_svg(db, scope, name,
                                              group_by=choice["group_by"] if name == "coverage" else None))
                  for name in names]
        region_map = statistics_map_svg(db, scope)
    except (ValidationFailed, GIError) as exc:
        rollback()
        if int(exc.status) not in (403, 422):
            raise
        error, status = problem(exc), int(exc.status)
    return render("app/statistics.html", status=status, data=data, charts=charts, region_map=region_map, choice=choice, gis=gis, groups=GROUPS,
                  years=list(range(choice["current"], choice["current"] - 10, -1)), query=_link_args(choice),
                  error=error, group_name=lambda g: group_name(g, current_lang()))


@page("/app/statistics/export", "statistics_export", kinds=SUPERVISORS, standby_reads=True, content_type="text/csv",
      alt_content_types=(XLSX,),
      summary="The dashboard's figures as CSV (UTF-8 with BOM), Excel (?format=xlsx) or JSON, as GET "
              "/api/v1/statistics",
      note="the caller's jurisdiction, or a division inside it")
def statistics_export(principal):
    choice = _choices()
    fmt = request.args.get("format") or "csv"
    query = parse_model(StatisticsQuery, {**_query_args(choice), "group_by": choice["group_by"],
                                          "format": fmt if fmt in ("json", "xlsx") else "csv"}, "query")
    return answers.figures(principal, query)


@page("/app/statistics/charts/<name>.svg", "statistics_chart", kinds=SUPERVISORS, standby_reads=True, content_type="image/svg+xml",
      summary="One chart of the dashboard as SVG, as GET /api/v1/statistics/charts/{name}.svg")
def statistics_chart(principal, name: str):
    choice = _choices()
    args = _query_args(choice)
    if name == "coverage":
        args["group_by"] = choice["group_by"]
    query = parse_model(ChartQuery, args, "query")
    return answers.chart(principal, name, query)


@page("/app/statistics/map.svg", "statistics_map", kinds=SUPERVISORS, standby_reads=True, content_type="image/svg+xml",
      summary="The map of findings and alerts as SVG, as GET /api/v1/statistics/map.svg")
def statistics_map(principal):
    query = parse_model(MapQuery, _query_args(_choices()), "query")
    return answers.region_map(principal, query)


def group_name(group: dict, lang: str) -> str:
    """The name of one row of the breakdown (a GI, a region or a year) in the page's language."""
    key = group["key"]
    if "year" in key:
        return str(key["year"])
    if "label" in key:
        return key["label"]["en" if lang == "en" else "zh"]
    if "gi" in key and key["gi"]:
        return key["gi"]["name_en"] if lang == "en" and key["gi"].get("name_en") else key["gi"]["name_zh"]
    if key.get("region"):
        return key["region"]["name"]
    return t("none")

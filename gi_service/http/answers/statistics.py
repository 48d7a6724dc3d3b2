"""The statistics as files: the figures (JSON, CSV or Excel), a chart and the map as SVG.

``GET /api/v1/statistics…`` and the dashboard's downloads (``/app/statistics/…``) answer them; see
services/statistics.py for what each figure counts.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ...db import get_session
from ...render.charts import statistics_chart_svg
from ...render.csv import statistics_csv
from ...render.sheets import statistics_table
from ...render.maps import statistics_map_svg
from ...services import statistics as stats
from ..files import download, spreadsheet, svg_drawing
from ..schemas import Adcode, Id, Query, Year


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
    format: Literal["json", "csv", "xlsx"] = Field(
        default="json", description="csv: UTF-8 with BOM; xlsx: an Excel workbook (numbers as numbers); one row per "
                                    "group and a total row")


class ChartQuery(ScopeQuery):
    group_by: Optional[Literal["gi", "region", "year"]] = Field(
        default=None, description="coverage chart only: bars per GI (default), region or year")


class MapQuery(ScopeQuery):
    layers: Optional[str] = Field(default=None, max_length=40,
                                  description="comma-separated: findings, alerts (default both)")


def _scope(session, principal, query: ScopeQuery) -> stats.Scope:
    return stats.resolve_scope(session, principal, year=query.year, from_year=query.from_year,
                               to_year=query.to_year, gi_id=query.gi_id, adcode=query.adcode)


def figures(principal, query: StatisticsQuery):
    """The figures of the scope, as JSON or as a CSV or Excel download."""
    session = get_session()
    scope = _scope(session, principal, query)
    data = stats.compute(session, scope, query.group_by).to_dict()
    if query.format in ("csv", "xlsx"):
        years = str(scope.from_year) if scope.from_year == scope.to_year else f"{scope.from_year}-{scope.to_year}"
        name = f"statistics-{years}-{scope.region.adcode}{f'-gi{scope.gi_id}' if scope.gi_id else ''}" \
               f"{f'-by-{query.group_by}' if query.group_by else ''}.{query.format}"
        if query.format == "xlsx":
            return spreadsheet(statistics_table(data), name)
        return download(statistics_csv(data), "text/csv", name)
    return data


def chart(principal, name: str, query: ChartQuery):
    """One chart of the scope as SVG."""
    session = get_session()
    stats.require_chart(name)   # before the scope: an unknown chart is wrong whatever the period
    scope = _scope(session, principal, query)
    return svg_drawing(statistics_chart_svg(session, scope, name, group_by=query.group_by))


def region_map(principal, query: MapQuery):
    """The map of the scope's findings and alerts as SVG."""
    session = get_session()
    layers = stats.parse_layers(query.layers)
    scope = _scope(session, principal, query)
    return svg_drawing(statistics_map_svg(session, scope, layers))

"""Open data: the GI registry and the production areas as published (公开数据); render/ writes the files
(render/csv.registry_csv, render/geopackage.py).

Only records in force are published (registered or amended: not applications, publications
still open to opposition, or revoked records), with their public fields only; internal
fields (quality requirements, testing body, standard yield, alert thresholds, the serial
prefix of the marks) stay in the API. `as_of` gives the records as they stood at the end of
a day in China Standard Time, from the version history.

Both files are derived from the record versions alone, so a validator of the data (the
versions in force) lets clients revalidate without the service building the file again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from geodata.admin import get_registry

from .. import clock
from ..models import GICategory, GIKind, GIProduct, GIStatus, GIVersion, OriginArea
from .verification import KIND_LABELS

IN_FORCE = (GIStatus.registered, GIStatus.amended)
# Part of every validator: a change of the published columns must not be served from caches.
FORMAT_VERSION = "opendata-1"
LAYER = "origin_areas"

CATEGORY_ZH = {
    GICategory.tea: "茶叶", GICategory.grain: "粮食", GICategory.fruit: "水果", GICategory.vegetable: "蔬菜",
    GICategory.meat: "肉类", GICategory.aquatic: "水产品", GICategory.herbal_medicine: "中药材",
    GICategory.wine: "葡萄酒", GICategory.spirits: "酒类", GICategory.processed_food: "加工食品",
    GICategory.handicraft: "手工艺品", GICategory.other: "其他",
}
STATUS_ZH = {GIStatus.applied: "申请中", GIStatus.published: "已公告", GIStatus.registered: "已登记",
             GIStatus.amended: "已变更", GIStatus.revoked: "已撤销"}

REGISTRY_COLUMNS: list[tuple[str, str]] = [
    ("gi_id", "record id in this service (stable)"),
    ("version", "version of the record (each amendment makes a new one)"),
    ("name_zh", "名称 protected name in Chinese"),
    ("name_pinyin", "名称拼音"),
    ("name_en", "English name"),
    ("kind", "protected_product | collective_mark | certification_mark | foreign_gi"),
    ("kind_zh", "保护类型"),
    ("category", "product category code"),
    ("category_zh", "产品类别"),
    ("registration_no", "announcement or trademark registration number 公告号/注册号"),
    ("registration_date", "YYYY-MM-DD"),
    ("legacy_agi_code", "old agricultural GI code (AGI…), if any"),
    ("status", "registered | amended"),
    ("status_zh", "状态"),
    ("origin_country", "ISO 3166 alpha-2"),
    ("managing_body", "applicant or managing body 申请人/管理机构"),
    ("standard", "governing standard 标准"),
    ("area_adcodes", "production area: administrative division codes, ';'-separated"),
    ("area_units_zh", "production area: division names, ';'-separated"),
    ("area_km2", "area of the production-area geometry in km² (geodesic)"),
    ("area_source_crs", "CRS the area geometry was drawn in before conversion to WGS-84"),
    ("sales_adcodes", "declared sales regions: division codes, ';'-separated"),
    ("sales_regions_zh", "declared sales regions: names, ';'-separated"),
    ("record_changed_at", "when this version was made (China Standard Time)"),
]
AREA_COLUMNS: list[tuple[str, str]] = [
    ("gi_id", "record id (join with registry.csv)"), ("gi_version", "record version"),
    ("name_zh", "名称"), ("name_pinyin", "拼音"), ("name_en", "English name"), ("kind", "protection kind"),
    ("category", "product category"), ("status", "registered | amended"),
    ("registration_no", "公告号/注册号"), ("area_id", "id of this area geometry (immutable)"),
    ("area_km2", "geodesic area, km²"), ("area_mu", "area in mu (亩)"),
    ("adcodes", "division codes the area was built from, ';'-separated"),
    ("source", "where the geometry came from"), ("source_crs", "CRS it was drawn in (e.g. GCJ-02)"),
]


@dataclass
class Published:
    """One GI record in force, as of the moment asked for."""

    gi_id: int
    record: GIProduct | GIVersion
    version: int
    changed_at: dt.datetime
    area: OriginArea | None


def _moment(as_of: dt.date | None) -> dt.datetime | None:
    return clock.end_of_day(as_of) if as_of else None


def records(session: Session, as_of: dt.date | None = None, *, with_geometry: bool = False) -> list[Published]:
    """Every GI record in force now, or at the end of `as_of` (China Standard Time)."""
    moment = _moment(as_of)
    if moment is None:
        rows = [(g, g.version, g.updated_at, g.origin_area_id) for g in session.scalars(
            select(GIProduct).where(GIProduct.status.in_(IN_FORCE)).order_by(GIProduct.id))]
    else:
        latest = (select(GIVersion.gi_id, func.max(GIVersion.version).label("version"))
                  .where(GIVersion.changed_at < moment).group_by(GIVersion.gi_id).subquery())
        rows = [(v, v.version, v.changed_at, v.origin_area_id) for v in session.scalars(
            select(GIVersion).join(latest, (GIVersion.gi_id == latest.c.gi_id) & (GIVersion.version == latest.c.version))
            .where(GIVersion.status.in_(IN_FORCE)).order_by(GIVersion.gi_id))]
    area_ids = {r[3] for r in rows if r[3]}
    areas: dict[int, OriginArea] = {}
    if area_ids:
        stmt = select(OriginArea).where(OriginArea.id.in_(area_ids))
        if with_geometry:
            stmt = stmt.options(undefer(OriginArea.geom))
        areas = {a.id: a for a in session.scalars(stmt)}
    return [Published(getattr(rec, "gi_id", None) or rec.id, rec, version, changed_at, areas.get(area_id))
            for rec, version, changed_at, area_id in rows]


def last_modified(session: Session, as_of: dt.date | None = None) -> dt.datetime | None:
    """The last change of any record (a revocation changes the data set too)."""
    stmt = select(func.max(GIVersion.changed_at))
    moment = _moment(as_of)
    if moment is not None:
        stmt = stmt.where(GIVersion.changed_at < moment)
    return session.scalar(stmt)


def validator(items: list[Published], as_of: dt.date | None, dataset: str) -> str:
    """A digest of what the files are made from: the record versions in force and their areas."""
    h = hashlib.sha256(f"{FORMAT_VERSION}|{dataset}|{as_of}".encode())
    for p in items:
        h.update(f"|{p.gi_id}:{p.version}:{p.area.id if p.area else '-'}".encode())
    return h.hexdigest()[:32]


def _names(adcodes: list[str] | None) -> str:
    registry = get_registry()
    out = []
    for a in adcodes or []:
        unit = registry.get(a)
        out.append(unit.full_name if unit else a)
    return ";".join(out)


def _value(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def registry_rows(items: list[Published]) -> Iterator[list[Any]]:
    """The registry's rows in the order of REGISTRY_COLUMNS, typed (dates, the instant, None for none): the CSV
    and the Excel file print them (render/sheets.registry_table)."""
    for p in items:
        r = p.record
        yield [p.gi_id, p.version, r.name_zh, _value(r.name_pinyin), _value(r.name_en), r.kind.value,
               KIND_LABELS[GIKind(r.kind)]["zh"], r.category.value, CATEGORY_ZH[GICategory(r.category)],
               _value(r.registration_no), _value(r.registration_date), _value(r.legacy_agi_code), r.status.value,
               STATUS_ZH[GIStatus(r.status)], _value(r.origin_country), _value(r.managing_body), _value(r.standard),
               ";".join(r.area_adcodes or []), _names(r.area_adcodes),
               round(p.area.area_m2 / 1e6, 3) if p.area else None, p.area.source_crs if p.area else None,
               ";".join(r.sales_adcodes or []), _names(r.sales_adcodes), p.changed_at]



def catalogue(session: Session) -> dict[str, Any]:
    """What is published, with a data dictionary, for people and harvesters."""
    items = records(session)
    modified = last_modified(session)
    with_area = sum(1 for p in items if p.area is not None)
    return {
        "title": "地理标志公开数据 Open data of geographical indications",
        "records_in_force": len(items),
        "last_modified": modified.isoformat() if modified else None,
        "statuses_published": [s.value for s in IN_FORCE],
        "parameters": {"as_of": "YYYY-MM-DD: the records as they stood at the end of that day (China Standard "
                                "Time)"},
        "datasets": [
            {"id": "registry", "title": "GI registry 地理标志登记簿", "media_type": "text/csv; charset=utf-8",
             "encoding": "UTF-8 with byte-order mark", "records": len(items),
             "columns": [{"name": n, "description": d} for n, d in REGISTRY_COLUMNS]},
            {"id": "areas", "title": "Production areas 产地范围", "media_type": "application/geopackage+sqlite3",
             "layer": LAYER, "crs": "EPSG:4326", "geometry_type": "MultiPolygon", "features": with_area,
             "columns": [{"name": n, "description": d} for n, d in AREA_COLUMNS]},
        ],
    }

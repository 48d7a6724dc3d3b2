"""The GI registry: records, their full version history, production areas and search."""
from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal
from typing import Any, Iterable

from pypinyin import Style, lazy_pinyin
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from geodata.admin import get_registry
from geodata.areas import (AreaError, AreaResult, area_from_adcodes, bbox_of, counties_intersecting,
                           geodesic_area_m2, m2_to_mu)

from .. import clock
from ..codes import suggest_prefix
from ..db import get_by_id
from ..errors import Conflict, Forbidden, InvalidGeometry, NotFound, ValidationFailed
from ..models import (GI_FIELD_NAMES, GIAreaUnit, GICategory, GIKind, GIProduct, GIStatus, GIVersion, OrgKind,
                      OriginArea)
from .accounts import Principal
from .jurisdiction import subtree_codes

QUALITY_SECTIONS = ("variety", "site", "climate", "cultivation", "process", "sensory", "physico_chemical",
                    "safety", "packaging", "other")
# Fields whose change rebuilds the production-area geometry.
AREA_FIELDS = {"area_adcodes"}


# --- search text -----------------------------------------------------------------------------

def _fold(value: str) -> str:
    """Lower-case, strip tone marks and spaces: 'Xīhú Lóngjǐng' -> 'xihulongjing'."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c) and not c.isspace()
                   and c not in "-'·").lower()


def search_text_for(name_zh: str, name_pinyin: str | None, name_en: str | None) -> str:
    syllables = lazy_pinyin(name_zh, errors="ignore")
    initials = "".join(s[0] for s in lazy_pinyin(name_zh, style=Style.FIRST_LETTER, errors="ignore") if s)
    parts = [name_zh.lower(), "".join(syllables), initials]
    if name_pinyin:
        parts.append(_fold(name_pinyin))
    if name_en:
        parts.append(_fold(name_en))
    return "|".join(dict.fromkeys(p for p in parts if p))[:600]


def default_pinyin(name_zh: str) -> str:
    """'西湖龙井' -> 'Xihu Longjing' is beyond a dictionary; give the syllables capitalised."""
    return " ".join(s.capitalize() for s in lazy_pinyin(name_zh, errors="ignore"))


# --- permissions -----------------------------------------------------------------------------

def gi_units(session: Session, gi: GIProduct) -> list[str]:
    declared = list(gi.area_adcodes or [])
    if declared:
        return declared
    return list(session.scalars(select(GIAreaUnit.adcode).where(GIAreaUnit.gi_id == gi.id)))


def can_manage_gi(session: Session, principal: Principal | None, gi: GIProduct) -> bool:
    """An authority manages a GI it registered or whose whole area lies in its jurisdiction."""
    if principal is None or principal.org_kind != OrgKind.authority:
        return False
    if gi.authority_id == principal.organisation_id or principal.adcode == "100000":
        return True
    units = gi_units(session, gi)
    return bool(units) and all(principal.covers(u) for u in units)


def require_manage(session: Session, principal: Principal, gi: GIProduct) -> None:
    if not can_manage_gi(session, principal, gi):
        raise Forbidden(f"GI {gi.id} ({gi.name_zh}) is outside your jurisdiction ({principal.adcode}); "
                        "only the authority that registered it or one covering its whole area may change it",
                        code="outside_jurisdiction")


# --- areas -----------------------------------------------------------------------------------

def _check_adcodes(adcodes: Iterable[str], field: str = "area_adcodes") -> list[str]:
    registry = get_registry()
    result: list[str] = []
    unknown = [a for a in adcodes if registry.get(a) is None]
    if unknown:
        raise ValidationFailed(f"{field}: unknown adcode(s): {', '.join(unknown)}",
                               details=[{"field": field, "problem": f"{a} is not a known division"}
                                        for a in unknown], code="unknown_adcode")
    for a in adcodes:
        if a not in result:
            result.append(a)
    return result


def _area_error(exc: AreaError) -> InvalidGeometry:
    return InvalidGeometry(exc.message, details={"reason": exc.code, **(exc.details or {})})


def build_area_from_adcodes(adcodes: list[str]) -> AreaResult:
    try:
        return area_from_adcodes(adcodes)
    except AreaError as exc:
        raise _area_error(exc) from None


def _store_area(session: Session, gi: GIProduct, result: AreaResult, *, description: str | None,
                adcodes: list[str], by: Principal) -> OriginArea:
    geom = result.geometry
    area_m2 = geodesic_area_m2(geom)
    minx, miny, maxx, maxy = bbox_of(geom)
    row = OriginArea(gi_id=gi.id, geom=geom, crs="EPSG:4326", source=result.source[:300],
                     source_crs=result.source_crs[:100], description=description, adcodes=list(adcodes),
                     area_m2=area_m2, area_mu=m2_to_mu(area_m2), min_x=minx, min_y=miny, max_x=maxx, max_y=maxy,
                     warnings=list(result.warnings), created_by_id=by.user_id)
    session.add(row)
    session.flush()
    return row


def _index_units(session: Session, gi: GIProduct, area: OriginArea | None) -> None:
    session.execute(delete(GIAreaUnit).where(GIAreaUnit.gi_id == gi.id))
    declared = list(gi.area_adcodes or [])
    rows = {a: "declared" for a in declared}
    if area is not None and not declared:
        for county in counties_intersecting(area.geom):
            rows.setdefault(county, "derived")
    session.add_all(GIAreaUnit(gi_id=gi.id, adcode=a, origin=o) for a, o in rows.items())


# --- versions --------------------------------------------------------------------------------

def _snapshot(gi: GIProduct, *, change_kind: str, reason: str, changed: list[str], by: Principal) -> GIVersion:
    values = {name: getattr(gi, name) for name in GI_FIELD_NAMES}
    return GIVersion(gi_id=gi.id, version=gi.version, change_kind=change_kind, reason=reason,
                     changed_fields=changed, changed_by_id=by.user_id, changed_at=gi.updated_at, **values)


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    if "quality_requirements" in values and values["quality_requirements"] is not None:
        qr = values["quality_requirements"]
        unknown = sorted(set(qr) - set(QUALITY_SECTIONS))
        if unknown:
            raise ValidationFailed(
                f"unknown quality-requirement section(s): {', '.join(unknown)}; use {', '.join(QUALITY_SECTIONS)}",
                details=[{"field": f"quality_requirements.{k}", "problem": "unknown section"} for k in unknown])
        values["quality_requirements"] = {k: v for k, v in qr.items() if v}
    if "area_adcodes" in values:
        values["area_adcodes"] = _check_adcodes(values["area_adcodes"] or [])
    if "sales_adcodes" in values:
        values["sales_adcodes"] = _check_adcodes(values["sales_adcodes"] or [], "sales_adcodes")
    if values.get("standard_yield_kg_per_mu") is not None:
        values["standard_yield_kg_per_mu"] = Decimal(str(values["standard_yield_kg_per_mu"]))
    return values


def create_gi(session: Session, values: dict[str, Any], *, by: Principal, reason: str) -> GIProduct:
    """Register a GI record (version 1); its area is built from `area_adcodes` when given."""
    if by.org_kind != OrgKind.authority:
        raise Forbidden("only an authority registers GIs", code="wrong_role")
    values = _normalise(values)
    adcodes = values.get("area_adcodes") or []
    outside = [a for a in adcodes if not by.covers(a)]
    if outside:
        raise Forbidden(f"area unit(s) {', '.join(outside)} lie outside your jurisdiction ({by.adcode})",
                        code="outside_jurisdiction", details={"adcodes": outside})
    if values.get("kind") == GIKind.foreign_gi and values.get("origin_country", "CN") == "CN":
        raise ValidationFailed("a foreign GI needs its origin_country (ISO 3166 alpha-2, not CN)",
                               details=[{"field": "origin_country", "problem": "required for foreign_gi"}])
    values.setdefault("status", GIStatus.registered)
    values.setdefault("quality_requirements", {})
    values.setdefault("sales_adcodes", [])
    values.setdefault("origin_country", "CN")
    if not values.get("name_pinyin") and values.get("origin_country", "CN") == "CN":
        values["name_pinyin"] = default_pinyin(values["name_zh"]) or None
    prefix_source(values.get("name_pinyin"), values.get("name_en"))  # refused before any row is written
    now = clock.now()
    gi = GIProduct(version=1, authority_id=by.organisation_id, created_at=now, updated_at=now,
                   search_text=search_text_for(values["name_zh"], values.get("name_pinyin"), values.get("name_en")),
                   **values)
    session.add(gi)
    session.flush()
    assign_prefix(session, gi)
    area = None
    if adcodes:
        result = build_area_from_adcodes(adcodes)
        area = _store_area(session, gi, result, description=values.get("area_description"), adcodes=adcodes, by=by)
        gi.origin_area_id = area.id
    _index_units(session, gi, area)
    session.add(_snapshot(gi, change_kind="created", reason=reason, changed=sorted(values), by=by))
    session.flush()
    return gi


def amend_gi(session: Session, gi_id: int, changes: dict[str, Any], *, by: Principal, reason: str,
             expected_version: int | None = None) -> GIProduct:
    """Apply an amendment as a new version; unchanged values do not make a version."""
    gi = get_gi(session, gi_id, lock=True)
    require_manage(session, by, gi)
    if expected_version is not None and expected_version != gi.version:
        raise Conflict(f"GI {gi_id} is at version {gi.version}, not {expected_version}; reload and retry",
                       code="version_conflict", details={"current_version": gi.version})
    changes = _normalise(changes)
    changed = [k for k, v in changes.items() if getattr(gi, k) != v]
    if not changed:
        raise ValidationFailed("the amendment changes nothing", code="no_change")
    new_units = changes.get("area_adcodes")
    if new_units is not None:
        outside = [a for a in new_units if not by.covers(a)]
        if outside and by.adcode != "100000":
            raise Forbidden(f"area unit(s) {', '.join(outside)} lie outside your jurisdiction ({by.adcode})",
                            code="outside_jurisdiction", details={"adcodes": outside})
    for k in changed:
        setattr(gi, k, changes[k])
    if {"name_zh", "name_pinyin", "name_en"} & set(changed):
        gi.search_text = search_text_for(gi.name_zh, gi.name_pinyin, gi.name_en)
    area = gi.origin_area
    if AREA_FIELDS & set(changed) and gi.area_adcodes:
        area = _store_area(session, gi, build_area_from_adcodes(gi.area_adcodes),
                           description=gi.area_description, adcodes=gi.area_adcodes, by=by)
        gi.origin_area_id = area.id
        changed.append("origin_area_id")
    if AREA_FIELDS & set(changed):
        _index_units(session, gi, area)
    gi.version += 1
    gi.updated_at = clock.now()
    kind = "status_changed" if changed == ["status"] else "amended"
    session.add(_snapshot(gi, change_kind=kind, reason=reason, changed=changed, by=by))
    session.flush()
    return gi


def replace_area(session: Session, gi_id: int, result: AreaResult, *, by: Principal, reason: str,
                 description: str | None = None) -> GIProduct:
    """Set a GI's production area from an uploaded geometry, as a new version."""
    gi = get_gi(session, gi_id, lock=True)
    require_manage(session, by, gi)
    derived = counties_intersecting(result.geometry)
    outside = [a for a in derived if not by.covers(a)]
    if outside:
        raise Forbidden(f"the uploaded area reaches outside your jurisdiction ({by.adcode}): {', '.join(outside)}",
                        code="outside_jurisdiction", details={"adcodes": outside})
    if description is not None:
        gi.area_description = description
    area = _store_area(session, gi, result, description=gi.area_description, adcodes=gi.area_adcodes or [], by=by)
    gi.origin_area_id = area.id
    _index_units(session, gi, area)
    gi.version += 1
    gi.updated_at = clock.now()
    changed = ["origin_area_id"] + (["area_description"] if description is not None else [])
    session.add(_snapshot(gi, change_kind="area_changed", reason=reason, changed=changed, by=by))
    session.flush()
    return gi


def get_gi(session: Session, gi_id: int, *, lock: bool = False) -> GIProduct:
    return get_by_id(session, GIProduct, gi_id, what="GI", code="gi_not_found", lock=lock)


def _has_latin(name: str | None) -> bool:
    """Whether a serial prefix can be made from `name`: it has a Latin letter or digit (tone marks allowed)."""
    if not name:
        return False
    folded = unicodedata.normalize("NFKC", "".join(c for c in unicodedata.normalize("NFKD", name)
                                                   if not unicodedata.combining(c)))
    return any(c.isascii() and c.isalnum() for c in folded)


def prefix_source(name_pinyin: str | None, name_en: str | None) -> str | None:
    """The name a GI's serial prefix is made from: its pinyin, else its English name; None: neither was
    given. A name given without any Latin letter is refused with 422, saying what to send."""
    for name in (name_pinyin, name_en):
        if _has_latin(name):
            return name
    if name_pinyin or name_en:
        fields = [f for f, v in (("name_pinyin", name_pinyin), ("name_en", name_en)) if v]
        raise ValidationFailed(
            "the special-mark serial prefix is made from the Latin letters of name_pinyin or name_en, and "
            f"{' and '.join(fields)} {'has' if len(fields) == 1 else 'have'} none: give name_pinyin in pinyin "
            "(e.g. 'Bo Bai Shao') or an English name_en", code="no_serial_prefix",
            details=[{"field": f, "problem": "no Latin letters or digits to make the serial prefix from"}
                     for f in fields])
    return None


def assign_prefix(session: Session, gi: GIProduct) -> str:
    """Give a GI its special-mark serial prefix once (unique); later calls return it unchanged."""
    if gi.mark_prefix:
        return gi.mark_prefix
    taken = set(session.scalars(select(GIProduct.mark_prefix).where(GIProduct.mark_prefix.is_not(None))))
    gi.mark_prefix = suggest_prefix(prefix_source(gi.name_pinyin, gi.name_en) or f"GI {gi.id}", taken)
    session.flush()
    return gi.mark_prefix


def gi_version_as_of(session: Session, gi_id: int, moment: dt.datetime) -> GIVersion:
    """The version in force at `moment` (UTC)."""
    get_gi(session, gi_id)
    version = session.scalar(select(GIVersion).where(GIVersion.gi_id == gi_id, GIVersion.changed_at < moment)
                             .order_by(GIVersion.version.desc()).limit(1))
    if version is None:
        raise NotFound(f"GI {gi_id} was not yet registered at {moment.astimezone(clock.CHINA_TZ):%Y-%m-%d %H:%M} CST",
                       code="not_yet_registered")
    return version


def list_versions(session: Session, gi_id: int) -> list[GIVersion]:
    get_gi(session, gi_id)
    return list(session.scalars(select(GIVersion).where(GIVersion.gi_id == gi_id).order_by(GIVersion.version)))


def get_version(session: Session, gi_id: int, version: int) -> GIVersion:
    row = session.scalar(select(GIVersion).where(GIVersion.gi_id == gi_id, GIVersion.version == version))
    if row is None:
        get_gi(session, gi_id)
        raise NotFound(f"GI {gi_id} has no version {version}", code="version_not_found")
    return row


def region_units(adcode: str) -> list[str]:
    """The division itself, all units below it and all units above it (an area unit above covers it)."""
    registry = get_registry()
    unit = registry.get(adcode)
    if unit is None:
        raise ValidationFailed(f"region {adcode} is not a known administrative division",
                               details=[{"field": "region", "problem": "unknown adcode"}], code="unknown_adcode")
    codes = set(subtree_codes(adcode))
    codes.update(u.adcode for u in registry.ancestors(adcode))
    return sorted(codes)


def search_gis(session: Session, *, q: str | None = None, category: GICategory | None = None,
               kind: GIKind | None = None, status: GIStatus | None = None, region: str | None = None,
               limit: int = 50, offset: int = 0) -> tuple[list[GIProduct], int]:
    """Public search over current records; returns one page and the total count."""
    stmt = select(GIProduct)
    if q:
        folded = _fold(q)
        if folded:
            stmt = stmt.where(GIProduct.search_text.contains(folded, autoescape=True))
    if category:
        stmt = stmt.where(GIProduct.category == category)
    if kind:
        stmt = stmt.where(GIProduct.kind == kind)
    if status:
        stmt = stmt.where(GIProduct.status == status)
    if region and region != "100000":
        units = region_units(region)
        stmt = stmt.where(GIProduct.id.in_(select(GIAreaUnit.gi_id).where(GIAreaUnit.adcode.in_(units))))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = list(session.scalars(stmt.order_by(GIProduct.id).limit(limit).offset(offset)))
    return rows, int(total or 0)


def area_by_id(session: Session, area_id: int | None) -> OriginArea | None:
    return session.get(OriginArea, area_id) if area_id else None


def area_geometry(session: Session, area_id: int):
    """An area's geometry alone (the deferred column, read without loading it onto the identity map's row)."""
    return session.scalar(select(OriginArea.geom).where(OriginArea.id == area_id))


def areas_by_id(session: Session, area_ids: Iterable[int | None]) -> dict[int, OriginArea]:
    """Several areas in one query (their geometries stay unloaded until used)."""
    ids = {i for i in area_ids if i}
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(select(OriginArea).where(OriginArea.id.in_(ids)))}

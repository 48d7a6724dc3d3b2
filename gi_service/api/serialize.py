"""Turn models into the JSON the API publishes (dates as ISO strings, areas as GeoJSON)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Any

from flask import url_for

from geodata.areas import to_geojson_geometry

from ..models import (GI_FIELD_NAMES, ApiToken, Authorization, AuthorizationEvent, GIProduct, GIVersion,
                      Organisation, OriginArea, Plot, User)


def plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def gi_fields(record: GIProduct | GIVersion) -> dict[str, Any]:
    return {name: plain(getattr(record, name)) for name in GI_FIELD_NAMES}


def gi(record: GIProduct, area: OriginArea | None = None) -> dict[str, Any]:
    data = {"id": record.id, "version": record.version, **gi_fields(record),
            "created_at": plain(record.created_at), "updated_at": plain(record.updated_at)}
    data["origin_area"] = origin_area_summary(area) if area is not None else None
    data["links"] = {
        "self": url_for("api.get_gi", gi_id=record.id),
        "versions": url_for("api.list_gi_versions", gi_id=record.id),
        "area": url_for("api.get_gi_area", gi_id=record.id),
        "feature": url_for("ogc.item", collection_id="origin-areas", feature_id=record.id),
    }
    return data


def gi_version(v: GIVersion) -> dict[str, Any]:
    return {"gi_id": v.gi_id, "version": v.version, "change_kind": v.change_kind, "reason": v.reason,
            "changed_fields": v.changed_fields, "changed_by": v.changed_by_id, "changed_at": plain(v.changed_at),
            **gi_fields(v)}


def origin_area_summary(a: OriginArea) -> dict[str, Any]:
    return {"id": a.id, "source": a.source, "source_crs": a.source_crs, "crs": a.crs,
            "area_km2": round(a.area_m2 / 1e6, 3), "area_mu": round(a.area_mu, 1),
            "bbox": [a.min_x, a.min_y, a.max_x, a.max_y], "adcodes": a.adcodes, "description": a.description,
            "warnings": a.warnings, "created_at": plain(a.created_at)}


def organisation(o: Organisation, *, private: bool = False) -> dict[str, Any]:
    data = {"id": o.id, "kind": o.kind.value, "name": o.name, "name_en": o.name_en, "uscc": o.uscc,
            "adcode": o.adcode, "is_active": o.is_active}
    if private:
        data.update(address=o.address, contact=o.contact, created_at=plain(o.created_at))
    return data


def user(u: User) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "display_name": u.display_name,
            "organisation": organisation(u.organisation), "is_active": u.is_active,
            "created_at": plain(u.created_at), "last_login_at": plain(u.last_login_at),
            "two_factor_enabled": u.totp_enabled_at is not None, "password_changed_at": plain(u.password_changed_at),
            "must_change_password": bool(u.must_change_password), "locked_until": plain(u.locked_until)}


def token(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "prefix": t.prefix, "created_at": plain(t.created_at),
            "expires_at": plain(t.expires_at), "revoked_at": plain(t.revoked_at),
            "last_used_at": plain(t.last_used_at), "valid": t.is_valid(), "two_factor": bool(t.two_factor)}


def plot(p: Plot, *, geometry: bool = True) -> dict[str, Any]:
    data = {"id": p.id, "producer_id": p.producer_id, "gi_id": p.gi_id, "code": p.code, "name": p.name,
            "area_mu": round(p.area_mu, 3), "area_m2": round(p.area_m2, 1), "survey_year": p.survey_year,
            "adcode": p.adcode, "created_at": plain(p.created_at), "updated_at": plain(p.updated_at)}
    if geometry:
        data["geometry"] = to_geojson_geometry(p.geom)
    return data


def authorization(a: Authorization, *, events: bool = False) -> dict[str, Any]:
    data = {"id": a.id, "producer": organisation(a.producer), "gi_id": a.gi_id, "gi_name": a.gi.name_zh,
            "basis": a.basis.value, "status": a.status.value, "announcement_no": a.announcement_no,
            "valid_from": plain(a.valid_from), "valid_until": plain(a.valid_until),
            "created_at": plain(a.created_at), "updated_at": plain(a.updated_at)}
    if events:
        data["history"] = [authorization_event(e) for e in a.events]
    return data


def authorization_event(e: AuthorizationEvent) -> dict[str, Any]:
    return {"from": e.from_status, "to": e.to_status, "reason": e.reason, "announcement_no": e.announcement_no,
            "changed_by": e.changed_by_id, "changed_at": plain(e.changed_at)}

"""The inspectors' queue of clues: copied-label alerts and consumers' reports of suspected fakes.

Who sees a clue: the authorities and inspection units whose jurisdiction covers any place it
is routed to (``CluePlace``: where it happened, the producer's place, or the GI authority's
jurisdiction). A national unit (100000) sees them all. Producers and printers see none.

Consumers report from the verification page (``create_report``): the report names the check
it was sent from (the signed scan token), so a report always rests on a real check of the
code, and each check can be reported once.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from .. import clock
from ..codes import MarkKeyring
from ..db import get_by_id, where_given
from ..errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..models import (AlertKind, Clue, ClueKind, CluePlace, ClueStatus, ConsumerReport, GIProduct, OrgKind, PlaceRole,
                      Scan)
from ..photos import StoredPhoto
from ..storage import FileStore
from .accounts import Principal
from .jurisdiction import division_codes, jurisdiction_codes
from .scans import ip_hash as scan_ip_hash
from .signals import home_places

SUPERVISORS = (OrgKind.authority, OrgKind.inspection)
REPORT_LOCATION_PRECISION = 4      # 0.0001° ≈ 11 m: the shop, which the consumer chose to point at
# Statuses a person may set; "referred" is set when a case takes the clue in (supervision).
SETTABLE = {ClueStatus.open, ClueStatus.acknowledged, ClueStatus.dismissed}


def _require_supervisor(by: Principal | None) -> Principal:
    if by is None or by.org_kind not in SUPERVISORS:
        raise Forbidden("only authorities and inspection units see clues", code="wrong_role")
    return by


def visible_to(by: Principal):
    """SQL condition: the clue is routed to a place inside `by`'s jurisdiction."""
    codes = jurisdiction_codes(by.adcode)
    if codes is None:
        return Clue.id.is_not(None)
    return exists().where(CluePlace.clue_id == Clue.id, CluePlace.adcode.in_(codes))


def can_see(by: Principal, clue: Clue) -> bool:
    return by.org_kind in SUPERVISORS and any(by.covers(p.adcode) for p in clue.places)


@dataclass(frozen=True)
class ClueFilter:
    kind: ClueKind | None = None
    alert_kind: AlertKind | None = None
    status: ClueStatus | None = None
    gi_id: int | None = None
    producer_id: int | None = None
    adcode: str | None = None          # routed to a place inside this division
    since: dt.datetime | None = None   # last activity at or after


def list_clues(session: Session, by: Principal, f: ClueFilter, *, limit: int, offset: int
               ) -> tuple[list[Clue], int]:
    """The clues `by` may see, newest activity first, with the total for paging."""
    _require_supervisor(by)
    stmt = select(Clue).where(visible_to(by))
    stmt = where_given(stmt, Clue, kind=f.kind, alert_kind=f.alert_kind, status=f.status, gi_id=f.gi_id,
                       producer_id=f.producer_id)
    if f.adcode:
        codes = division_codes(f.adcode)
        if codes is not None:
            stmt = stmt.where(exists().where(CluePlace.clue_id == Clue.id, CluePlace.adcode.in_(codes)))
    if f.since is not None:
        stmt = stmt.where(Clue.last_at >= f.since)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.options(selectinload(Clue.places), selectinload(Clue.report))
                           .order_by(Clue.last_at.desc(), Clue.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


def get_clue(session: Session, clue_id: int, by: Principal, *, lock: bool = False) -> Clue:
    _require_supervisor(by)
    clue = get_by_id(session, Clue, clue_id, what="clue", code="clue_not_found", lock=lock,
                     options=(selectinload(Clue.places), selectinload(Clue.report)))
    if not can_see(by, clue):
        raise Forbidden(f"clue {clue_id} concerns no place in your jurisdiction ({by.adcode})",
                        code="outside_jurisdiction")
    return clue


def set_status(session: Session, clue_id: int, by: Principal, status: ClueStatus, reason: str) -> Clue:
    """Acknowledge, dismiss or reopen a clue, recording who and why."""
    if status not in SETTABLE:
        raise ValidationFailed(f"status {status.value!r} cannot be set by hand; use one of "
                               f"{', '.join(sorted(s.value for s in SETTABLE))}", code="invalid_status",
                               details=[{"field": "status", "problem": "not settable"}])
    clue = get_clue(session, clue_id, by, lock=True)
    if clue.status == ClueStatus.referred:
        raise Conflict(f"clue {clue_id} was taken into a case; follow it there", code="clue_referred")
    if clue.status == status:
        raise Conflict(f"clue {clue_id} is already {status.value}", code="no_change")
    clue.status = status
    clue.status_reason = reason
    clue.status_by_id = by.user_id
    clue.status_at = clock.now()
    session.flush()
    return clue


# --- consumer reports ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportInput:
    description: str
    shop_name: str
    shop_address: str | None
    lat: float | None
    lon: float | None
    # Only if the consumer wants to be called back (stored encrypted).
    reporter_name: str | None = None
    reporter_phone: str | None = None


def create_report(session: Session, *, scan_id: int, code: str, keyring: MarkKeyring, data: ReportInput,
                  photo: StoredPhoto | None, secret: str, ip: str | None, now: dt.datetime | None = None
                  ) -> Clue:
    """A consumer's report of a suspected fake, sent from the page of check `scan_id`, as a clue."""
    from . import jurisdiction, verification

    now = now or clock.now()
    scan = session.get(Scan, scan_id)
    if scan is None:
        raise NotFound(f"check {scan_id} does not exist", code="scan_not_found")
    already = session.scalar(select(Clue.id).where(Clue.kind == ClueKind.consumer_report, Clue.scan_id == scan_id))
    if already is not None:
        raise Conflict("this check was already reported; thank you", code="already_reported",
                       details={"clue_id": already})
    check = verification.check_code(session, keyring, code)
    batch = check.mark.batch if check.mark is not None else None
    gi_id = batch.gi_id if batch else None
    if gi_id is None and check.serial is not None:
        # An unknown code still names the GI it pretends to be (its serial prefix).
        gi_id = session.scalar(select(GIProduct.id).where(GIProduct.mark_prefix == check.serial.prefix))
    producer_id = batch.producer_id if batch else None
    lat = lon = adcode = None
    if data.lat is not None and data.lon is not None:
        lat, lon = round(data.lat, REPORT_LOCATION_PRECISION), round(data.lon, REPORT_LOCATION_PRECISION)
        county = jurisdiction.classify([lon], [lat])[0]["county"]
        adcode = county["adcode"] if county else None
    adcode = adcode or scan.adcode
    serial = check.serial.display if check.serial is not None else None
    where = data.shop_name if not adcode else f"{data.shop_name} ({adcode})"
    clue = Clue(kind=ClueKind.consumer_report, status=ClueStatus.open, created_at=now, last_at=now, occurrences=1,
                gi_id=gi_id, producer_id=producer_id, series=check.serial.series if check.serial else None,
                seq=check.serial.seq if check.serial else None, scan_id=scan_id, adcode=adcode,
                summary=f"consumer report: {check.verdict.value} code {serial or code[:40]} at {where}"[:300],
                details={"verdict": check.verdict.value, "detail": check.detail, "serial": serial,
                         "mac_ok": check.mac_ok})
    places = [(PlaceRole.scan_place, adcode)] if adcode else []
    places += home_places(session, gi_id, producer_id)
    for role, place_code in dict.fromkeys(places):
        clue.places.append(CluePlace(role=role, adcode=place_code))
    clue.report = ConsumerReport(
        created_at=now, code=code[:64], verdict=check.verdict.value, description=data.description,
        shop_name=data.shop_name, shop_address=data.shop_address, lat=lat, lon=lon, adcode=adcode,
        photo_key=photo.key if photo else None, photo_sha256=photo.sha256 if photo else None,
        photo_bytes=photo.bytes if photo else None, photo_width=photo.width if photo else None,
        photo_height=photo.height if photo else None,
        photo_original_sha256=photo.original_sha256 if photo else None,
        photo_taken_at=photo.taken_at if photo else None, ip_hash=scan_ip_hash(secret, ip, now),
        reporter_name=data.reporter_name, reporter_phone=data.reporter_phone)
    session.add(clue)
    session.flush()
    return clue


def report_photo(session: Session, store: FileStore, clue_id: int, by: Principal) -> tuple[bytes, ConsumerReport]:
    clue = get_clue(session, clue_id, by)
    report = clue.report
    if report is None or not report.photo_key:
        raise NotFound(f"clue {clue_id} has no photo", code="no_photo")
    data = store.get(report.photo_key)
    if data is None:
        raise NotFound(f"the photo of clue {clue_id} is missing from the file store", code="photo_missing")
    return data, report


def serialize(clue: Clue, *, gi_names: dict[int, str] | None = None) -> dict[str, Any]:
    from geodata.admin import get_registry

    registry = get_registry()

    def name(adcode: str | None) -> str | None:
        unit = registry.get(adcode) if adcode else None
        return unit.name if unit else None

    data: dict[str, Any] = {
        "id": clue.id, "kind": clue.kind.value, "alert_kind": clue.alert_kind.value if clue.alert_kind else None,
        "status": clue.status.value, "summary": clue.summary, "occurrences": clue.occurrences,
        "created_at": clue.created_at.isoformat(), "last_at": clue.last_at.isoformat(),
        "gi_id": clue.gi_id, "gi_name": (gi_names or {}).get(clue.gi_id) if clue.gi_id else None,
        "producer_id": clue.producer_id,
        "serial": clue.details.get("serial") if isinstance(clue.details, dict) else None,
        "adcode": clue.adcode, "place_name": name(clue.adcode),
        "places": [{"role": p.role.value, "adcode": p.adcode, "name": name(p.adcode)} for p in clue.places],
        "details": clue.details,
        "status_reason": clue.status_reason, "status_by": clue.status_by_id,
        "status_at": clue.status_at.isoformat() if clue.status_at else None,
        "links": {"self": f"/api/v1/clues/{clue.id}"},
    }
    r = clue.report
    if r is not None:
        data["report"] = {
            "code": r.code, "verdict": r.verdict, "description": r.description, "shop_name": r.shop_name,
            "shop_address": r.shop_address, "lat": r.lat, "lon": r.lon, "adcode": r.adcode,
            "reporter_name": r.reporter_name, "reporter_phone": r.reporter_phone,
            "photo": None if not r.photo_key else {
                "url": f"/api/v1/clues/{clue.id}/photo", "sha256": r.photo_sha256, "bytes": r.photo_bytes,
                "width": r.photo_width, "height": r.photo_height, "original_sha256": r.photo_original_sha256,
                "taken_at": r.photo_taken_at},
        }
    return data


def gi_names(session: Session, clues: list[Clue]) -> dict[int, str]:
    ids = {c.gi_id for c in clues if c.gi_id}
    if not ids:
        return {}
    return dict(session.execute(select(GIProduct.id, GIProduct.name_zh).where(GIProduct.id.in_(ids))).all())

"""Producers, their production plots and their authorizations to use the special mark."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.areas import AreaError, geodesic_area_m2, m2_to_mu, validate_area

from .. import clock
from ..db import get_by_id, where_given
from ..errors import (Conflict, Forbidden, InvalidGeometry, InvalidTransition, NotFound, PlotOutsideArea,
                      ValidationFailed)
from ..models import (Authorization, AuthorizationBasis, AuthorizationEvent, AuthorizationStatus, GIKind, OrgKind,
                      Organisation, Plot)
from .accounts import Principal
from .registry import area_by_id, can_manage_gi, get_gi
from .jurisdiction import county_at
from .spatial import PLOT_TOLERANCE_M, outside_m2

MAX_PLOT_KM2 = 200.0  # a single surveyed plot larger than this is a data error, not a field

S = AuthorizationStatus
TRANSITIONS: dict[AuthorizationStatus, set[AuthorizationStatus]] = {
    S.pending: {S.approved, S.revoked},
    S.approved: {S.suspended, S.revoked, S.lapsed},
    S.suspended: {S.approved, S.revoked},
    S.lapsed: {S.approved, S.revoked},
    S.revoked: set(),
}
# Which basis fits which kind of GI (the legal users table in DOMAIN.md §1).
BASIS_FOR_KIND = {
    GIKind.protected_product: {AuthorizationBasis.approved_producer},
    GIKind.collective_mark: {AuthorizationBasis.collective_member},
    GIKind.certification_mark: {AuthorizationBasis.certification_licensee},
    GIKind.foreign_gi: {AuthorizationBasis.foreign_gi_distributor},
}


# --- producers -------------------------------------------------------------------------------

def get_producer(session: Session, producer_id: int) -> Organisation:
    org = session.get(Organisation, producer_id)
    if org is None or org.kind != OrgKind.producer:
        raise NotFound(f"producer {producer_id} does not exist", code="producer_not_found")
    return org


def can_see_producer_private(principal: Principal | None, producer: Organisation) -> bool:
    """The producer itself and authorities/inspectors covering its registered place."""
    if principal is None:
        return False
    if principal.organisation_id == producer.id:
        return True
    return principal.covers(producer.adcode)


def require_producer_access(principal: Principal, producer: Organisation, *, write: bool = False) -> None:
    if principal.organisation_id == producer.id:
        return
    if principal.org_kind == OrgKind.authority and principal.covers(producer.adcode):
        return
    if not write and principal.org_kind == OrgKind.inspection and principal.covers(producer.adcode):
        return
    raise Forbidden(f"producer {producer.id} is not yours and not in your jurisdiction", code="not_your_producer")


# --- plots -----------------------------------------------------------------------------------

def plot_geometry(geom: shapely.Geometry) -> shapely.Geometry:
    """A plot's boundary as stored (a valid WGS-84 MultiPolygon of sane size), or InvalidGeometry saying why."""
    try:
        geom, _warnings, _repaired = validate_area(geom, max_km2=MAX_PLOT_KM2, min_m2=1.0)
    except AreaError as exc:
        raise InvalidGeometry(exc.message, details={"reason": exc.code, **(exc.details or {})}) from None
    return geom


def _check_inside(session: Session, gi_id: int, geom: shapely.Geometry) -> None:
    gi = get_gi(session, gi_id)
    area = area_by_id(session, gi.origin_area_id)
    if area is None:
        raise ValidationFailed(f"GI {gi_id} ({gi.name_zh}) has no production area yet; plots cannot be checked",
                               code="gi_without_area")
    outside = outside_m2(session, area, geom)
    if outside > 0.0:
        total = geodesic_area_m2(geom)
        raise PlotOutsideArea(
            f"{m2_to_mu(outside):.2f} mu of the plot ({outside / total:.1%} of {m2_to_mu(total):.2f} mu) lies outside "
            f"the production area of {gi.name_zh} (tolerance {PLOT_TOLERANCE_M:g} m)",
            details={"outside_mu": round(m2_to_mu(outside), 4), "outside_m2": round(outside, 2),
                     "plot_mu": round(m2_to_mu(total), 4), "gi_id": gi_id})


def create_plot(session: Session, producer_id: int, *, gi_id: int, name: str, geom: shapely.Geometry,
                survey_year: int, by: Principal, code: str | None = None) -> Plot:
    """Register a surveyed plot; it must lie inside its GI's production area. `code`, the producer's own code for
    the plot, is unique for that producer."""
    producer = get_producer(session, producer_id)
    require_producer_access(by, producer, write=True)
    if code is not None:
        existing = plot_by_code(session, producer.id, code)
        if existing is not None:
            raise Conflict(f"producer {producer.id} already has plot {existing.id} with code {code!r}",
                           code="duplicate_plot_code", details={"plot_id": existing.id, "field": "code"})
    geom = plot_geometry(geom)
    _check_inside(session, gi_id, geom)
    _check_survey_year(survey_year)
    area_m2 = geodesic_area_m2(geom)
    c = geom.representative_point()
    now = clock.now()
    plot = Plot(producer_id=producer.id, gi_id=gi_id, code=code, name=name, geom=geom, area_m2=area_m2,
                area_mu=m2_to_mu(area_m2), survey_year=survey_year, adcode=county_at(c.x, c.y),
                created_by_id=by.user_id, created_at=now, updated_at=now)
    session.add(plot)
    session.flush()
    return plot


def plot_by_code(session: Session, producer_id: int, code: str) -> Plot | None:
    """A producer's plot by its code (retired ones too: a code is never given to another plot)."""
    return session.scalar(select(Plot).where(Plot.producer_id == producer_id, Plot.code == code))


def _check_survey_year(year: int) -> None:
    this_year = clock.today().year
    if not 1980 <= year <= this_year:
        raise ValidationFailed(f"survey_year must be between 1980 and {this_year}",
                               details=[{"field": "survey_year", "problem": "out of range"}])


def get_plot(session: Session, plot_id: int, *, by: Principal, write: bool = False) -> Plot:
    plot = session.get(Plot, plot_id)
    if plot is None or not plot.is_active:
        raise NotFound(f"plot {plot_id} does not exist", code="plot_not_found")
    require_producer_access(by, plot.producer, write=write)
    return plot


def update_plot(session: Session, plot_id: int, changes: dict[str, Any], *, by: Principal) -> Plot:
    plot = get_plot(session, plot_id, by=by, write=True)
    if "geom" in changes:
        geom = plot_geometry(changes["geom"])
        _check_inside(session, plot.gi_id, geom)
        area_m2 = geodesic_area_m2(geom)
        plot.geom, plot.area_m2, plot.area_mu = geom, area_m2, m2_to_mu(area_m2)
    if "survey_year" in changes:
        _check_survey_year(changes["survey_year"])
        plot.survey_year = changes["survey_year"]
    if "name" in changes:
        plot.name = changes["name"]
    plot.updated_at = clock.now()
    session.flush()
    return plot


def retire_plot(session: Session, plot_id: int, *, by: Principal) -> Plot:
    """Plots are retired, not deleted: quotas of past years were computed from them."""
    plot = get_plot(session, plot_id, by=by, write=True)
    plot.is_active = False
    plot.updated_at = clock.now()
    return plot


def list_plots(session: Session, producer_id: int, *, by: Principal, gi_id: int | None = None) -> list[Plot]:
    producer = get_producer(session, producer_id)
    require_producer_access(by, producer)
    stmt = where_given(select(Plot).where(Plot.producer_id == producer_id, Plot.is_active.is_(True)), Plot,
                       gi_id=gi_id)
    return list(session.scalars(stmt.order_by(Plot.id)))


# --- authorizations --------------------------------------------------------------------------

def create_authorization(session: Session, *, producer_id: int, gi_id: int, basis: AuthorizationBasis,
                         by: Principal, reason: str, announcement_no: str | None = None,
                         valid_from: dt.date | None = None, valid_until: dt.date | None = None,
                         approve: bool = False) -> Authorization:
    """A producer applies (pending); an authority managing the GI may register it approved at once."""
    producer = get_producer(session, producer_id)
    gi = get_gi(session, gi_id)
    if by.org_kind == OrgKind.producer:
        if by.organisation_id != producer.id:
            raise Forbidden("a producer applies only for itself", code="not_your_producer")
        if approve:
            raise Forbidden("a producer cannot approve its own authorization", code="wrong_role")
    elif by.org_kind == OrgKind.authority:
        if not can_manage_gi(session, by, gi):
            raise Forbidden(f"GI {gi.id} is outside your jurisdiction", code="outside_jurisdiction")
    else:
        raise Forbidden("only the producer or the GI's authority can create an authorization", code="wrong_role")
    if basis not in BASIS_FOR_KIND[gi.kind]:
        allowed = ", ".join(b.value for b in BASIS_FOR_KIND[gi.kind])
        raise ValidationFailed(f"basis {basis.value} does not fit a {gi.kind.value}; use {allowed}",
                               details=[{"field": "basis", "problem": f"expected {allowed}"}], code="wrong_basis")
    if valid_from and valid_until and valid_until < valid_from:
        raise ValidationFailed("valid_until is before valid_from",
                               details=[{"field": "valid_until", "problem": "before valid_from"}])
    existing = session.scalar(select(Authorization).where(Authorization.producer_id == producer_id,
                                                          Authorization.gi_id == gi_id))
    if existing is not None:
        raise Conflict(f"producer {producer_id} already has authorization {existing.id} for GI {gi_id} "
                       f"(status {existing.status.value}); change its status instead",
                       code="duplicate_authorization", details={"authorization_id": existing.id})
    if approve and not announcement_no:
        raise ValidationFailed("an approval needs the announcement number",
                               details=[{"field": "announcement_no", "problem": "required when approving"}])
    status = AuthorizationStatus.approved if approve else AuthorizationStatus.pending
    now = clock.now()
    auth = Authorization(producer_id=producer_id, gi_id=gi_id, basis=basis, status=status,
                         announcement_no=announcement_no, valid_from=valid_from or (now.date() if approve else None),
                         valid_until=valid_until, created_at=now, updated_at=now)
    session.add(auth)
    session.flush()
    session.add(AuthorizationEvent(authorization_id=auth.id, from_status=None, to_status=status.value,
                                   reason=reason, announcement_no=announcement_no, changed_by_id=by.user_id,
                                   changed_at=now))
    session.flush()
    return auth


def get_authorization(session: Session, auth_id: int) -> Authorization:
    auth = session.get(Authorization, auth_id)
    if auth is None:
        raise NotFound(f"authorization {auth_id} does not exist", code="authorization_not_found")
    return auth


def can_see_authorization(session: Session, principal: Principal | None, auth: Authorization) -> bool:
    if auth.status in (S.approved, S.suspended, S.revoked, S.lapsed):
        return True  # approvals, suspensions and revocations are public announcements
    # A pending application is between the producer and the GI's authority.
    return principal is not None and (principal.organisation_id == auth.producer_id
                                      or can_manage_gi(session, principal, auth.gi))


def transition_authorization(session: Session, auth_id: int, to: AuthorizationStatus, *, by: Principal,
                             reason: str, announcement_no: str | None = None) -> Authorization:
    """Move an authorization along its lifecycle; only the GI's authority may."""
    auth = get_by_id(session, Authorization, auth_id, what="authorization", code="authorization_not_found", lock=True)
    if by.org_kind != OrgKind.authority or not can_manage_gi(session, by, auth.gi):
        raise Forbidden("only the authority managing this GI changes its authorizations", code="outside_jurisdiction")
    if to not in TRANSITIONS[auth.status]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[auth.status])) or "none (final)"
        raise InvalidTransition(f"an authorization that is {auth.status.value} cannot become {to.value}; "
                                f"allowed: {allowed}", details={"from": auth.status.value, "to": to.value})
    if to == S.approved and not (announcement_no or auth.announcement_no):
        raise ValidationFailed("an approval needs the announcement number",
                               details=[{"field": "announcement_no", "problem": "required when approving"}])
    now = clock.now()
    session.add(AuthorizationEvent(authorization_id=auth.id, from_status=auth.status.value, to_status=to.value,
                                   reason=reason, announcement_no=announcement_no, changed_by_id=by.user_id,
                                   changed_at=now))
    if announcement_no:
        auth.announcement_no = announcement_no
    if to == S.approved and auth.valid_from is None:
        auth.valid_from = now.date()
    if to in (S.revoked, S.lapsed):
        auth.valid_until = now.date()
    auth.status = to
    auth.updated_at = now
    session.flush()
    return auth


def list_authorizations(session: Session, *, producer_id: int | None = None, gi_id: int | None = None,
                        status: AuthorizationStatus | None = None) -> list[Authorization]:
    stmt = where_given(select(Authorization), Authorization, producer_id=producer_id, gi_id=gi_id, status=status)
    return list(session.scalars(stmt.order_by(Authorization.id)))


# --- changes made by the service itself ------------------------------------------------------

def system_transition(session: Session, auth: Authorization, to: AuthorizationStatus, *, reason: str,
                      at: dt.datetime | None = None, valid_until: dt.date | None = None) -> AuthorizationEvent:
    """A status change decided by the service (credit rules, lapse): recorded with no user (changed_by NULL)."""
    if to not in TRANSITIONS[auth.status]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[auth.status])) or "none (final)"
        raise InvalidTransition(f"an authorization that is {auth.status.value} cannot become {to.value}; "
                                f"allowed: {allowed}", details={"from": auth.status.value, "to": to.value})
    now = at or clock.now()
    event = AuthorizationEvent(authorization_id=auth.id, from_status=auth.status.value, to_status=to.value,
                               reason=reason[:1000], changed_by_id=None, changed_at=now)
    session.add(event)
    if to in (S.revoked, S.lapsed):
        auth.valid_until = valid_until or now.date()
    auth.status = to
    auth.updated_at = now
    session.flush()
    return event


#: Ledger events that count as using the special mark (DOMAIN.md §2: a user that has not used the mark for
#: two years loses the right).
USE_EVENT_KINDS = ("requested", "approved", "issued", "activated")


@dataclass(frozen=True)
class Lapse:
    authorization_id: int
    producer_id: int
    producer_name: str
    gi_id: int
    gi_name: str
    last_activity: dt.date
    activity: str            # "mark use" or "approval"
    idle_days: int


def unused_authorizations(session: Session, *, today: dt.date, lapse_days: int) -> list[Lapse]:
    """Approved authorizations whose last mark use (or, later, approval) is `lapse_days` or more before `today`.

    The clock starts at the later of the last ledger event of a using kind (requested, approved, issued,
    activated) for that producer and GI and the last approval: an authorization approved again after a
    suspension or a lapse gets a fresh period.
    """
    from ..models import GIProduct, LedgerEvent

    auths = list(session.scalars(select(Authorization).where(Authorization.status == S.approved)
                                 .order_by(Authorization.id)))
    if not auths:
        return []
    last_use = {(p, g): at for p, g, at in session.execute(
        select(LedgerEvent.producer_id, LedgerEvent.gi_id, func.max(LedgerEvent.at))
        .where(LedgerEvent.kind.in_(USE_EVENT_KINDS), LedgerEvent.producer_id.is_not(None))
        .group_by(LedgerEvent.producer_id, LedgerEvent.gi_id))}
    last_approval = dict(session.execute(
        select(AuthorizationEvent.authorization_id, func.max(AuthorizationEvent.changed_at))
        .where(AuthorizationEvent.to_status == S.approved.value)
        .group_by(AuthorizationEvent.authorization_id)).all())
    names = dict(session.execute(select(GIProduct.id, GIProduct.name_zh)).all())
    out = []
    for auth in auths:
        candidates: list[tuple[dt.date, str]] = []
        used = last_use.get((auth.producer_id, auth.gi_id))
        if used is not None:
            candidates.append((clock.china_date(used), "mark use"))
        approved = last_approval.get(auth.id)
        if approved is not None:
            candidates.append((clock.china_date(approved), "approval"))
        elif auth.valid_from is not None:
            candidates.append((auth.valid_from, "approval"))
        if not candidates:
            candidates.append((clock.china_date(auth.created_at), "approval"))
        last, activity = max(candidates)
        idle = (today - last).days
        if idle >= lapse_days:
            out.append(Lapse(auth.id, auth.producer_id, auth.producer.name, auth.gi_id, names.get(auth.gi_id, ""),
                             last, activity, idle))
    return out


def lapse_unused(session: Session, *, today: dt.date, lapse_days: int, dry_run: bool = False) -> list[Lapse]:
    """Lapse every approved authorization unused for `lapse_days` (see unused_authorizations); idempotent."""
    lapses = unused_authorizations(session, today=today, lapse_days=lapse_days)
    if dry_run:
        return lapses
    applied = []
    for lapse in lapses:
        auth = session.scalar(select(Authorization).where(Authorization.id == lapse.authorization_id)
                              .with_for_update())
        if auth is None or auth.status != S.approved:  # changed meanwhile
            continue
        applied.append(lapse)
        system_transition(session, auth, S.lapsed, valid_until=today,
                          reason=f"lapsed: no use of the special mark since {lapse.last_activity.isoformat()} "
                                 f"(last {lapse.activity}; {lapse.idle_days} days, the limit is {lapse_days})")
    return applied

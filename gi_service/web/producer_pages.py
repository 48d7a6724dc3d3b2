"""Producers, plots and authorizations: the authority's and inspector's producer pages, and the
producer's own plots on a map."""
from __future__ import annotations

import json
from collections import defaultdict

from flask import request
from sqlalchemy import select

from ..db import get_session
from ..errors import GIError, InvalidGeometry
from ..http.geojson import polygon_from_geojson
from .. import clock
from ..i18n import t, v
from ..models import Authorization, AuthorizationStatus, GIProduct, OrgKind, Organisation, Plot, User
from ..render.maps import area_map, plots_map
from ..services import accounts, marks, producers
from ..services.registry import can_manage_gi
from .framework import (AUTHORITY, INSPECTION, MAX_ID, PRODUCER, F, Form, commit, done, page, problem, render,
                        rollback)

PAGE_SIZE = 100
# The order the choices are offered in: the usual next step first, the final ones last.
TRANSITION_ORDER = (AuthorizationStatus.approved, AuthorizationStatus.suspended, AuthorizationStatus.lapsed,
                    AuthorizationStatus.revoked)


def plots_by_gi(db, plots: list[Plot]) -> list[dict]:
    """Plots grouped per GI, each group with the area map and a close-up of the plots."""
    groups: dict[int, list[Plot]] = defaultdict(list)
    for p in plots:
        groups[p.gi_id].append(p)
    result = []
    for gi_id, items in groups.items():
        gi = db.get(GIProduct, gi_id)
        result.append({"gi": gi, "plots": items, "total_mu": sum(p.area_mu for p in items),
                       "area_svg": area_map(db, gi.origin_area_id, title=f"{gi.name_zh} {t('area')}", plots=items),
                       "detail_svg": plots_map(db, gi.origin_area_id, items, title=f"{gi.name_zh} {t('plots_map')}")})
    return result


# --- authority / inspection: producers in the jurisdiction ----------------------------------------

@page("/app/producers", "producers", kinds=(AUTHORITY, INSPECTION),
      summary="Producers registered in the jurisdiction (search by name or USCC)")
def producer_list(principal):
    db = get_session()
    q = (request.args.get("q") or "").strip()[:100]
    stmt = accounts.organisations_matching(principal, q or None).where(Organisation.kind == OrgKind.producer)
    rows = list(db.scalars(stmt.order_by(Organisation.id).limit(PAGE_SIZE)))
    auths = defaultdict(list)
    if rows:
        for a in db.scalars(select(Authorization).where(Authorization.producer_id.in_([r.id for r in rows]))):
            auths[a.producer_id].append(a)
    return render("app/producers.html", rows=rows, q=q, auths=auths)


def _producer_page(principal, producer_id: int, *, error: str | None = None, error_at: str | None = None,
                   form=None, status: int = 200):
    db = get_session()
    producer = producers.get_producer(db, producer_id)
    producers.require_producer_access(principal, producer)
    plots = producers.list_plots(db, producer_id, by=principal)
    auths = [a for a in producers.list_authorizations(db, producer_id=producer_id)
             if producers.can_see_authorization(db, principal, a)]
    manageable = {a.id for a in auths if can_manage_gi(db, principal, a.gi)}
    changers = {e.changed_by_id for a in auths for e in a.events if e.changed_by_id}
    users = dict(db.execute(select(User.id, User.username).where(User.id.in_(changers))).all()) if changers else {}
    accounts = marks.list_accounts(db, principal, producer_id=producer_id)
    taken = {a.gi_id for a in auths}
    registrable = []
    if principal.org_kind == OrgKind.authority:
        registrable = [gi for gi in db.scalars(select(GIProduct).order_by(GIProduct.id))
                       if gi.id not in taken and can_manage_gi(db, principal, gi)]
    openable = [a.gi for a in auths if a.status == AuthorizationStatus.approved and a.id in manageable]
    return render("app/producer.html", status=status, producer=producer, groups=plots_by_gi(db, plots), auths=auths,
                  manageable=manageable, transitions=producers.TRANSITIONS, transition_order=TRANSITION_ORDER,
                  users=users, accounts=accounts,
                  registrable=registrable, openable=openable, year=clock.now().year, error=error, error_at=error_at,
                  form=form or {})


@page("/app/producers/<id:producer_id>", "producer", kinds=(AUTHORITY, INSPECTION),
      summary="One producer: plots on a map, authorizations with history, quota accounts",
      note="an authority or inspection unit covering the producer's registered place")
def producer_detail(principal, producer_id: int):
    return _producer_page(principal, producer_id)


@page("/app/authorizations/<id:auth_id>/transition", "authorization_transition", methods=("POST",), kinds=(AUTHORITY,),
      summary="Approve, suspend, reinstate, revoke or lapse an authorization, with the reason",
      note="the authority managing the GI",
      form={"reason": F.text(), "announcement_no": F.text(100, required=False),
            "to": F.choice([s.value for s in AuthorizationStatus], description="the new status (the transitions the "
                                                                               "current one allows; else 409)")})
def authorization_transition(principal, auth_id: int):
    db = get_session()
    auth = producers.get_authorization(db, auth_id)
    producer_id = auth.producer_id
    form = Form()
    reason = form.text("reason", t("reason"))
    announcement = form.text("announcement_no", t("announcement_no"), required=False, max_len=100)
    to = request.form.get("to") or ""
    try:
        form.check()
        if to not in AuthorizationStatus._value2member_map_:
            raise GIError(f"choose the new status (got {to!r})", code="validation_failed", status=422)
        auth = producers.transition_authorization(db, auth_id, AuthorizationStatus(to), by=principal, reason=reason,
                                                  announcement_no=announcement)
        new_status = auth.status
        commit()
    except GIError as exc:
        rollback()
        return _producer_page(principal, producer_id, error=problem(exc), error_at=f"auth-{auth_id}",
                              form=request.form, status=int(exc.status))
    return done(t("transitioned", status=v(new_status)), "web.producer", producer_id=producer_id)


@page("/app/producers/<id:producer_id>/authorizations", "authorization_register", methods=("POST",),
      kinds=(AUTHORITY,), summary="Register a producer's authorization for a GI, approved at once",
      note="the authority managing the GI",
      form={"gi_id": F.ident(), "reason": F.text(), "announcement_no": F.text(100)})
def authorization_register(principal, producer_id: int):
    db = get_session()
    form = Form()
    gi_id = form.integer("gi_id", t("gi"), lo=1, hi=MAX_ID)
    reason = form.text("reason", t("reason"))
    announcement = form.text("announcement_no", t("announcement_no"), max_len=100)
    try:
        form.check()
        gi = db.get(GIProduct, gi_id)
        if gi is None:
            raise GIError(f"GI {gi_id} does not exist", code="gi_not_found", status=404)
        basis = next(iter(producers.BASIS_FOR_KIND[gi.kind]))
        producers.create_authorization(db, producer_id=producer_id, gi_id=gi_id, basis=basis, by=principal,
                                       reason=reason, announcement_no=announcement, approve=True)
        commit()
    except GIError as exc:
        rollback()
        return _producer_page(principal, producer_id, error=problem(exc), error_at="register", form=request.form,
                              status=int(exc.status))
    return done(t("authorization_created"), "web.producer", producer_id=producer_id)


@page("/app/producers/<id:producer_id>/quota", "quota_open", methods=("POST",), kinds=(AUTHORITY,),
      summary="Open a producer's yearly quota account (Σ surveyed plot mu × standard yield)",
      note="the authority managing the GI",
      form={"gi_id": F.ident(), "year": F.integer(2000, 2100),
            "reason": F.text(required=False, description="optional (default: annual opening)")})
def quota_open(principal, producer_id: int):
    form = Form()
    gi_id = form.integer("gi_id", t("gi"), lo=1, hi=MAX_ID)
    year = form.integer("year", t("year"), lo=2000, hi=2100)
    reason = form.text("reason", t("reason"), required=False) or "annual opening"
    try:
        form.check()
        account = marks.open_account(get_session(), producer_id=producer_id, gi_id=gi_id, year=year, by=principal,
                                     reason=reason)
        account_id, kg = account.id, account.base_g / 1000
        commit()
    except GIError as exc:
        rollback()
        return _producer_page(principal, producer_id, error=problem(exc), error_at="quota", form=request.form,
                              status=int(exc.status))
    return done(t("account_opened", kg=f"{kg:,.3f}"), "web.quota_account", account_id=account_id)


# --- producer: its own plots -----------------------------------------------------------------------

def _plots_page(principal, *, error: str | None = None, form=None, status: int = 200):
    db = get_session()
    plots = producers.list_plots(db, principal.organisation_id, by=principal)
    auths = producers.list_authorizations(db, producer_id=principal.organisation_id)
    return render("app/plots.html", status=status, groups=plots_by_gi(db, plots), auths=auths,
                  year=clock.now().year, error=error, form=form or {})


@page("/app/plots", "plots", kinds=(PRODUCER,), summary="The producer's plots on a map, and registering a plot")
def plots(principal):
    return _plots_page(principal)


@page("/app/plots/new", "plot_create", methods=("POST",), kinds=(PRODUCER,),
      summary="Register a surveyed plot (GeoJSON polygon); it must lie inside the GI's production area",
      form={"gi_id": F.ident(), "name": F.text(120), "survey_year": F.integer(1980, 2100),
            "geometry": F.text(500_000, description="the boundary: a GeoJSON Polygon or MultiPolygon (WGS-84) "
                                                    "inside the GI's production area")})
def plot_create(principal):
    form = Form()
    gi_id = form.integer("gi_id", t("gi"), lo=1, hi=MAX_ID)
    name = form.text("name", t("plot_name"), max_len=120)
    survey_year = form.integer("survey_year", t("survey_year"), lo=1980, hi=2100)
    text = form.text("geometry", t("plot_geojson"), max_len=500_000)
    try:
        form.check()
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise InvalidGeometry(f"the boundary is not valid JSON: {exc}") from None
        except RecursionError:          # nested deeper than the parser goes: never a 500
            raise InvalidGeometry("the boundary is nested too deeply to be GeoJSON; paste the polygon's "
                                  "GeoJSON geometry") from None
        if not isinstance(obj, dict):
            raise InvalidGeometry("the boundary must be a GeoJSON object")
        plot = producers.create_plot(get_session(), principal.organisation_id, gi_id=gi_id, name=name,
                                     geom=polygon_from_geojson(obj), survey_year=survey_year, by=principal)
        mu = plot.area_mu
        commit()
    except GIError as exc:
        rollback()
        return _plots_page(principal, error=problem(exc), form=request.form, status=int(exc.status))
    return done(t("plot_added", mu=f"{mu:.2f}"), "web.plots")


@page("/app/plots/<id:plot_id>/retire", "plot_retire", methods=("POST",), kinds=(PRODUCER, AUTHORITY),
      summary="Retire a plot (kept for the quotas of past years)", note="the producer or an authority covering it",
      form={})
def plot_retire(principal, plot_id: int):
    db = get_session()
    plot = producers.retire_plot(db, plot_id, by=principal)
    producer_id = plot.producer_id
    commit()
    if principal.org_kind == OrgKind.producer:
        return done(t("plot_retired"), "web.plots")
    return done(t("plot_retired"), "web.producer", producer_id=producer_id)


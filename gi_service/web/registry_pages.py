"""Registry pages: search the GI archive, read a record with its version history and its area map,
and (for the managing authority) amend it as a new version."""
from __future__ import annotations

from flask import request
from sqlalchemy import select

from ..db import get_session
from ..errors import GIError
from ..i18n import t
from ..models import GIKind, GIStatus, User
from ..render.maps import area_map
from ..services import registry
from .framework import AUTHORITY, MAX_ID, F, Form, commit, done, page, problem, render, rollback

AMENDABLE = ("registration_no", "standard", "testing_body", "managing_body", "area_description")
PAGE_SIZE = 50


@page("/app/registry", "registry", summary="GI registry: search by name (Chinese, pinyin, English), kind and status")
def registry_list(principal):
    db = get_session()
    q = (request.args.get("q") or "").strip()[:100]
    kind = request.args.get("kind") or None
    status = request.args.get("status") or None
    kind = GIKind(kind) if kind in GIKind._value2member_map_ else None
    status = GIStatus(status) if status in GIStatus._value2member_map_ else None
    rows, total = registry.search_gis(db, q=q or None, kind=kind, status=status, limit=PAGE_SIZE)
    areas = registry.areas_by_id(db, (r.origin_area_id for r in rows))
    return render("app/registry.html", rows=rows, total=total, areas=areas, q=q, kind=kind, status=status,
                  kinds=list(GIKind), statuses=list(GIStatus))


def _detail(principal, gi_id: int, *, error: str | None = None, form=None, status: int = 200):
    db = get_session()
    gi = registry.get_gi(db, gi_id)
    versions = registry.list_versions(db, gi_id)
    users = dict(db.execute(select(User.id, User.username)
                            .where(User.id.in_({v.changed_by_id for v in versions}))).all())
    area = registry.area_by_id(db, gi.origin_area_id)
    svg = area_map(db, gi.origin_area_id, title=f"{gi.name_zh} {t('area')}")
    return render("app/gi.html", status=status, gi=gi, area=area, svg=svg, versions=list(reversed(versions)),
                  users=users, can_manage=registry.can_manage_gi(db, principal, gi), statuses=list(GIStatus),
                  amendable=AMENDABLE, error=error, form=form or {})


@page("/app/registry/<id:gi_id>", "gi", summary="One GI record: fields, quality requirements, area map, versions")
def gi_detail(principal, gi_id: int):
    return _detail(principal, gi_id)


@page("/app/registry/<id:gi_id>/amend", "gi_amend", methods=("POST",), kinds=(AUTHORITY,),
      summary="Amend a GI record (a new version with the reason)", note="the authority managing the GI",
      form={"reason": F.text(),
            "expected_version": F.integer(1, MAX_ID, required=False, description="the version the change was made "
                                                                                 "on: another is refused (409)"),
            **{name: F.text(required=False, description="the new value; blank: unchanged") for name in AMENDABLE},
            "standard_yield_kg_per_mu": F.decimal(gt=0, hi=100_000, description="the new standard yield (kg per mu, "
                                                                               "as the API); blank: unchanged"),
            "status": F.choice([s.value for s in GIStatus], required=False, description="the new status")})
def gi_amend(principal, gi_id: int):
    form = Form()
    reason = form.text("reason", t("reason"))
    expected = form.integer("expected_version", t("version"), required=False, lo=1, hi=MAX_ID)
    changes: dict = {}
    for name in AMENDABLE:
        value = form.text(name, name, required=False)
        if value is not None:
            changes[name] = value
    yield_ = form.decimal("standard_yield_kg_per_mu", t("standard_yield"), gt=0, hi=100_000)
    if yield_ is not None:
        changes["standard_yield_kg_per_mu"] = yield_
    new_status = request.form.get("status") or ""
    if new_status in GIStatus._value2member_map_:
        changes["status"] = GIStatus(new_status)
    elif new_status:
        form._fail("status", "out_of_range", t("status"))
    try:
        form.check()
        gi = registry.amend_gi(get_session(), gi_id, changes, by=principal, reason=reason,
                               expected_version=expected)
        version = gi.version
        commit()
    except GIError as exc:
        rollback()
        return _detail(principal, gi_id, error=problem(exc), form=request.form, status=int(exc.status))
    return done(t("amended", v=version), "web.gi", gi_id=gi_id)

"""Producers, their plots and authorizations."""
from __future__ import annotations

from sqlalchemy import func, select

from ..db import get_session
from ..errors import NotFound
from ..http.access import public, signed_in
from ..http.contract import endpoint
from ..http.geojson import polygon_from_geojson
from ..models import OrgKind, Organisation
from ..services import accounts, producers
from ..services.jurisdiction import division_codes
from . import bp, serialize
from .schemas import (AuthorizationBody, AuthorizationQuery, PlotBody, PlotPatchBody, ProducerBody, ProducerQuery,
                      TransitionBody)

PRODUCER_ERRORS = {404: "no such producer"}
PLOT_ACCESS = "the producer itself, or an authority (read: also an inspection unit) covering its registered place"


@endpoint(bp, "/producers", access=public(), query=ProducerQuery, tags=["producers"],
          summary="Producers (public register: name, USCC, registered place)")
def list_producers(principal, query: ProducerQuery):
    session = get_session()
    stmt = select(Organisation).where(Organisation.kind == OrgKind.producer)
    if query.q:
        like = f"%{query.q}%"
        stmt = stmt.where(Organisation.name.like(like) | Organisation.uscc.like(like.upper()))
    units = division_codes(query.adcode) if query.adcode else None
    if units is not None:
        stmt = stmt.where(Organisation.adcode.in_(units))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(Organisation.id).limit(query.limit).offset(query.offset))
    return {"items": [serialize.organisation(o) for o in rows], "total": total,
            "limit": query.limit, "offset": query.offset}


@endpoint(bp, "/producers", methods=["POST"], body=ProducerBody, status=201, tags=["producers"],
          access=signed_in(OrgKind.authority, note="registered place inside its jurisdiction"),
          summary="Register a producer; its USCC is validated (GB 32100-2015)",
          responses={403: "outside jurisdiction", 409: "duplicate USCC", 422: "invalid USCC, with the position"})
def create_producer(principal, body: ProducerBody):
    session = get_session()
    org = accounts.create_organisation(session, kind=OrgKind.producer, by=principal, **body.model_dump())
    session.commit()
    return serialize.organisation(org, private=True)


@endpoint(bp, "/producers/<id:producer_id>", access=public(note="address and contact only for " + PLOT_ACCESS),
          tags=["producers"], responses=PRODUCER_ERRORS, summary="One producer with its authorizations")
def get_producer(principal, producer_id: int):
    session = get_session()
    org = producers.get_producer(session, producer_id)
    data = serialize.organisation(org, private=producers.can_see_producer_private(principal, org))
    data["authorizations"] = [serialize.authorization(a) for a in producers.list_authorizations(
        session, producer_id=org.id) if producers.can_see_authorization(session, principal, a)]
    return data


@endpoint(bp, "/producers/<id:producer_id>/plots", access=signed_in(note=PLOT_ACCESS), tags=["producers"],
          responses={**PRODUCER_ERRORS, 403: "not your producer"}, summary="A producer's active plots (GeoJSON)")
def list_plots(principal, producer_id: int):
    plots = producers.list_plots(get_session(), producer_id, by=principal)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": p.id, "geometry": serialize.plot(p)["geometry"],
         "properties": serialize.plot(p, geometry=False)} for p in plots]}


@endpoint(bp, "/producers/<id:producer_id>/plots", methods=["POST"], body=PlotBody, status=201,
          access=signed_in(OrgKind.producer, OrgKind.authority, note="the producer itself or an authority covering it"),
          tags=["producers"], summary="Register a surveyed plot; it must lie inside its GI's production area (1 m "
                                      "tolerance)",
          responses={**PRODUCER_ERRORS, 403: "not your producer",
                     409: "duplicate_plot_code: the producer has a plot with this code",
                     422: "invalid geometry, or plot_outside_area with how many mu lie outside"})
def create_plot(principal, producer_id: int, body: PlotBody):
    session = get_session()
    geom = polygon_from_geojson(body.geometry)
    plot = producers.create_plot(session, producer_id, gi_id=body.gi_id, name=body.name, geom=geom,
                                 survey_year=body.survey_year, by=principal, code=body.code)
    session.commit()
    return serialize.plot(plot)


@endpoint(bp, "/plots/<id:plot_id>", access=signed_in(note=PLOT_ACCESS), tags=["producers"],
          responses={404: "no such plot", 403: "not your plot"}, summary="One plot")
def get_plot(principal, plot_id: int):
    return serialize.plot(producers.get_plot(get_session(), plot_id, by=principal))


@endpoint(bp, "/plots/<id:plot_id>", methods=["PATCH"], body=PlotPatchBody, tags=["producers"],
          access=signed_in(OrgKind.producer, OrgKind.authority, note="the producer itself or an authority covering it"),
          responses={404: "no such plot", 403: "not your plot", 422: "invalid or outside the area"},
          summary="Change a plot's name, survey year or geometry (re-checked against the area)")
def update_plot(principal, plot_id: int, body: PlotPatchBody):
    session = get_session()
    changes = body.model_dump(exclude_unset=True)
    if "geometry" in changes:
        changes["geom"] = polygon_from_geojson(changes.pop("geometry"))
    plot = producers.update_plot(session, plot_id, changes, by=principal)
    session.commit()
    return serialize.plot(plot)


@endpoint(bp, "/plots/<id:plot_id>", methods=["DELETE"], tags=["producers"],
          access=signed_in(OrgKind.producer, OrgKind.authority, note="the producer itself or an authority covering it"),
          responses={404: "no such plot", 403: "not your plot"},
          summary="Retire a plot (kept for the quotas of past years)")
def retire_plot(principal, plot_id: int):
    session = get_session()
    plot = producers.retire_plot(session, plot_id, by=principal)
    session.commit()
    return {"id": plot.id, "retired": True}


@endpoint(bp, "/authorizations", access=public(note="pending applications only for the producer and the GI's "
                                                    "authority"),
          query=AuthorizationQuery, tags=["authorizations"], summary="Authorizations to use the special mark")
def list_authorizations(principal, query: AuthorizationQuery):
    session = get_session()
    rows = producers.list_authorizations(session, producer_id=query.producer_id, gi_id=query.gi_id,
                                         status=query.status)
    return {"items": [serialize.authorization(a) for a in rows
                      if producers.can_see_authorization(session, principal, a)]}


@endpoint(bp, "/authorizations", methods=["POST"], body=AuthorizationBody, status=201, tags=["authorizations"],
          access=signed_in(OrgKind.producer, OrgKind.authority,
                           note="a producer applies for itself; the GI's authority may register it approved"),
          summary="Apply for (or register) an authorization to use the special mark",
          responses={403: "not yours / outside jurisdiction", 404: "no such producer or GI",
                     409: "an authorization already exists", 422: "wrong basis for this kind of GI"})
def create_authorization(principal, body: AuthorizationBody):
    session = get_session()
    auth = producers.create_authorization(session, by=principal, **body.model_dump())
    session.commit()
    return serialize.authorization(auth, events=True)


@endpoint(bp, "/authorizations/<id:auth_id>", access=public(note="pending ones only for the producer and "
                                                                 "the GI's authority"),
          tags=["authorizations"], responses={404: "no such authorization"},
          summary="One authorization with its full history")
def get_authorization(principal, auth_id: int):
    session = get_session()
    auth = producers.get_authorization(session, auth_id)
    if not producers.can_see_authorization(session, principal, auth):
        raise NotFound(f"authorization {auth_id} does not exist", code="authorization_not_found")
    return serialize.authorization(auth, events=True)


@endpoint(bp, "/authorizations/<id:auth_id>/transitions", methods=["POST"], body=TransitionBody,
          access=signed_in(OrgKind.authority, note="the authority managing the GI"), tags=["authorizations"],
          summary="Approve, suspend, revoke, lapse or reinstate an authorization (with the reason)",
          responses={403: "outside jurisdiction", 404: "no such authorization", 409: "transition not allowed"})
def transition_authorization(principal, auth_id: int, body: TransitionBody):
    session = get_session()
    auth = producers.transition_authorization(session, auth_id, body.to, by=principal, reason=body.reason,
                                              announcement_no=body.announcement_no)
    session.commit()
    return serialize.authorization(auth, events=True)

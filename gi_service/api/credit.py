"""Credit supervision: the public serious-violator list, producers' credit records, lifting and delisting."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from ..db import get_session
from ..errors import Forbidden, Unauthenticated
from ..http.access import public, signed_in
from ..http.contract import endpoint
from ..http.answers.credit import violators_file
from ..http.schemas import Adcode, Id, Offset, Query, Reason, Strict
from ..models import OrgKind
from ..services import credit
from . import bp

TAG = ["credit"]


@bp.record_once
def _load_credit_rules(state) -> None:
    """Read the credit rules when the app starts: a malformed GI_CREDIT_RULES file stops create_app."""
    settings = state.app.config["GI_SETTINGS"]
    state.app.extensions["gi_credit_rules"] = credit.load_rules(settings.credit_rules_path)


class ViolatorQuery(Query):
    adcode: Optional[Adcode] = Field(default=None, description="producers registered inside this division")
    producer_id: Optional[Id] = None
    include_delisted: bool = Field(default=False, description="history with delisted entries (authorities and "
                                                              "inspection units only)")
    limit: int = Field(default=100, ge=1, le=500, description="JSON only: a file holds every matching entry")
    offset: Offset = 0
    format: Literal["json", "csv", "xlsx"] = Field(default="json", description="csv (UTF-8 with BOM) or xlsx (Excel):"
                                                                           " every matching entry, newest first")


class LiftBody(Strict):
    gi_id: Id
    reason: Reason


class DelistBody(Strict):
    reason: Reason


@endpoint(bp, "/serious-violators", access=public(note="history (include_delisted) for authorities and inspection "
                                                        "units"),
          query=ViolatorQuery, tags=TAG, responses={401: "history asked without signing in",
                                                    403: "history asked by a producer or printer"},
          summary="The public serious-violator list (严重违法失信名单): current entries, newest first (JSON, CSV or "
                  "Excel)")
def list_serious_violators(principal, query: ViolatorQuery):
    if query.include_delisted:
        if principal is None:
            raise Unauthenticated("sign in as an authority or inspection unit to see delisted entries")
        if principal.org_kind not in credit.SUPERVISORS:
            raise Forbidden("the list's history is for authorities and inspection units", code="wrong_role")
    session = get_session()
    if query.format != "json":
        return violators_file(session, query.format, include_delisted=query.include_delisted, adcode=query.adcode,
                              producer_id=query.producer_id)
    rows, total = credit.list_serious_violators(session, include_delisted=query.include_delisted,
                                                adcode=query.adcode, producer_id=query.producer_id,
                                                limit=query.limit, offset=query.offset)
    return {"items": [credit.listing_dict(s, producer=p, case_number=c.number, history=query.include_delisted)
                      for s, p, c in rows],
            "total": total, "limit": query.limit, "offset": query.offset}


@endpoint(bp, "/serious-violators/<id:listing_id>/delist", methods=["POST"], body=DelistBody, tags=TAG,
          access=signed_in(OrgKind.authority, note="an authority covering the producer's registered place"),
          responses={403: "outside jurisdiction", 404: "no such entry",
                     409: "too_early (before repair_after) or already_delisted"},
          summary="Take a producer off the list after its credit repair period (recorded with who and why)")
def delist_serious_violator(principal, listing_id: int, body: DelistBody):
    session = get_session()
    listing = credit.delist(session, listing_id, reason=body.reason, by=principal)
    session.commit()
    return credit.listing_dict(listing, history=True)


@endpoint(bp, "/producers/<id:producer_id>/suspension/lift", methods=["POST"], body=LiftBody, tags=TAG,
          access=signed_in(OrgKind.authority, note="the authority managing the GI"),
          responses={403: "outside jurisdiction", 404: "no such producer, GI or authorization",
                     409: "the authorization is not suspended (not_suspended)"},
          summary="Lift a suspension: the authorization is approved again; voided marks stay voided and a "
                  "listing stays until delisted")
def lift_suspension(principal, producer_id: int, body: LiftBody):
    session = get_session()
    auth = credit.lift_suspension(session, producer_id, gi_id=body.gi_id, reason=body.reason, by=principal)
    session.commit()
    return {"authorization_id": auth.id, "producer_id": auth.producer_id, "gi_id": auth.gi_id,
            "status": auth.status.value, "restored": ["authorization"],
            "not_restored": {"voided_marks": "voided marks stay voided: the ledger is append-only; request new "
                                             "marks within the quota",
                             "listing": "a serious-violator listing stays until it is delisted after its credit "
                                        "repair period"}}


@endpoint(bp, "/producers/<id:producer_id>/credit", tags=TAG,
          access=signed_in(note="the producer itself, and authorities and inspection units covering its place"),
          responses={403: "not your producer", 404: "no such producer"},
          summary="A producer's credit record: confirmed violations, suspensions, voided marks, listings")
def producer_credit(principal, producer_id: int):
    return credit.credit_record(get_session(), producer_id, by=principal)


@endpoint(bp, "/credit-rules", access=public(), tags=TAG,
          summary="The credit rules in force: which confirmed violations are serious, and the repair period")
def credit_rules(principal):
    from flask import current_app

    return current_app.extensions["gi_credit_rules"].public()

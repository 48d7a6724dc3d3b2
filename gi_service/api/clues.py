"""The inspectors' queue: copied-label alerts and consumers' reports of suspected fakes."""
from __future__ import annotations

import datetime as dt
from typing import Literal, Optional

from flask import current_app
from pydantic import Field

from ..db import get_session
from ..http.access import signed_in
from ..http.contract import endpoint
from ..http.files import stored_photo
from ..http.schemas import Adcode, Offset, Query, Reason, Strict
from ..models import AlertKind, ClueKind, ClueStatus, OrgKind
from ..services import clues
from . import bp

TAG = ["clues"]
ACCESS = signed_in(OrgKind.authority, OrgKind.inspection,
                   note="clues routed to a place inside the caller's jurisdiction (where it happened, the "
                        "producer's place, or the GI authority's)")
ERRORS = {403: "not an authority or inspection unit, or the clue concerns no place in your jurisdiction",
          404: "no such clue"}


class ClueQuery(Query):
    kind: Optional[ClueKind] = None
    alert_kind: Optional[AlertKind] = None
    status: Optional[ClueStatus] = None
    gi_id: Optional[int] = Field(default=None, ge=1, le=2**31 - 1)
    producer_id: Optional[int] = Field(default=None, ge=1, le=2**31 - 1)
    adcode: Optional[Adcode] = Field(default=None, description="routed to a place inside this division")
    since: Optional[dt.datetime] = Field(default=None, description="last activity at or after (ISO 8601)")
    limit: int = Field(default=50, ge=1, le=500)
    offset: Offset = 0


class ClueStatusBody(Strict):
    status: Literal["open", "acknowledged", "dismissed"]
    reason: Reason


@endpoint(bp, "/clues", access=ACCESS, query=ClueQuery, tags=TAG,
          summary="The caller's queue of clues (copied-label alerts, consumer reports), newest activity first")
def list_clues(principal, query: ClueQuery):
    session = get_session()
    f = clues.ClueFilter(kind=query.kind, alert_kind=query.alert_kind, status=query.status, gi_id=query.gi_id,
                         producer_id=query.producer_id, adcode=query.adcode, since=query.since)
    rows, total = clues.list_clues(session, principal, f, limit=query.limit, offset=query.offset)
    names = clues.gi_names(session, rows)
    return {"items": [clues.serialize(c, gi_names=names) for c in rows], "total": total, "limit": query.limit,
            "offset": query.offset}


@endpoint(bp, "/clues/<id:clue_id>", access=ACCESS, tags=TAG, responses=ERRORS,
          summary="One clue with its evidence and the places it is routed to")
def get_clue(principal, clue_id: int):
    session = get_session()
    clue = clues.get_clue(session, clue_id, principal)
    return clues.serialize(clue, gi_names=clues.gi_names(session, [clue]))


@endpoint(bp, "/clues/<id:clue_id>/status", methods=["POST"], access=ACCESS, body=ClueStatusBody, tags=TAG,
          responses={**ERRORS, 409: "already in that status, or taken into a case"},
          summary="Acknowledge, dismiss or reopen a clue (who and why are recorded)")
def set_clue_status(principal, clue_id: int, body: ClueStatusBody):
    session = get_session()
    clue = clues.set_status(session, clue_id, principal, ClueStatus(body.status), body.reason)
    return clues.serialize(clue, gi_names=clues.gi_names(session, [clue]))


@endpoint(bp, "/clues/<id:clue_id>/photo", access=ACCESS, tags=TAG, content_type="image/jpeg",
          responses={**ERRORS, 404: "no such clue, or it has no photo"},
          summary="The photo of a consumer report (re-encoded JPEG, no EXIF; its SHA-256 is in the clue)")
def get_clue_photo(principal, clue_id: int):
    data, report = clues.report_photo(get_session(), current_app.extensions["gi_storage"], clue_id, principal)
    return stored_photo(data, report.photo_sha256)

"""Inspectors' findings: file one (or an offline batch), add photos, read them (see services/findings.py)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from flask import Response, jsonify
from pydantic import Field, field_validator

from .. import clock
from ..db import get_session
from ..http.access import signed_in
from ..http.answers import findings as answers
from ..http.answers.findings import PHOTO_FORM_SCHEMA, PHOTO_RESPONSES, FindingBatchBody, FindingBody
from ..http.contract import endpoint
from ..http.schemas import Adcode, Id, Offset, Query
from ..models import OrgKind, PremisesKind, ViolationKind
from ..services import findings
from . import bp

TAG = ["findings"]
FILE_ACCESS = signed_in(OrgKind.inspection, OrgKind.authority,
                        note="at a point inside the caller's jurisdiction")
READ_ACCESS = signed_in(OrgKind.authority, OrgKind.inspection,
                        note="findings filed by the caller's organisation, or found, or naming a producer or a GI "
                             "authority, in the caller's jurisdiction")
PHOTO_ACCESS = signed_in(OrgKind.inspection, OrgKind.authority, note="the organisation that filed the finding")
FILE_ERRORS = {
    200: "the same finding (organisation, client_id, content) was uploaded before: the stored one, with "
         "X-Idempotent-Replay: true",
    403: "not an inspection unit or authority, or the point is outside your jurisdiction (outside_jurisdiction)",
    409: "client_id already used by your organisation for a finding with different content (client_id_reused)",
    422: "a field is missing or invalid: validation_failed, invalid_uscc, point_outside_china, gi_not_found, "
         "producer_not_found, gi_required, code_too_long",
}
READ_ERRORS = {403: "not an authority or inspection unit, or the finding concerns no place in your jurisdiction",
               404: "no such finding"}

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MOMENT = {"anyOf": [{"format": "date"}, {"format": "date-time"}]}  # the schema of observed_from / observed_to


def _bound(value: Optional[str], *, end: bool) -> Optional[dt.datetime]:
    """A date (a whole day in China Standard Time) or an ISO datetime (no zone: CST) as a UTC instant."""
    if value is None:
        return None
    if _DAY.match(value):
        day = dt.date.fromisoformat(value)
        if end:
            return clock.end_of_day(day)
        return clock.start_of_day(day)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.CHINA_TZ)
    return moment.astimezone(dt.timezone.utc)


class FindingQuery(Query):
    gi_id: Optional[Id] = None
    producer_id: Optional[Id] = None
    adcode: Optional[Adcode] = Field(default=None, description="found inside this division (its sub-units included)")
    violation: Optional[ViolationKind] = Field(default=None, description="lists this violation kind")
    premises_kind: Optional[PremisesKind] = None
    organisation_id: Optional[Id] = Field(default=None, description="filed by this organisation")
    observed_from: Optional[str] = Field(default=None, max_length=40, json_schema_extra=MOMENT,
                                         description="observed at or after: YYYY-MM-DD (from the start of that "
                                                     "day, China Standard Time) or an ISO 8601 time")
    observed_to: Optional[str] = Field(default=None, max_length=40, json_schema_extra=MOMENT,
                                       description="observed up to: YYYY-MM-DD (that whole day included, China "
                                                   "Standard Time) or an ISO 8601 time (exclusive)")
    limit: int = Field(default=50, ge=1, le=500)
    offset: Offset = 0

    @field_validator("observed_from", "observed_to")
    @classmethod
    def _moment(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            try:
                _bound(value, end=False)
            except ValueError:
                raise ValueError("give a date YYYY-MM-DD or an ISO 8601 time such as 2026-05-01T08:00:00+08:00") \
                    from None
        return value


# --- filing -------------------------------------------------------------------------------------

def _answer(filed: findings.Filed) -> Response:
    session = get_session()
    data = findings.serialize_finding(filed.finding, names=findings.names_for(session, [filed.finding]))
    resp = jsonify(data)
    resp.status_code = 201 if filed.created else 200
    resp.headers["Location"] = data["links"]["self"]
    if not filed.created:
        resp.headers[answers.REPLAY_HEADER] = "true"
    return resp


@endpoint(bp, "/findings", methods=["POST"], access=FILE_ACCESS, body=FindingBody, tags=TAG, status=201,
          responses=FILE_ERRORS,
          summary="File a finding: where (point → county), the premises, the GI, the codes checked (each verified "
                  "on the spot), the violations and notes; idempotent per organisation and client_id")
def file_finding(principal, body: FindingBody):
    return _answer(answers.file_one(principal, body))


@endpoint(bp, "/findings/batch", methods=["POST"], access=FILE_ACCESS, body=FindingBatchBody, tags=TAG,
          responses={200: "one result per item, in order: created (201), replayed (200) or error (its 4xx status "
                          "and error), like a 207 Multi-Status",
                     422: "the batch itself is malformed or holds more than 100 findings or 2,000 codes"},
          summary="Upload findings captured offline (at most 100): each is filed on its own, so one bad item never "
                  "blocks the others, and re-sending the batch creates nothing new")
def file_batch(principal, body: FindingBatchBody):
    return answers.file_batch(principal, body)


# --- reading ------------------------------------------------------------------------------------

@endpoint(bp, "/findings", access=READ_ACCESS, query=FindingQuery, tags=TAG,
          summary="Findings the caller may see, newest observation first (without the full code list)")
def list_findings(principal, query: FindingQuery):
    session = get_session()
    f = findings.FindingFilter(gi_id=query.gi_id, producer_id=query.producer_id, adcode=query.adcode,
                               violation=query.violation, premises_kind=query.premises_kind,
                               organisation_id=query.organisation_id,
                               observed_from=_bound(query.observed_from, end=False),
                               observed_before=_bound(query.observed_to, end=True))
    rows, total = findings.list_findings(session, principal, f, limit=query.limit, offset=query.offset)
    names = findings.names_for(session, rows)
    return {"items": [findings.serialize_finding(r, names=names, full=False) for r in rows], "total": total,
            "limit": query.limit, "offset": query.offset}


@endpoint(bp, "/findings/<id:finding_id>", access=READ_ACCESS, tags=TAG, responses=READ_ERRORS,
          summary="One finding with every code checked (verdict at the time) and its photos' metadata")
def get_finding(principal, finding_id: int):
    session = get_session()
    finding = findings.get_finding(session, finding_id, principal)
    return findings.serialize_finding(finding, names=findings.names_for(session, [finding]))


# --- photos -------------------------------------------------------------------------------------

@endpoint(bp, "/findings/<id:finding_id>/photos", methods=["POST"], access=PHOTO_ACCESS, tags=TAG, status=201,
          body_content_type="multipart/form-data", form_schema=PHOTO_FORM_SCHEMA, responses=PHOTO_RESPONSES,
          summary="Add a photo (multipart `photo`, optional `client_photo_id` and `filename`): JPEG/PNG up to 10 MB, "
                  "re-encoded without EXIF (capture time kept), SHA-256 recorded, stored outside the database")
def add_photo(principal, finding_id: int):
    return answers.add_photo(principal, finding_id)


@endpoint(bp, "/findings/<id:finding_id>/photos", access=READ_ACCESS, tags=TAG, responses=READ_ERRORS,
          summary="The photos' metadata of a finding (SHA-256 of the stored and the uploaded file, capture time)")
def list_photos(principal, finding_id: int):
    finding = findings.get_finding(get_session(), finding_id, principal)
    return {"items": [findings.serialize_photo(p) for p in finding.photos], "max_photos": findings.MAX_PHOTOS}


@endpoint(bp, "/findings/<id:finding_id>/photos/<id:photo_id>", access=READ_ACCESS, tags=TAG,
          content_type="image/jpeg", responses={**READ_ERRORS, 404: "no such finding or photo"},
          summary="One photo of a finding (re-encoded JPEG without EXIF; its SHA-256 is in the finding)")
def get_photo(principal, finding_id: int, photo_id: int):
    return answers.photo(principal, finding_id, photo_id)

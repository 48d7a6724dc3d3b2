"""Inspectors' findings: file one (or an offline batch), add photos, read them (see services/findings.py)."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Annotated, Any, Optional

from flask import Response, current_app, jsonify, request
from pydantic import AwareDatetime, Field, field_validator

from .. import clock
from ..db import get_session
from ..errors import GIError, MalformedRequest, ValidationFailed
from ..models import OrgKind, PremisesKind, ViolationKind
from ..services import findings
from . import bp
from .framework import endpoint, parse_model, signed_in
from .schemas import Adcode, Id, Offset, Query, Strict

TAG = ["findings"]
FILE_ACCESS = signed_in(OrgKind.inspection, OrgKind.authority,
                        note="at a point inside the caller's jurisdiction")
READ_ACCESS = signed_in(OrgKind.authority, OrgKind.inspection,
                        note="findings filed by the caller's organisation, or found, or naming a producer or a GI "
                             "authority, in the caller's jurisdiction")
PHOTO_ACCESS = signed_in(OrgKind.inspection, OrgKind.authority, note="the organisation that filed the finding")
REPLAY_HEADER = "X-Idempotent-Replay"
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

ClientId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                                description="the device's own id of the finding; re-sending it changes nothing")]
CodeRead = Annotated[str, Field(min_length=1, max_length=500,
                                description="a code as read from a label: the 30-character code, the label's "
                                            "link (/v/{code} or a GS1 Digital Link of this service), or the "
                                            "text of a label that is not ours (at most 64 characters)")]


class PremisesBody(Strict):
    name: str = Field(min_length=1, max_length=200, description="shop, market stall, farm or web shop")
    kind: PremisesKind
    url: Optional[str] = Field(default=None, max_length=500, description="http(s); required for e_commerce")
    address: Optional[str] = Field(default=None, max_length=300)
    uscc: Optional[str] = Field(default=None, min_length=18, max_length=18,
                                description="the seller's unified social credit code, if known")


class FindingBody(Strict):
    client_id: ClientId
    observed_at: AwareDatetime = Field(description="when the inspection happened, with its zone; at most 10 "
                                                   "minutes ahead of the server's clock and at most a year ago")
    lat: float = Field(ge=-90, le=90, description="WGS-84 latitude of the point inspected")
    lon: float = Field(ge=-180, le=180, description="WGS-84 longitude of the point inspected")
    premises: PremisesBody
    gi_id: Optional[Id] = Field(default=None, description="the GI concerned; derived from the codes when omitted "
                                                          "and they all point to one")
    producer_id: Optional[Id] = Field(default=None, description="the producer the product or its codes point to; "
                                                                "derived when all verified codes name one")
    codes: list[CodeRead] = Field(default_factory=list, max_length=findings.MAX_CODES,
                                  description="codes read from labels; each is verified on the spot")
    violations: list[ViolationKind] = Field(max_length=len(ViolationKind),
                                            description="violation kinds seen; an empty list records that no "
                                                        "violation was found")
    notes: Optional[str] = Field(default=None, max_length=4000)

    def to_input(self) -> findings.FindingInput:
        p = self.premises
        return findings.FindingInput(
            client_id=self.client_id, observed_at=self.observed_at, lat=self.lat, lon=self.lon,
            premises=findings.PremisesInput(name=p.name, kind=p.kind, url=p.url, address=p.address or None,
                                            uscc=p.uscc),
            violations=tuple(self.violations), codes=tuple(self.codes), gi_id=self.gi_id,
            producer_id=self.producer_id, notes=self.notes or None)


class FindingBatchBody(Strict):
    findings: list[Any] = Field(min_length=1, max_length=findings.MAX_BATCH,
                                description="findings captured offline; each is a FindingBody, validated and "
                                            "filed on its own",
                                # Any item is taken: one that is not a valid FindingBody gets its own error in
                                # the 200 answer (status "error" with its 4xx), so the schema does not refuse it.
                                json_schema_extra={"items": {"description": "a FindingBody (see POST /findings)"}})


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


class PhotoForm(Strict):
    client_photo_id: Optional[ClientId] = Field(default=None, description="re-sending the same photo with it "
                                                                          "changes nothing")
    filename: Optional[str] = Field(default=None, max_length=200, description="default: the uploaded file's name")


# --- filing -------------------------------------------------------------------------------------

def _file(principal, body: FindingBody) -> findings.Filed:
    settings = current_app.config["GI_SETTINGS"]
    return findings.file_finding(get_session(), principal, body.to_input(),
                                 keyring=current_app.extensions["gi_keyring"], base_url=settings.public_base_url)


def _answer(filed: findings.Filed) -> Response:
    session = get_session()
    data = findings.serialize_finding(filed.finding, names=findings.names_for(session, [filed.finding]))
    resp = jsonify(data)
    resp.status_code = 201 if filed.created else 200
    resp.headers["Location"] = data["links"]["self"]
    if not filed.created:
        resp.headers[REPLAY_HEADER] = "true"
    return resp


@endpoint(bp, "/findings", methods=["POST"], access=FILE_ACCESS, body=FindingBody, tags=TAG, status=201,
          responses=FILE_ERRORS,
          summary="File a finding: where (point → county), the premises, the GI, the codes checked (each verified "
                  "on the spot), the violations and notes; idempotent per organisation and client_id")
def file_finding(principal, body: FindingBody):
    return _answer(_file(principal, body))


def _item_client_id(item: Any) -> Optional[str]:
    if isinstance(item, dict) and isinstance(item.get("client_id"), str):
        return item["client_id"][:64]
    return None


@endpoint(bp, "/findings/batch", methods=["POST"], access=FILE_ACCESS, body=FindingBatchBody, tags=TAG,
          responses={200: "one result per item, in order: created (201), replayed (200) or error (its 4xx status "
                          "and error), like a 207 Multi-Status",
                     422: "the batch itself is malformed or holds more than 100 findings or 2,000 codes"},
          summary="Upload findings captured offline (at most 100): each is filed on its own, so one bad item never "
                  "blocks the others, and re-sending the batch creates nothing new")
def file_batch(principal, body: FindingBatchBody):
    total_codes = sum(len(item["codes"]) for item in body.findings
                      if isinstance(item, dict) and isinstance(item.get("codes"), list))
    if total_codes > findings.MAX_BATCH_CODES:
        raise ValidationFailed(f"the batch holds {total_codes} codes; at most {findings.MAX_BATCH_CODES} are "
                               "verified in one batch: split it", code="batch_too_large",
                               details=[{"field": "findings", "problem": "too many codes"}])
    session = get_session()
    results = []
    for index, item in enumerate(body.findings):
        result: dict[str, Any] = {"index": index, "client_id": _item_client_id(item)}
        try:
            if not isinstance(item, dict):
                raise ValidationFailed(f"findings.{index}: each item must be a JSON object (a finding)",
                                       details=[{"field": f"findings.{index}", "problem": "not an object"}])
            parsed = parse_model(FindingBody, None, f"findings.{index}",
                                 json_text=json.dumps(item, ensure_ascii=False).encode())
            # Its own savepoint: a failed item leaves nothing behind and does not undo the others.
            with session.begin_nested():
                filed = _file(principal, parsed)
        except GIError as exc:
            result.update(status="error", status_code=int(exc.status),
                          error={"code": exc.code, "message": exc.message, "details": exc.details})
        else:
            result.update(status="created" if filed.created else "replayed", status_code=201 if filed.created else 200,
                          id=filed.finding.id, links={"self": f"/api/v1/findings/{filed.finding.id}"})
        results.append(result)
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("created", "replayed", "error")}
    return {"items": results, "created": counts["created"], "replayed": counts["replayed"],
            "failed": counts["error"]}


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

def _photo_upload() -> tuple[PhotoForm, bytes, Optional[str]]:
    if request.mimetype != "multipart/form-data":
        raise MalformedRequest("upload the photo as multipart/form-data with a `photo` file",
                               code="unsupported_media_type", status=415)
    fields = {k: v for k, v in request.form.to_dict(flat=True).items() if v.strip() != ""}
    form = parse_model(PhotoForm, fields, "upload")
    unknown_files = sorted(set(request.files) - {"photo"})
    if unknown_files:
        raise ValidationFailed(f"invalid upload: {unknown_files[0]}: unknown file field; send the image as `photo`",
                               details=[{"field": f, "problem": "unknown field; remove it"} for f in unknown_files])
    upload = request.files.get("photo")
    if upload is None or not upload.filename:
        raise ValidationFailed("invalid upload: photo: required field is missing",
                               details=[{"field": "photo", "problem": "required field is missing"}])
    return form, upload.read(findings.PHOTO_MAX_BYTES + 1), form.filename or upload.filename


@endpoint(bp, "/findings/<id:finding_id>/photos", methods=["POST"], access=PHOTO_ACCESS, tags=TAG, status=201,
          body_content_type="multipart/form-data",
          form_schema={"type": "object", "required": ["photo"], "properties": {
              "photo": {"type": "string", "format": "binary", "description": "JPEG or PNG, at most 10 MB"},
              "client_photo_id": {"type": "string", "maxLength": 64,
                                  "description": "the device's id for this photo: a re-upload changes nothing"},
              "filename": {"type": "string", "maxLength": 200}}},
          responses={200: "the same photo was uploaded before with this client_photo_id (X-Idempotent-Replay: true)",
                     403: "not the organisation that filed the finding", 404: "no such finding",
                     409: "the finding already has 20 photos, or client_photo_id was used for another photo",
                     413: "photo larger than 10 MB", 422: "not a JPEG or PNG image, or a bad form field"},
          summary="Add a photo (multipart `photo`, optional `client_photo_id` and `filename`): JPEG/PNG up to 10 MB, "
                  "re-encoded without EXIF (capture time kept), SHA-256 recorded, stored outside the database")
def add_photo(principal, finding_id: int):
    form, data, filename = _photo_upload()
    store = current_app.extensions["gi_storage"]
    session = get_session()
    photo, created = None, False
    try:
        photo, created = findings.add_photo(session, store, finding_id, principal, data,
                                            client_photo_id=form.client_photo_id, filename=filename)
        session.commit()
    except BaseException:
        session.rollback()
        if photo is not None and created:  # no file without its row
            store.delete(photo.key)
        raise
    resp = jsonify({"finding_id": finding_id, **findings.serialize_photo(photo)})
    resp.status_code = 201 if created else 200
    if not created:
        resp.headers[REPLAY_HEADER] = "true"
    return resp


@endpoint(bp, "/findings/<id:finding_id>/photos", access=READ_ACCESS, tags=TAG, responses=READ_ERRORS,
          summary="The photos' metadata of a finding (SHA-256 of the stored and the uploaded file, capture time)")
def list_photos(principal, finding_id: int):
    finding = findings.get_finding(get_session(), finding_id, principal)
    return {"items": [findings.serialize_photo(p) for p in finding.photos], "max_photos": findings.MAX_PHOTOS}


@endpoint(bp, "/findings/<id:finding_id>/photos/<id:photo_id>", access=READ_ACCESS, tags=TAG,
          content_type="image/jpeg", responses={**READ_ERRORS, 404: "no such finding or photo"},
          summary="One photo of a finding (re-encoded JPEG without EXIF; its SHA-256 is in the finding)")
def get_photo(principal, finding_id: int, photo_id: int):
    data, photo = findings.photo_bytes(get_session(), current_app.extensions["gi_storage"], finding_id, photo_id,
                                       principal)
    resp = Response(data, mimetype="image/jpeg")
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Disposition"] = f'inline; filename="finding-{finding_id}-photo-{photo_id}.jpg"'
    # RFC 9530: the stored bytes' SHA-256, the value the finding lists (there in hex).
    resp.headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(photo.sha256)).decode()}:"
    return resp

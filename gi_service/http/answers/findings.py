"""Findings sent from an inspector's device: one finding's body, a batch kept offline (each item filed on its
own, idempotent per client_id), a photo's upload, and a stored photo.

``POST /api/v1/findings…`` and the inspector's pages (``/app/findings/batch``, ``/app/findings/{id}/photos…``,
which the page's script sends kept findings through) answer them alike.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Optional

from flask import Response, current_app, jsonify, request
from pydantic import AwareDatetime, Field

from ...db import get_session
from ...errors import GIError, MalformedRequest, ValidationFailed
from ...models import PremisesKind, ViolationKind
from ...services import findings
from ..files import stored_photo
from ..parsing import parse_model
from ..schemas import Id, Strict

REPLAY_HEADER = "X-Idempotent-Replay"

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


class PhotoForm(Strict):
    client_photo_id: Optional[ClientId] = Field(default=None, description="re-sending the same photo with it "
                                                                          "changes nothing")
    filename: Optional[str] = Field(default=None, max_length=200, description="default: the uploaded file's name")


def file_one(principal, body: FindingBody) -> findings.Filed:
    """File one finding (idempotent per organisation and client_id)."""
    settings = current_app.config["GI_SETTINGS"]
    return findings.file_finding(get_session(), principal, body.to_input(),
                                 keyring=current_app.extensions["gi_keyring"], base_url=settings.public_base_url)


def _item_client_id(item: Any) -> Optional[str]:
    if isinstance(item, dict) and isinstance(item.get("client_id"), str):
        return item["client_id"][:64]
    return None


def file_batch(principal, body: FindingBatchBody) -> dict[str, Any]:
    """File each finding of a batch on its own (a savepoint each): one result per item, in order."""
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
                filed = file_one(principal, parsed)
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


# The upload's fields (the web pages' script sends the same to /app/findings/{id}/photos).
PHOTO_FORM_SCHEMA = {"type": "object", "required": ["photo"], "properties": {
    "photo": {"type": "string", "format": "binary", "description": "JPEG or PNG, at most 10 MB"},
    "client_photo_id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._:-]+$",
                        "description": "the device's id for this photo (A-Z a-z 0-9 . _ : -): a re-upload changes "
                                       "nothing"},
    "filename": {"type": "string", "maxLength": 200}}}
PHOTO_RESPONSES = {200: "the same photo was uploaded before with this client_photo_id (X-Idempotent-Replay: true)",
                   403: "not the organisation that filed the finding", 404: "no such finding",
                   409: "the finding already has 20 photos, or client_photo_id was used for another photo",
                   413: "photo larger than 10 MB", 422: "not a JPEG or PNG image, or a bad form field"}


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


def add_photo(principal, finding_id: int) -> Response:
    """Add the uploaded photo to a finding (committed here; no file is kept without its row)."""
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


def photo(principal, finding_id: int, photo_id: int) -> Response:
    """One stored photo of a finding."""
    data, record = findings.photo_bytes(get_session(), current_app.extensions["gi_storage"], finding_id, photo_id,
                                        principal)
    return stored_photo(data, record.sha256, filename=f"finding-{finding_id}-photo-{photo_id}.jpg")

"""Inspectors on a phone: scan a label with the camera, see the verdict at once, file a finding with photos
and the phone's location — offline too — and read the findings.

**Scanning.** ``/app/scan`` opens the camera (``getUserMedia``) and reads QR codes with the browser's
``BarcodeDetector`` where there is one, else with the bundled jsQR decoder (``static/vendor``). A label's
QR holds ``{base}/v/{code}`` or, for a product with a GTIN, the GS1 Digital Link ``{base}/01/…/21/…?v=``;
both are reduced to the code exactly as a finding reduces them (``findings.read_code``) and checked
with the consumer page's own checks (``verification.check_code`` / ``check_gs1``), described with its
JSON (``verification.describe``).

**An inspector's check is not a consumer check.** ``/app/scan/check`` does *not* log a scan: consumer
checks count how often the public looked a code up, and drive the copied-label signals (too many checks,
impossible travel, outside the sales regions). An inspector who scans twenty cartons in a shop, or the
same label again while filing, would raise false alerts and inflate the count the consumer page shows.
The inspector's look is recorded where it belongs — in the finding, whose codes are verified again when
it is filed and stored with the verdict they got then (as the findings API does). The verdict shows the
consumer counters (how often the public checked the code), read without counting.

**Filing.** The finding form posts to the same service as ``POST /api/v1/findings``: without script as a
multipart form (photos as files); with script every finding is first kept on the device (IndexedDB, the
photos as Blobs) under its ``client_id`` and then sent through ``/app/findings/batch`` — answered like the
API's batch (``http.answers.findings``), so re-sending never files twice — and each photo through
``/app/findings/{id}/photos`` with its ``client_photo_id``. Without a connection the finding waits on the device, listed as "waiting to send",
and goes when the connection returns (the ``online`` event, or the Send button). A service worker
(``/app/sw.js``) keeps the scan and finding pages and the static files so they open offline.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from urllib.parse import urlsplit

from flask import current_app, request, send_from_directory
from sqlalchemy import select

from ..db import get_session
from ..errors import GIError, ValidationFailed
from ..http.answers import findings as answers
from ..http.answers.findings import FindingBatchBody
from ..http.files import photo_thumbnail
from ..http.parsing import json_body_text, parse_model, read_json_body
from .. import clock
from ..i18n import t, v
from ..models import GIProduct, GIStatus, PremisesKind, ViolationKind
from ..services import findings, scans, verification
from ..services.marks import gtin14
from . import bp, csrf
from .framework import (AUTHORITY, INSPECTION, MAX_ID, NOT_BLANK, F, Field, Form, commit, done, page, problem, render,
                        rollback)
from .names import org_names

SUPERVISORS = (AUTHORITY, INSPECTION)
MAX_READ = 500            # characters of one code as read (a GS1 link is longer than a code)
MAX_SCANNED = 50          # codes carried from the scan page to the finding form
LIST_LIMIT = 50

# Words the pages' scripts show (the script cannot call t()); rendered as a JSON data block.
SCRIPT_WORDS = (
    "js_camera_starting", "js_camera_on", "js_camera_denied", "js_camera_missing", "js_camera_stopped",
    "js_decoder_native", "js_decoder_bundled", "js_checking", "js_offline_verdict", "js_not_ours",
    "js_already_scanned", "js_checks_count", "js_location_getting", "js_location_ok", "js_location_failed",
    "js_location_unsupported", "js_saved_offline", "js_sending", "js_sent", "js_send_failed", "js_waiting",
    "js_failed_item", "js_other_user", "js_sign_in_to_send", "js_photos", "js_delete", "js_delete_confirm",
    "js_nothing_waiting", "js_outbox_count", "js_photo_failed", "js_codes", "js_no_location",
    "js_serial", "js_gi", "js_producer", "js_lot", "js_state", "js_remove",
)


def _keyring():
    return current_app.extensions["gi_keyring"]


def _base_url() -> str:
    return current_app.config["GI_SETTINGS"].public_base_url


def script_words() -> str:
    return json.dumps({k: t(k) for k in SCRIPT_WORDS}, ensure_ascii=False)


# --- the verdict on a code as read ---------------------------------------------------------------

def verdict_of(db, text: str) -> dict:
    """The consumer page's answer for a code read from a label, without logging a consumer check."""
    text = (text or "").strip()[:MAX_READ]
    read = findings.read_code(text, keyring=_keyring(), base_url=_base_url())
    check = None
    if read.gtin is not None:
        try:
            gtin = gtin14(read.gtin)
        except GIError:
            gtin = None
        if gtin:
            check = verification.check_gs1(db, _keyring(), gtin=gtin, serial_text=read.link_serial or "",
                                           tag=read.link_tag)
    if check is None:
        check = verification.check_code(db, _keyring(), read.text)
    counters = scans.checks_of(db, check.serial) if check.mark is not None else None
    doc = verification.describe(db, check, counters, base_url=_base_url())
    doc["read"] = text
    doc["stored_as"] = read.text
    foreign = None
    if text.lower().startswith(("http://", "https://")):
        host = urlsplit(text).netloc.lower()
        if host and host != urlsplit(_base_url()).netloc.lower():
            foreign = host
    doc["foreign_host"] = foreign
    if "mark" in doc:
        doc["mark"]["state_label"] = v(doc["mark"]["state"])
    return doc


def _codes_asked() -> list[str]:
    """Codes given in the address (?code=…, repeated), at most MAX_SCANNED, each at most MAX_READ characters."""
    out = []
    for raw in request.args.getlist("code")[:MAX_SCANNED]:
        raw = raw.strip()[:MAX_READ]
        if raw and raw not in out:
            out.append(raw)
    return out


@page("/app/scan", "scan", kinds=SUPERVISORS,
      summary="Scan labels with the phone's camera and see each verdict at once (or type a code: ?code=)",
      note="an inspector's check is not logged as a consumer check")
def scan(principal):
    db = get_session()
    verdicts = [verdict_of(db, code) for code in _codes_asked()]
    return render("app/scan.html", verdicts=verdicts, words=script_words())


@page("/app/scan/check", "scan_check", kinds=SUPERVISORS, content_type="application/json",
      summary="The verdict on one code as read from a label (?code=: the code, its /v/ link or GS1 Digital Link), "
              "as the consumer page's JSON; not logged as a consumer check",
      query={"code": ("the code as read from the label: the 30-character code, its /v/ link or a GS1 Digital Link "
                      f"(read up to {MAX_READ} characters); any text gets a verdict",
                      {"type": "string", "minLength": 1, "pattern": NOT_BLANK}, True)})
def scan_check(principal):
    text = (request.args.get("code") or "").strip()
    if not text:
        raise ValidationFailed("code: give the code or link read from the label",
                               details=[{"field": "code", "problem": "required"}])
    return verdict_of(get_session(), text)


@page("/app/session.json", "session_info", content_type="application/json",
      summary="Who is signed in, and the session's CSRF token, for the pages' scripts (sending kept findings)")
def session_info(principal):
    return {"user": principal.username, "organisation_id": principal.organisation_id, "kind": principal.kind,
            "csrf_token": csrf.token()}


@page("/app/sw.js", "service_worker", kinds=None, content_type="application/javascript",
      summary="The service worker that keeps the scan and finding pages and the static files for offline use",
      note="public: the script holds no data")
def service_worker():
    resp = send_from_directory(bp.static_folder, "sw.js", mimetype="application/javascript", max_age=0)
    resp.headers["Service-Worker-Allowed"] = "/app/"
    return resp


# --- the finding form ------------------------------------------------------------------------------

def _gis(db) -> list[GIProduct]:
    return list(db.scalars(select(GIProduct).where(GIProduct.status.in_((GIStatus.registered, GIStatus.amended)))
                           .order_by(GIProduct.name_zh)))


def _form_page(principal, *, error: str | None = None, form=None, status: int = 200):
    db = get_session()
    codes = _codes_asked()
    prefill = form or {"codes": "\n".join(codes), "premises_kind": PremisesKind.retail.value,
                       "client_id": f"web-{uuid.uuid4().hex}"}
    return render("app/finding_form.html", status=status, gis=_gis(db), kinds=list(PremisesKind),
                  violations=list(ViolationKind), form=prefill, error=error, words=script_words(),
                  now=clock.now().astimezone(clock.CHINA_TZ).strftime("%Y-%m-%dT%H:%M"))


# The finding form's fields (multipart: the photos come with it).
FINDING_FORM = {
    "client_id": Field({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._:-]+$",
                        "description": "the device's own id of the finding: re-sending it changes nothing"},
                       True, "text", (64,)),
    "premises_name": F.text(200), "premises_kind": F.choice([k.value for k in PremisesKind]),
    "premises_url": F.text(500, required=False), "premises_address": F.text(300, required=False),
    "premises_uscc": F.text(18, required=False, description="the premises' USCC (a wrong check character is refused "
                                                            "with 422 invalid_uscc)"),
    "lat": F.decimal(-90, 90, required=True, description="WGS-84 latitude of the point inspected: in a county of "
                                                         "China, inside the caller's jurisdiction"),
    "lon": F.decimal(-180, 180, required=True, description="WGS-84 longitude of the point inspected"),
    "gi_id": F.ident(required=False, description="the GI concerned (default: from the codes)"),
    "notes": F.text(4000, required=False),
    "observed_at": Field({"type": "string", "format": "date-time",
                          "description": "when the inspection happened (2026-05-01T10:30:00+08:00; without an offset, "
                                         "China time, as the form's own field sends it); at most a year ago, never "
                                         "in the future; default: now"}, False),
    "violations": F.choices([k.value for k in ViolationKind], description="the kinds of violation seen; none: no "
                                                                          "violation found"),
    "codes": F.string(description="codes read from labels, one per line; each is verified on the spot"),
    "photos": F.files("photos of the premises or the product: JPEG or PNG, at most 10 MB each"),
}


def _finding_input(form: Form) -> findings.FindingInput:
    """The form's fields as the service's input (the same checks as the API's body follow in the service)."""
    client_id = form.text("client_id", "client_id", max_len=64)
    name = form.text("premises_name", t("premises_name"), max_len=200)
    kind = form.data.get("premises_kind") or ""
    url = form.text("premises_url", t("premises_url"), required=False, max_len=500)
    address = form.text("premises_address", t("address"), required=False, max_len=300)
    uscc = form.text("premises_uscc", t("uscc"), required=False, max_len=18)
    lat = form.decimal("lat", t("latitude"), required=True, lo=-90, hi=90)
    lon = form.decimal("lon", t("longitude"), required=True, lo=-180, hi=180)
    gi_id = form.integer("gi_id", t("gi"), required=False, lo=1, hi=MAX_ID)
    notes = form.text("notes", t("notes"), required=False, max_len=4000)
    raw_time = (form.data.get("observed_at") or "").strip()
    observed = None
    if raw_time:
        try:
            observed = dt.datetime.fromisoformat(raw_time)
        except ValueError:
            form._fail("observed_at", "bad_date", t("observed_at"))
    if observed is not None and observed.tzinfo is None:
        observed = observed.replace(tzinfo=clock.CHINA_TZ)  # the form's local time is China's
    if kind not in PremisesKind._value2member_map_:
        form._fail("premises_kind", "required_field", t("premises_kind"))
    violations = []
    for value in form.data.getlist("violations"):
        if value not in ViolationKind._value2member_map_:
            form._fail("violations", "out_of_range", t("violations"))
        elif value not in violations:
            violations.append(value)
    codes = [c.strip() for c in (form.data.get("codes") or "").splitlines() if c.strip()]
    form.check()
    return findings.FindingInput(
        client_id=client_id, observed_at=observed or clock.now(), lat=float(lat),
        lon=float(lon), premises=findings.PremisesInput(name=name, kind=PremisesKind(kind), url=url, address=address,
                                                        uscc=uscc),
        violations=tuple(ViolationKind(v) for v in violations), codes=tuple(codes), gi_id=gi_id, notes=notes)


@page("/app/findings/new", "finding_new", kinds=SUPERVISORS, methods=("GET", "POST"),
      body_content_type="multipart/form-data", form=FINDING_FORM,
      summary="File a finding: premises, GI, codes read (verified on the spot), violations, notes, photos and the "
              "point; the same service as POST /api/v1/findings, idempotent per client_id",
      note="at a point inside the caller's jurisdiction")
def finding_new(principal):
    if request.method == "GET":
        return _form_page(principal)
    db = get_session()
    store = current_app.extensions["gi_storage"]
    stored_keys: list[str] = []
    try:
        data = _finding_input(Form())
        filed = findings.file_finding(db, principal, data, keyring=_keyring(), base_url=_base_url())
        finding_id = filed.finding.id
        uploads = [f for f in request.files.getlist("photos") if f and f.filename]
        for n, upload in enumerate(uploads, start=1):
            photo, created = findings.add_photo(db, store, finding_id, principal,
                                                upload.read(findings.PHOTO_MAX_BYTES + 1),
                                                client_photo_id=f"{data.client_id[:58]}-p{n}",
                                                filename=upload.filename)
            if created:
                stored_keys.append(photo.key)
        commit()
    except GIError as exc:
        rollback()
        for key in stored_keys:  # no file without its row
            store.delete(key)
        return _form_page(principal, error=problem(exc), form=request.form, status=int(exc.status))
    except BaseException:
        rollback()
        for key in stored_keys:
            store.delete(key)
        raise
    return done(t("finding_filed", id=finding_id), "web.finding", finding_id=finding_id)


@page("/app/findings/batch", "finding_batch", kinds=SUPERVISORS, methods=("POST",),
      content_type="application/json", body_content_type="application/json", body=FindingBatchBody,
      summary="Send findings kept on the device (the API's batch: each filed on its own, idempotent per client_id)",
      note="with the X-CSRF-Token header; at points inside the caller's jurisdiction",
      responses={200: "one result per item, in order: created (201), replayed (200) or error (its 4xx status and "
                      "error), like a 207 Multi-Status"})
def finding_batch(principal):
    read_json_body()  # 415 unless JSON; 400 for malformed or too deeply nested JSON (as the API)
    body = parse_model(FindingBatchBody, None, "request body", json_text=json_body_text())
    result = answers.file_batch(principal, body)
    commit()
    return result


@page("/app/findings/<id:finding_id>/photos", "finding_photo_add", kinds=SUPERVISORS, methods=("POST",),
      content_type="application/json", body_content_type="multipart/form-data", status=201,
      form={name: Field(schema, name in answers.PHOTO_FORM_SCHEMA["required"])
            for name, schema in answers.PHOTO_FORM_SCHEMA["properties"].items()}, form_closed=True,
      responses=answers.PHOTO_RESPONSES,
      summary="Add a photo to a finding (multipart `photo`, `client_photo_id`, `filename`), as the API",
      note="with the X-CSRF-Token header; the organisation that filed the finding")
def finding_photo_add(principal, finding_id: int):
    return answers.add_photo(principal, finding_id)


# --- reading findings -------------------------------------------------------------------------------

@page("/app/findings", "findings", kinds=SUPERVISORS,
      summary="Findings the caller may see (its own, or about places in its jurisdiction), newest first; select "
              "some to open a case")
def finding_list(principal):
    db = get_session()
    mine = request.args.get("mine") == "1"
    violation = request.args.get("violation") or ""
    kind = request.args.get("premises_kind") or ""
    f = findings.FindingFilter(
        organisation_id=principal.organisation_id if mine else None,
        violation=ViolationKind(violation) if violation in ViolationKind._value2member_map_ else None,
        premises_kind=PremisesKind(kind) if kind in PremisesKind._value2member_map_ else None)
    rows, total = findings.list_findings(db, principal, f, limit=LIST_LIMIT, offset=0)
    names = findings.names_for(db, rows)
    return render("app/findings.html", rows=rows, total=total, limit=LIST_LIMIT, names=names, mine=mine,
                  violation=violation, premises_kind=kind, violations=list(ViolationKind), kinds=list(PremisesKind),
                  place=scans.place, words=script_words())


@page("/app/findings/<id:finding_id>", "finding", kinds=SUPERVISORS,
      summary="One finding: the point and its county, the premises, every code with the verdict it got, the photos")
def finding_detail(principal, finding_id: int):
    db = get_session()
    finding = findings.get_finding(db, finding_id, principal)
    names = findings.names_for(db, [finding])
    codes = [findings.serialize_code(c) for c in finding.codes]
    return render("app/finding.html", f=finding, names=names, codes=codes, place=scans.place(finding.adcode),
                  filer=org_names(db, [finding.organisation_id]).get(finding.organisation_id))


@page("/app/findings/<id:finding_id>/photos/<id:photo_id>.jpg", "finding_photo", kinds=SUPERVISORS,
      content_type="image/jpeg",
      summary="A finding's photo (as the API: re-encoded JPEG without EXIF); ?thumb=1 for a small copy")
def finding_photo(principal, finding_id: int, photo_id: int):
    if request.args.get("thumb") != "1":
        return answers.photo(principal, finding_id, photo_id)
    data, _photo = findings.photo_bytes(get_session(), current_app.extensions["gi_storage"], finding_id, photo_id,
                                        principal)
    return photo_thumbnail(data)

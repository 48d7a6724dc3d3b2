"""Inspectors' findings: what was seen where, the codes checked on the spot, the violations, the photos.

Who files: an inspection unit or an authority, at a point inside its own jurisdiction (the
point's county is derived from the WGS-84 coordinates). Each code read from a label is
verified at once with the same checks as the consumer page (``verification.check_code``)
but without logging a consumer check, and stored with the verdict it got then.

Who sees a finding (``visible_to``): the filing organisation, and every authority or
inspection unit whose jurisdiction covers the place it was found, the place of the producer
it names, the place of a producer whose verified label was checked in it, or the place of
the authority that registered its GI. Producers and printers see none.

Field work is often offline, so a finding carries the device's ``client_id``: uploading the
same finding again (same organisation, same client id, same content) changes nothing and
answers with the stored finding; the same client id with different content is refused
(409 ``client_id_reused``) rather than silently overwriting evidence. The unique constraint
``uq_findings_organisation_client`` settles concurrent uploads of one finding.

``violations`` is required but may be empty: an empty list records an inspection that
found no violation (a clean shop is a result of a campaign too, and counts in statistics).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from .. import clock
from ..codes import MarkKeyring, SerialError, parse_serial, verify_code
from ..db import get_by_id, is_postgres, where_given
from ..errors import Conflict, Forbidden, GIError, NotFound, ValidationFailed
from ..models import (Finding, FindingCode, FindingPhoto, GIProduct, MarkBatch, OrgKind, Organisation,
                      PremisesKind, ViolationKind)
from ..photos import StoredPhoto, store_photo
from ..storage import FileStore
from .accounts import Principal
from .jurisdiction import jurisdiction_codes
from .marks import gtin14
from .scans import place
from .signals import serial_of
from .uscc import validate_uscc
from .verification import check_code, check_gs1

SUPERVISORS = (OrgKind.authority, OrgKind.inspection)
MAX_CODES = 200                               # codes checked in one finding
MAX_BATCH = 100                               # findings in one offline batch
MAX_BATCH_CODES = 2000                        # codes in one batch (each is verified against the ledger)
MAX_PHOTOS = 20                               # photos per finding
PHOTO_MAX_BYTES = 10 * 1024 * 1024
CLOCK_SKEW = dt.timedelta(minutes=10)         # a device clock may run this far ahead
MAX_AGE = dt.timedelta(days=366)              # older observations are no longer field work to upload
LOCATION_DECIMALS = 6                         # 0.000001° ≈ 0.1 m: more is noise from the device
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
STORED_CODE_LENGTH = 64                       # FindingCode.code
PHOTO_FOLDER = "findings"
PHOTO_FILENAME_LENGTH = 200


class ClientIdReused(GIError):
    status = 409
    code = "client_id_reused"


def _require_supervisor(by: Principal | None) -> Principal:
    if by is None or by.org_kind not in SUPERVISORS:
        raise Forbidden("only authorities and inspection units file and read findings", code="wrong_role")
    return by


def _invalid(field_name: str, message: str, *, code: str = "validation_failed", problem: str | None = None,
             **extra: Any) -> ValidationFailed:
    return ValidationFailed(f"{field_name}: {message}", code=code,
                            details=[{"field": field_name, "problem": problem or message, **extra}])


# --- input ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PremisesInput:
    name: str
    kind: PremisesKind
    url: str | None = None
    address: str | None = None
    uscc: str | None = None


@dataclass(frozen=True)
class FindingInput:
    client_id: str
    observed_at: dt.datetime
    lat: float
    lon: float
    premises: PremisesInput
    violations: Sequence[ViolationKind]
    codes: Sequence[str] = ()
    gi_id: int | None = None
    producer_id: int | None = None
    notes: str | None = None


@dataclass(frozen=True)
class ReadCode:
    """A code as read from a label, normalised: a bare code, or a link of this service reduced to its code."""

    text: str                  # what is stored (the canonical code when it is one)
    gtin: str | None = None    # from a GS1 Digital Link: the code must have been issued for it
    link_serial: str | None = None
    link_tag: str | None = None


@dataclass(frozen=True)
class Normalised:
    """A finding's input after the checks that need no database (what idempotency compares)."""

    data: FindingInput
    lat: float
    lon: float
    premises_uscc: str | None
    codes: tuple[ReadCode, ...]
    violations: tuple[str, ...]


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def read_code(raw: str, *, keyring: MarkKeyring, base_url: str) -> ReadCode:
    """Normalise one code as read from a label (a bare code, `{base}/v/{code}` or our GS1 Digital Link)."""
    text = raw.strip()
    if text.lower().startswith(("http://", "https://")) and base_url and _host(text) == _host(base_url):
        parts = urlsplit(text)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        if len(segments) == 2 and segments[0] == "v":
            text = segments[1]
        elif len(segments) >= 4 and segments[0] == "01" and len(segments) % 2 == 0:
            qualifiers = dict(zip(segments[2::2], segments[3::2]))
            tag = (parse_qs(parts.query).get("v") or [""])[0].strip().upper()
            serial_text = qualifiers.get("21")
            if serial_text:
                try:
                    serial = parse_serial(serial_text)
                except SerialError:
                    serial = None
                stored = text
                if serial is not None:
                    stored = tag[:1] + serial.text[:15] + tag[1:] if tag else serial.text
                return ReadCode(stored, gtin=segments[1], link_serial=serial_text, link_tag=tag or None)
    if verify_code(keyring, text).status != "malformed":
        text = text.upper()
    return ReadCode(text)


def normalise(data: FindingInput, *, keyring: MarkKeyring, base_url: str) -> Normalised:
    """The checks that need neither the clock nor the database; 422 naming the field otherwise."""
    if not CLIENT_ID.match(data.client_id or ""):
        raise _invalid("client_id", "1-64 characters from A-Z a-z 0-9 . _ : -", problem="format")
    if data.observed_at.tzinfo is None or data.observed_at.utcoffset() is None:
        raise _invalid("observed_at", "give the time with its zone, e.g. 2026-05-01T10:30:00+08:00",
                       problem="no time zone")
    if not (-90 <= data.lat <= 90) or not (-180 <= data.lon <= 180):
        raise _invalid("lat", f"({data.lat}, {data.lon}) is not a WGS-84 latitude/longitude", problem="range")
    p = data.premises
    if p.url is not None:
        parts = urlsplit(p.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _invalid("premises.url", "give the web shop's address as an http(s) URL", problem="not an http(s) URL")
    elif p.kind == PremisesKind.e_commerce:
        raise _invalid("premises.url", "an e-commerce finding needs the URL of the web shop or listing",
                       problem="required for e_commerce")
    uscc = None
    if p.uscc:
        try:
            uscc = validate_uscc(p.uscc).code
        except GIError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            raise ValidationFailed(f"premises.uscc: {exc.message}", code=exc.code,
                                   details=[{"field": "premises.uscc", "problem": exc.message, **details}]) from None
    if len(data.codes) > MAX_CODES:
        raise _invalid("codes", f"at most {MAX_CODES} codes per finding (got {len(data.codes)}); file several "
                       "findings", problem="too many")
    codes = []
    for i, raw in enumerate(data.codes):
        if not raw or not raw.strip():
            raise _invalid(f"codes.{i}", "empty code", problem="empty")
        code = read_code(raw, keyring=keyring, base_url=base_url)
        if len(code.text) > STORED_CODE_LENGTH:
            raise _invalid(f"codes.{i}", f"{len(code.text)} characters is not a code of this service (at most "
                           f"{STORED_CODE_LENGTH}); describe what the label shows in the notes instead",
                           code="code_too_long", problem="too long")
        codes.append(code)
    violations = []
    for v in data.violations:
        value = ViolationKind(v).value
        if value in violations:
            raise _invalid("violations", f"{value} is listed twice", problem="duplicate")
        violations.append(value)
    return Normalised(data, round(data.lat, LOCATION_DECIMALS), round(data.lon, LOCATION_DECIMALS), uscc,
                      tuple(codes), tuple(violations))


def _check_time(observed_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    at = observed_at.astimezone(dt.timezone.utc)
    if at > now + CLOCK_SKEW:
        raise _invalid("observed_at", f"{observed_at.isoformat()} is in the future; check the device's clock",
                       problem="in the future")
    if at < now - MAX_AGE:
        raise _invalid("observed_at", f"{observed_at.isoformat()} is more than a year ago; findings are uploaded "
                       "within a year of the inspection", problem="too old")
    return at


# --- idempotency --------------------------------------------------------------------------------

def _differences(finding: Finding, n: Normalised) -> list[str]:
    """The fields in which a re-sent finding differs from the stored one (empty: the same finding).

    gi_id and producer_id are compared only when the re-sent finding names them: when it does
    not, the stored values were derived from the codes.
    """
    d, p = n.data, n.data.premises
    pairs = {
        "observed_at": (finding.observed_at, d.observed_at.astimezone(dt.timezone.utc)),
        "lat": (finding.lat, n.lat), "lon": (finding.lon, n.lon),
        "premises.name": (finding.premises_name, p.name), "premises.kind": (finding.premises_kind, p.kind),
        "premises.url": (finding.premises_url, p.url), "premises.address": (finding.premises_address, p.address),
        "premises.uscc": (finding.premises_uscc, n.premises_uscc),
        "codes": ([c.code for c in finding.codes], [c.text for c in n.codes]),
        "violations": (list(finding.violations or []), list(n.violations)),
        "notes": (finding.notes, d.notes),
    }
    if d.gi_id is not None:
        pairs["gi_id"] = (finding.gi_id, d.gi_id)
    if d.producer_id is not None:
        pairs["producer_id"] = (finding.producer_id, d.producer_id)
    return [name for name, (stored, sent) in pairs.items() if stored != sent]


def _replay(finding: Finding, n: Normalised) -> Finding:
    differ = _differences(finding, n)
    if differ:
        raise ClientIdReused(f"client_id {finding.client_id!r} was already used by your organisation for finding "
                             f"{finding.id} with different content ({', '.join(differ)}); give a new client_id to "
                             "file another finding", details={"finding_id": finding.id, "fields": differ})
    return finding


def _stored(session: Session, organisation_id: int, client_id: str) -> Finding | None:
    return session.scalar(select(Finding).where(Finding.organisation_id == organisation_id,
                                                Finding.client_id == client_id)
                          .options(selectinload(Finding.codes), selectinload(Finding.photos))
                          .execution_options(populate_existing=True))


# --- filing -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filed:
    finding: Finding
    created: bool          # False: the same finding was uploaded before (a replay)


def _county(lat: float, lon: float) -> str:
    from . import jurisdiction

    county = jurisdiction.classify([lon], [lat])[0]["county"]
    if county is None:
        raise ValidationFailed(f"the point (lat {lat}, lon {lon}) lies in no county of China; check that lat and lon "
                               "are WGS-84 degrees and not swapped", code="point_outside_china",
                               details=[{"field": "lat", "problem": "outside China's counties"}])
    return county["adcode"]


def _verify_codes(session: Session, keyring: MarkKeyring, codes: Sequence[ReadCode]) -> list[FindingCode]:
    rows = []
    for position, code in enumerate(codes):
        if code.gtin is not None:
            try:
                gtin = gtin14(code.gtin)
            except GIError:
                gtin = None
            check = (check_gs1(session, keyring, gtin=gtin, serial_text=code.link_serial, tag=code.link_tag)
                     if gtin else check_code(session, keyring, code.text))
        else:
            check = check_code(session, keyring, code.text)
        mark = check.mark
        rows.append(FindingCode(
            position=position, code=code.text, verdict=check.verdict.value, detail=check.detail,
            series=check.serial.series if check.serial else None, seq=check.serial.seq if check.serial else None,
            batch_id=mark.batch.id if mark else None, producer_id=mark.batch.producer_id if mark else None))
    return rows


def _derive(session: Session, rows: list[FindingCode]) -> tuple[int | None, int | None]:
    """(gi_id, producer_id) when every verified code points to one; the GI also from claimed serials."""
    batch_ids = {r.batch_id for r in rows if r.batch_id is not None}
    gis: set[int] = set()
    if batch_ids:
        gis = set(session.scalars(select(MarkBatch.gi_id).where(MarkBatch.id.in_(batch_ids))))
    else:
        prefixes = {r.series[:4] for r in rows if r.series}
        if prefixes:
            gis = set(session.scalars(select(GIProduct.id).where(GIProduct.mark_prefix.in_(prefixes))))
            if len(gis) != 1 or len(prefixes) != 1:
                gis = set()
    producers = {r.producer_id for r in rows if r.producer_id is not None}
    return (next(iter(gis)) if len(gis) == 1 else None,
            next(iter(producers)) if len(producers) == 1 else None)


def file_finding(session: Session, by: Principal, data: FindingInput, *, keyring: MarkKeyring, base_url: str,
                 now: dt.datetime | None = None) -> Filed:
    """File a finding, or answer the stored one if this organisation uploaded the same client_id before."""
    _require_supervisor(by)
    n = normalise(data, keyring=keyring, base_url=base_url)
    existing = _stored(session, by.organisation_id, data.client_id)
    if existing is not None:
        # Before the time window: a finding accepted once stays replayable, however late the re-send.
        return Filed(_replay(existing, n), created=False)
    now = now or clock.now()
    observed_at = _check_time(data.observed_at, now)
    adcode = _county(n.lat, n.lon)
    if not by.covers(adcode):
        raise Forbidden(f"the point lies in {adcode}, outside your jurisdiction ({by.adcode}); file findings where "
                        "you inspect", code="outside_jurisdiction", details={"adcode": adcode})
    if data.gi_id is not None and session.get(GIProduct, data.gi_id) is None:
        raise _invalid("gi_id", f"GI {data.gi_id} does not exist", code="gi_not_found", problem="unknown")
    if data.producer_id is not None:
        producer = session.get(Organisation, data.producer_id)
        if producer is None or producer.kind != OrgKind.producer:
            raise _invalid("producer_id", f"organisation {data.producer_id} is not a registered producer",
                           code="producer_not_found", problem="not a producer")
    rows = _verify_codes(session, keyring, n.codes)
    derived_gi, derived_producer = _derive(session, rows)
    gi_id = data.gi_id or derived_gi
    if gi_id is None:
        raise _invalid("gi_id", "name the GI concerned: the codes checked do not point to one GI",
                       code="gi_required", problem="required")
    p = data.premises
    finding = Finding(
        organisation_id=by.organisation_id, filed_by_id=by.user_id, client_id=data.client_id,
        observed_at=observed_at, received_at=now, lat=n.lat, lon=n.lon, adcode=adcode, premises_name=p.name,
        premises_kind=p.kind, premises_url=p.url, premises_address=p.address, premises_uscc=n.premises_uscc,
        gi_id=gi_id, producer_id=data.producer_id or derived_producer, violations=list(n.violations),
        notes=data.notes, codes=rows)
    try:
        with session.begin_nested():
            session.add(finding)
            session.flush()
    except IntegrityError:
        # A twin upload of the same client_id committed first: answer as it did.
        existing = _stored(session, by.organisation_id, data.client_id)
        if existing is None:
            raise
        return Filed(_replay(existing, n), created=False)
    return Filed(finding, created=True)


# --- reading ------------------------------------------------------------------------------------

def visible_to(by: Principal):
    """SQL condition: `by` may see the finding (see the module docstring)."""
    if by.org_kind not in SUPERVISORS:
        return Finding.id.is_(None)
    codes = jurisdiction_codes(by.adcode)
    if codes is None:
        return Finding.id.is_not(None)
    producer = aliased(Organisation)
    code_producer = aliased(Organisation)
    authority = aliased(Organisation)
    return or_(
        Finding.organisation_id == by.organisation_id,
        Finding.adcode.in_(codes),
        exists().where(producer.id == Finding.producer_id, producer.adcode.in_(codes)),
        exists().where(FindingCode.finding_id == Finding.id, code_producer.id == FindingCode.producer_id,
                       code_producer.adcode.in_(codes)),
        exists().where(GIProduct.id == Finding.gi_id, authority.id == GIProduct.authority_id,
                       authority.adcode.in_(codes)),
    )


def _violation_listed(session: Session, kind: ViolationKind):
    if is_postgres(session):
        from sqlalchemy import cast
        from sqlalchemy.dialects.postgresql import JSONB

        return Finding.violations.op("@>")(cast([kind.value], JSONB))
    values = func.json_each(Finding.violations).table_valued("value").alias("listed")
    return exists(select(1).select_from(values).where(values.c.value == kind.value))


@dataclass(frozen=True)
class FindingFilter:
    gi_id: int | None = None
    producer_id: int | None = None
    adcode: str | None = None                 # found inside this division
    violation: ViolationKind | None = None
    premises_kind: PremisesKind | None = None
    observed_from: dt.datetime | None = None  # inclusive
    observed_before: dt.datetime | None = None  # exclusive
    organisation_id: int | None = None        # filed by


def list_findings(session: Session, by: Principal, f: FindingFilter, *, limit: int, offset: int
                  ) -> tuple[list[Finding], int]:
    """The findings `by` may see, newest observation first, with the total for paging."""
    _require_supervisor(by)
    stmt = select(Finding).where(visible_to(by))
    stmt = where_given(stmt, Finding, gi_id=f.gi_id, producer_id=f.producer_id, premises_kind=f.premises_kind,
                       organisation_id=f.organisation_id)
    if f.adcode:
        from geodata.admin import get_registry

        if get_registry().get(f.adcode) is None:
            raise _invalid("adcode", f"{f.adcode} is not a known administrative division", code="unknown_adcode",
                           problem="unknown adcode")
        codes = jurisdiction_codes(f.adcode)
        if codes is not None:
            stmt = stmt.where(Finding.adcode.in_(codes))
    if f.violation is not None:
        stmt = stmt.where(_violation_listed(session, f.violation))
    if f.observed_from is not None:
        stmt = stmt.where(Finding.observed_at >= f.observed_from)
    if f.observed_before is not None:
        stmt = stmt.where(Finding.observed_at < f.observed_before)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.options(selectinload(Finding.codes), selectinload(Finding.photos))
                           .order_by(Finding.observed_at.desc(), Finding.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


def can_see(session: Session, by: Principal, finding_id: int) -> bool:
    return session.scalar(select(Finding.id).where(Finding.id == finding_id, visible_to(by))) is not None


def get_finding(session: Session, finding_id: int, by: Principal, *, lock: bool = False) -> Finding:
    """One finding `by` may see: 404 if there is none, 403 if it concerns no place of `by`'s."""
    _require_supervisor(by)
    finding = get_by_id(session, Finding, finding_id, what="finding", code="finding_not_found", lock=lock,
                        options=(selectinload(Finding.codes), selectinload(Finding.photos)))
    if not can_see(session, by, finding_id):
        raise Forbidden(f"finding {finding_id} concerns no place in your jurisdiction ({by.adcode})",
                        code="outside_jurisdiction")
    return finding


# --- photos -------------------------------------------------------------------------------------

def clean_filename(name: str | None) -> str | None:
    """The base name of an uploaded file, without control characters or paths, at most 200 characters."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[:PHOTO_FILENAME_LENGTH] or None


def _photo_replay(photo: FindingPhoto, data: bytes) -> FindingPhoto:
    if photo.original_sha256 != hashlib.sha256(data).hexdigest():
        raise Conflict(f"client_photo_id {photo.client_photo_id!r} was already used for another photo of finding "
                       f"{photo.finding_id} (photo {photo.id}); give a new client_photo_id", code="client_photo_id_reused",
                       details={"photo_id": photo.id})
    return photo


def _photo_by_client_id(session: Session, finding_id: int, client_photo_id: str) -> FindingPhoto | None:
    return session.scalar(select(FindingPhoto).where(FindingPhoto.finding_id == finding_id,
                                                     FindingPhoto.client_photo_id == client_photo_id))


def _record_photo(session: Session, row: FindingPhoto) -> None:
    with session.begin_nested():
        session.add(row)
        session.flush()


def add_photo(session: Session, store: FileStore, finding_id: int, by: Principal, data: bytes, *,
              client_photo_id: str | None = None, filename: str | None = None,
              now: dt.datetime | None = None) -> tuple[FindingPhoto, bool]:
    """Attach a photo (checked, re-encoded without EXIF, hashed, stored outside the row) to a finding.

    Only the filing organisation adds photos, at most MAX_PHOTOS per finding. With a
    `client_photo_id` a re-upload of the same file answers the stored photo (created=False).
    If the row cannot be written the stored file is deleted again: no file without its row.
    """
    _require_supervisor(by)
    if client_photo_id is not None and not CLIENT_ID.match(client_photo_id):
        raise _invalid("client_photo_id", "1-64 characters from A-Z a-z 0-9 . _ : -", problem="format")
    finding = session.scalar(select(Finding).where(Finding.id == finding_id).with_for_update())
    if finding is None:
        raise NotFound(f"finding {finding_id} does not exist", code="finding_not_found")
    if finding.organisation_id != by.organisation_id:
        raise Forbidden(f"only the organisation that filed finding {finding_id} adds photos to it",
                        code="not_filing_organisation")
    if client_photo_id is not None:
        existing = _photo_by_client_id(session, finding_id, client_photo_id)
        if existing is not None:
            return _photo_replay(existing, data), False
    count = session.scalar(select(func.count()).select_from(FindingPhoto).where(FindingPhoto.finding_id == finding_id))
    if count >= MAX_PHOTOS:
        raise Conflict(f"finding {finding_id} already has {MAX_PHOTOS} photos, the most one finding takes",
                       code="too_many_photos", details={"max_photos": MAX_PHOTOS})
    stored: StoredPhoto = store_photo(store, PHOTO_FOLDER, data, max_bytes=PHOTO_MAX_BYTES, now=now)
    row = FindingPhoto(finding_id=finding_id, client_photo_id=client_photo_id, key=stored.key, sha256=stored.sha256,
                       original_sha256=stored.original_sha256, bytes=stored.bytes, width=stored.width,
                       height=stored.height, taken_at=stored.taken_at, filename=clean_filename(filename),
                       created_at=now or clock.now())
    try:
        _record_photo(session, row)
    except IntegrityError:
        store.delete(stored.key)
        twin = _photo_by_client_id(session, finding_id, client_photo_id) if client_photo_id else None
        if twin is None:
            raise
        return _photo_replay(twin, data), False
    except BaseException:
        store.delete(stored.key)
        raise
    return row, True


def photo_bytes(session: Session, store: FileStore, finding_id: int, photo_id: int, by: Principal
                ) -> tuple[bytes, FindingPhoto]:
    get_finding(session, finding_id, by)
    photo = session.scalar(select(FindingPhoto).where(FindingPhoto.id == photo_id,
                                                      FindingPhoto.finding_id == finding_id))
    if photo is None:
        raise NotFound(f"finding {finding_id} has no photo {photo_id}", code="photo_not_found")
    data = store.get(photo.key)
    if data is None:
        raise NotFound(f"photo {photo_id} of finding {finding_id} is missing from the file store",
                       code="photo_missing")
    return data, photo


# --- serialization ------------------------------------------------------------------------------

@dataclass
class Names:
    """Names of the organisations and GIs a list of findings refers to (one query each)."""

    organisations: dict[int, str] = field(default_factory=dict)
    gis: dict[int, str] = field(default_factory=dict)


def names_for(session: Session, findings: Sequence[Finding]) -> Names:
    org_ids = {f.organisation_id for f in findings} | {f.producer_id for f in findings if f.producer_id}
    gi_ids = {f.gi_id for f in findings if f.gi_id}
    names = Names()
    if org_ids:
        names.organisations = dict(session.execute(select(Organisation.id, Organisation.name)
                                                   .where(Organisation.id.in_(org_ids))).all())
    if gi_ids:
        names.gis = dict(session.execute(select(GIProduct.id, GIProduct.name_zh)
                                         .where(GIProduct.id.in_(gi_ids))).all())
    return names


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def serialize_code(code: FindingCode) -> dict[str, Any]:
    serial = None
    if code.series and code.seq:
        try:
            serial = serial_of(code.series, code.seq).display
        except (SerialError, ValueError):
            serial = None
    return {"position": code.position, "code": code.code, "verdict": code.verdict, "detail": code.detail,
            "serial": serial, "verified": code.batch_id is not None, "batch_id": code.batch_id,
            "producer_id": code.producer_id}


def serialize_photo(photo: FindingPhoto) -> dict[str, Any]:
    return {"id": photo.id, "client_photo_id": photo.client_photo_id,
            "url": f"/api/v1/findings/{photo.finding_id}/photos/{photo.id}", "content_type": "image/jpeg",
            "sha256": photo.sha256, "original_sha256": photo.original_sha256, "size": photo.bytes,
            "width": photo.width, "height": photo.height, "taken_at": photo.taken_at, "filename": photo.filename,
            "created_at": _iso(photo.created_at)}


def serialize_finding(finding: Finding, *, names: Names | None = None, full: bool = True) -> dict[str, Any]:
    """A finding as plain data; `full` adds every code checked and the photos' metadata.

    Shared by the findings API, cases (evidence) and the EPCIS export.
    """
    names = names or Names()
    verdicts: dict[str, int] = {}
    for c in finding.codes:
        verdicts[c.verdict] = verdicts.get(c.verdict, 0) + 1
    data: dict[str, Any] = {
        "id": finding.id, "client_id": finding.client_id,
        "organisation": {"id": finding.organisation_id, "name": names.organisations.get(finding.organisation_id)},
        "filed_by": finding.filed_by_id,
        "observed_at": _iso(finding.observed_at), "received_at": _iso(finding.received_at),
        "location": {"lat": finding.lat, "lon": finding.lon, "crs": "EPSG:4326", "adcode": finding.adcode,
                     "place": place(finding.adcode)},
        "premises": {"name": finding.premises_name, "kind": finding.premises_kind.value,
                     "url": finding.premises_url, "address": finding.premises_address,
                     "uscc": finding.premises_uscc},
        "gi": {"id": finding.gi_id, "name": names.gis.get(finding.gi_id)} if finding.gi_id else None,
        "producer": ({"id": finding.producer_id, "name": names.organisations.get(finding.producer_id)}
                     if finding.producer_id else None),
        "violations": list(finding.violations or []),
        "violation_found": bool(finding.violations),
        "notes": finding.notes,
        "case_id": finding.case_id,
        "codes_checked": len(finding.codes),
        "verdicts": verdicts,
        "photo_count": len(finding.photos),
        "links": {"self": f"/api/v1/findings/{finding.id}", "photos": f"/api/v1/findings/{finding.id}/photos"},
    }
    if full:
        data["codes"] = [serialize_code(c) for c in finding.codes]
        data["photos"] = [serialize_photo(p) for p in finding.photos]
    return data

"""Consumer verification of a special-mark code: the verdict, and what the page shows about the mark.

Order of checks (each step runs only if the previous one passed):

1. **syntax** — a code is 30 characters ``{kid}{serial15}{tag}`` (``codes.verify_code``);
2. **MAC** — the tag is recomputed with the mark keys, offline: a forged or malformed code
   never touches the database;
3. **ledger** — ``lookup``, one statement (an index seek, as ``marks.find_mark``): never issued → *unknown*; voided or
   spoiled → *voided*; lost or stolen → *lost_or_stolen* (for a GS1 Digital Link the GTIN
   in the URI must also be the batch's, else *unknown*);
4. **authorization** — the producer's authorization for the GI must be ``approved`` (and
   not past ``valid_until``), else *authorization_suspended* (suspension takes effect on
   every label at once);
5. **activation and lot** — not activated → *genuine_not_activated*; activated on a
   recalled lot → *recalled*; otherwise *genuine*. A lot named on the package (a GS1 Digital
   Link's ``/10/{lot}``) other than the lot the mark was activated on keeps the verdict and adds a
   warning (``compare_lot``; a genuine check is logged with the detail ``lot_mismatch``).

Dead labels (voided, lost, stolen) are named before the authorization: what happened to
the label itself is the more specific news. The verdict texts are given in Chinese and
English; the web layer picks one.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from .. import clock, i18n
from ..caches import cache as _cache
from ..codes import CodeCheck, MarkKeyring, Serial, SerialError, parse_serial, verify_code
from ..db import read_first
from ..models import (Authorization, AuthorizationStatus, GIKind, GIProduct, GIStatus, LedgerEvent, Lot, LotStatus,
                      MarkBatch, MarkCheck, MarkRange, MarkState, Organisation, OriginArea, Plot, Verdict)
from .scans import Checks, new_check, place, scan_token

# --- verdicts ----------------------------------------------------------------------------------

#: HTTP status of each verdict: only a genuine mark answers 200 (see public/verify.py for the reasons).
STATUS = {
    Verdict.genuine: 200,
    Verdict.malformed: 400,
    Verdict.unknown: 404,
    Verdict.genuine_not_activated: 409,
    Verdict.voided: 410,
    Verdict.lost_or_stolen: 410,
    Verdict.recalled: 410,
    Verdict.authorization_suspended: 451,
}

#: The verdict texts (title, message, advice), in Chinese and English (gi_service/i18n/texts.py).
TEXTS: dict[Verdict, dict[str, dict[str, str]]] = {verdict: i18n.pairs(f"verdict.{verdict.value}.")
                                                   for verdict in Verdict}

# More specific messages for some details of a verdict.
DETAIL_TEXTS: dict[str, dict[str, str]] = i18n.pairs("verdict_detail.")

KIND_LABELS = {kind: i18n.pair(f"gi_kind.{kind.value}") for kind in GIKind}

_DEAD = {MarkState.voided: (Verdict.voided, "voided"), MarkState.spoiled: (Verdict.voided, "spoiled"),
         MarkState.lost: (Verdict.lost_or_stolen, "lost"), MarkState.stolen: (Verdict.lost_or_stolen, "stolen")}


@dataclass(frozen=True)
class Check:
    """The verdict on one code and what it rests on."""

    verdict: Verdict
    detail: str | None               # never_issued, bad_mac, unknown_key, no_tag, gtin_mismatch, spoiled, ...
    reason: str                      # one English sentence for logs and JSON errors
    code: str | None = None          # canonical (upper-case) code, if well-formed
    serial: Serial | None = None     # verified if mac_ok, else only claimed by the code
    mac_ok: bool = False
    mark: MarkFacts | None = None
    authorization: AuthorizationFacts | None = None
    # The serial's counters as the lookup read them (written checks only), when the mark exists.
    recorded: Checks | None = None
    # The lot the package names (a GS1 Digital Link's /10/{lot}) when it is not the lot the mark was
    # activated on (``compare_lot``): the verdict stands, the answer warns.
    lot_mismatch: str | None = None

    @property
    def status(self) -> int:
        return STATUS[self.verdict]

    @property
    def genuine(self) -> bool:
        return self.verdict == Verdict.genuine


def _claimed_serial(code: str) -> Serial | None:
    """The serial a well-formed but unverified code claims (kept for later copied-label signals)."""
    try:
        c = code.strip().upper()
        return Serial(c[1:5], 2000 + int(c[5:7]), int(c[7:16]))
    except (SerialError, ValueError, AttributeError):
        return None


def check_code(session: Session, keyring: MarkKeyring, code: str, *, gtin: str | None = None,
               today: dt.date | None = None) -> Check:
    """Syntax → MAC (offline) → ledger → authorization → lot; see the module docstring."""
    mac: CodeCheck = verify_code(keyring, code)
    if mac.status == "malformed":
        return Check(Verdict.malformed, "malformed", mac.reason)
    canonical = code.strip().upper()
    if mac.status != "valid":
        # One public detail for both: telling "unknown key id" from "bad tag" would list our key ids.
        return Check(Verdict.unknown, "bad_mac", "the verification tag does not match", canonical,
                     _claimed_serial(canonical))
    return _check_ledger(session, mac.serial, canonical, gtin=gtin, today=today)


def check_gs1(session: Session, keyring: MarkKeyring, *, gtin: str, serial_text: str, tag: str | None,
              today: dt.date | None = None) -> Check:
    """A GS1 Digital Link `/01/{gtin}/21/{serial}?v={kid}{tag}`: the same checks, plus the GTIN must match."""
    try:
        serial = parse_serial(serial_text)
    except SerialError as exc:
        return Check(Verdict.unknown, "not_a_serial", f"the serial is not one of ours: {exc.message}")
    tag = (tag or "").strip().upper()
    if not tag:
        return Check(Verdict.unknown, "no_tag", "the link has no verification tag (v=)", serial=serial)
    code = tag[:1] + serial.text[:15] + tag[1:]
    check = check_code(session, keyring, code, gtin=gtin, today=today)
    if check.verdict == Verdict.malformed:  # a well-formed serial with a wrong-shaped tag
        return Check(Verdict.unknown, "bad_tag", "the verification tag (v=) is not shaped like one", serial=serial)
    return check


#: GS1 AI 10 (batch or lot number): 1-20 characters of GS1 character set 82.
CSET82 = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}")


def package_lot(value: str | None) -> str | None:
    """The lot a request says is on the package (`?lot=`, as the GS1 resolver passes a Digital Link's
    /10/{lot} on), or None when there is none or it is not a GS1 lot (1-20 characters of set 82): the
    answer then says nothing about the lot rather than repeat arbitrary text on the verification page."""
    if value is None:
        return None
    value = value.strip()
    return value if CSET82.fullmatch(value) else None


def compare_lot(check: Check, lot: str | None) -> Check:
    """The verdict with the package's lot compared to the lot the mark was activated on (no statement: the
    lookup read the lot). A different lot keeps the verdict and status; the answer warns
    (``lot_mismatch``), and a genuine check carries the detail ``lot_mismatch``, which the check log records."""
    mark = check.mark
    if lot is None or mark is None or mark.lot is None or lot == mark.lot.lot_no:
        return check
    detail = "lot_mismatch" if check.genuine else check.detail
    return dataclasses.replace(check, detail=detail, lot_mismatch=lot)


@dataclass(frozen=True)
class BatchFacts:
    id: int
    gi_id: int
    producer_id: int
    gtin: str | None
    pack_size_g: int


@dataclass(frozen=True)
class RangeFacts:
    seq_start: int
    seq_end: int
    event_seq: int
    lot_id: int | None


@dataclass(frozen=True)
class LotFacts:
    lot_no: str
    production_date: dt.date
    test_report_no: str
    testing_body: str
    status: LotStatus
    recalled_at: dt.datetime | None


@dataclass(frozen=True)
class AuthorizationFacts:
    status: AuthorizationStatus
    valid_until: dt.date | None


@dataclass(frozen=True)
class MarkFacts:
    """What the verdict and the page need of one serial, read in one statement (plain values, no ORM)."""

    serial: Serial
    state: MarkState
    batch: BatchFacts
    range: RangeFacts
    lot: LotFacts | None


_LOOKUP_COLUMNS = (
    MarkRange.seq_start, MarkRange.seq_end, MarkRange.state, MarkRange.event_seq, MarkRange.lot_id,
    MarkBatch.id, MarkBatch.gi_id, MarkBatch.producer_id, MarkBatch.gtin, MarkBatch.pack_size_g,
    Lot.lot_no, Lot.production_date, Lot.test_report_no, Lot.testing_body, Lot.status, Lot.recalled_at,
    Authorization.status, Authorization.valid_until, GIProduct.status,
    MarkCheck.count, MarkCheck.first_at, MarkCheck.first_adcode, MarkCheck.last_adcode, MarkCheck.suspect_at,
    MarkCheck.suspect_reasons,
)


# Built once: a reused statement keeps its compiled form and cache key (building and keying a
# five-table join cost more CPU than running it).
_LOOKUP = (select(*_LOOKUP_COLUMNS)
           .select_from(MarkRange)
           .join(MarkBatch, MarkBatch.id == MarkRange.batch_id)
           .join(GIProduct, GIProduct.id == MarkBatch.gi_id)
           .outerjoin(Lot, Lot.id == MarkRange.lot_id)
           .outerjoin(Authorization, and_(Authorization.producer_id == MarkBatch.producer_id,
                                          Authorization.gi_id == MarkBatch.gi_id))
           .outerjoin(MarkCheck, and_(MarkCheck.series == bindparam("series"), MarkCheck.seq == bindparam("seq")))
           .where(MarkRange.series == bindparam("series"), MarkRange.seq_start <= bindparam("seq"))
           .order_by(MarkRange.seq_start.desc()).limit(1))


def lookup(session: Session, serial: Serial) -> tuple[MarkFacts, AuthorizationFacts | None, GIStatus, Checks] | None:
    """The serial's range, batch, lot, the producer's authorization, the GI's status and the serial's
    check counters: one statement.

    The same index seek as ``marks.find_mark`` (the last range starting at or before the serial), with
    the rows it needs joined on their keys; plain columns (Core), because building ORM objects cost
    more than the query on this path (every consumer check runs it). Outside a transaction on
    PostgreSQL it runs in autocommit on the reader twin (``db.read_first``): one round trip.
    """
    row = read_first(session, _LOOKUP, {"series": serial.series, "seq": serial.seq})
    if row is None or row[1] < serial.seq:
        return None
    (seq_start, seq_end, state, event_seq, lot_id, batch_id, gi_id, producer_id, gtin, pack_size_g,
     lot_no, production_date, test_report_no, testing_body, lot_status, recalled_at,
     auth_status, valid_until, gi_status, *counter) = row
    lot = (LotFacts(lot_no, production_date, test_report_no, testing_body, lot_status, recalled_at)
           if lot_no is not None else None)
    mark = MarkFacts(serial, state, BatchFacts(batch_id, gi_id, producer_id, gtin, pack_size_g),
                     RangeFacts(seq_start, seq_end, event_seq, lot_id), lot)
    auth = AuthorizationFacts(auth_status, valid_until) if auth_status is not None else None
    checks = Checks.from_row(counter) if counter[0] is not None else Checks.none()
    return mark, auth, gi_status, checks


def _check_ledger(session: Session, serial: Serial, code: str, *, gtin: str | None,
                  today: dt.date | None) -> Check:
    found = lookup(session, serial)
    base = dict(code=code, serial=serial, mac_ok=True)
    if found is None:
        return Check(Verdict.unknown, "never_issued", "a valid tag, but this serial was never issued", **base)
    mark, auth, gi_status, recorded = found
    if gtin is not None and mark.batch.gtin != gtin:
        return Check(Verdict.unknown, "gtin_mismatch", "the code was not issued for this GTIN", **base)
    if mark.state == MarkState.allocated:
        # Approved but never printed: a real code for it can only have leaked; no genuine label carries it.
        return Check(Verdict.unknown, "not_printed", "this serial was never printed", **base)
    base["mark"] = mark
    base["recorded"] = recorded
    if mark.state in _DEAD:
        verdict, detail = _DEAD[mark.state]
        return Check(verdict, detail, f"the mark is {mark.state.value}", **base)
    base["authorization"] = auth
    if gi_status == GIStatus.revoked:
        return Check(Verdict.authorization_suspended, "gi_revoked", "the geographical indication was revoked",
                     **base)
    today = today or clock.today()
    if auth is None or auth.status != AuthorizationStatus.approved:
        state = auth.status.value if auth else "none"
        return Check(Verdict.authorization_suspended, state, f"the producer's authorization is {state}", **base)
    if auth.valid_until is not None and auth.valid_until < today:
        return Check(Verdict.authorization_suspended, "expired",
                     f"the producer's authorization expired on {auth.valid_until}", **base)
    if mark.state != MarkState.activated:
        return Check(Verdict.genuine_not_activated, mark.state.value,
                     f"the mark is {mark.state.value}, not activated", **base)
    if mark.lot is None or mark.lot.status == LotStatus.recalled:
        return Check(Verdict.recalled, "recalled", "the mark's lot was recalled", **base)
    return Check(Verdict.genuine, None, "activated on an active lot, authorization in force", **base)


# --- what the page shows ------------------------------------------------------------------------

def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def _date(value: dt.datetime | None) -> str | None:
    """An instant's date in China as the answers show it (ISO), or None."""
    return clock.china_date(value).isoformat() if value else None


def texts(check: Check) -> dict[str, dict[str, str]]:
    out = {k: dict(v) for k, v in TEXTS[check.verdict].items()}
    if check.detail in DETAIL_TEXTS:
        out["message"] = dict(DETAIL_TEXTS[check.detail])
    return out


TIMELINE_KINDS = ("printed", "issued", "activated", "spoiled", "voided", "lost", "stolen")


@dataclass(frozen=True)
class GIFacts:
    id: int
    version: int
    name_zh: str
    name_en: str | None
    name_pinyin: str | None
    kind: GIKind
    registration_no: str | None
    registration_date: dt.date | None
    standard: str | None
    area_description: str | None
    origin_area_id: int | None
    check_alert_threshold: int | None
    sales_adcodes: tuple[str, ...]


def gi_facts(session: Session, gi_id: int) -> GIFacts:
    """The GI's display fields (cached for caches.DISPLAY_TTL seconds)."""
    def load() -> GIFacts:
        gi = session.get(GIProduct, gi_id)
        return GIFacts(gi.id, gi.version, gi.name_zh, gi.name_en, gi.name_pinyin, gi.kind, gi.registration_no,
                       gi.registration_date, gi.standard, gi.area_description, gi.origin_area_id,
                       gi.check_alert_threshold, tuple(gi.sales_adcodes or ()))
    return _cache(session, "gi").get(gi_id, load)


def producer_facts(session: Session, producer_id: int) -> dict[str, Any]:
    """The producer's public name and USCC (cached for caches.DISPLAY_TTL seconds)."""
    def load() -> dict[str, Any]:
        row = session.execute(select(Organisation.name, Organisation.name_en, Organisation.uscc)
                              .where(Organisation.id == producer_id)).one()
        return {"name": row[0], "name_en": row[1], "uscc": row[2]}
    return _cache(session, "producer").get(producer_id, load)


def timeline(session: Session, mark: MarkFacts) -> list[dict[str, Any]]:
    """Ledger events of the mark's batch whose ranges cover its serial (printed, issued, activated, …).

    Bounded whatever the batch's history: printed/issued/spoiled events of the batch (a few),
    the event that gave the mark its current state, and its activation on its lot. The events are
    cached by (batch, state event, lot): a new state of the mark is a new event, hence a new key.
    """
    r = mark.range

    def load() -> tuple[tuple[dt.datetime, str, tuple[tuple[int, int], ...]], ...]:
        conditions = [LedgerEvent.kind.in_(("printed", "issued", "spoiled")), LedgerEvent.seq == r.event_seq]
        if r.lot_id is not None:
            conditions.append(and_(LedgerEvent.kind == "activated", LedgerEvent.lot_id == r.lot_id))
        rows = session.execute(select(LedgerEvent.at, LedgerEvent.kind, LedgerEvent.ranges)
                               .where(LedgerEvent.batch_id == mark.batch.id, or_(*conditions))
                               .order_by(LedgerEvent.seq)).all()
        return tuple((at, kind, tuple((a, b) for a, b in ranges or ())) for at, kind, ranges in rows
                     if kind in TIMELINE_KINDS)

    seq = mark.serial.seq
    events = [{"event": kind, "at": _iso(at), "date": _date(at)}
              for at, kind, ranges in _cache(session, "timeline").get((mark.batch.id, r.event_seq, r.lot_id), load)
              if any(a <= seq <= b for a, b in ranges)]
    lot = mark.lot
    if lot is not None and lot.status == LotStatus.recalled and lot.recalled_at is not None:
        events.append({"event": "recalled", "at": _iso(lot.recalled_at), "date": _date(lot.recalled_at)})
    return events


LOT_MISMATCH_TEXTS = i18n.pairs("lot_mismatch.")


def gi_document(session: Session, gi_id: int, *, base_url: str) -> dict[str, Any]:
    """The GI as the answers show it (name, kind, announcement, standard, area)."""
    gi = gi_facts(session, gi_id)
    return {
        "id": gi.id, "name_zh": gi.name_zh, "name_en": gi.name_en, "name_pinyin": gi.name_pinyin,
        "kind": gi.kind.value, "kind_label": KIND_LABELS[gi.kind], "registration_no": gi.registration_no,
        "registration_date": gi.registration_date.isoformat() if gi.registration_date else None,
        "standard": gi.standard, "area_description": gi.area_description,
        "area_url": f"{base_url}/collections/origin-areas/items/{gi.id}" if gi.origin_area_id else None,
    }


def lot_document(lot: LotFacts) -> dict[str, Any]:
    """A lot as the answers show it (never its size)."""
    return {"lot_no": lot.lot_no, "production_date": lot.production_date.isoformat(),
            "test_report_no": lot.test_report_no, "testing_body": lot.testing_body, "status": lot.status.value,
            "recalled_at": _iso(lot.recalled_at)}


def describe(session: Session, check: Check, checks: Checks | None, *, base_url: str) -> dict[str, Any]:
    """The verification answer as plain data (the JSON body; the HTML page renders the same).

    `message` is bilingual like `title` and `advice`; `reason` is one English sentence (what an error
    contract's string `message` would say)."""
    words = texts(check)
    doc: dict[str, Any] = {
        "verdict": check.verdict.value,
        "genuine": check.genuine,
        "status": check.status,
        "detail": check.detail,
        "reason": check.reason,
        "title": words["title"],
        "message": words["message"],
        "advice": words["advice"],
        "code": check.code,
        "serial": check.serial.text if check.serial and check.mac_ok else None,
        "serial_display": check.serial.display if check.serial and check.mac_ok else None,
    }
    mark = check.mark
    if mark is None:
        return doc
    batch = mark.batch
    doc["mark"] = {"state": mark.state.value, "pack_size_g": batch.pack_size_g, "gtin": batch.gtin}
    doc["gi"] = gi_document(session, batch.gi_id, base_url=base_url)
    doc["producer"] = dict(producer_facts(session, batch.producer_id))
    auth = check.authorization
    doc["authorization"] = ({"status": auth.status.value,
                             "valid_until": auth.valid_until.isoformat() if auth.valid_until else None}
                            if auth else None)
    lot = mark.lot
    doc["lot"] = None if lot is None else lot_document(lot)
    if check.lot_mismatch is not None and lot is not None:
        values = {"package": check.lot_mismatch, "activated": lot.lot_no}
        doc["lot_mismatch"] = {"package_lot": check.lot_mismatch, "activated_lot": lot.lot_no,
                               "title": LOT_MISMATCH_TEXTS["title"],
                               "message": {lang: text.format(**values)
                                           for lang, text in LOT_MISMATCH_TEXTS["message"].items()},
                               "advice": LOT_MISMATCH_TEXTS["advice"]}
    doc["timeline"] = timeline(session, mark)
    if checks is not None:
        doc["checks"] = {
            "count": checks.count, "first_at": _iso(checks.first_at), "first_date": _date(checks.first_at),
            "first_place": place(checks.first_adcode), "last_place": place(checks.last_adcode),
        }
        if checks.suspect_reasons:
            doc["suspect"] = suspect_warning(checks)
    return doc


@dataclass(frozen=True)
class ConsumerVerdict:
    """A consumer's check, whole: the verdict, the counters shown, the answer document, the logged check."""

    check: Check
    checks: Checks | None
    doc: dict[str, Any]
    scan: Any | None = None      # the checklog.PendingCheck (its id names the check in the scan token)


def consumer_check(session: Session, *, keyring: MarkKeyring, settings, checklog, code: str | None = None,
                   check: Check | None = None, ip: str | None, user_agent: str | None, base_url: str,
                   record: bool = True, lot: str | None = None) -> ConsumerVerdict:
    """Check a code as a consumer does (the page, the JSON answer, the GS1 resolver's direct answers).

    The verdict (syntax, MAC once, then one lookup that also reads the serial's counters), the check
    handed to the check log when `record` (GET: HEAD and link listings are not checks), the count
    shown ("checked N times": the written counter, plus this process's checks not written yet,
    plus this one) and the answer document. A count at or beyond the GI's threshold shows the
    copied-label warning on this very answer; the flush that writes it raises the alert.
    `check` is a verdict already reached (the GS1 resolver's ``check_gs1``), else `code` is checked.
    `lot` is the lot the package names (``package_lot``), compared with the mark's (``compare_lot``).
    """
    if check is None:
        check = check_code(session, keyring, code or "")
    check = compare_lot(check, lot)
    batch = check.mark.batch if check.mark is not None else None
    before = (0, None)
    if check.mark is not None and checklog is not None:
        before = checklog.pending(check.serial.series, check.serial.seq)
    scan = None
    if record:
        scan = new_check(checklog, verdict=check.verdict, detail=check.detail, serial=check.serial,
                         mac_ok=check.mac_ok, counted=check.mark is not None, secret=settings.secret_key, ip=ip,
                         user_agent=user_agent, gi_id=batch.gi_id if batch else None,
                         producer_id=batch.producer_id if batch else None)
    checks = None
    if check.mark is not None:
        checks = shown_checks(session, settings, check, pending=before, this=scan if scan is not None and scan.counted
                              else None)
    doc = describe(session, check, checks, base_url=base_url)
    if scan is not None and check.code:
        doc["scan"] = {"token": scan_token(settings.secret_key, scan, check.code),
                       "location_url": f"{base_url}/v/{check.code}/location"}
    return ConsumerVerdict(check, checks, doc, scan)


def shown_checks(session: Session, settings, check: Check, *, pending: tuple[int, dt.datetime | None],
                 this=None) -> Checks:
    """The counters a consumer is shown: written ones, this process's pending ones, and this check."""
    recorded = check.recorded or Checks.none()
    n, first_pending = pending
    times = [t for t in (first_pending, this.at if this is not None else None) if t is not None]
    count = recorded.count + n + (1 if this is not None else 0)
    first_at = recorded.first_at if recorded.count else (min(times) if times else None)
    reasons, suspect_at = recorded.suspect_reasons, recorded.suspect_at
    if count and "too_many_checks" not in reasons:
        gi = gi_facts(session, check.mark.batch.gi_id)
        if count >= (gi.check_alert_threshold or settings.check_alert_threshold):
            reasons = (*reasons, "too_many_checks")
            suspect_at = suspect_at or (this.at if this is not None else clock.now())
    return Checks(count, first_at, recorded.first_adcode, recorded.last_adcode, suspect_at, reasons)


def json_body(result: ConsumerVerdict) -> dict[str, Any]:
    """The JSON answer of every verdict: the answer document at the top level, `verdict` first.

    A non-genuine answer adds `error` (the verdict again) beside it, so clients of the error contract
    still find a code; its `message` stays the document's bilingual one and the one-sentence English
    explanation is `reason` (see public/verify.py)."""
    doc = result.doc
    if result.check.genuine:
        return doc
    return {"verdict": doc["verdict"], "error": doc["verdict"], **doc}


SUSPECT_TEXTS = i18n.pairs("suspect.")
SUSPECT_REASONS = i18n.pairs("suspect_reason.")


def suspect_warning(checks: Checks) -> dict[str, Any]:
    """What the page says about a code a copied-label alert named."""
    return {"since": _iso(checks.suspect_at), "reasons": list(checks.suspect_reasons),
            "reason_labels": [SUSPECT_REASONS[r] for r in checks.suspect_reasons if r in SUSPECT_REASONS],
            **SUSPECT_TEXTS}


# --- the production area and the producer's plots, for the public map --------------------------------

MAX_PLOTS = 50


@dataclass(frozen=True)
class AreaPlots:
    """A GI's production area (its id and bounds) and where a producer's plots in it are (their centroids)."""

    area_id: int
    bounds: tuple[float, float, float, float]
    plots: tuple[tuple[float, float], ...]


def area_plots(session: Session, gi_id: int, producer_id: int) -> AreaPlots | None:
    """The GI's production area and the producer's (first MAX_PLOTS active) plots in it; None without an area.

    Cached for five minutes per area and producer: the area is immutable (a new one gets a new id) and plots
    change seldom. render.maps.public_area_map draws it.
    """
    origin_area_id = gi_facts(session, gi_id).origin_area_id
    if origin_area_id is None:
        return None

    def load() -> AreaPlots | None:
        area = session.get(OriginArea, origin_area_id)
        if area is None:
            return None
        plots = session.scalars(select(Plot.geom).where(Plot.producer_id == producer_id, Plot.gi_id == gi_id,
                                                        Plot.is_active.is_(True)).order_by(Plot.id).limit(MAX_PLOTS))
        return AreaPlots(area.id, (area.min_x, area.min_y, area.max_x, area.max_y),
                         tuple((c.x, c.y) for c in (geom.centroid for geom in plots)))
    return _cache(session, "map").get((origin_area_id, producer_id), load)

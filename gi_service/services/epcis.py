"""EPCIS 2.0 export: the ledger, consumer checks and inspectors' findings as JSON-LD ObjectEvents.

Trading partners and other regulators' systems speak GS1 EPCIS 2.0 with the Core Business
Vocabulary (CBV 2.0). This module turns our records into an ``EPCISDocument`` that validates
against the official JSON schema (``../shared/standards/epcis/EPCIS-JSON-Schema.json``; the tests
check every document against it).

How each record maps (every event is an ``ObjectEvent``):

==================  ========  ================  ================  =================================
record              action    bizStep           disposition       notes
==================  ========  ================  ================  =================================
printed             ADD       commissioning     inactive          labels exist, not yet on product
activated           ADD       commissioning     active            ``ilmd``: cbvmda:lotNumber,
                                                                  cbvmda:countryOfOrigin,
                                                                  gi:productionDate,
                                                                  gi:testReportNumber, gi:testingBody
issued              OBSERVE   shipping          in_transit        source = printer, destination =
                                                                  producer (possessing/owning party)
spoiled             DELETE    decommissioning   damaged           misprints written off at the printer
voided              DELETE    decommissioning   destroyed
lost                DELETE    decommissioning   unknown           CBV has no "lost"; gi:ledgerEvent
stolen              DELETE    decommissioning   stolen
recalled            OBSERVE   (none)            recalled          + persistentDisposition set
                                                                  recalled: CBV has no recall step,
                                                                  and the marks still exist
consumer check      OBSERVE   inspecting        conformant /      gi:verdict; readPoint only when the
                                                non_conformant    consumer shared a location
finding             OBSERVE   inspecting        conformant /      readPoint geo:lat,lon; gi:violations,
                                                non_conformant    gi:premises, gi:codesChecked
==================  ========  ================  ================  =================================

Other ledger events (quota movements, requests, approvals, print orders, print-file downloads)
concern no physical label and are not exported.

Identifiers (all valid absolute URIs, as the schema's ``format: uri`` asks):

* a mark of a batch with a GTIN: the canonical GS1 Digital Link ``https://id.gs1.org/01/{gtin}/21/{serial}``;
  otherwise ``urn:gi-service:mark:{serial}``. The verification *code* (with its MAC tag) is never
  exported: the serial identifies a mark, the code is what makes a printed copy verify.
* more than ``EPC_LIST_MAX`` marks in one event (a 1,000,000-mark print run): a ``quantityList``
  with class-level identifiers instead of a million EPCs — the GTIN class
  ``https://id.gs1.org/01/{gtin}`` with the count, or ``urn:gi-service:mark-range:{first}-{last}``
  per serial range; ``gi:serialRanges`` always lists the exact ranges.
* organisations: ``urn:gi-service:uscc:{USCC}`` (the 统一社会信用代码 the special mark must show),
  or ``urn:gi-service:org:{id}`` for bodies without one; counties ``urn:gi-service:adcode:{adcode}``;
  points ``geo:lat,lon`` (RFC 5870).
* ``eventID``: ``urn:uuid:`` version 5 of the deployment's public URL and the record (a ledger
  event by its chain hash), so a re-export repeats the same ids and receivers can de-duplicate.

Our own fields use the prefix ``gi`` = ``urn:gi-service:epcis:`` declared in the document's
``@context``. Times are UTC with ``eventTimeZoneOffset`` ``+08:00`` (China Standard Time).

Who sees what: authorities the events of the GIs they manage and of the producers, places of
checks and findings in their jurisdiction; inspection units the checks located and the findings
made in their jurisdiction (and their own findings); producers the ledger events and checks of
their own marks (checks with the county only, not the point); printers the printing, spoiling and
issuing of their own print orders. Findings are enforcement evidence and go to authorities and
inspection units only. A consumer's IP hash and user agent are never exported.

Paging: each source (ledger, checks, findings) is read in the order the service recorded it
(ledger sequence, check id, finding id) and the sources are merged by record time. The page
token holds where each source stopped, so nothing is skipped or repeated however close their
times are, and it is bound to the filters it was made for.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import heapq
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, or_, select, true
from sqlalchemy.orm import Session, selectinload

from .. import clock
from ..codes import format_serial
from ..errors import Forbidden, GIError, ValidationFailed
from ..models import (Finding, GIAreaUnit, GIProduct, LedgerEvent, Lot, MarkBatch, OrgKind, Organisation, Scan,
                      UAClass, Verdict)
from .accounts import Principal
from .jurisdiction import jurisdiction_codes

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
NS_PREFIX = "gi"
NAMESPACE = "urn:gi-service:epcis:"
URN = "urn:gi-service:"
DIGITAL_LINK = "https://id.gs1.org"
CHINA_OFFSET = "+08:00"
SCHEMA_VERSION = "2.0"

KINDS = ("ledger", "checks", "findings")
# One event lists its marks one by one up to this many; above it, class-level quantities.
EPC_LIST_MAX = 1000
# A page stops early once it lists this many EPCs (memory and response size stay bounded).
PAGE_EPC_BUDGET = 100_000
MAX_LIMIT = 1000
# A consumer's shared point is rounded to 0.01°: the true place is within about 800 m of it.
CHECK_LOCATION_UNCERTAINTY_M = 800

LEDGER_KINDS = ("printed", "spoiled", "issued", "activated", "voided", "lost", "stolen", "recalled")
PRINTER_LEDGER_KINDS = ("printed", "spoiled", "issued")
DECOMMISSIONED = {"spoiled": "damaged", "voided": "destroyed", "lost": "unknown", "stolen": "stolen"}


class InvalidPageToken(GIError):
    status = 400
    code = "invalid_page_token"


# --- identifiers ------------------------------------------------------------------------------

def serial_of(series: str, seq: int) -> str:
    return format_serial(series[:4], 2000 + int(series[4:]), seq)


def mark_epc(serial: str, gtin: str | None) -> str:
    """The EPC of one mark: GS1 Digital Link with a GTIN, our URN otherwise."""
    if gtin:
        return f"{DIGITAL_LINK}/01/{gtin}/21/{serial}"
    return f"{URN}mark:{serial}"


def range_class(first_serial: str, last_serial: str) -> str:
    return f"{URN}mark-range:{first_serial}-{last_serial}"


def gtin_class(gtin: str) -> str:
    return f"{DIGITAL_LINK}/01/{gtin}"


def party_id(org: Organisation | None) -> str | None:
    if org is None:
        return None
    return f"{URN}uscc:{org.uscc}" if org.uscc else f"{URN}org:{org.id}"


def adcode_uri(adcode: str) -> str:
    return f"{URN}adcode:{adcode}"


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def geo_uri(lat: float, lon: float, uncertainty_m: int | None = None) -> str:
    """RFC 5870 geo URI (WGS-84), with the uncertainty radius in metres when known."""
    text = f"geo:{_num(lat)},{_num(lon)}"
    return text + (f";u={uncertainty_m}" if uncertainty_m else "")


def epcis_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_uuid(base_url: str, name: str) -> str:
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base_url.rstrip('/')}/epcis/{name}"))


def _gi(name: str) -> str:
    return f"{NS_PREFIX}:{name}"


# --- who sees what ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """The caller's share of each source, as SQL conditions (None: that source is not theirs)."""

    ledger: Any = None
    checks: Any = None
    findings: Any = None
    precise_location: bool = False   # the consumer's rounded point, or only its county

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if getattr(self, k) is not None)


def managed_gi_ids(session: Session, by: Principal) -> list[int]:
    """The GIs an authority manages (the rule of registry.can_manage_gi, for all GIs in two queries)."""
    gis = session.execute(select(GIProduct.id, GIProduct.authority_id, GIProduct.area_adcodes)).all()
    units: dict[int, list[str]] = {}
    for gi_id, adcode in session.execute(select(GIAreaUnit.gi_id, GIAreaUnit.adcode)):
        units.setdefault(gi_id, []).append(adcode)
    out = []
    for gi_id, authority_id, declared in gis:
        area = list(declared or []) or units.get(gi_id, [])
        if authority_id == by.organisation_id or (area and all(by.covers(u) for u in area)):
            out.append(gi_id)
    return out


def scope_for(session: Session, by: Principal) -> Scope:
    if by.org_kind == OrgKind.producer:
        return Scope(ledger=LedgerEvent.producer_id == by.organisation_id,
                     checks=MarkBatch.producer_id == by.organisation_id)
    if by.org_kind == OrgKind.printer:
        return Scope(ledger=and_(LedgerEvent.printer_id == by.organisation_id,
                                 LedgerEvent.kind.in_(PRINTER_LEDGER_KINDS)))
    codes = jurisdiction_codes(by.adcode)
    if by.org_kind == OrgKind.inspection:
        located = Scan.adcode.is_not(None) if codes is None else Scan.adcode.in_(codes)
        here = true() if codes is None else Finding.adcode.in_(codes)
        return Scope(checks=located, findings=or_(here, Finding.organisation_id == by.organisation_id),
                     precise_location=True)
    if by.org_kind == OrgKind.authority:
        if codes is None:   # the national authority
            return Scope(ledger=true(), checks=true(), findings=true(), precise_location=True)
        gi_ids = managed_gi_ids(session, by)
        producers_here = select(Organisation.id).where(Organisation.kind == OrgKind.producer,
                                                       Organisation.adcode.in_(codes))
        return Scope(
            ledger=or_(LedgerEvent.gi_id.in_(gi_ids), LedgerEvent.producer_id.in_(producers_here)),
            checks=or_(MarkBatch.gi_id.in_(gi_ids), MarkBatch.producer_id.in_(producers_here),
                       Scan.adcode.in_(codes)),
            findings=or_(Finding.adcode.in_(codes), Finding.organisation_id == by.organisation_id,
                         Finding.gi_id.in_(gi_ids), Finding.producer_id.in_(producers_here)),
            precise_location=True)
    return Scope()


# --- the query and its page token -------------------------------------------------------------

@dataclass(frozen=True)
class ExportFilter:
    kinds: tuple[str, ...]
    start: dt.datetime | None = None      # eventTime >= start
    end: dt.datetime | None = None        # eventTime < end
    gi_id: int | None = None
    producer_id: int | None = None

    def fingerprint(self) -> str:
        text = json.dumps([sorted(self.kinds), self.start and epcis_time(self.start),
                           self.end and epcis_time(self.end), self.gi_id, self.producer_id])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(f: ExportFilter, cursor: dict[str, int]) -> str:
    raw = json.dumps({"v": 1, "q": f.fingerprint(), "c": cursor}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(f: ExportFilter, token: str) -> dict[str, int]:
    """The per-source cursor of a page token made for the same filters."""
    bad = InvalidPageToken("nextPageToken is not a token this service made; start again without it, or copy "
                           "it exactly from the previous page")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("c"), dict):
        raise bad
    cursor = data["c"]
    if any(k not in KINDS or type(v) is not int or v < 0 for k, v in cursor.items()):
        raise bad
    if data.get("q") != f.fingerprint():
        raise InvalidPageToken("this nextPageToken belongs to a query with other filters (kinds, from, to, gi_id "
                               "or producer_id); repeat the same filters with it", code="page_token_mismatch")
    return cursor


# --- reading the sources ----------------------------------------------------------------------

@dataclass
class _Item:
    at: dt.datetime          # record time: the merge key
    kind: str
    key: int                 # cursor value within its source
    row: Any
    epcs: int = 0            # how many EPCs it lists (for the page budget)

    def sort_key(self):
        return (self.at, KINDS.index(self.kind), self.key)


def _time_window(column, f: ExportFilter):
    conds = []
    if f.start is not None:
        conds.append(column >= f.start)
    if f.end is not None:
        conds.append(column < f.end)
    return conds


def _ledger_rows(session: Session, scope: Scope, f: ExportFilter, after: int, limit: int) -> list[_Item]:
    stmt = (select(LedgerEvent).where(scope.ledger, LedgerEvent.kind.in_(LEDGER_KINDS), LedgerEvent.seq > after,
                                      *_time_window(LedgerEvent.at, f))
            .order_by(LedgerEvent.seq).limit(limit))
    if f.gi_id is not None:
        stmt = stmt.where(LedgerEvent.gi_id == f.gi_id)
    if f.producer_id is not None:
        stmt = stmt.where(LedgerEvent.producer_id == f.producer_id)
    return [_Item(e.at, "ledger", e.seq, e, epcs=e.count if e.count <= EPC_LIST_MAX else 0)
            for e in session.scalars(stmt)]


def _batch_of_scan():
    return and_(MarkBatch.series == Scan.series, MarkBatch.seq_start <= Scan.seq, MarkBatch.seq_end >= Scan.seq)


def _check_rows(session: Session, scope: Scope, f: ExportFilter, after: int, limit: int) -> list[_Item]:
    # Only checks of real marks: a code whose MAC fails names no mark of ours (forgeries and typos reach
    # the inspectors as alerts), and link-preview bots are logged but are not checks.
    stmt = (select(Scan, MarkBatch).join(MarkBatch, _batch_of_scan())
            .where(scope.checks, Scan.mac_ok.is_(True), Scan.ua_class != UAClass.bot, Scan.id > after,
                   *_time_window(Scan.at, f))
            .order_by(Scan.id).limit(limit))
    if f.gi_id is not None:
        stmt = stmt.where(MarkBatch.gi_id == f.gi_id)
    if f.producer_id is not None:
        stmt = stmt.where(MarkBatch.producer_id == f.producer_id)
    return [_Item(scan.at, "checks", scan.id, (scan, batch), epcs=1) for scan, batch in session.execute(stmt)]


def _finding_rows(session: Session, scope: Scope, f: ExportFilter, after: int, limit: int) -> list[_Item]:
    stmt = (select(Finding).where(scope.findings, Finding.id > after, *_time_window(Finding.observed_at, f))
            .options(selectinload(Finding.codes), selectinload(Finding.photos))
            .order_by(Finding.id).limit(limit))
    if f.gi_id is not None:
        stmt = stmt.where(Finding.gi_id == f.gi_id)
    if f.producer_id is not None:
        stmt = stmt.where(Finding.producer_id == f.producer_id)
    return [_Item(x.received_at, "findings", x.id, x, epcs=len(x.codes)) for x in session.scalars(stmt)]


READERS = {"ledger": _ledger_rows, "checks": _check_rows, "findings": _finding_rows}


# --- building events --------------------------------------------------------------------------

@dataclass
class _Lookup:
    """Rows the events of one page refer to, each read once."""

    session: Session
    batches: dict[int, MarkBatch] = field(default_factory=dict)
    orgs: dict[int, Organisation] = field(default_factory=dict)
    gis: dict[int, GIProduct] = field(default_factory=dict)
    lots: dict[int, Lot] = field(default_factory=dict)

    def _get(self, cache: dict, model, ids: Iterable[int | None]) -> None:
        wanted = {i for i in ids if i is not None and i not in cache}
        if wanted:
            for row in self.session.scalars(select(model).where(model.id.in_(wanted))):
                cache[row.id] = row

    def load(self, items: list[_Item]) -> None:
        ledger = [i.row for i in items if i.kind == "ledger"]
        findings = [i.row for i in items if i.kind == "findings"]
        self._get(self.batches, MarkBatch, [e.batch_id for e in ledger]
                  + [c.batch_id for x in findings for c in x.codes])
        self._get(self.orgs, Organisation, [e.producer_id for e in ledger] + [e.printer_id for e in ledger]
                  + [x.organisation_id for x in findings] + [x.producer_id for x in findings])
        self._get(self.gis, GIProduct, [e.gi_id for e in ledger])
        self._get(self.lots, Lot, [e.lot_id for e in ledger if e.kind == "recalled"])

    def gtin_at(self, series: str, seq: int, hint: MarkBatch | None) -> str | None:
        """The GTIN of the batch holding a serial (a recalled lot may span several batches)."""
        if hint is not None and hint.series == series and hint.seq_start <= seq <= hint.seq_end:
            return hint.gtin
        batch = self.session.scalar(select(MarkBatch).where(MarkBatch.series == series, MarkBatch.seq_start <= seq)
                                    .order_by(MarkBatch.seq_start.desc()).limit(1))
        if batch is not None and batch.seq_end >= seq:
            self.batches.setdefault(batch.id, batch)
            return batch.gtin
        return None


def _objects(lookup: _Lookup, series: str | None, ranges: Sequence[Sequence[int]],
             hint: MarkBatch | None) -> dict[str, Any]:
    """epcList for up to EPC_LIST_MAX marks, class-level quantityList above; always the exact ranges."""
    spans = []
    for first, last in ranges:
        gtin = lookup.gtin_at(series, first, hint) if series else None
        spans.append((int(first), int(last), gtin))
    total = sum(last - first + 1 for first, last, _ in spans)
    out: dict[str, Any] = {}
    if total <= EPC_LIST_MAX:
        out["epcList"] = [mark_epc(serial_of(series, seq), gtin) for first, last, gtin in spans
                          for seq in range(first, last + 1)]
    else:
        by_gtin: dict[str, int] = {}
        quantities = []
        for first, last, gtin in spans:
            if gtin:
                by_gtin[gtin] = by_gtin.get(gtin, 0) + last - first + 1
            else:
                quantities.append({"epcClass": range_class(serial_of(series, first), serial_of(series, last)),
                                   "quantity": last - first + 1})
        out["quantityList"] = [{"epcClass": gtin_class(g), "quantity": n} for g, n in by_gtin.items()] + quantities
    out[_gi("serialRanges")] = [{_gi("first"): serial_of(series, first), _gi("last"): serial_of(series, last),
                                 _gi("count"): last - first + 1} for first, last, _ in spans]
    out[_gi("markCount")] = total
    return out


def _ledger_event(e: LedgerEvent, lookup: _Lookup, base_url: str) -> dict[str, Any]:
    batch = lookup.batches.get(e.batch_id) if e.batch_id else None
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": _event_uuid(base_url, f"ledger/{e.hash}"),
        "eventTime": epcis_time(e.at),
        "eventTimeZoneOffset": CHINA_OFFSET,
        "recordTime": epcis_time(e.at),
    }
    objects = _objects(lookup, e.series, e.ranges or [], batch)
    event.update({k: v for k, v in objects.items() if k in ("epcList", "quantityList")})
    if e.kind == "printed":
        event.update(action="ADD", bizStep="commissioning", disposition="inactive")
    elif e.kind == "activated":
        gi = lookup.gis.get(e.gi_id)
        data = e.data or {}
        ilmd = {"cbvmda:lotNumber": data.get("lot_no"),
                "cbvmda:countryOfOrigin": (gi.origin_country if gi is not None else None) or "CN",
                _gi("productionDate"): data.get("production_date"),
                _gi("testReportNumber"): data.get("test_report_no"),
                _gi("testingBody"): data.get("testing_body")}
        event.update(action="ADD", bizStep="commissioning", disposition="active",
                     ilmd={k: v for k, v in ilmd.items() if v is not None})
    elif e.kind == "issued":
        printer, producer = lookup.orgs.get(e.printer_id), lookup.orgs.get(e.producer_id)
        event.update(action="OBSERVE", bizStep="shipping", disposition="in_transit")
        if party_id(printer):
            event["sourceList"] = [{"type": "possessing_party", "source": party_id(printer)}]
        if party_id(producer):
            event["destinationList"] = [{"type": "possessing_party", "destination": party_id(producer)},
                                        {"type": "owning_party", "destination": party_id(producer)}]
    elif e.kind in DECOMMISSIONED:
        event.update(action="DELETE", bizStep="decommissioning", disposition=DECOMMISSIONED[e.kind])
    elif e.kind == "recalled":
        event.update(action="OBSERVE", disposition="recalled", persistentDisposition={"set": ["recalled"]})
    if e.kind in ("printed", "issued") and e.batch_id:
        # The batch is the print order the labels were printed and handed out under.
        event["bizTransactionList"] = [{"type": "prodorder", "bizTransaction": f"{URN}print-order:{e.batch_id}"}]
    ext: dict[str, Any] = {_gi("ledgerEvent"): e.kind, _gi("ledgerSeq"): e.seq, _gi("ledgerHash"): e.hash}
    if e.gi_id is not None:
        gi = lookup.gis.get(e.gi_id)
        ext[_gi("gi")] = {_gi("id"): e.gi_id, **({_gi("name"): gi.name_zh} if gi is not None else {})}
    if e.producer_id is not None:
        ext[_gi("producer")] = party_id(lookup.orgs.get(e.producer_id))
    if e.batch_id is not None:
        ext[_gi("batchId")] = e.batch_id
    if e.kind == "recalled" and e.lot_id in lookup.lots:
        ext[_gi("lotNumber")] = lookup.lots[e.lot_id].lot_no
    if e.reason:
        ext[_gi("reason")] = e.reason
    ext[_gi("serialRanges")] = objects[_gi("serialRanges")]
    ext[_gi("markCount")] = objects[_gi("markCount")]
    event.update(ext)
    return event


def _check_event(scan: Scan, batch: MarkBatch, scope: Scope, base_url: str) -> dict[str, Any]:
    serial = serial_of(scan.series, scan.seq)
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": _event_uuid(base_url, f"check/{scan.id}"),
        "eventTime": epcis_time(scan.at),
        "eventTimeZoneOffset": CHINA_OFFSET,
        "recordTime": epcis_time(scan.at),
        "epcList": [mark_epc(serial, batch.gtin)],
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "disposition": "conformant" if scan.verdict == Verdict.genuine else "non_conformant",
    }
    # Only a location the consumer chose to share; producers learn the county, not the point.
    if scope.precise_location and scan.lat is not None and scan.lon is not None:
        event["readPoint"] = {"id": geo_uri(scan.lat, scan.lon, CHECK_LOCATION_UNCERTAINTY_M)}
    elif scan.adcode is not None:
        event["readPoint"] = {"id": adcode_uri(scan.adcode)}
    if scan.adcode is not None:
        event[_gi("adcode")] = scan.adcode
    event[_gi("checkedBy")] = "consumer"
    event[_gi("verdict")] = scan.verdict.value
    if scan.detail:
        event[_gi("verdictDetail")] = scan.detail
    event[_gi("batchId")] = batch.id
    return event


def _finding_event(x: Finding, lookup: _Lookup, base_url: str) -> dict[str, Any]:
    epcs, codes = [], []
    for c in x.codes:
        entry: dict[str, Any] = {_gi("verdict"): c.verdict}
        if c.detail:
            entry[_gi("verdictDetail")] = c.detail
        if c.batch_id is not None and c.series and c.seq is not None:
            batch = lookup.batches.get(c.batch_id)
            epc = mark_epc(serial_of(c.series, c.seq), batch.gtin if batch is not None else None)
            if epc not in epcs:
                epcs.append(epc)
            entry[_gi("epc")] = epc
        elif c.series and c.seq is not None:
            # A code that failed its check only claims this serial: evidence, not an identified mark.
            entry[_gi("claimedSerial")] = serial_of(c.series, c.seq)
        codes.append(entry)
    violations = list(x.violations or [])
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": _event_uuid(base_url, f"finding/{x.organisation_id}/{x.client_id}"),
        "eventTime": epcis_time(x.observed_at),
        "eventTimeZoneOffset": CHINA_OFFSET,
        "recordTime": epcis_time(x.received_at),
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "disposition": "non_conformant" if violations else "conformant",
        "readPoint": {"id": geo_uri(x.lat, x.lon)},
    }
    premises = {_gi("name"): x.premises_name, _gi("kind"): x.premises_kind.value, _gi("url"): x.premises_url,
                _gi("address"): x.premises_address, _gi("uscc"): x.premises_uscc}
    event.update({
        _gi("findingId"): x.id,
        _gi("adcode"): x.adcode,
        _gi("inspectionUnit"): party_id(lookup.orgs.get(x.organisation_id)),
        _gi("premises"): {k: v for k, v in premises.items() if v is not None},
        _gi("violations"): violations,
        _gi("codesChecked"): codes,
        _gi("photos"): [{_gi("sha256"): p.sha256, _gi("width"): p.width, _gi("height"): p.height}
                        for p in x.photos],
    })
    if x.gi_id is not None:
        event[_gi("giId")] = x.gi_id
    if x.producer_id is not None:
        event[_gi("producer")] = party_id(lookup.orgs.get(x.producer_id))
    if x.notes:
        event[_gi("notes")] = x.notes
    if x.case_id is not None:
        event[_gi("caseId")] = x.case_id
    return event


# --- the export -------------------------------------------------------------------------------

@dataclass
class ExportPage:
    document: dict[str, Any]
    next_token: str | None
    counts: dict[str, int]


def parse_kinds(text: str | None, scope: Scope) -> tuple[str, ...]:
    """The requested sources (all the caller may see by default); a source not theirs is refused."""
    if text is None or not text.strip():
        return scope.allowed
    kinds = []
    for part in text.split(","):
        name = part.strip().lower()
        if name not in KINDS:
            raise ValidationFailed(f"kinds: unknown kind {part.strip()!r}; use a comma-separated list of "
                                   f"{', '.join(KINDS)}", code="invalid_kind",
                                   details=[{"field": "kinds", "problem": f"unknown kind {part.strip()!r}"}])
        if name not in kinds:
            kinds.append(name)
    refused = [k for k in kinds if k not in scope.allowed]
    if refused:
        allowed = ", ".join(scope.allowed) or "none"
        raise Forbidden(f"your organisation may not export {', '.join(refused)} (yours: {allowed})",
                        code="kind_not_allowed", details={"refused": refused, "allowed": list(scope.allowed)})
    return tuple(kinds)


def export(session: Session, by: Principal, *, kinds: str | None = None, start: dt.datetime | None = None,
           end: dt.datetime | None = None, gi_id: int | None = None, producer_id: int | None = None,
           limit: int = 100, page_token: str | None = None, base_url: str) -> ExportPage:
    """One page of the caller's events as an EPCISDocument, with the token of the next page."""
    scope = scope_for(session, by)
    if not scope.allowed:
        raise Forbidden("your organisation has no events to export", code="wrong_role")
    if by.org_kind == OrgKind.producer and producer_id not in (None, by.organisation_id):
        raise Forbidden("a producer exports the events of its own marks only", code="not_your_producer")
    if start is not None and end is not None and start >= end:
        raise ValidationFailed("`from` must be before `to`",
                               details=[{"field": "to", "problem": "not after from"}])
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}",
                               details=[{"field": "limit", "problem": "out of range"}])
    f = ExportFilter(parse_kinds(kinds, scope), start, end, gi_id, producer_id)
    cursor = decode_token(f, page_token) if page_token else {}

    fetched = {k: READERS[k](session, scope, f, cursor.get(k, 0), limit + 1) for k in f.kinds}
    heap = [(item.sort_key(), n, item) for k in f.kinds for n, item in enumerate(fetched[k])]
    heapq.heapify(heap)
    page: list[_Item] = []
    epcs = 0
    while heap and len(page) < limit:
        _, _, item = heap[0]
        if page and epcs + item.epcs > PAGE_EPC_BUDGET:
            break
        heapq.heappop(heap)
        page.append(item)
        epcs += item.epcs
    next_cursor = dict(cursor)
    for item in page:
        next_cursor[item.kind] = item.key
    taken = {k: sum(1 for i in page if i.kind == k) for k in f.kinds}
    more = any(len(fetched[k]) > taken[k] for k in f.kinds)

    lookup = _Lookup(session)
    lookup.load(page)
    events = []
    for item in page:
        if item.kind == "ledger":
            events.append(_ledger_event(item.row, lookup, base_url))
        elif item.kind == "checks":
            events.append(_check_event(*item.row, scope, base_url))
        else:
            events.append(_finding_event(item.row, lookup, base_url))
    next_token = encode_token(f, next_cursor) if more else None
    document: dict[str, Any] = {
        "@context": [EPCIS_CONTEXT, {NS_PREFIX: NAMESPACE}],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": epcis_time(clock.now()),
        "epcisBody": {"eventList": events},
    }
    if next_token:
        document[_gi("nextPageToken")] = next_token
    return ExportPage(document, next_token, taken)

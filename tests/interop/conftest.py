"""A world with every kind of exportable event, and validation against GS1's EPCIS 2.0 JSON schema.

The schema is read from ``../shared/standards/epcis/`` when the shared folder is there and from the
copy beside this file otherwise (see SOURCES.md); both are the same file.
"""
from __future__ import annotations

import copy

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, FormatChecker

from gi_service.codes import format_serial, make_code, parse_serial
from gi_service.models import Finding, FindingCode, FindingPhoto, PremisesKind
from gi_service.services.verification import check_code
from tests.factories import LedgerWorld

API = "/api/v1"
EXPORT = f"{API}/epcis/events"
JSON = {"Accept": "application/json"}
GTIN = "09506000134352"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared" / "standards" / "epcis"
VENDORED_SCHEMA = HERE / "EPCIS-JSON-Schema.json"
SCHEMA_PATH = SHARED / "EPCIS-JSON-Schema.json" if (SHARED / "EPCIS-JSON-Schema.json").is_file() else VENDORED_SCHEMA

# RFC 3986 absolute URI: a scheme, then only URI characters, with well-formed percent-escapes.
# (jsonschema checks "uri" only with an optional package that is not installed, so the tests bring
# their own strict check rather than let the schema's `format: uri` pass unchecked.)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]]|%[0-9A-Fa-f]{2})*"
                  r"(?:#(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?$")


def is_uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


def make_validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    checker = FormatChecker()
    checker.checks("uri")(is_uri)
    assert {"date-time", "uri"} <= set(checker.checkers), "the schema's formats must really be checked"
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=checker)


@pytest.fixture(scope="session")
def validator() -> Draft7Validator:
    return make_validator()


def schema_errors(validator: Draft7Validator, doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def assert_valid(validator: Draft7Validator, doc: dict) -> None:
    errors = schema_errors(validator, doc)
    assert errors == [], "the document does not validate against the EPCIS 2.0 schema:\n" + "\n".join(errors[:20])


@dataclass
class Batch:
    data: dict
    keyring: object

    @property
    def id(self) -> int:
        return self.data["id"]

    def serial(self, n: int) -> str:
        first = parse_serial(self.data["first_serial"])
        return format_serial(first.prefix, first.year, first.seq + n - 1)

    def code(self, n: int) -> str:
        return make_code(self.keyring, self.serial(n), kid=self.data.get("key_id") or self.keyring.active)


def forged(code: str) -> str:
    return code[:-1] + ("A" if code[-1] != "A" else "B")


def urn(serial: str) -> str:
    return f"urn:gi-service:mark:{serial}"


def dl(serial: str) -> str:
    return f"https://id.gs1.org/01/{GTIN}/21/{serial}"


GZ_POINT = (23.1291, 113.2644)      # 越秀区, 广州市 (440104): a consumer there shares a location


class EPCISWorld(LedgerWorld):
    """Authority A (341600) with its GI, producer P (341602), a printer, plus outsiders of every kind."""

    def __init__(self, factory, client, app):
        super().__init__(factory, client, year=2026)
        self.app = app
        self.keyring = app.extensions["gi_keyring"]
        self.inspection_gz = factory.inspection("440100")      # where the finding and one check happen
        self.inspection_bz = factory.inspection("341600")      # covers the producer's county
        self.other_authority = factory.authority("330100")
        self.national = factory.authority("100000")
        self.other_producer = factory.producer("330106")
        self.other_printer = factory.printer()

    # -- ledger --------------------------------------------------------------------------------

    def batch(self, quantity: int, *, spoiled: tuple[int, ...] = (), pack_size_g: int = 250, **request) -> Batch:
        """Requested, approved, printed (with the given marks spoiled) and issued."""
        req = self.request(quantity, pack_size_g=pack_size_g, **request)
        data = self.approve(req["id"])
        probe = Batch(data, self.keyring)
        r = self.client.post(f"{API}/batches/{data['id']}/printed", headers=self.printer.headers,
                             json={"spoiled": [{"first": probe.serial(n)} for n in spoiled]})
        assert r.status_code == 200, r.json
        r = self.client.post(f"{API}/batches/{data['id']}/issue", headers=self.printer.headers, json={})
        assert r.status_code == 200, r.json
        data = self.client.get(f"{API}/batches/{data['id']}", headers=self.authority.headers).json
        return Batch(data, self.keyring)

    def activate(self, b: Batch, first: int, last: int, lot_no: str, **lot) -> dict:
        r = self.client.post(f"{API}/activations", headers=self.producer.headers,
                             json={"ranges": [{"first": b.serial(first), "last": b.serial(last)}],
                                   "lot": self.lot(lot_no, last - first + 1, **lot)})
        assert r.status_code == 201, r.json
        return r.json["lot"]

    def void(self, b: Batch, n: int, kind: str, reason: str = "label torn off") -> None:
        r = self.client.post(f"{API}/voids", headers=self.producer.headers,
                             json={"ranges": [{"first": b.serial(n)}], "kind": kind, "reason": reason})
        assert r.status_code == 200, r.json

    def recall(self, lot_id: int, reason: str = "pesticide residue above the limit") -> None:
        r = self.client.post(f"{API}/lots/{lot_id}/recall", headers=self.producer.headers, json={"reason": reason})
        assert r.status_code == 200, r.json

    # -- consumer checks -----------------------------------------------------------------------

    def check(self, code: str, where: tuple[float, float] | None = None) -> dict:
        r = self.client.get(f"/v/{code}", headers=JSON)
        doc = r.json                # every verdict answers its document at the top level
        assert "scan" in doc, (r.status_code, doc)
        if where is not None:
            s = self.client.post(f"/v/{code}/location", json={"token": doc["scan"]["token"], "lat": where[0],
                                                              "lon": where[1]})
            assert s.status_code == 200, s.json
        return doc

    # -- findings ------------------------------------------------------------------------------

    def finding(self, codes: list[str], *, by=None, client_id: str = "pad-7/0001",
                violations=("forged_or_copied_label",),
                lat: float = 23.1302, lon: float = 113.2611, adcode: str = "440104",
                observed_at: dt.datetime | None = None) -> Finding:
        """A finding as the findings service stores one: each code verified on the spot."""
        by = by or self.inspection_gz
        session = self.factory.session
        session.commit()   # end any read transaction older than the requests' writes (SQLite snapshots)
        rows = []
        for i, code in enumerate(codes):
            c = check_code(session, self.keyring, code)
            batch = c.mark.batch if c.mark is not None else None
            rows.append(FindingCode(position=i, code=c.code or code, verdict=c.verdict.value, detail=c.detail,
                                    series=c.serial.series if c.serial else None,
                                    seq=c.serial.seq if c.serial else None,
                                    batch_id=batch.id if batch is not None else None,
                                    producer_id=batch.producer_id if batch is not None else None))
        finding = Finding(organisation_id=by.org.id, filed_by_id=by.principal.user_id, client_id=client_id,
                          observed_at=observed_at or dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2),
                          lat=lat, lon=lon, adcode=adcode, premises_name="天河路食品店",
                          premises_kind=PremisesKind.retail, premises_address="广州市越秀区某路1号",
                          gi_id=self.gi.id, producer_id=self.producer.org.id, violations=list(violations),
                          notes="标签二维码与批次不符", codes=rows,
                          photos=[FindingPhoto(key="findings/1/a.jpg", sha256="ab" * 32, original_sha256="cd" * 32,
                                               bytes=12345, width=800, height=600)])
        session.add(finding)
        session.commit()
        return finding


@dataclass
class Scenario:
    """What the full scenario made, for the tests to look for."""

    world: EPCISWorld
    b1: Batch          # 20 marks, no GTIN: #20 spoiled, #1-10 on lot L-1 (recalled), #11 voided, #12 stolen, #13 lost
    b2: Batch          # 10 marks with a GTIN: #1-5 on lot L-2
    lot1: dict
    lot2: dict
    finding: Finding


def build_scenario(factory, client, app) -> Scenario:
    w = EPCISWorld(factory, client, app)
    b1 = w.batch(20, spoiled=(20,))
    lot1 = w.activate(b1, 1, 10, "L-1")
    w.void(b1, 11, "voided")
    w.void(b1, 12, "stolen", reason="carton stolen from the warehouse")
    w.void(b1, 13, "lost", reason="roll lost in transport")
    b2 = w.batch(10, gtin=GTIN)
    lot2 = w.activate(b2, 1, 5, "L-2", test_report_no="R-2026-002")
    w.check(b2.code(1), where=GZ_POINT)                                   # genuine, shared in Guangzhou
    w.check(b2.code(2))                                                   # genuine, no location
    inside = factory.inside_point(w.gi)
    w.check(b1.code(11), where=(inside.y, inside.x))                      # voided, shared in 谯城区
    w.check(forged(b2.code(3)))                                           # a forgery: names no real mark
    w.recall(lot1["id"])
    w.check(b1.code(1))                                                   # recalled
    finding = w.finding([b2.code(3), forged(b2.code(4))])
    return Scenario(w, b1, b2, lot1, lot2, finding)


@pytest.fixture
def scenario(factory, client, app, reused_world) -> Scenario:
    """The full scenario (made once per test process and database, then restored for each test)."""
    def rebind(made: Scenario) -> None:
        made.world = copy.copy(made.world)
        made.world.rebind(factory, client, app=app)

    return reused_world("epcis", lambda: build_scenario(factory, client, app), rebind)


def export(client, actor, expect: int = 200, **params):
    r = client.get(EXPORT, headers=actor.headers if actor is not None else {}, query_string=params)
    assert r.status_code == expect, r.get_data(as_text=True)[:500]
    return r


def events_of(doc: dict) -> list[dict]:
    return doc["epcisBody"]["eventList"]


def by_ledger_kind(doc: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in events_of(doc):
        if "gi:ledgerEvent" in e:
            out.setdefault(e["gi:ledgerEvent"], []).append(e)
    return out


def checks_of(doc: dict) -> list[dict]:
    return [e for e in events_of(doc) if e.get("gi:checkedBy") == "consumer"]


def findings_of(doc: dict) -> list[dict]:
    return [e for e in events_of(doc) if "gi:findingId" in e]

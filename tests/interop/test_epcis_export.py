"""EPCIS 2.0 export: what each record becomes, big ranges, paging — every document checked against the schema."""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from gi_service.models import Finding, LedgerEvent, Scan
from gi_service.services import epcis

from .conftest import (GTIN, assert_valid, by_ledger_kind, checks_of, dl, events_of, export, findings_of,
                       urn)


def doc_of(r) -> dict:
    return json.loads(r.get_data(as_text=True))


def fresh(session):
    """End the test session's read transaction so it sees what the requests wrote."""
    session.commit()
    return session


def test_the_whole_scenario_exports_as_one_valid_document(scenario, client, validator):
    """Does the GI authority's export of everything validate, as JSON-LD with the official context and ours?"""
    r = export(client, scenario.world.authority, limit=1000)
    assert r.mimetype == "application/ld+json"
    assert r.headers["GS1-EPCIS-Version"] == "2.0.0" and r.headers["GS1-CBV-Version"] == "2.0.0"
    assert "Link" not in r.headers
    doc = doc_of(r)
    assert_valid(validator, doc)
    assert doc["@context"] == ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
                               {"gi": "urn:gi-service:epcis:"}]
    assert (doc["type"], doc["schemaVersion"]) == ("EPCISDocument", "2.0")
    assert doc["creationDate"].endswith("Z") and "gi:nextPageToken" not in doc
    events = events_of(doc)
    assert len(by_ledger_kind(doc)) == 8 and len(checks_of(doc)) == 4 and len(findings_of(doc)) == 1
    for e in events:
        assert e["type"] == "ObjectEvent" and e["eventTimeZoneOffset"] == "+08:00"
        assert e["eventTime"].endswith("Z") and e["recordTime"].endswith("Z")
    # Listed in the order the service recorded them.
    assert [e["recordTime"] for e in events] == sorted(e["recordTime"] for e in events)
    ids = [e["eventID"] for e in events]
    assert len(set(ids)) == len(ids) and all(i.startswith("urn:uuid:") for i in ids)
    # A re-export names the same events with the same ids (receivers de-duplicate on them).
    assert [e["eventID"] for e in events_of(doc_of(export(client, scenario.world.authority, limit=1000)))] == ids


def test_ledger_events_map_to_commissioning_shipping_and_decommissioning(scenario, client, session, validator):
    """Does each ledger step become the CBV event the standard expects, naming exactly its marks?"""
    w, b1, b2 = scenario.world, scenario.b1, scenario.b2
    doc = doc_of(export(client, w.authority, kinds="ledger", limit=1000))
    assert_valid(validator, doc)
    kinds = by_ledger_kind(doc)
    # Quota, requests, approvals and print orders concern no physical label.
    assert set(kinds) == {"printed", "spoiled", "issued", "activated", "voided", "stolen", "lost", "recalled"}
    assert len(events_of(doc)) == 11

    def one(kind, batch):
        [event] = [e for e in kinds[kind] if e["gi:batchId"] == batch.id]
        return event

    def marks(batch, first, last):
        return [(urn if batch is b1 else dl)(batch.serial(n)) for n in range(first, last + 1)]

    printed = one("printed", b1)
    assert (printed["action"], printed["bizStep"], printed["disposition"]) == ("ADD", "commissioning", "inactive")
    assert printed["epcList"] == marks(b1, 1, 20) and "ilmd" not in printed
    assert printed["bizTransactionList"] == [{"type": "prodorder",
                                              "bizTransaction": f"urn:gi-service:print-order:{b1.id}"}]
    spoiled = one("spoiled", b1)
    assert (spoiled["action"], spoiled["bizStep"], spoiled["disposition"]) == ("DELETE", "decommissioning", "damaged")
    assert spoiled["epcList"] == marks(b1, 20, 20)
    issued = one("issued", b1)
    assert (issued["action"], issued["bizStep"], issued["disposition"]) == ("OBSERVE", "shipping", "in_transit")
    assert issued["epcList"] == marks(b1, 1, 19)
    printer_id = f"urn:gi-service:uscc:{w.printer.org.uscc}"
    producer_id = f"urn:gi-service:uscc:{w.producer.org.uscc}"
    assert issued["sourceList"] == [{"type": "possessing_party", "source": printer_id}]
    assert issued["destinationList"] == [{"type": "possessing_party", "destination": producer_id},
                                         {"type": "owning_party", "destination": producer_id}]
    activated = one("activated", b1)
    assert (activated["action"], activated["bizStep"], activated["disposition"]) == ("ADD", "commissioning", "active")
    assert activated["epcList"] == marks(b1, 1, 10)
    assert activated["ilmd"] == {"cbvmda:lotNumber": "L-1", "cbvmda:countryOfOrigin": "CN",
                                 "gi:productionDate": "2026-04-10", "gi:testReportNumber": "R-2026-001",
                                 "gi:testingBody": w.testing_body}
    for kind, n, disposition, reason in (("voided", 11, "destroyed", "label torn off"),
                                         ("stolen", 12, "stolen", "carton stolen from the warehouse"),
                                         ("lost", 13, "unknown", "roll lost in transport")):
        e = one(kind, b1)
        assert (e["action"], e["bizStep"], e["disposition"]) == ("DELETE", "decommissioning", disposition), kind
        assert e["epcList"] == marks(b1, n, n) and e["gi:reason"] == reason and "ilmd" not in e
    recalled = one("recalled", b1)
    assert (recalled["action"], recalled["disposition"]) == ("OBSERVE", "recalled") and "bizStep" not in recalled
    assert recalled["persistentDisposition"] == {"set": ["recalled"]}
    assert recalled["epcList"] == marks(b1, 1, 10) and recalled["gi:lotNumber"] == "L-1"
    # The batch with a GTIN is named by GS1 Digital Link URIs; its lot carries its own test report.
    assert one("printed", b2)["epcList"] == marks(b2, 1, 10)
    assert one("activated", b2)["epcList"] == marks(b2, 1, 5)
    assert one("activated", b2)["ilmd"]["cbvmda:lotNumber"] == "L-2"
    assert one("activated", b2)["ilmd"]["gi:testReportNumber"] == "R-2026-002"
    # Each event points back into the tamper-evident chain.
    chain = {e.seq: e for e in fresh(session).scalars(select(LedgerEvent))}
    for e in events_of(doc):
        row = chain[e["gi:ledgerSeq"]]
        assert (row.kind, row.hash) == (e["gi:ledgerEvent"], e["gi:ledgerHash"])
        assert e["gi:markCount"] == row.count == sum(r["gi:count"] for r in e["gi:serialRanges"])
        assert e["gi:gi"] == {"gi:id": w.gi.id, "gi:name": w.gi.name_zh} and e["gi:producer"] == producer_id


def test_consumer_checks_map_to_inspecting_without_the_consumer(scenario, client, session, validator):
    """Is a check an OBSERVE/inspecting event with its verdict, a place only if shared, and no IP hash?"""
    w, b1, b2 = scenario.world, scenario.b1, scenario.b2
    r = export(client, w.authority, kinds="checks")
    doc = doc_of(r)
    assert_valid(validator, doc)
    checks = checks_of(doc)
    assert len(checks) == len(events_of(doc)) == 4       # the forged code names no mark: not an event
    gz, plain, voided, recalled = checks
    for e in checks:
        assert (e["action"], e["bizStep"]) == ("OBSERVE", "inspecting") and len(e["epcList"]) == 1
    assert gz["epcList"] == [dl(b2.serial(1))] and gz["gi:verdict"] == "genuine"
    assert gz["disposition"] == "conformant"
    assert gz["readPoint"] == {"id": "geo:23.13,113.26;u=800"} and gz["gi:adcode"] == "440104"
    assert plain["epcList"] == [dl(b2.serial(2))] and "readPoint" not in plain and "gi:adcode" not in plain
    assert voided["epcList"] == [urn(b1.serial(11))] and voided["disposition"] == "non_conformant"
    assert (voided["gi:verdict"], voided["gi:adcode"]) == ("voided", "341602")
    assert voided["readPoint"]["id"].startswith("geo:33.")
    assert recalled["epcList"] == [urn(b1.serial(1))] and recalled["gi:verdict"] == "recalled"
    # Nothing about the consumer's device or connection leaves the service.
    hashes = [h for h in fresh(session).scalars(select(Scan.ip_hash)) if h]
    assert len(hashes) == 5
    text = r.get_data(as_text=True)
    assert not any(h in text for h in hashes)
    keys = {k.lower() for e in checks for k in e}
    assert not any("ip" in k.split(":")[-1] or "agent" in k or "token" in k for k in keys), keys


def test_a_finding_maps_to_inspecting_at_its_point(scenario, client, validator):
    """Is a finding OBSERVE/inspecting at geo:lat,lon, listing only verified marks as EPCs, with its evidence?"""
    w, b2, f = scenario.world, scenario.b2, scenario.finding
    doc = doc_of(export(client, w.inspection_gz, kinds="findings"))
    assert_valid(validator, doc)
    [e] = events_of(doc)
    assert (e["action"], e["bizStep"], e["disposition"]) == ("OBSERVE", "inspecting", "non_conformant")
    assert e["readPoint"] == {"id": "geo:23.1302,113.2611"}
    assert e["epcList"] == [dl(b2.serial(3))]
    assert e["gi:codesChecked"] == [
        {"gi:verdict": "genuine", "gi:epc": dl(b2.serial(3))},
        {"gi:verdict": "unknown", "gi:verdictDetail": "bad_mac", "gi:claimedSerial": b2.serial(4)}]
    assert e["gi:violations"] == ["forged_or_copied_label"] and e["gi:adcode"] == "440104"
    assert e["gi:premises"] == {"gi:name": "天河路食品店", "gi:kind": "retail", "gi:address": "广州市越秀区某路1号"}
    assert e["gi:photos"] == [{"gi:sha256": "ab" * 32, "gi:width": 800, "gi:height": 600}]
    assert e["gi:inspectionUnit"] == f"urn:gi-service:org:{w.inspection_gz.org.id}"
    assert e["gi:producer"] == f"urn:gi-service:uscc:{w.producer.org.uscc}"
    assert e["eventTime"] == epcis.epcis_time(f.observed_at) < e["recordTime"]
    # The verification codes themselves (what makes a printed copy verify) are never exported.
    assert b2.code(3) not in json.dumps(doc)
    clean = w.finding([b2.code(5)], client_id="pad-7/0002", violations=())
    doc = doc_of(export(client, w.inspection_gz, kinds="findings"))
    assert_valid(validator, doc)
    [_, e2] = events_of(doc)
    assert e2["gi:findingId"] == clean.id and e2["disposition"] == "conformant" and e2["gi:violations"] == []


def test_a_million_mark_batch_is_counted_not_listed(factory, client, app, validator):
    """Does a 1,000,000-mark print run export as class-level quantities, in a small document?"""
    from .conftest import EPCISWorld

    w = EPCISWorld(factory, client, app)
    plain = w.batch(1_000_000, pack_size_g=1, spoiled=(500_000,))
    gtin = w.batch(1_000_000, pack_size_g=1, gtin=GTIN)
    r = export(client, w.authority, kinds="ledger")
    assert len(r.get_data()) < 20_000
    doc = doc_of(r)
    assert_valid(validator, doc)
    kinds = by_ledger_kind(doc)
    printed = {e["gi:batchId"]: e for e in kinds["printed"]}
    issued = {e["gi:batchId"]: e for e in kinds["issued"]}
    for e in (*printed.values(), *issued.values()):
        assert "epcList" not in e
    assert printed[plain.id]["quantityList"] == [
        {"epcClass": f"urn:gi-service:mark-range:{plain.serial(1)}-{plain.serial(1_000_000)}", "quantity": 1_000_000}]
    assert issued[plain.id]["quantityList"] == [
        {"epcClass": f"urn:gi-service:mark-range:{plain.serial(1)}-{plain.serial(499_999)}", "quantity": 499_999},
        {"epcClass": f"urn:gi-service:mark-range:{plain.serial(500_001)}-{plain.serial(1_000_000)}",
         "quantity": 500_000}]
    assert issued[plain.id]["gi:serialRanges"] == [
        {"gi:first": plain.serial(1), "gi:last": plain.serial(499_999), "gi:count": 499_999},
        {"gi:first": plain.serial(500_001), "gi:last": plain.serial(1_000_000), "gi:count": 500_000}]
    # With a GTIN the class is the GTIN itself (GS1 Digital Link), with the count.
    assert printed[gtin.id]["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{GTIN}", "quantity": 1_000_000}]
    [spoiled] = kinds["spoiled"]
    assert spoiled["epcList"] == [urn(plain.serial(500_000))]


def test_the_epc_list_threshold(factory, client, app, validator):
    """Are up to EPC_LIST_MAX marks listed one by one, and one more counted instead?"""
    from .conftest import EPCISWorld

    w = EPCISWorld(factory, client, app)
    at = w.batch(epcis.EPC_LIST_MAX, pack_size_g=1)
    over = w.batch(epcis.EPC_LIST_MAX + 1, pack_size_g=1)
    doc = doc_of(export(client, w.authority, kinds="ledger"))
    assert_valid(validator, doc)
    printed = {e["gi:batchId"]: e for e in by_ledger_kind(doc)["printed"]}
    assert printed[at.id]["epcList"] == [urn(at.serial(n)) for n in range(1, epcis.EPC_LIST_MAX + 1)]
    assert "quantityList" not in printed[at.id]
    assert "epcList" not in printed[over.id]
    assert printed[over.id]["quantityList"] == [{"epcClass": f"urn:gi-service:mark-range:{over.serial(1)}-"
                                                             f"{over.serial(epcis.EPC_LIST_MAX + 1)}",
                                                 "quantity": epcis.EPC_LIST_MAX + 1}]


def _follow(client, actor, validator, **params) -> tuple[list[dict], int]:
    """Every event over all pages, following Link rel=next; each page checked against the schema."""
    events, pages = [], 0
    r = export(client, actor, **params)
    while True:
        pages += 1
        doc = doc_of(r)
        assert_valid(validator, doc)
        events.extend(events_of(doc))
        link = r.headers.get("Link")
        if link is None:
            assert "gi:nextPageToken" not in doc
            return events, pages
        assert link.startswith("<http://localhost/api/v1/epcis/events?") and link.endswith('>; rel="next"')
        url = link[1:link.index(">")]
        token = parse_qs(urlsplit(url).query)["nextPageToken"][0]
        assert doc["gi:nextPageToken"] == token
        assert pages < 100
        r = client.get(url, headers=actor.headers)
        assert r.status_code == 200, r.get_data(as_text=True)


def test_pages_cover_everything_once(scenario, client, validator):
    """Do small pages, followed by their Link, give exactly the events of one big page, in the same order?"""
    w = scenario.world
    whole = events_of(doc_of(export(client, w.authority, limit=1000)))
    paged, pages = _follow(client, w.authority, validator, limit=3)
    assert [e["eventID"] for e in paged] == [e["eventID"] for e in whole]
    assert pages == -(-len(whole) // 3)
    # The filters ride along in the next link.
    ledger_only, _ = _follow(client, w.authority, validator, limit=4, kinds="ledger")
    assert [e["eventID"] for e in ledger_only] == [e["eventID"] for e in whole if "gi:ledgerEvent" in e]


def test_a_page_stops_early_at_its_epc_budget(scenario, client, validator, monkeypatch):
    """When a page would list too many EPCs, does it end early and the next page carry on?"""
    w = scenario.world
    whole = events_of(doc_of(export(client, w.authority, limit=1000)))
    monkeypatch.setattr(epcis, "PAGE_EPC_BUDGET", 25)
    first = doc_of(export(client, w.authority, limit=1000))
    assert 0 < len(events_of(first)) < len(whole)
    assert sum(len(e.get("epcList", [])) for e in events_of(first)) <= 25
    paged, _ = _follow(client, w.authority, validator, limit=1000)
    assert [e["eventID"] for e in paged] == [e["eventID"] for e in whole]


def test_sources_with_equal_times_are_paged_without_loss(scenario, client, session, validator):
    """With checks and a finding recorded at the very same instant as a ledger event, does paging one event at
    a time still give each event exactly once?"""
    w = scenario.world
    fresh(session)
    instant = session.scalar(select(LedgerEvent.at).where(LedgerEvent.kind == "issued").order_by(LedgerEvent.seq))
    session.execute(update(Scan).values(at=instant))
    session.execute(update(Finding).values(received_at=instant))
    session.commit()
    whole = events_of(doc_of(export(client, w.authority, limit=1000)))
    paged, pages = _follow(client, w.authority, validator, limit=1)
    assert pages == len(whole) == 16
    assert sorted(e["eventID"] for e in paged) == sorted(e["eventID"] for e in whole)
    assert len({e["eventID"] for e in paged}) == len(paged)
    assert [e["eventID"] for e in paged] == [e["eventID"] for e in whole]


def test_the_time_window(scenario, client, validator):
    """Do `from` (inclusive) and `to` (exclusive) select by event time, in UTC or China time, with '+' mangled?"""
    w = scenario.world
    whole = events_of(doc_of(export(client, w.authority, limit=1000)))
    times = sorted({e["eventTime"] for e in whole})
    cut = times[len(times) // 2]
    after = events_of(doc_of(export(client, w.authority, limit=1000, **{"from": cut})))
    assert after and all(e["eventTime"] >= cut for e in after)
    assert len(after) == sum(1 for e in whole if e["eventTime"] >= cut)
    before = events_of(doc_of(export(client, w.authority, limit=1000, to=cut)))
    assert {e["eventID"] for e in before} | {e["eventID"] for e in after} == {e["eventID"] for e in whole}
    assert not {e["eventID"] for e in before} & {e["eventID"] for e in after}
    # The same instant in China Standard Time: with its offset (a '+' that arrived as a space), or without one.
    utc = dt.datetime.fromisoformat(cut.replace("Z", "+00:00"))
    local = utc.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None).isoformat(timespec="milliseconds")
    for value in (local, local + " 08:00", local + "+08:00"):
        same = events_of(doc_of(export(client, w.authority, limit=1000, **{"from": value})))
        assert [e["eventID"] for e in same] == [e["eventID"] for e in after], value
    assert events_of(doc_of(export(client, w.authority, to="2020-01-01"))) == []

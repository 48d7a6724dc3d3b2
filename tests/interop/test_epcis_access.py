"""Who may export which EPCIS events, and how bad queries are refused (each refusal with its status and code)."""
from __future__ import annotations

import json

from gi_service.services import epcis

from .conftest import EXPORT, assert_valid, by_ledger_kind, checks_of, dl, events_of, export, findings_of, urn


def doc_of(r) -> dict:
    return json.loads(r.get_data(as_text=True))


def refused(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.get_data(as_text=True)[:300]
    body = r.json
    assert body["error"] == code and body["message"] and r.mimetype == "application/json"
    return body


def ids(doc: dict) -> list[str]:
    return [e["eventID"] for e in events_of(doc)]


def test_anonymous_callers_are_refused(scenario, client):
    """Is an export without a token, or with a bad one, refused with 401 and a Bearer challenge?"""
    r = client.get(EXPORT)
    refused(r, 401, "unauthenticated")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    refused(client.get(EXPORT, headers={"Authorization": "Bearer not-a-token"}), 401, "invalid_token")


def test_authorities_see_their_gis_and_jurisdiction(scenario, client, validator):
    """Does the GI's authority (and the national one) see everything, and another city's authority nothing?"""
    w = scenario.world
    mine = doc_of(export(client, w.authority, limit=1000))
    assert len(events_of(mine)) == 16
    national = doc_of(export(client, w.national, limit=1000))
    assert_valid(validator, national)
    assert ids(national) == ids(mine)
    elsewhere = doc_of(export(client, w.other_authority, limit=1000))
    assert_valid(validator, elsewhere)
    assert events_of(elsewhere) == []


def test_a_producer_sees_its_own_marks_only(scenario, client, validator):
    """Does a producer get the ledger and checks of its own marks, with the county but never the consumer's point,
    and no findings, other producers' events, or another producer's filter?"""
    w, b1, b2 = scenario.world, scenario.b1, scenario.b2
    doc = doc_of(export(client, w.producer, limit=1000))
    assert_valid(validator, doc)
    assert len(by_ledger_kind(doc)) == 8 and len(checks_of(doc)) == 4 and findings_of(doc) == []
    gz, plain, voided, _ = checks_of(doc)
    assert gz["readPoint"] == {"id": "urn:gi-service:adcode:440104"} and gz["epcList"] == [dl(b2.serial(1))]
    assert voided["readPoint"] == {"id": "urn:gi-service:adcode:341602"} and voided["epcList"] == [urn(b1.serial(11))]
    assert "readPoint" not in plain
    assert "geo:" not in json.dumps(doc)
    body = refused(export(client, w.producer, 403, kinds="findings"), 403, "kind_not_allowed")
    assert body["details"] == {"refused": ["findings"], "allowed": ["ledger", "checks"]}
    refused(export(client, w.producer, 403, producer_id=w.other_producer.org.id), 403, "not_your_producer")
    assert len(events_of(doc_of(export(client, w.producer, producer_id=w.producer.org.id, limit=1000)))) == 15
    other = doc_of(export(client, w.other_producer, limit=1000))
    assert_valid(validator, other)
    assert events_of(other) == []


def test_a_printer_sees_its_print_orders_only(scenario, client, validator):
    """Does a printer get the printing, spoiling and issuing of its own orders — not activations, voids, recalls or
    checks — and another printer nothing?"""
    w = scenario.world
    doc = doc_of(export(client, w.printer, limit=1000))
    assert_valid(validator, doc)
    kinds = by_ledger_kind(doc)
    assert {k: len(v) for k, v in kinds.items()} == {"printed": 2, "spoiled": 1, "issued": 2}
    assert len(events_of(doc)) == 5
    assert "ilmd" not in json.dumps(doc)
    body = refused(export(client, w.printer, 403, kinds="ledger,checks"), 403, "kind_not_allowed")
    assert body["details"]["refused"] == ["checks"]
    refused(export(client, w.printer, 403, kinds="findings"), 403, "kind_not_allowed")
    assert events_of(doc_of(export(client, w.other_printer, limit=1000))) == []


def test_inspection_units_see_checks_and_findings_in_their_jurisdiction(scenario, client, validator):
    """Does an inspection unit get the checks located and the findings made in its area (no ledger), and only
    those?"""
    w, b1, b2 = scenario.world, scenario.b1, scenario.b2
    gz = doc_of(export(client, w.inspection_gz, limit=1000))
    assert_valid(validator, gz)
    [check] = checks_of(gz)
    assert check["epcList"] == [dl(b2.serial(1))] and check["readPoint"]["id"].startswith("geo:23.13,113.26")
    [finding] = findings_of(gz)
    assert finding["gi:findingId"] == scenario.finding.id and len(events_of(gz)) == 2
    refused(export(client, w.inspection_gz, 403, kinds="ledger"), 403, "kind_not_allowed")
    bz = doc_of(export(client, w.inspection_bz, limit=1000))
    assert_valid(validator, bz)
    [check] = checks_of(bz)
    assert check["epcList"] == [urn(b1.serial(11))] and len(events_of(bz)) == 1
    # Its own finding is always its own, wherever it was filed.
    w.finding([b2.code(5)], by=w.inspection_bz, client_id="bz/1", violations=())
    bz = doc_of(export(client, w.inspection_bz, kinds="findings"))
    assert [e["gi:inspectionUnit"] for e in events_of(bz)] == [f"urn:gi-service:org:{w.inspection_bz.org.id}"]


def test_filters_by_gi_and_producer(scenario, client, factory):
    """Do gi_id and producer_id narrow every source, and an unknown id give an empty, valid page?"""
    w = scenario.world
    everything = doc_of(export(client, w.authority, limit=1000))
    assert ids(doc_of(export(client, w.authority, limit=1000, gi_id=w.gi.id))) == ids(everything)
    assert ids(doc_of(export(client, w.authority, limit=1000, producer_id=w.producer.org.id))) == ids(everything)
    assert events_of(doc_of(export(client, w.authority, gi_id=w.gi.id + 1000))) == []
    assert events_of(doc_of(export(client, w.authority, producer_id=w.other_producer.org.id))) == []
    other_gi = factory.gi(w.authority, name_zh="亳菊")
    assert events_of(doc_of(export(client, w.authority, gi_id=other_gi.id))) == []


def test_bad_queries_are_refused(scenario, client):
    """Are unknown parameters, kinds, limits, times, an empty window and bad page tokens each refused clearly?"""
    w = scenario.world
    a = w.authority
    refused(export(client, a, 400, since="2026-01-01"), 400, "unknown_parameter")
    body = refused(export(client, a, 422, kinds="ledger,shipments"), 422, "invalid_kind")
    assert "shipments" in body["message"]
    refused(export(client, a, 422, limit=0), 422, "validation_failed")
    refused(export(client, a, 422, limit=epcis.MAX_LIMIT + 1), 422, "validation_failed")
    refused(export(client, a, 422, **{"from": "yesterday"}), 422, "validation_failed")
    body = refused(export(client, a, 422, **{"from": "2026-05-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}), 422,
                   "validation_failed")
    assert body["details"][0]["field"] == "to"
    refused(export(client, a, 422, gi_id=0), 422, "validation_failed")
    refused(export(client, a, 400, nextPageToken="not a token"), 400, "invalid_page_token")
    refused(export(client, a, 400, nextPageToken="eyJ2IjoxfQ"), 400, "invalid_page_token")
    token = doc_of(export(client, a, limit=2))["gi:nextPageToken"]
    assert export(client, a, limit=5, nextPageToken=token).status_code == 200     # the page size may change
    refused(export(client, a, 400, limit=2, kinds="ledger", nextPageToken=token), 400, "page_token_mismatch")
    refused(export(client, a, 400, limit=2, gi_id=w.gi.id, nextPageToken=token), 400, "page_token_mismatch")


def test_the_endpoint_is_documented(client):
    """Does /openapi.json list the export with its access rule, its JSON-LD answer and its parameters?"""
    spec = client.get("/openapi.json").json
    op = spec["paths"]["/api/v1/epcis/events"]["get"]
    assert "application/ld+json" in op["responses"]["200"]["content"]
    assert "producers: their own marks" in op["x-access"]
    names = {p["name"] for p in op["parameters"]}
    assert {"from", "to", "gi_id", "producer_id", "kinds", "limit", "nextPageToken"} <= names

"""The special-mark lifecycle (issue §2): request → approval → print order → printed/spoiled → issued →
activated on a tested lot → voided, lost, stolen or recalled — each step by the right role only, each
refusal a clear 4xx with a stable code and nothing written, and serial ranges split exactly (and
cheaply: rows grow with operations, never with marks).
"""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gi_service.codes import format_serial, parse_serial
from gi_service.models import (
    LedgerEvent,
    Lot,
    MarkBatch,
    MarkRange,
    MarkRequest,
    QuotaEntry,
)
from tests.factories import LedgerWorld

API = "/api/v1"
YEAR = 2026


@pytest.fixture
def w(ledger_world) -> LedgerWorld:
    return ledger_world(year=YEAR)


# --- helpers ---------------------------------------------------------------------------------

def refused(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.json)
    assert r.json["error"] == code, r.json
    return r.json


def serial(batch: dict, n: int) -> str:
    """The n-th serial (1-based) of a batch."""
    first = parse_serial(batch["first_serial"])
    return format_serial(first.prefix, first.year, first.seq + n - 1)


def span(batch: dict, a: int, b: int | None = None) -> dict:
    return {"first": serial(batch, a), "last": serial(batch, a if b is None else b)}


def get_batch(w: LedgerWorld, batch_id: int) -> dict:
    r = w.client.get(f"{API}/batches/{batch_id}", headers=w.authority.headers)
    assert r.status_code == 200, r.json
    return r.json


def ranges_of(w: LedgerWorld, batch: dict) -> list[tuple[int, int, str]]:
    """A batch's ranges as (first, last, state) with positions 1-based inside the batch."""
    data = get_batch(w, batch["id"])
    base = parse_serial(data["first_serial"]).seq - 1
    out = []
    for r in data["ranges"]:
        a, b = parse_serial(r["first"]).seq - base, parse_serial(r["last"]).seq - base
        assert r["count"] == b - a + 1
        out.append((a, b, r["state"]))
    return out


def mark(w: LedgerWorld, s: str, actor=None) -> dict:
    r = w.client.get(f"{API}/marks/{s}", headers=(actor or w.producer).headers)
    assert r.status_code == 200, r.json
    return r.json


def ordered_batch(w: LedgerWorld, quantity: int = 1000, pack_size_g: int = 250) -> dict:
    return w.approve(w.request(quantity, pack_size_g)["id"])


def printed_batch(w: LedgerWorld, quantity: int = 1000, spoiled=()) -> dict:
    batch = ordered_batch(w, quantity)
    r = w.client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers,
                      json={"spoiled": list(spoiled)})
    assert r.status_code == 200, r.json
    return r.json


def activate(w: LedgerWorld, ranges: list[dict], actor=None, **lot):
    return w.client.post(f"{API}/activations", headers=(actor or w.producer).headers,
                         json={"ranges": ranges, "lot": w.lot(**lot)})


def void(w: LedgerWorld, ranges: list[dict], kind: str = "voided", actor=None, reason: str = "damaged"):
    return w.client.post(f"{API}/voids", headers=(actor or w.producer).headers,
                         json={"ranges": ranges, "kind": kind, "reason": reason})


def db_counts(session) -> dict[str, int]:
    counts = {name: session.scalar(select(func.count()).select_from(model))
              for name, model in (("requests", MarkRequest), ("batches", MarkBatch), ("ranges", MarkRange),
                                  ("lots", Lot), ("events", LedgerEvent), ("entries", QuotaEntry))}
    session.commit()
    return counts


# --- requests --------------------------------------------------------------------------------

def test_only_an_authorized_producer_requests_marks(w, factory, client, session):
    """Is a request refused to authorities, printers (403) and unauthorized producers (409), and accepted otherwise?"""
    body = {"gi_id": w.gi.id, "pack_size_g": 250, "quantity": 1000, "year": YEAR}
    before = db_counts(session)
    refused(client.post(f"{API}/mark-requests", headers=w.authority.headers, json=body), 403, "wrong_role")
    refused(client.post(f"{API}/mark-requests", headers=w.printer.headers, json=body), 403, "wrong_role")
    stranger = factory.producer("341602")
    r = refused(client.post(f"{API}/mark-requests", headers=stranger.headers, json=body), 409, "not_authorized")
    assert r["details"] == {"authorization": "none"}
    applicant = factory.producer("341602")
    factory.authorization(applicant, w.gi, w.authority, approve=False)
    r = refused(client.post(f"{API}/mark-requests", headers=applicant.headers, json=body), 409, "not_authorized")
    assert r["details"] == {"authorization": "pending"}
    assert db_counts(session) == before

    r = client.post(f"{API}/mark-requests", headers=w.producer.headers, json=body)
    assert r.status_code == 201, r.json
    assert (r.json["status"], r.json["producer_id"], r.json["quantity"], r.json["quota_kg"], r.json["year"]) == \
        ("requested", w.producer.org.id, 1000, 250, YEAR)


def test_gtin_check_digit(w, client, session):
    """Is a valid GTIN-13 accepted and normalised to 14 digits, and a wrong check digit refused with 422?"""
    req = w.request(10, gtin="4006381333931")
    assert req["gtin"] == "04006381333931"
    assert w.request(10, gtin="96385074")["gtin"] == "00000096385074"            # GTIN-8
    assert w.request(10, gtin="04006381333931")["gtin"] == "04006381333931"      # already GTIN-14
    before = db_counts(session)
    body = {"gi_id": w.gi.id, "pack_size_g": 250, "quantity": 10, "year": YEAR}
    r = refused(client.post(f"{API}/mark-requests", headers=w.producer.headers, json={**body, "gtin": "4006381333932"}),
                422, "invalid_gtin")
    assert r["details"] == [{"field": "gtin", "problem": "check digit should be 1"}]
    for bad in ("400638133393X", "4006381333"):                                # not digits; 10 digits
        refused(client.post(f"{API}/mark-requests", headers=w.producer.headers, json={**body, "gtin": bad}),
                422, "invalid_gtin")
    assert db_counts(session) == before


# --- approval, refusal, cancellation ---------------------------------------------------------

def test_only_the_gi_authority_approves(w, factory, client, session):
    """Is approval refused to another city's authority (outside_jurisdiction), producers and printers?"""
    req = w.request(1000)
    path = f"{API}/mark-requests/{req['id']}/approve"
    before = db_counts(session)
    far = factory.authority("340100")
    refused(client.post(path, headers=far.headers, json={}), 403, "outside_jurisdiction")
    refused(client.post(f"{API}/mark-requests/{req['id']}/refuse", headers=far.headers, json={"reason": "no"}),
            403, "outside_jurisdiction")
    refused(client.post(path, headers=w.producer.headers, json={}), 403, "wrong_role")
    refused(client.post(path, headers=w.printer.headers, json={}), 403, "wrong_role")
    assert db_counts(session) == before
    r = client.post(path, headers=w.authority.headers, json={"printer_id": w.printer.org.id})
    assert r.status_code == 201, r.json
    assert (r.json["status"], r.json["printer_id"], r.json["quantity"], r.json["request_id"]) == \
        ("ordered", w.printer.org.id, 1000, req["id"])
    assert client.get(f"{API}/mark-requests/{req['id']}", headers=w.producer.headers).json["status"] == "approved"
    assert ranges_of(w, r.json) == [(1, 1000, "allocated")]


def test_approving_twice_is_refused(w, client, session):
    """Does a second approval of the same request answer 409 not_pending, consuming quota once only?"""
    req = w.request(1000)
    w.approve(req["id"])
    before = db_counts(session)
    refused(client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers, json={}),
            409, "not_pending")
    refused(client.post(f"{API}/mark-requests/{req['id']}/refuse", headers=w.authority.headers,
                        json={"reason": "changed my mind"}), 409, "not_pending")
    refused(client.post(f"{API}/mark-requests/{req['id']}/cancel", headers=w.producer.headers,
                        json={"reason": "too late"}), 409, "not_pending")
    assert db_counts(session) == before
    acc = client.get(f"{API}/quota-accounts/{w.account['id']}", headers=w.authority.headers).json
    assert acc["consumed_kg"] == 250


def test_refusal_records_the_reason(w, client):
    """Does refusing a request record its reason, and is a refused request closed to approval?"""
    req = w.request(1000)
    r = client.post(f"{API}/mark-requests/{req['id']}/refuse", headers=w.authority.headers,
                    json={"reason": "2025 usage report not filed"})
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["decision_reason"]) == ("refused", "2025 usage report not filed")
    assert r.json["decided_at"]
    seen = client.get(f"{API}/mark-requests/{req['id']}", headers=w.producer.headers).json
    assert (seen["status"], seen["decision_reason"]) == ("refused", "2025 usage report not filed")
    assert client.post(f"{API}/mark-requests/{req['id']}/refuse", headers=w.authority.headers,
                       json={}).status_code == 422                             # a reason is required
    refused(client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers, json={}),
            409, "not_pending")
    events = client.get(f"{API}/ledger/events", headers=w.authority.headers).json["events"]
    assert [e["kind"] for e in events][-1] == "refused"
    acc = client.get(f"{API}/quota-accounts/{w.account['id']}", headers=w.authority.headers).json
    assert acc["consumed_kg"] == 0


def test_only_the_requesting_producer_cancels(w, factory, client, session):
    """Can the producer withdraw its pending request (and nobody else), after which it cannot be approved?"""
    req = w.request(1000)
    other = factory.producer("341602")
    factory.authorization(other, w.gi, w.authority)
    before = db_counts(session)
    refused(client.post(f"{API}/mark-requests/{req['id']}/cancel", headers=other.headers, json={"reason": "not yours"}),
            403, "not_your_request")
    refused(client.post(f"{API}/mark-requests/{req['id']}/cancel", headers=w.authority.headers,
                        json={"reason": "not yours"}), 403, "wrong_role")
    assert db_counts(session) == before
    r = client.post(f"{API}/mark-requests/{req['id']}/cancel", headers=w.producer.headers,
                    json={"reason": "ordered the wrong pack size"})
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["decision_reason"]) == ("cancelled", "ordered the wrong pack size")
    refused(client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers, json={}),
            409, "not_pending")
    refused(client.post(f"{API}/mark-requests/{req['id']}/cancel", headers=w.producer.headers,
                        json={"reason": "again"}), 409, "not_pending")


# --- print order and printing ----------------------------------------------------------------

def test_print_order_goes_to_a_printer(w, factory, client, session):
    """Is a print order placed only by the GI's authority and only with a printer (else 404 printer_not_found)?"""
    req = w.request(500)
    before = db_counts(session)
    refused(client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers,
                        json={"printer_id": w.producer.org.id}), 404, "printer_not_found")
    assert db_counts(session) == before                                      # still pending, no quota used
    batch = w.approve(req["id"], printer=False)
    assert (batch["status"], batch["printer_id"]) == ("approved", None)
    assert ranges_of(w, batch) == [(1, 500, "allocated")]
    path = f"{API}/batches/{batch['id']}/print-order"
    before = db_counts(session)
    for not_a_printer in (w.producer.org.id, w.authority.org.id, 999_999):
        refused(client.post(path, headers=w.authority.headers, json={"printer_id": not_a_printer}),
                404, "printer_not_found")
    refused(client.post(path, headers=w.producer.headers, json={"printer_id": w.printer.org.id}), 403, "wrong_role")
    refused(client.post(path, headers=factory.authority("340100").headers, json={"printer_id": w.printer.org.id}),
            403, "outside_jurisdiction")
    # Nobody reports printing of a batch without a print order.
    refused(client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers, json={}),
            403, "not_your_order")
    assert db_counts(session) == before
    second = factory.printer()
    r = client.post(path, headers=w.authority.headers, json={"printer_id": second.org.id})
    assert r.status_code == 200 and r.json["status"] == "ordered" and r.json["printer_id"] == second.org.id, r.json
    r = client.post(path, headers=w.authority.headers, json={"printer_id": w.printer.org.id})   # moved
    assert r.status_code == 200 and r.json["printer_id"] == w.printer.org.id, r.json
    refused(client.post(f"{API}/batches/{batch['id']}/printed", headers=second.headers, json={}),
            403, "not_your_order")
    r = client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers, json={})
    assert r.status_code == 200, r.json
    refused(client.post(path, headers=w.authority.headers, json={"printer_id": second.org.id}),
            409, "already_printed")


def test_printing_is_reported_once_by_the_assigned_printer_with_spoils(w, factory, client, session):
    """Does the assigned printer report printing once, spoiled serials ending `spoiled` and the rest `printed`?"""
    batch = ordered_batch(w, 1000)
    path = f"{API}/batches/{batch['id']}/printed"
    other = factory.printer()
    before = db_counts(session)
    refused(client.post(path, headers=other.headers, json={}), 403, "not_your_order")
    refused(client.post(path, headers=w.producer.headers, json={}), 403, "wrong_role")
    assert db_counts(session) == before
    r = client.post(path, headers=w.printer.headers, json={"spoiled": [span(batch, 10, 12)], "note": "paper jam"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "printed" and r.json["printed_at"]
    assert ranges_of(w, batch) == [(1, 9, "printed"), (10, 12, "spoiled"), (13, 1000, "printed")]
    assert mark(w, serial(batch, 11), w.printer)["state"] == "spoiled"
    assert mark(w, serial(batch, 13), w.printer)["state"] == "printed"
    before = db_counts(session)
    refused(client.post(path, headers=w.printer.headers, json={}), 409, "not_ordered")
    refused(client.post(path, headers=w.printer.headers, json={"spoiled": [span(batch, 20)]}), 409, "not_ordered")
    assert db_counts(session) == before
    # Later write-offs of printer stock are their own operation; the spoiled are never issued.
    r = client.post(f"{API}/batches/{batch['id']}/spoiled", headers=w.printer.headers,
                    json={"ranges": [span(batch, 1000)], "reason": "water damage in store"})
    assert r.status_code == 200 and r.json["spoiled"] == 1, r.json
    r = client.post(f"{API}/batches/{batch['id']}/issue", headers=w.printer.headers, json={})
    assert r.status_code == 200 and r.json["issued"] == 996, r.json
    assert ranges_of(w, batch) == [(1, 9, "issued"), (10, 12, "spoiled"), (13, 999, "issued"),
                                   (1000, 1000, "spoiled")]


def test_the_note_given_with_spoiled_serials_is_their_reason(w, client, session):
    """Is the note of a print report that lists spoiled serials stored on the spoiled marks and their ledger
    event (what spoiled them), not on the marks that printed well; and without spoiled serials, on the run?"""
    batch = ordered_batch(w, 100)
    r = client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers,
                    json={"spoiled": [span(batch, 10, 12)], "note": "paper jam"})
    assert r.status_code == 200, r.json
    reasons = {(x["state"], x["count"]): x["reason"] for x in r.json["ranges"]}
    assert reasons == {("printed", 9): None, ("spoiled", 3): "paper jam", ("printed", 88): None}
    assert mark(w, serial(batch, 11), w.printer)["reason"] == "paper jam"
    assert mark(w, serial(batch, 13), w.printer)["reason"] is None
    events = dict(session.execute(select(LedgerEvent.kind, LedgerEvent.reason)
                                  .where(LedgerEvent.batch_id == batch["id"],
                                         LedgerEvent.kind.in_(["printed", "spoiled"]))).all())
    assert events == {"printed": None, "spoiled": "paper jam"}

    clean = ordered_batch(w, 10)
    r = client.post(f"{API}/batches/{clean['id']}/printed", headers=w.printer.headers, json={"note": "first run"})
    assert r.status_code == 200 and [x["reason"] for x in r.json["ranges"]] == ["first run"], r.json
    unexplained = ordered_batch(w, 10)
    r = client.post(f"{API}/batches/{unexplained['id']}/printed", headers=w.printer.headers,
                    json={"spoiled": [span(unexplained, 1)]})
    assert r.status_code == 200 and r.json["ranges"][0]["reason"] == "spoiled in printing", r.json


def test_print_report_with_several_spoiled_ranges(w, client, session):
    """Can a print report list several spoiled ranges (e.g. serial 5, 10-12 and the last one)?"""
    batch = ordered_batch(w, 1000)
    r = client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers,
                    json={"spoiled": [span(batch, 5), span(batch, 10, 12), span(batch, 1000)]})
    assert r.status_code == 200, r.json
    assert ranges_of(w, batch) == [(1, 4, "printed"), (5, 5, "spoiled"), (6, 9, "printed"), (10, 12, "spoiled"),
                                   (13, 999, "printed"), (1000, 1000, "spoiled")]


def test_one_call_with_several_ranges_inside_one_stored_range(w, client, session):
    """Can one issue call hand over two separate ranges that lie inside the same printed range?"""
    batch = printed_batch(w, 1000)
    r = client.post(f"{API}/batches/{batch['id']}/issue", headers=w.printer.headers,
                    json={"ranges": [span(batch, 1, 100), span(batch, 201, 300)]})
    assert r.status_code == 200 and r.json["issued"] == 200, r.json
    assert ranges_of(w, batch) == [(1, 100, "issued"), (101, 200, "printed"), (201, 300, "issued"),
                                   (301, 1000, "printed")]


def test_spoiled_serials_outside_the_batch_are_refused(w, client, session):
    """Is a print report listing serials of another batch (or never allocated) refused, writing nothing?"""
    first = ordered_batch(w, 100)
    second = ordered_batch(w, 100)
    path = f"{API}/batches/{first['id']}/printed"
    before = db_counts(session)
    refused(client.post(path, headers=w.printer.headers, json={"spoiled": [span(second, 1)]}), 422, "not_in_batch")
    refused(client.post(path, headers=w.printer.headers, json={"spoiled": [span(first, 100, 101)]}),
            422, "not_in_batch")
    refused(client.post(path, headers=w.printer.headers, json={"spoiled": [span(second, 500)]}), 422, "not_in_batch")
    assert db_counts(session) == before
    assert get_batch(w, first["id"])["status"] == "ordered"
    assert ranges_of(w, first) == [(1, 100, "allocated")]
    assert ranges_of(w, second) == [(1, 100, "allocated")]


# --- issuing ---------------------------------------------------------------------------------

def test_issuing_is_for_the_printer_or_authority_after_printing(w, factory, client, session):
    """Is issuing refused before printing (409 not_printed) and to producers or strangers, and partial issues add up?"""
    batch = ordered_batch(w, 1000)
    path = f"{API}/batches/{batch['id']}/issue"
    before = db_counts(session)
    refused(client.post(path, headers=w.printer.headers, json={}), 409, "not_printed")
    refused(client.post(path, headers=w.authority.headers, json={}), 409, "not_printed")
    client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers, json={})
    before = db_counts(session)
    refused(client.post(path, headers=w.producer.headers, json={}), 403, "wrong_role")
    refused(client.post(path, headers=factory.printer().headers, json={}), 403, "not_your_order")
    refused(client.post(path, headers=factory.authority("340100").headers, json={}), 403, "not_your_order")
    assert db_counts(session) == before

    r = client.post(path, headers=w.authority.headers, json={"ranges": [span(batch, 1, 300)]})
    assert r.status_code == 200 and r.json["issued"] == 300, r.json
    assert get_batch(w, batch["id"])["status"] == "printed"                  # 700 still at the printer
    refused(client.post(path, headers=w.printer.headers, json={"ranges": [span(batch, 300, 301)]}),
            409, "wrong_state")                                              # 300 is issued already
    r = client.post(path, headers=w.printer.headers, json={})
    assert r.status_code == 200 and r.json["issued"] == 700, r.json
    data = get_batch(w, batch["id"])
    assert data["status"] == "issued" and data["issued_at"]
    assert ranges_of(w, batch) == [(1, 300, "issued"), (301, 1000, "issued")]
    refused(client.post(path, headers=w.printer.headers, json={}), 409, "nothing_to_issue")


def test_marks_are_not_issued_to_a_suspended_producer(w, client, session):
    """Once the producer's authorization is suspended, are its printed marks kept at the printer (409
    not_authorized), and issued again once it is restored?"""
    batch = ordered_batch(w, 100)
    client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers, json={})
    auth_id = client.get(f"{API}/producers/{w.producer.org.id}", headers=w.authority.headers).json[
        "authorizations"][0]["id"]
    r = client.post(f"{API}/authorizations/{auth_id}/transitions", headers=w.authority.headers,
                    json={"to": "suspended", "reason": "forged labels found in Guangzhou"})
    assert r.status_code == 200, r.json
    before = db_counts(session)
    refused(client.post(f"{API}/batches/{batch['id']}/issue", headers=w.printer.headers, json={}), 409,
            "not_authorized")
    assert db_counts(session) == before
    r = client.post(f"{API}/authorizations/{auth_id}/transitions", headers=w.authority.headers,
                    json={"to": "approved", "reason": "measures taken, suspension lifted"})
    assert r.status_code == 200, r.json
    r = client.post(f"{API}/batches/{batch['id']}/issue", headers=w.printer.headers, json={})
    assert r.status_code == 200 and r.json["issued"] == 100, r.json


# --- activation ------------------------------------------------------------------------------

def test_activation_needs_a_passed_test(w, client, session):
    """Is activating on a lot whose test failed refused with 422 lot_test_failed, activating nothing?"""
    batch = w.printed_and_issued(1000)
    before = db_counts(session)
    refused(activate(w, [span(batch, 1, 100)], test_passed=False), 422, "lot_test_failed")
    assert db_counts(session) == before
    assert ranges_of(w, batch) == [(1, 1000, "issued")]
    r = activate(w, [span(batch, 1, 100)])
    assert r.status_code == 201 and r.json["activated"] == 100, r.json
    lot = r.json["lot"]
    assert (lot["lot_no"], lot["quantity"], lot["pack_size_g"], lot["status"]) == ("L-1", 1000, 250, "active")
    m = mark(w, serial(batch, 100))
    assert m["state"] == "activated" and m["lot"]["lot_no"] == "L-1" and m["lot"]["test_report_no"] == "R-2026-001"


def test_activation_needs_the_designated_testing_body(w, client, session):
    """Is a test report from another laboratory (422 wrong_testing_body) or a future production date refused?"""
    batch = w.printed_and_issued(100)
    before = db_counts(session)
    r = refused(activate(w, [span(batch, 1, 10)], testing_body="某某检测有限公司"), 422, "wrong_testing_body")
    assert r["details"] == {"designated": w.testing_body}
    r = refused(activate(w, [span(batch, 1, 10)], production_date="2099-01-01"), 422, "validation_failed")
    assert r["details"] == [{"field": "production_date", "problem": "future"}]
    assert db_counts(session) == before
    assert ranges_of(w, batch) == [(1, 100, "issued")]


def test_activation_only_of_issued_marks(w, client, session):
    """Are marks still at the printer (or spoiled) refused activation with 409 wrong_state?"""
    batch = printed_batch(w, 100)
    before = db_counts(session)
    r = refused(activate(w, [span(batch, 1, 10)]), 409, "wrong_state")
    assert r["details"]["state"] == "printed"
    assert (r["details"]["first"], r["details"]["last"]) == (serial(batch, 1), serial(batch, 10))
    assert db_counts(session) == before
    # Half issued: the range that straddles printer stock is refused whole.
    client.post(f"{API}/batches/{batch['id']}/issue", headers=w.printer.headers, json={"ranges": [span(batch, 1, 50)]})
    before = db_counts(session)
    r = refused(activate(w, [span(batch, 41, 60)]), 409, "wrong_state")
    assert (r["details"]["first"], r["details"]["last"]) == (serial(batch, 51), serial(batch, 60))
    assert db_counts(session) == before
    assert ranges_of(w, batch) == [(1, 50, "issued"), (51, 100, "printed")]


def test_activation_refuses_more_marks_than_packs(w, client, session):
    """Is activating more marks than the lot has packs refused with 422, also when added in two steps?"""
    batch = w.printed_and_issued(1000)
    before = db_counts(session)
    refused(activate(w, [span(batch, 1, 101)], quantity=100), 422, "more_marks_than_packs")
    assert db_counts(session) == before
    assert activate(w, [span(batch, 1, 60)], quantity=100).status_code == 201
    before = db_counts(session)
    refused(activate(w, [span(batch, 61, 101)], quantity=100), 422, "more_marks_than_packs")
    assert db_counts(session) == before
    r = activate(w, [span(batch, 61, 100)], quantity=100)                  # exactly full
    assert r.status_code == 201 and r.json["activated"] == 40, r.json


def test_activation_refuses_a_pack_size_mismatch(w, client, session):
    """Are 250 g marks refused on a lot of 500 g packs with 422 pack_size_mismatch?"""
    batch = w.printed_and_issued(100)
    before = db_counts(session)
    refused(activate(w, [span(batch, 1, 10)], pack_size_g=500), 422, "pack_size_mismatch")
    assert db_counts(session) == before
    assert ranges_of(w, batch) == [(1, 100, "issued")]


def test_lot_number_reuse_and_adding_marks_later(w, client, session):
    """Is a lot number reused with other details a 409 lot_mismatch, while more marks on the same lot work?"""
    batch = w.printed_and_issued(1000)
    r = activate(w, [span(batch, 1, 100)], lot_no="BHS-2026-04")
    assert r.status_code == 201, r.json
    lot_id = r.json["lot"]["id"]
    before = db_counts(session)
    for changed in ({"quantity": 2000}, {"production_date": "2026-04-11"}, {"test_report_no": "R-OTHER"},
                    {"pack_size_g": 500}):
        refused(activate(w, [span(batch, 101, 110)], lot_no="BHS-2026-04", **changed), 409, "lot_mismatch")
    assert db_counts(session) == before
    r = activate(w, [span(batch, 501, 600)], lot_no="BHS-2026-04")
    assert r.status_code == 201, r.json
    assert r.json["lot"]["id"] == lot_id and r.json["activated"] == 100
    assert mark(w, serial(batch, 550))["lot"]["id"] == lot_id
    assert ranges_of(w, batch) == [(1, 100, "activated"), (101, 500, "issued"), (501, 600, "activated"),
                                   (601, 1000, "issued")]


def test_a_lot_produced_today_in_china_is_not_in_the_future(w, client, monkeypatch):
    """At 01:00 China time (still yesterday in UTC), is a lot dated today accepted, and tomorrow refused?"""
    import datetime as dt

    from gi_service import clock

    batch = w.printed_and_issued(100)
    early = dt.datetime(2026, 6, 1, 17, 0, tzinfo=dt.timezone.utc)        # 2026-06-02 01:00 in China
    monkeypatch.setattr(clock, "now", lambda: early)
    refused(activate(w, [span(batch, 1, 10)], production_date="2026-06-03"), 422, "validation_failed")
    r = activate(w, [span(batch, 1, 10)], production_date="2026-06-02")
    assert r.status_code == 201, r.json


def test_only_the_producer_activates(w, client):
    """Are activations by the authority or the printer refused with 403 wrong_role?"""
    batch = w.printed_and_issued(100)
    refused(activate(w, [span(batch, 1, 10)], actor=w.authority), 403, "wrong_role")
    refused(activate(w, [span(batch, 1, 10)], actor=w.printer), 403, "wrong_role")
    assert ranges_of(w, batch) == [(1, 100, "issued")]


# --- voiding ---------------------------------------------------------------------------------

def test_void_lost_and_stolen_by_producer_or_authority(w, factory, client, session):
    """Do the producer and the GI's authority void / report lost / stolen marks, a printer or stranger not?"""
    batch = w.printed_and_issued(100)
    assert activate(w, [span(batch, 1, 20)]).status_code == 201
    r = void(w, [span(batch, 1, 5)], "voided", reason="label torn")
    assert r.status_code == 200 and r.json == {"kind": "voided", "count": 5}, r.json
    r = void(w, [span(batch, 30, 39)], "lost", reason="box lost in transit")
    assert r.status_code == 200 and r.json["count"] == 10, r.json
    r = void(w, [span(batch, 40, 41)], "stolen", actor=w.authority, reason="police report 2026-118")
    assert r.status_code == 200 and r.json["count"] == 2, r.json
    m = mark(w, serial(batch, 3))
    assert (m["state"], m["reason"], m["lot"]["lot_no"]) == ("voided", "label torn", "L-1")   # still tells its lot
    assert mark(w, serial(batch, 35))["state"] == "lost"
    assert mark(w, serial(batch, 40))["state"] == "stolen"

    before = db_counts(session)
    refused(void(w, [span(batch, 50)], actor=w.printer), 403, "wrong_role")
    refused(void(w, [span(batch, 50)], actor=factory.authority("340100")), 403, "not_your_marks")
    refused(w.client.post(f"{API}/voids", headers=w.producer.headers,
                          json={"ranges": [span(batch, 50)], "kind": "burnt", "reason": "burnt"}), 422,
            "validation_failed")
    r = refused(void(w, [span(batch, 1, 5)]), 409, "wrong_state")
    assert r["details"]["state"] == "voided"
    refused(void(w, [span(batch, 3, 8)], "lost"), 409, "wrong_state")    # partly voided: refused whole
    refused(void(w, [span(batch, 30)], "stolen"), 409, "wrong_state")    # lost already
    assert db_counts(session) == before
    assert ranges_of(w, batch) == [(1, 5, "voided"), (6, 20, "activated"), (21, 29, "issued"), (30, 39, "lost"),
                                   (40, 41, "stolen"), (42, 100, "issued")]


def test_marks_in_printer_stock_cannot_be_voided(w, client, session):
    """Is voiding marks the producer has not received (printer stock, spoiled) refused with 409 wrong_state?"""
    batch = ordered_batch(w, 100)
    r = client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers,
                    json={"spoiled": [span(batch, 100)]})
    assert r.status_code == 200, r.json
    before = db_counts(session)
    refused(void(w, [span(batch, 1, 10)]), 409, "wrong_state")
    refused(void(w, [span(batch, 100)]), 409, "wrong_state")
    refused(void(w, [span(batch, 1, 10)], actor=w.authority), 409, "wrong_state")
    assert db_counts(session) == before


# --- recall ----------------------------------------------------------------------------------

def test_recall_a_lot(w, factory, client, session):
    """Does recalling a lot mark it recalled (marks stay activated), once only, by its producer or authority?"""
    batch = w.printed_and_issued(1000)
    lot1 = activate(w, [span(batch, 1, 100)], lot_no="L-1").json["lot"]
    lot2 = activate(w, [span(batch, 101, 150)], lot_no="L-2").json["lot"]
    path = f"{API}/lots/{lot1['id']}/recall"
    before = db_counts(session)
    refused(client.post(path, headers=w.printer.headers, json={"reason": "not yours"}), 403, "wrong_role")
    refused(client.post(path, headers=factory.authority("340100").headers, json={"reason": "not yours"}),
            403, "not_your_lot")
    other = factory.producer("341602")
    refused(client.post(path, headers=other.headers, json={"reason": "not yours"}), 403, "not_your_lot")
    refused(client.post(f"{API}/lots/999999/recall", headers=w.producer.headers, json={"reason": "not yours"}),
            404, "lot_not_found")
    assert db_counts(session) == before

    r = client.post(path, headers=w.producer.headers, json={"reason": "pesticide residue above limit"})
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["recall_reason"]) == ("recalled", "pesticide residue above limit")
    assert r.json["recalled_at"]
    m = mark(w, serial(batch, 50))
    assert (m["state"], m["lot"]["status"], m["lot"]["recall_reason"]) == \
        ("activated", "recalled", "pesticide residue above limit")
    assert mark(w, serial(batch, 120))["lot"]["status"] == "active"
    assert ranges_of(w, batch) == [(1, 100, "activated"), (101, 150, "activated"), (151, 1000, "issued")]
    refused(client.post(path, headers=w.producer.headers, json={"reason": "again"}), 409, "already_recalled")
    refused(client.post(path, headers=w.authority.headers, json={"reason": "again"}), 409, "already_recalled")
    refused(activate(w, [span(batch, 200, 210)], lot_no="L-1"), 409, "lot_recalled")   # nothing more on it

    r = client.post(f"{API}/lots/{lot2['id']}/recall", headers=w.authority.headers,
                    json={"reason": "market inspection failed"})
    assert r.status_code == 200 and r.json["status"] == "recalled", r.json
    events = client.get(f"{API}/ledger/events", headers=w.authority.headers).json["events"]
    recalls = [e for e in events if e["kind"] == "recalled"]
    assert [e["count"] for e in recalls] == [100, 50]


# --- serials ---------------------------------------------------------------------------------

def test_unknown_serial(w, client):
    """Is a well-formed serial that was never allocated a 404 unknown_serial, on lookup and on every operation?"""
    batch = w.printed_and_issued(100)
    never = serial(batch, 5000)
    refused(client.get(f"{API}/marks/{never}", headers=w.authority.headers), 404, "unknown_serial")
    r = refused(activate(w, [{"first": never}]), 404, "unknown_serial")
    refused(void(w, [{"first": never}]), 404, "unknown_serial")
    # A range that runs past the end of the batch is refused at the first serial never allocated.
    r = refused(void(w, [span(batch, 90, 110)]), 404, "unknown_serial")
    assert r["details"] == {"serial": serial(batch, 101)}
    assert ranges_of(w, batch) == [(1, 100, "issued")]


def test_mistyped_serial_names_the_position(w, client):
    """Is a serial with one character changed a 422 invalid_serial that names the position to check?"""
    batch = w.printed_and_issued(100)
    good = serial(batch, 7)
    assert good[14] == "7"
    typo = good[:14] + "8" + good[15:]                  # one digit changed: caught by the check character
    r = refused(client.get(f"{API}/marks/{typo}", headers=w.producer.headers), 422, "invalid_serial")
    assert r["details"]["position"] == 16 and "mistyped" in r["message"]
    letter = good[:10] + "O" + good[11:]                # the letter O typed for a zero
    r = refused(client.get(f"{API}/marks/{letter}", headers=w.producer.headers), 422, "invalid_serial")
    assert r["details"]["position"] == 11 and "did you mean 0" in r["message"]
    r = refused(void(w, [{"first": serial(batch, 1), "last": typo}]), 422, "invalid_serial")
    assert r["details"][0]["position"] == 16 and r["details"][0]["field"] == "ranges[0]"
    r = refused(activate(w, [{"first": letter}]), 422, "invalid_serial")
    assert r["details"][0]["position"] == 11
    # Spaces, hyphens and lower case are fine.
    display = f"{good[:4]}-{good[4:6]} {good[6:15]}-{good[15]}".lower()
    assert mark(w, display)["serial"] == good
    assert ranges_of(w, batch) == [(1, 100, "issued")]


# --- ranges ----------------------------------------------------------------------------------

def test_ranges_spanning_two_batches(w, client):
    """Does one serial range that runs from one batch into the next act on both, splitting each exactly?"""
    a = w.printed_and_issued(1000)
    b = w.printed_and_issued(500)
    assert parse_serial(b["first_serial"]).seq == parse_serial(a["last_serial"]).seq + 1   # same series, adjacent
    across = {"first": serial(a, 901), "last": serial(b, 100)}
    r = activate(w, [across], quantity=1000)
    assert r.status_code == 201 and r.json["activated"] == 200, r.json
    assert ranges_of(w, a) == [(1, 900, "issued"), (901, 1000, "activated")]
    assert ranges_of(w, b) == [(1, 100, "activated"), (101, 500, "issued")]
    r = void(w, [{"first": serial(a, 991), "last": serial(b, 10)}], "voided")
    assert r.status_code == 200 and r.json["count"] == 20, r.json
    assert ranges_of(w, a) == [(1, 900, "issued"), (901, 990, "activated"), (991, 1000, "voided")]
    assert ranges_of(w, b) == [(1, 10, "voided"), (11, 100, "activated"), (101, 500, "issued")]
    # Several ranges in one call, in any order.
    r = void(w, [{"first": serial(b, 400), "last": serial(b, 409)}, {"first": serial(a, 1), "last": serial(a, 5)}],
             "lost")
    assert r.status_code == 200 and r.json["count"] == 15, r.json
    assert ranges_of(w, a)[0] == (1, 5, "lost")


def test_partial_operations_split_ranges_exactly(w, client):
    """After spoils, a partial issue, activation and voiding, are the batch's ranges exactly right?"""
    batch = ordered_batch(w, 1000)
    r = client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers,
                    json={"spoiled": [span(batch, 10)]})
    assert r.status_code == 200, r.json
    r = client.post(f"{API}/batches/{batch['id']}/issue", headers=w.printer.headers,
                    json={"ranges": [span(batch, 1, 9), span(batch, 11, 800)]})
    assert r.status_code == 200 and r.json["issued"] == 799, r.json
    r = activate(w, [span(batch, 101, 200)])
    assert r.status_code == 201, r.json
    lot_id = r.json["lot"]["id"]
    assert void(w, [span(batch, 150)], "voided").status_code == 200
    data = get_batch(w, batch["id"])
    got = [(r["first"], r["last"], r["count"], r["state"], r["lot_id"]) for r in data["ranges"]]
    s = lambda n: serial(batch, n)
    assert got == [
        (s(1), s(9), 9, "issued", None),
        (s(10), s(10), 1, "spoiled", None),
        (s(11), s(100), 90, "issued", None),
        (s(101), s(149), 49, "activated", lot_id),
        (s(150), s(150), 1, "voided", lot_id),
        (s(151), s(200), 50, "activated", lot_id),
        (s(201), s(800), 600, "issued", None),
        (s(801), s(1000), 200, "printed", None),
    ]
    assert data["first_serial"] == s(1) and data["last_serial"] == s(1000) and data["status"] == "printed"


def test_range_rows_grow_with_operations_not_marks(w, client, session):
    """Does a 100,000-mark batch printed, spoiled, issued and activated in partial steps stay at ≤ 10 range rows?"""
    req = w.request(100_000, 10)                                             # 1,000 kg of quota
    batch = w.approve(req["id"])
    r = client.post(f"{API}/batches/{batch['id']}/printed", headers=w.printer.headers,
                    json={"spoiled": [span(batch, 70_001, 70_100)]})
    assert r.status_code == 200, r.json
    r = client.post(f"{API}/batches/{batch['id']}/spoiled", headers=w.printer.headers,
                    json={"ranges": [span(batch, 99_901, 100_000)], "reason": "last roll smudged"})
    assert r.status_code == 200, r.json
    r = client.post(f"{API}/batches/{batch['id']}/issue", headers=w.printer.headers,
                    json={"ranges": [span(batch, 1, 60_000)]})
    assert r.status_code == 200 and r.json["issued"] == 60_000, r.json
    r = activate(w, [span(batch, 1, 30_000)], quantity=100_000, pack_size_g=10)
    assert r.status_code == 201 and r.json["activated"] == 30_000, r.json

    rows = session.scalar(select(func.count()).select_from(MarkRange).where(MarkRange.batch_id == batch["id"]))
    total = session.scalar(select(func.sum(MarkRange.seq_end - MarkRange.seq_start + 1))
                           .where(MarkRange.batch_id == batch["id"]))
    events = session.scalar(select(func.count()).select_from(LedgerEvent).where(LedgerEvent.batch_id == batch["id"]))
    session.commit()
    assert rows <= 10, rows
    assert total == 100_000
    assert events <= 8, events
    assert ranges_of(w, batch) == [(1, 30_000, "activated"), (30_001, 60_000, "issued"), (60_001, 70_000, "printed"),
                                   (70_001, 70_100, "spoiled"), (70_101, 99_900, "printed"),
                                   (99_901, 100_000, "spoiled")]

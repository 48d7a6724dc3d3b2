"""Quota accounts of the special-mark ledger (issue §1): opening from surveyed plots, adjustments,
consumption by pack size, refusals beyond the balance, transfers between authorized holders, and
the rule that labels themselves never move between producers.

Every test builds a `LedgerWorld` (authority 341600, GI 亳白芍 at 350 kg/mu, an authorized producer
with a 15-mu plot and an open 2026 quota, a printer) and drives the HTTP API; balances are read back
through the API, and "nothing written" is checked against the database through `session`.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from gi_service.codes import format_serial, parse_serial
from gi_service.models import (
    LedgerEvent,
    MarkBatch,
    MarkRange,
    QuotaAccount,
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


def account(w: LedgerWorld, account_id: int, actor=None) -> dict:
    r = w.client.get(f"{API}/quota-accounts/{account_id}", headers=(actor or w.authority).headers)
    assert r.status_code == 200, r.json
    return r.json


def kg_to_g(kg: float) -> int:
    return int((Decimal(str(kg)) * 1000).to_integral_value())


def authorized_producer(w: LedgerWorld):
    p = w.factory.producer("341602")
    w.factory.authorization(p, w.gi, w.authority)
    return p


def serial(batch: dict, n: int) -> str:
    """The n-th serial (1-based) of a batch."""
    first = parse_serial(batch["first_serial"])
    return format_serial(first.prefix, first.year, first.seq + n - 1)


def db_counts(session) -> dict[str, int]:
    counts = {name: session.scalar(select(func.count()).select_from(model))
              for name, model in (("accounts", QuotaAccount), ("entries", QuotaEntry), ("batches", MarkBatch),
                                  ("ranges", MarkRange), ("events", LedgerEvent))}
    session.commit()
    return counts


# --- opening ---------------------------------------------------------------------------------

def test_opening_quota_is_plot_area_times_standard_yield(w, factory, client):
    """Is a yearly quota exactly Σ area (mu) of the producer's surveyed plots × the GI's standard yield?"""
    p = factory.producer("341602")
    plot_a = factory.plot(p, w.gi, side_m=100, survey_year=2025, name="A")   # ≈ 15 mu
    plot_b = factory.plot(p, w.gi, side_m=60, survey_year=2024, name="B")    # ≈ 5.4 mu
    plot_c = factory.plot(p, w.gi, side_m=40, survey_year=2026, name="C")    # ≈ 2.4 mu, surveyed in 2026
    factory.authorization(p, w.gi, w.authority)

    def expected_g(*plots) -> int:
        mu = sum(Decimal(str(round(pl.area_mu, 4))) for pl in plots)
        return int((mu * 350 * 1000).to_integral_value())

    r = client.post(f"{API}/quota-accounts", headers=w.authority.headers,
                    json={"producer_id": p.org.id, "gi_id": w.gi.id, "year": 2025})
    assert r.status_code == 201, r.json
    q2025 = r.json
    assert kg_to_g(q2025["base_kg"]) == expected_g(plot_a, plot_b)           # the 2026 survey does not count
    assert 7140 * 0.995 < q2025["base_kg"] < 7140 * 1.005                    # (15 + 5.4) mu × 350 kg/mu
    opening = q2025["entries"][0]
    assert opening["kind"] == "open"
    assert {pl["id"] for pl in opening["details"]["plots"]} == {plot_a.id, plot_b.id}

    r = client.post(f"{API}/quota-accounts", headers=w.authority.headers,
                    json={"producer_id": p.org.id, "gi_id": w.gi.id, "year": 2026})
    assert r.status_code == 201, r.json
    q2026 = r.json
    assert kg_to_g(q2026["base_kg"]) == expected_g(plot_a, plot_b, plot_c)
    assert 7980 * 0.995 < q2026["base_kg"] < 7980 * 1.005                    # (15 + 5.4 + 2.4) mu × 350
    assert q2026["available_kg"] == q2026["base_kg"] and q2026["consumed_kg"] == 0
    assert q2026["available_g"] == kg_to_g(q2026["base_kg"])


def test_reopening_the_same_year_is_refused(w, client, session):
    """Does opening a producer's quota twice for the same year and GI answer 409 and change nothing?"""
    before = db_counts(session)
    r = client.post(f"{API}/quota-accounts", headers=w.authority.headers,
                    json={"producer_id": w.producer.org.id, "gi_id": w.gi.id, "year": YEAR})
    refused(r, 409, "quota_account_exists")
    assert db_counts(session) == before
    assert account(w, w.account["id"])["base_kg"] == w.account["base_kg"]


def test_opening_needs_the_gi_authority_and_an_authorized_producer(w, factory, client):
    """Is opening refused to producers, to another city's authority, and for an unauthorized producer?"""
    p = factory.producer("341602")
    factory.plot(p, w.gi)
    body = {"producer_id": p.org.id, "gi_id": w.gi.id, "year": YEAR}
    refused(client.post(f"{API}/quota-accounts", headers=w.producer.headers, json=body), 403, "wrong_role")
    far = factory.authority("340100")
    refused(client.post(f"{API}/quota-accounts", headers=far.headers, json=body), 403, "outside_jurisdiction")
    r = refused(client.post(f"{API}/quota-accounts", headers=w.authority.headers, json=body), 409, "not_authorized")
    assert r["details"]["authorization"] == "none"
    # Nor does another city's authority see the accounts that exist.
    assert client.get(f"{API}/quota-accounts", headers=far.headers).json["items"] == []
    refused(client.get(f"{API}/quota-accounts/{w.account['id']}", headers=far.headers), 404, "quota_account_not_found")


# --- adjustments -----------------------------------------------------------------------------

def test_adjustment_is_recorded_with_its_reason(w, client):
    """Does a manual adjustment change the allocation by exactly its amount and keep its reason?"""
    acc = w.account
    r = client.post(f"{API}/quota-accounts/{acc['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": 120_500, "reason": "re-survey found an extra terrace"})
    assert r.status_code == 200, r.json
    assert kg_to_g(r.json["adjusted_kg"]) == 120_500
    assert r.json["available_g"] == acc["available_g"] + 120_500
    last = r.json["entries"][-1]
    assert (last["kind"], last["amount_kg"], last["reason"]) == ("adjust", 120.5, "re-survey found an extra terrace")

    r = client.post(f"{API}/quota-accounts/{acc['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": 120_500})
    assert r.status_code == 422, r.json                                     # a reason is required
    r = client.post(f"{API}/quota-accounts/{acc['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": 0, "reason": "nothing"})
    refused(r, 422, "no_change")
    refused(client.post(f"{API}/quota-accounts/{acc['id']}/adjustments", headers=w.producer.headers,
                        json={"amount_g": 1000, "reason": "more please"}), 403, "wrong_role")
    far = w.factory.authority("340100")
    refused(client.post(f"{API}/quota-accounts/{acc['id']}/adjustments", headers=far.headers,
                        json={"amount_g": 1000, "reason": "not mine"}), 403, "outside_jurisdiction")
    assert account(w, acc["id"])["available_g"] == acc["available_g"] + 120_500


def test_adjustment_never_goes_below_what_is_consumed(w, client, session):
    """Is a reduction that would leave less than what is already consumed refused with 409, to the gram?"""
    w.approve(w.request(1000, 250)["id"])                                 # consumes 250 kg
    acc = account(w, w.account["id"])
    assert acc["consumed_kg"] == 250
    available = acc["available_g"]
    before = db_counts(session)
    r = client.post(f"{API}/quota-accounts/{acc['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": -(available + 1), "reason": "plot abandoned"})
    body = refused(r, 409, "quota_exceeded")
    assert body["details"]["available_g"] == available
    assert db_counts(session) == before
    r = client.post(f"{API}/quota-accounts/{acc['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": -available, "reason": "plot abandoned"})
    assert r.status_code == 200, r.json
    assert r.json["available_g"] == 0 and r.json["consumed_kg"] == 250
    assert kg_to_g(r.json["allocated_kg"]) == 250_000


# --- consumption -----------------------------------------------------------------------------

def test_marks_consume_quota_by_pack_size(w, client):
    """Does approving 1,000 marks for 250 g packs consume exactly 250 kg, and 40 × 5 kg packs 200 kg more?"""
    req = w.request(1000, 250)
    assert req["quota_kg"] == 250
    w.approve(req["id"])
    acc = account(w, w.account["id"])
    assert acc["consumed_kg"] == 250.0
    assert acc["available_g"] == w.account["available_g"] - 250_000
    consume = acc["entries"][-1]
    assert (consume["kind"], consume["amount_kg"], consume["request_id"]) == ("consume", -250, req["id"])

    w.approve(w.request(40, 5000)["id"])
    acc = account(w, w.account["id"])
    assert acc["consumed_kg"] == 450.0
    assert acc["available_g"] == w.account["available_g"] - 450_000
    # A request alone consumes nothing: only approval does.
    w.request(100, 250)
    assert account(w, w.account["id"])["consumed_kg"] == 450.0


def test_request_beyond_available_quota_is_refused_and_writes_nothing(w, client, session):
    """Is approving more than the available quota a 409 quota_exceeded with details, with nothing written?"""
    available = w.account["available_g"]
    quantity = available // 250 + 1                                      # one 250 g pack too many
    req = w.request(quantity, 250)
    before = db_counts(session)
    r = client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers,
                    json={"printer_id": w.printer.org.id})
    body = refused(r, 409, "quota_exceeded")
    assert body["details"] == {"needed_g": quantity * 250, "available_g": available}
    assert db_counts(session) == before
    assert client.get(f"{API}/batches", headers=w.authority.headers).json["items"] == []
    assert client.get(f"{API}/mark-requests/{req['id']}", headers=w.producer.headers).json["status"] == "requested"
    acc = account(w, w.account["id"])
    assert (acc["consumed_kg"], acc["available_g"]) == (0, available)
    assert [e["kind"] for e in acc["entries"]] == ["open"]


def test_quota_can_be_used_to_the_last_gram_and_no_further(w, client):
    """Can a producer consume exactly all its quota, after which a single extra mark is refused?"""
    available = w.account["available_g"]
    r = client.post(f"{API}/quota-accounts/{w.account['id']}/adjustments", headers=w.authority.headers,
                    json={"amount_g": -(available % 1000), "reason": "round to the kilogram"})
    assert r.status_code == 200, r.json
    available = r.json["available_g"]
    w.approve(w.request(available // 1000, 1000)["id"])
    assert account(w, w.account["id"])["available_g"] == 0
    req = w.request(1, 1)
    body = refused(client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers, json={}),
                   409, "quota_exceeded")
    assert body["details"] == {"needed_g": 1, "available_g": 0}


def test_approval_without_a_quota_account_is_refused(w, factory, client):
    """Is a request for a year with no open quota account refused at approval with 409?"""
    req = w.request(10, 250, year=2027)
    refused(client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers, json={}),
            409, "no_quota_account")


# --- transfers -------------------------------------------------------------------------------

def test_transfer_to_an_authorized_holder_opens_its_account(w, client):
    """Does a transfer move quota to another authorized holder, opening its account, usable for marks?"""
    packer = authorized_producer(w)
    src = w.account
    r = client.post(f"{API}/quota-accounts/{src['id']}/transfers", headers=w.producer.headers,
                    json={"to_producer_id": packer.org.id, "amount_g": 1_000_000, "reason": "sold fresh roots"})
    assert r.status_code == 200, r.json
    assert r.json["from"]["available_g"] == src["available_g"] - 1_000_000
    assert r.json["from"]["transferred_out_kg"] == 1000
    target_id = r.json["to"]["id"]
    assert r.json["to"]["producer_id"] == packer.org.id

    target = account(w, target_id, packer)
    assert (target["year"], target["gi_id"], target["producer_id"]) == (YEAR, w.gi.id, packer.org.id)
    assert (target["base_kg"], target["transferred_in_kg"], target["available_g"]) == (0, 1000, 1_000_000)
    assert [(e["kind"], e["amount_kg"], e["counterparty_account_id"]) for e in target["entries"]] == \
        [("open", 0, None), ("transfer_in", 1000, src["id"])]
    source = account(w, src["id"], w.producer)
    assert (source["entries"][-1]["kind"], source["entries"][-1]["amount_kg"],
            source["entries"][-1]["counterparty_account_id"], source["entries"][-1]["reason"]) == \
        ("transfer_out", -1000, target_id, "sold fresh roots")

    # A second transfer lands in the same account; the packer spends what it received, and no more.
    r = client.post(f"{API}/quota-accounts/{src['id']}/transfers", headers=w.authority.headers,
                    json={"to_producer_id": packer.org.id, "amount_g": 250_000, "reason": "second delivery"})
    assert r.status_code == 200, r.json
    assert r.json["to"]["id"] == target_id
    req = client.post(f"{API}/mark-requests", headers=packer.headers,
                      json={"gi_id": w.gi.id, "pack_size_g": 250, "quantity": 5000, "year": YEAR}).json
    r = client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers, json={})
    assert r.status_code == 201, r.json
    assert account(w, target_id)["available_g"] == 0
    req = client.post(f"{API}/mark-requests", headers=packer.headers,
                      json={"gi_id": w.gi.id, "pack_size_g": 250, "quantity": 1, "year": YEAR}).json
    refused(client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers, json={}),
            409, "quota_exceeded")
    # The packer sees its own account only.
    mine = client.get(f"{API}/quota-accounts", headers=packer.headers).json["items"]
    assert [a["id"] for a in mine] == [target_id]


def test_transfer_to_an_unauthorized_producer_is_refused(w, factory, client, session):
    """Is a transfer to a producer without an approved authorization for the GI a 409 not_authorized?"""
    outsider = factory.producer("341602")
    pending = factory.producer("341602")
    factory.authorization(pending, w.gi, w.authority, approve=False)
    before = db_counts(session)
    for p, state in ((outsider, "none"), (pending, "pending")):
        r = client.post(f"{API}/quota-accounts/{w.account['id']}/transfers", headers=w.producer.headers,
                        json={"to_producer_id": p.org.id, "amount_g": 1000, "reason": "sale"})
        body = refused(r, 409, "not_authorized")
        assert body["details"]["authorization"] == state
    assert db_counts(session) == before
    r = client.post(f"{API}/quota-accounts/{w.account['id']}/transfers", headers=w.producer.headers,
                    json={"to_producer_id": w.printer.org.id, "amount_g": 1000, "reason": "sale"})
    refused(r, 404, "producer_not_found")
    assert db_counts(session) == before


def test_transfer_beyond_available_or_to_self_is_refused(w, client, session):
    """Are transfers of more than the available balance (409) and to the same producer (422) refused?"""
    packer = authorized_producer(w)
    available = w.account["available_g"]
    before = db_counts(session)
    r = client.post(f"{API}/quota-accounts/{w.account['id']}/transfers", headers=w.producer.headers,
                    json={"to_producer_id": packer.org.id, "amount_g": available + 1, "reason": "too much"})
    body = refused(r, 409, "quota_exceeded")
    assert body["details"] == {"available_g": available, "requested_g": available + 1}
    assert db_counts(session) == before                                   # no half-opened target account
    r = client.post(f"{API}/quota-accounts/{w.account['id']}/transfers", headers=w.producer.headers,
                    json={"to_producer_id": w.producer.org.id, "amount_g": 1000, "reason": "to myself"})
    refused(r, 422, "same_account")
    r = client.post(f"{API}/quota-accounts/{w.account['id']}/transfers", headers=w.producer.headers,
                    json={"to_producer_id": packer.org.id, "amount_g": 0, "reason": "nothing"})
    assert r.status_code == 422, r.json
    assert db_counts(session) == before
    # Exactly the available balance is allowed.
    r = client.post(f"{API}/quota-accounts/{w.account['id']}/transfers", headers=w.producer.headers,
                    json={"to_producer_id": packer.org.id, "amount_g": available, "reason": "everything"})
    assert r.status_code == 200, r.json
    assert r.json["from"]["available_g"] == 0


def test_only_the_holder_or_its_authority_transfers_quota(w, factory, client, session):
    """Is a transfer out of someone else's account refused (another producer, a printer, another city)?"""
    packer = authorized_producer(w)
    body = {"to_producer_id": packer.org.id, "amount_g": 1000, "reason": "help myself"}
    before = db_counts(session)
    path = f"{API}/quota-accounts/{w.account['id']}/transfers"
    refused(client.post(path, headers=packer.headers, json=body), 403, "not_your_account")
    refused(client.post(path, headers=w.printer.headers, json=body), 403, "wrong_role")
    refused(client.post(path, headers=factory.authority("340100").headers, json=body), 403, "not_your_account")
    assert db_counts(session) == before


# --- labels never move -----------------------------------------------------------------------

def test_labels_themselves_cannot_be_transferred(w, app, client, session):
    """Is there no way to move marks to another producer: no endpoint, and its serials are not theirs to use?"""
    transfer_rules = sorted(r.rule for r in app.url_map.iter_rules() if "transfer" in r.rule)
    # Only quota moves between producers (the API and its web page), never marks.
    assert transfer_rules == ["/api/v1/quota-accounts/<id:account_id>/transfers", "/app/quota/<id:account_id>/transfer"]
    batch = w.printed_and_issued(100)
    for path in (f"{API}/batches/{batch['id']}/transfer", f"{API}/marks/{batch['first_serial']}/transfer"):
        assert client.post(path, headers=w.producer.headers, json={}).status_code in (404, 405)

    packer = authorized_producer(w)
    before = db_counts(session)
    first, tenth = serial(batch, 1), serial(batch, 10)
    lot = {**w.lot("PK-1", 100)}
    r = client.post(f"{API}/activations", headers=packer.headers,
                    json={"ranges": [{"first": first, "last": tenth}], "lot": lot})
    refused(r, 403, "not_your_marks")
    for kind in ("voided", "lost", "stolen"):
        r = client.post(f"{API}/voids", headers=packer.headers,
                        json={"ranges": [{"first": first, "last": tenth}], "kind": kind, "reason": "mine now"})
        refused(r, 403, "not_your_marks")
    assert db_counts(session) == before
    mark = client.get(f"{API}/marks/{first}", headers=w.producer.headers).json
    assert mark["state"] == "issued" and mark["batch"]["producer_id"] == w.producer.org.id
    refused(client.get(f"{API}/marks/{first}", headers=packer.headers), 404, "unknown_serial")

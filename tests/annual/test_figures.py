"""The ledger figures of an annual report: what the producer received, activated on which lots, voided,
lost or had stolen, and held in stock, by the calendar year in China time, with its quota account."""
from __future__ import annotations

import pytest

from gi_service.services import annual_reports

from .conftest import API, cst, ok

EXPECTED_MARKS_2025 = {"opening_stock": 0, "received": 1500, "activated": 650, "voided": 25, "lost": 10, "stolen": 5,
                       "removed_from_stock": 35, "removed_after_activation": 5, "closing_stock": 815,
                       "activated_kg": 162.5}


def own(season, year: int = 2025, **query) -> dict:
    return ok(season.client.get(f"{API}/annual-reports/{year}/mine", headers=season.producer.headers,
                                query_string=query))


def test_figures_are_the_ledger_of_the_china_year(season):
    """Do the 2025 figures count exactly the season's events of 2025 in China time, the 23:30 activation on
    31 December included and the 00:30 one on 1 January (still 31 December in UTC) left out?"""
    season.next_year_activation()
    season.clock.set(cst(2026, 1, 20, 10, 0))
    report = own(season)
    f = report["figures"]
    assert report["status"] == "draft" and report["year"] == 2025
    assert {k: f["marks"][k] for k in EXPECTED_MARKS_2025} == EXPECTED_MARKS_2025
    assert f["lots"]["count"] == 2 and f["lots"]["packs"] == 700 and f["lots"]["declared_kg"] == 175.0
    assert f["lots"]["by_pack_size"] == [{"pack_size_g": 250, "lots": 2, "packs": 700, "marks_activated": 650}]
    assert [(lot["lot_no"], lot["packs"], lot["marks_activated"]) for lot in f["lots"]["items"]] == \
        [("L-1", 400, 400), ("L-2", 300, 250)]
    account = ok(season.client.get(f"{API}/quota-accounts/{season.account['id']}", headers=season.authority.headers))
    assert f["quota"]["account_id"] == season.account["id"]
    assert f["quota"]["granted_kg"] == pytest.approx(account["allocated_kg"]) and account["allocated_kg"] > 5000
    assert f["quota"]["consumed_kg"] == 375.0        # 1,500 marks × 250 g
    assert f["batches_for_year"] == {"count": 2, "marks_approved": 1500}
    assert f["balanced"] is True and f["anomalies"] == []
    assert report["producer"]["name"] == "亳州市谯城区白芍种植专业合作社"


def test_figures_agree_with_the_ledger_report(season):
    """When the whole season happened in its quota year, do the report's figures agree with the ledger report
    (台账) of that year: received = issued, activated − voided after activation = activated now, stock = stock?"""
    season.clock.set(cst(2026, 1, 5, 9, 0))
    ledger_rows = ok(season.client.get(f"{API}/ledger/report", headers=season.authority.headers,
                                       query_string={"year": 2025, "producer_id": season.producer.org.id}))["rows"]
    assert len(ledger_rows) == 1 and ledger_rows[0]["balanced"]
    row = ledger_rows[0]
    marks = own(season)["figures"]["marks"]
    assert marks["received"] == row["issued"] == 1500
    assert marks["activated"] - marks["removed_after_activation"] == row["activated"] == 645
    assert marks["voided"] == row["voided"] == 25
    assert marks["lost"] + marks["stolen"] == row["lost"] == 15
    assert marks["closing_stock"] == row["producer_stock"] == 815


def test_stock_carries_over_to_the_next_year(season):
    """Is the closing stock of 2025 the opening stock of 2026, and does 2026 count only its own events?"""
    season.next_year_activation()
    season.clock.set(cst(2026, 3, 3, 10, 0))
    season.void(season.a, 436, 445, "lost")
    season.clock.set(cst(2027, 1, 8, 10, 0))
    marks = own(season, 2026)["figures"]["marks"]
    assert marks["opening_stock"] == 815
    assert (marks["received"], marks["activated"], marks["lost"], marks["closing_stock"]) == (0, 50, 10, 755)
    assert own(season, 2026)["figures"]["quota"] is None     # no 2026 quota account was opened


def test_replay_of_serial_ranges_splits_and_joins():
    """Does the range replay count the previous states of exactly the serials an event moves?"""
    s = annual_reports._SerialStates()
    assert dict(s.assign("BBSH25", 1, 100, "issued")) == {None: 100}
    assert dict(s.assign("BBSH25", 11, 20, "activated")) == {"issued": 10}
    assert dict(s.assign("BBSH25", 15, 30, "voided")) == {"activated": 6, "issued": 10}
    assert dict(s.assign("BBSH25", 95, 105, "issued")) == {"issued": 6, None: 5}
    assert dict(s.assign("BBSH26", 1, 3, "issued")) == {None: 3}
    assert (s.count("issued"), s.count("activated"), s.count("voided")) == (10 + 64 + 11 + 3, 4, 16)

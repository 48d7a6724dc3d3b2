"""The ledger report (台账, issue §6): exact figures per printer, producer, GI and year after a realistic
season, reconciliation identities, CSV output, who sees which rows, and tampering caught as an
unbalanced row with the offending serial range listed.

The season (`season`), all 250 g packs, year 2026, one printer:

* batch A, 1,000 marks: printed with serials 991-1000 spoiled, 981-985 written off later (15 spoiled);
  600 issued (1-600); 400 activated on lot L-1 (1-400); 1-5 then voided (so 395 stay activated),
  401-420 voided, 421-430 lost, 431-435 stolen.
* batch B, 500 marks: printed without spoils, all issued, 250 activated on lot L-2.
* requests that made no batch: 100 pending, 30 refused, 50 cancelled (withdrawn, so not counted).
"""
from __future__ import annotations

import copy
import csv
import io

import pytest
from sqlalchemy import text

from gi_service.codes import format_serial, parse_serial
from tests.factories import LedgerWorld
from tests.xlsx import read_download

API = "/api/v1"
YEAR = 2026
COLUMNS = ["year", "gi_id", "producer_id", "printer_id", "requested", "approved", "printed", "spoiled", "issued",
           "activated", "voided", "lost", "printer_stock", "producer_stock", "not_printed", "balanced"]


# --- helpers ---------------------------------------------------------------------------------

def serial(batch: dict, n: int) -> str:
    """The n-th serial (1-based) of a batch."""
    first = parse_serial(batch["first_serial"])
    return format_serial(first.prefix, first.year, first.seq + n - 1)


def span(batch: dict, a: int, b: int | None = None) -> dict:
    return {"first": serial(batch, a), "last": serial(batch, a if b is None else b)}


def ok(r, status: int = 200):
    assert r.status_code == status, (r.status_code, r.json)
    return r.json


def report(w: LedgerWorld, actor=None, **query) -> dict:
    return ok(w.client.get(f"{API}/ledger/report", headers=(actor or w.authority).headers, query_string=query))


def figures(row: dict) -> dict:
    return {k: row[k] for k in COLUMNS[4:-1]}


class Season:
    def __init__(self, w: LedgerWorld):
        self.w = w
        c, prod, printer, auth = w.client, w.producer.headers, w.printer.headers, w.authority.headers
        # Batch A.
        self.a = a = w.approve(w.request(1000)["id"])
        ok(c.post(f"{API}/batches/{a['id']}/printed", headers=printer, json={"spoiled": [span(a, 991, 1000)]}))
        ok(c.post(f"{API}/batches/{a['id']}/spoiled", headers=printer,
                  json={"ranges": [span(a, 981, 985)], "reason": "smudged in store"}))
        ok(c.post(f"{API}/batches/{a['id']}/issue", headers=printer, json={"ranges": [span(a, 1, 600)]}))
        ok(c.post(f"{API}/activations", headers=prod, json={"ranges": [span(a, 1, 400)], "lot": w.lot("L-1", 1000)}),
           201)
        for rng, kind, actor in ((span(a, 1, 5), "voided", prod), (span(a, 401, 420), "voided", auth),
                                 (span(a, 421, 430), "lost", prod), (span(a, 431, 435), "stolen", prod)):
            ok(c.post(f"{API}/voids", headers=actor, json={"ranges": [rng], "kind": kind, "reason": "season"}))
        # Batch B.
        self.b = b = w.approve(w.request(500)["id"])
        ok(c.post(f"{API}/batches/{b['id']}/printed", headers=printer, json={}))
        ok(c.post(f"{API}/batches/{b['id']}/issue", headers=printer, json={}))
        ok(c.post(f"{API}/activations", headers=prod, json={"ranges": [span(b, 1, 250)], "lot": w.lot("L-2", 500)}),
           201)
        # Requests that made no batch.
        w.request(100)
        ok(c.post(f"{API}/mark-requests/{w.request(30)['id']}/refuse", headers=auth, json={"reason": "no report"}))
        ok(c.post(f"{API}/mark-requests/{w.request(50)['id']}/cancel", headers=prod, json={"reason": "mistake"}))

    @property
    def key(self) -> dict:
        return {"year": YEAR, "gi_id": self.w.gi.id, "producer_id": self.w.producer.org.id,
                "printer_id": self.w.printer.org.id}


EXPECTED = {"requested": 1630, "approved": 1500, "printed": 1500, "spoiled": 15, "issued": 1100, "activated": 645,
            "voided": 25, "lost": 15, "printer_stock": 385, "producer_stock": 415, "not_printed": 0}


@pytest.fixture
def season(factory, client, ledger_world, reused_world) -> Season:
    """The season played on the ledger world (`ledger_world`), once per test process and database; each test
    starts from its rows. A test's copy of the season gets its own copy of the world, bound to its factory and
    client (the reports are read at whatever time it is, as before)."""
    def rebind(played: Season) -> None:
        played.w = copy.copy(played.w)
        played.w.rebind(factory, client)

    return reused_world(f"ledger-report-season-{YEAR}", lambda: Season(ledger_world(year=YEAR)), rebind)


def second_producer(w: LedgerWorld):
    """Another authorized producer with its own plot, quota, printer and a 200-mark batch fully issued."""
    f = w.factory
    p2 = f.producer("341602")
    f.plot(p2, w.gi, side_m=50)
    f.authorization(p2, w.gi, w.authority)
    printer2 = f.printer()
    ok(w.client.post(f"{API}/quota-accounts", headers=w.authority.headers,
                     json={"producer_id": p2.org.id, "gi_id": w.gi.id, "year": YEAR}), 201)
    req = ok(w.client.post(f"{API}/mark-requests", headers=p2.headers,
                           json={"gi_id": w.gi.id, "pack_size_g": 250, "quantity": 200, "year": YEAR}), 201)
    batch = ok(w.client.post(f"{API}/mark-requests/{req['id']}/approve", headers=w.authority.headers,
                             json={"printer_id": printer2.org.id}), 201)
    ok(w.client.post(f"{API}/batches/{batch['id']}/printed", headers=printer2.headers, json={}))
    ok(w.client.post(f"{API}/batches/{batch['id']}/issue", headers=printer2.headers,
                     json={"ranges": [span(batch, 1, 150)]}))
    return p2, printer2, batch


# --- figures ---------------------------------------------------------------------------------

def test_report_figures_after_a_season(season):
    """Does the report give exact requested/approved/printed/spoiled/issued/activated/voided/lost/stock figures?"""
    rep = report(season.w)
    assert rep["balanced"] is True and rep["mismatches"] == []
    assert len(rep["rows"]) == 1
    row = rep["rows"][0]
    assert {k: row[k] for k in ("year", "gi_id", "producer_id", "printer_id")} == season.key
    assert figures(row) == EXPECTED
    assert row["balanced"] is True and all(row["checks"].values()) and len(row["checks"]) == 4
    # The identities, spelled out.
    assert row["approved"] == row["not_printed"] + row["printed"]
    assert row["printed"] == row["issued"] + row["spoiled"] + row["printer_stock"]
    assert row["issued"] == row["activated"] + row["voided"] + row["lost"] + row["producer_stock"]


def test_report_filters(season):
    """Do the year, GI, producer and printer filters select the season's row, and other values none?"""
    w = season.w
    for query in ({"year": YEAR}, {"gi_id": w.gi.id}, {"producer_id": w.producer.org.id},
                  {"year": YEAR, "gi_id": w.gi.id, "producer_id": w.producer.org.id}):
        rows = report(w, **query)["rows"]
        assert [figures(r) for r in rows] == [EXPECTED], query
    assert report(w, year=2025)["rows"] == []
    assert report(w, producer_id=w.printer.org.id)["rows"] == []
    by_printer = report(w, printer_id=w.printer.org.id)["rows"]
    assert [figures(r) for r in by_printer] == [{**EXPECTED, "requested": 0}]   # requests have no printer yet
    r = w.client.get(f"{API}/ledger/report", headers=w.authority.headers, query_string={"colour": "red"})
    assert r.status_code == 400 and r.json["error"] == "unknown_parameter", r.json


def test_report_as_csv(season):
    """Does format=csv give the header and one row per group with the same figures as the JSON?"""
    w = season.w
    r = w.client.get(f"{API}/ledger/report", headers=w.authority.headers, query_string={"format": "csv"})
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == COLUMNS
    assert len(rows) == 2
    expected = [str(v) for v in season.key.values()] + [str(EXPECTED[c]) for c in COLUMNS[4:-1]] + ["True"]
    assert rows[1] == expected
    as_dicts = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert as_dicts[0]["producer_stock"] == "415" and as_dicts[0]["spoiled"] == "15"
    empty = w.client.get(f"{API}/ledger/report", headers=w.authority.headers,
                         query_string={"format": "csv", "part": "mismatches"})
    assert list(csv.reader(io.StringIO(empty.get_data(as_text=True)))) == \
        [["batch_id", "state", "first", "last", "count", "problem"]]


def test_report_as_excel(season):
    """Does format=xlsx give the CSV's rows under Chinese headers, every figure an integer, balanced as 是/否?"""
    w = season.w
    sheet = read_download(w.client.get(f"{API}/ledger/report", headers=w.authority.headers,
                                       query_string={"format": "xlsx"}))
    assert sheet.header[:4] == ["年度 (year)", "地理标志编号 (gi_id)", "生产者编号 (producer_id)", "印制单位编号 (printer_id)"]
    assert [h[h.rindex("(") + 1:-1] for h in sheet.header] == COLUMNS
    assert sheet.rows == [[*season.key.values(), *[EXPECTED[c] for c in COLUMNS[4:-1]], "是 yes"]]
    assert all(isinstance(v, int) for v in sheet.rows[0][:-1])
    empty = read_download(w.client.get(f"{API}/ledger/report", headers=w.authority.headers,
                                       query_string={"format": "xlsx", "part": "mismatches"}))
    assert empty.header[0] == "批次编号 (batch_id)" and empty.rows == []


# --- who sees what ---------------------------------------------------------------------------

def test_producers_and_printers_see_only_their_own_rows(season):
    """Do producers and printers see only their own rows (whatever they ask for), and the authority all?"""
    w = season.w
    p2, printer2, _batch = second_producer(w)
    mine = {"requested": 200, "approved": 200, "printed": 200, "spoiled": 0, "issued": 150, "activated": 0,
            "voided": 0, "lost": 0, "printer_stock": 50, "producer_stock": 150, "not_printed": 0}

    rows = report(w)["rows"]
    assert sorted((r["producer_id"], r["printer_id"]) for r in rows) == \
        sorted([(w.producer.org.id, w.printer.org.id), (p2.org.id, printer2.org.id)])

    rep = report(w, p2)
    assert [(r["producer_id"], figures(r)) for r in rep["rows"]] == [(p2.org.id, mine)]
    assert rep["filters"]["producer_id"] == p2.org.id
    rep = report(w, p2, producer_id=w.producer.org.id)                      # asking for someone else's
    assert [r["producer_id"] for r in rep["rows"]] == [p2.org.id]
    rep = report(w, w.producer)
    assert [(r["producer_id"], figures(r)) for r in rep["rows"]] == [(w.producer.org.id, EXPECTED)]

    rep = report(w, w.printer)
    assert [(r["printer_id"], figures(r)) for r in rep["rows"]] == [(w.printer.org.id, {**EXPECTED, "requested": 0})]
    rep = report(w, printer2, printer_id=w.printer.org.id)
    assert [(r["printer_id"], figures(r)) for r in rep["rows"]] == [(printer2.org.id, {**mine, "requested": 0})]
    csv_rows = list(csv.reader(io.StringIO(w.client.get(
        f"{API}/ledger/report", headers=printer2.headers, query_string={"format": "csv"}).get_data(as_text=True))))
    assert [r[3] for r in csv_rows[1:]] == [str(printer2.org.id)]


def test_another_citys_authority_sees_nothing_of_this_gi(season, factory):
    """Does an authority of another city see no rows for this GI, in JSON or CSV, even when it asks by id?"""
    w = season.w
    far = factory.authority("340100")
    rep = report(w, far)
    assert rep["rows"] == [] and rep["mismatches"] == []
    assert report(w, far, gi_id=w.gi.id, producer_id=w.producer.org.id)["rows"] == []
    r = w.client.get(f"{API}/ledger/report", headers=far.headers, query_string={"format": "csv"})
    assert list(csv.reader(io.StringIO(r.get_data(as_text=True)))) == [COLUMNS]
    inspection = factory.inspection("440100")
    r = w.client.get(f"{API}/ledger/report", headers=inspection.headers)
    assert r.status_code == 403 and r.json["error"] == "wrong_role", r.json


# --- tampering -------------------------------------------------------------------------------

def test_tampered_range_unbalances_the_report(season, session):
    """Does moving printer stock to `issued` directly in the DB unbalance the row and list that serial range?"""
    w, a = season.w, season.a
    start = parse_serial(a["first_serial"]).seq + 600                          # serials 601-980: printer stock
    result = session.execute(text("UPDATE mark_ranges SET state = 'issued' "
                                  "WHERE batch_id = :b AND seq_start = :s AND state = 'printed'"),
                             {"b": a["id"], "s": start})
    assert result.rowcount == 1
    session.commit()

    rep = report(w)
    assert rep["balanced"] is False
    row = rep["rows"][0]
    assert row["balanced"] is False
    assert figures(row) == {**EXPECTED, "printer_stock": 5, "producer_stock": 415 + 380}
    assert row["checks"] == {"approved = not printed + printed": True,
                             "printed = issued + spoiled + printer stock": False,
                             "issued = activated + voided + lost + producer stock": False,
                             "every range backed by its ledger event": False}
    assert len(rep["mismatches"]) == 1
    m = rep["mismatches"][0]
    assert (m["batch_id"], m["state"], m["count"], m["first"], m["last"]) == \
        (a["id"], "issued", 380, serial(a, 601), serial(a, 980))
    assert "issued" in m["problem"] and "printed" in m["problem"]

    r = w.client.get(f"{API}/ledger/report", headers=w.authority.headers,
                     query_string={"format": "csv", "part": "mismatches"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows == [["batch_id", "state", "first", "last", "count", "problem"],
                    [str(a["id"]), "issued", serial(a, 601), serial(a, 980), "380", m["problem"]]]
    r = w.client.get(f"{API}/ledger/report", headers=w.authority.headers, query_string={"format": "csv"})
    assert list(csv.reader(io.StringIO(r.get_data(as_text=True))))[1][-1] == "False"


def test_tampered_activation_is_caught(season, session):
    """Does a range activated directly in the DB (no ledger event) show up as a mismatch naming its serials?"""
    w, b = season.w, season.b
    start = parse_serial(b["first_serial"]).seq + 250                          # serials 251-500: producer stock
    result = session.execute(text("UPDATE mark_ranges SET state = 'activated' "
                                  "WHERE batch_id = :b AND seq_start = :s AND state = 'issued'"),
                             {"b": b["id"], "s": start})
    assert result.rowcount == 1
    session.commit()
    rep = report(w)
    row = rep["rows"][0]
    assert figures(row) == {**EXPECTED, "activated": 645 + 250, "producer_stock": 415 - 250}
    # Counts alone still add up: the range is caught because no activation event backs it.
    assert [(m["batch_id"], m["state"], m["first"], m["last"]) for m in rep["mismatches"]] == \
        [(b["id"], "activated", serial(b, 251), serial(b, 500))]
    assert rep["balanced"] is False

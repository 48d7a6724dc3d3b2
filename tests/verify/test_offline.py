"""Syntax and MAC are checked offline: a forged or malformed code never reaches the ledger. Counted with an
SQLAlchemy `before_cursor_execute` listener on the app's engine.
"""
from __future__ import annotations

import pytest

from gi_service.models import Verdict
from gi_service.services import verification

from .conftest import forged

JSON = {"Accept": "application/json"}


@pytest.mark.parametrize("kind", ["forged_tag", "unknown_key", "malformed", "lower_case_garbage"])
def test_service_checks_forged_and_malformed_codes_without_sql(world, session, sql, kind):
    """Does check_code decide 'unknown' (bad MAC) or 'malformed' without one SQL statement?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    code = {"forged_tag": forged(b.code(1)),
            "unknown_key": "Q" + b.code(1)[1:], "malformed": b.code(1)[:-1],
            "lower_case_garbage": "not a code at all"}[kind]
    sql.statements.clear()
    check = verification.check_code(session, world.keyring, code)
    assert check.verdict in (Verdict.unknown, Verdict.malformed)
    assert sql.statements == []


@pytest.mark.parametrize("path", ["/v/{forged}", "/v/{malformed}", "/01/{gtin}/21/{serial}?v={bad_tag}",
                                  "/01/{gtin}/21/{serial}", "/01/{gtin}/21/{serial}?v=short"])
def test_http_check_of_a_forged_code_only_logs_the_scan(world, client, sql, path):
    """Does a forged or malformed check touch only the scan log: the INSERT of its scan row and, for an
    unknown code, the count of this client's recent unknown codes (burst signal) — never the ledger?"""
    gtin = "09506000134352"
    b = world.batch(10, gtin=gtin)
    world.activate(b, 1, 10)
    fake = forged(b.code(1))
    bad_tag = b.tag(2)  # a real tag, of another serial
    url = path.format(forged=fake, malformed="XYZ", gtin=gtin, serial=b.serial(1), bad_tag=bad_tag)
    sql.statements.clear()
    r = client.get(url, headers=JSON)
    assert r.status_code in (400, 404), r.json
    assert r.json["error"] in ("unknown", "malformed")
    data = sql.data_statements()
    assert data[0].upper().startswith("INSERT INTO SCANS"), data
    burst = [s for s in data[1:]]
    assert len(burst) <= 1 and all(s.startswith("SELECT count(*)") and "FROM scans" in s and "ip_hash" in s
                                   for s in burst), data
    assert (len(burst) == 1) == (r.json["error"] == "unknown")


def test_a_valid_code_costs_one_lookup_and_one_write(world, client, sql, backend):
    """Does a genuine check read everything its verdict rests on (range, batch, lot, authorization, GI status)
    in one statement, and log and count itself in one more (PostgreSQL) or two (SQLite)? And does the next
    check of the same mark find the page's display facts (GI, producer, history) cached?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    client.get(f"/v/{b.code(2)}", headers=JSON)          # warms the GI, producer and history caches
    sql.statements.clear()
    assert client.get(f"/v/{b.code(1)}", headers=JSON).status_code == 200
    data = sql.data_statements()
    selects = [s for s in data if s.upper().startswith("SELECT")]
    writes = [s for s in data if not s.upper().startswith("SELECT")]
    assert len(selects) == 1, selects
    for table in ("FROM mark_ranges", "mark_batches", "lots", "authorizations", "gis"):
        assert table in selects[0]
    assert len(writes) == (1 if backend == "postgresql" else 2), writes
    assert "INSERT INTO scans" in writes[0] and "mark_checks" in writes[-1]

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


LEDGER_TABLES = ("mark_ranges", "mark_batches", "lots", "authorizations")


@pytest.mark.parametrize("path", ["/v/{forged}", "/v/{malformed}", "/01/{gtin}/21/{serial}?v={bad_tag}",
                                  "/01/{gtin}/21/{serial}", "/01/{gtin}/21/{serial}?v=short"])
def test_http_check_of_a_forged_code_only_logs_the_scan(world, client, sql, buffered, path):
    """Does a forged or malformed check run no SQL at all while it is answered, and is it then written by the
    check log's flush — the INSERT of its scan row and, for an unknown code, one count of this client's recent
    unknown codes (burst signal) — never touching the ledger?"""
    gtin = "09506000134352"
    b = world.batch(10, gtin=gtin)
    world.activate(b, 1, 10)
    fake = forged(b.code(1))
    bad_tag = b.tag(2)  # a real tag, of another serial
    url = path.format(forged=fake, malformed="XYZ", gtin=gtin, serial=b.serial(1), bad_tag=bad_tag)
    buffered.new_id()                                    # the process's block of check ids, taken once
    sql.statements.clear()
    r = client.get(url, headers=JSON)
    assert r.status_code in (400, 404), r.json
    assert r.json["error"] in ("unknown", "malformed")
    assert sql.data_statements() == []                   # the answer did not wait for any statement
    assert buffered.flush() == 1
    data = sql.data_statements()
    assert not any(table in s for s in data for table in LEDGER_TABLES), data
    inserts = [s for s in data if "INSERT INTO scans" in s]
    assert len(inserts) == 1, data
    burst = [s for s in data if "ip_hash IN" in s and "FROM scans" in s]
    assert (len(burst) == 1) == (r.json["error"] == "unknown"), data


def test_a_valid_code_costs_one_lookup_and_no_write(world, client, sql, buffered, backend):
    """Does a genuine check read everything its verdict and its count rest on (range, batch, lot, authorization,
    GI status, the serial's counter) in one statement and write nothing before it answers? Is it then logged
    and counted by the flush in one statement (PostgreSQL) or a select, an insert and an upsert (SQLite)? And
    does the next check of the same mark find the page's display facts (GI, producer, history) cached?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    client.get(f"/v/{b.code(2)}", headers=JSON)          # warms the GI, producer and history caches
    buffered.flush()
    sql.statements.clear()
    assert client.get(f"/v/{b.code(1)}", headers=JSON).status_code == 200
    data = sql.data_statements()
    assert len(data) == 1 and data[0].upper().startswith("SELECT"), data
    for table in ("FROM mark_ranges", "mark_batches", "lots", "authorizations", "gis", "mark_checks"):
        assert table in data[0]
    if backend == "postgresql":
        assert "BEGIN" not in [s.upper() for s in sql.statements]      # autocommit: one round trip
    sql.statements.clear()
    assert buffered.flush() == 1
    writes = sql.data_statements()
    if backend == "postgresql":
        assert len(writes) == 1 and "INSERT INTO scans" in writes[0] and "INSERT INTO mark_checks" in writes[0]
    else:
        assert [w.split()[0].upper() for w in writes] == ["SELECT", "INSERT", "INSERT"], writes
        assert "INSERT INTO scans" in writes[1] and "mark_checks" in writes[2]

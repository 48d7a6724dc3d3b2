"""The check log written behind the answer (gi_service/services/checklog.py).

Two apps on one database stand for two server processes: each has its own check log (buffer, id
block, flusher). The `buffered` fixture makes the test app's log behave as in production, except that
only the test flushes it.
"""
from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from sqlalchemy import func, select, text

from gi_service import create_app
from gi_service.codes import parse_serial
from gi_service.models import Clue, MarkCheck, Scan, ScanIdBlock, UAClass, Verdict
from gi_service.services import checklog as checklog_module
from gi_service.services.checklog import PendingCheck

from .conftest import flushed_by_hand

JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
UTC = dt.timezone.utc


def check(client, code: str, ip: str = "198.51.100.1"):
    r = client.get(f"/v/{code}", headers={"User-Agent": PHONE, **JSON}, environ_base={"REMOTE_ADDR": ip})
    return r.json if r.status_code == 200 else r.json["details"]


def rows(session, model, *where):
    session.rollback()   # a fresh snapshot: the flushes committed on other connections
    return session.scalars(select(model).where(*where)).all()


@pytest.fixture
def other_app(app, database):
    """A second server process on the same database: its own check log, buffered, flushed by the test."""
    settings = app.config["GI_SETTINGS"]
    other = create_app(settings)
    other.config["TESTING"] = True
    flushed_by_hand(other.extensions["gi_checklog"])
    yield other
    other.extensions["gi_engine"].dispose()


def test_the_answer_does_not_wait_for_its_row(world, client, session, buffered):
    """Is a check answered with its scan token before its row exists, and written, under that id, by the flush?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    doc = check(client, b.code(1))
    scan_id = int(doc["scan"]["token"].split(".")[0])
    assert doc["checks"]["count"] == 1 and buffered.buffered() == 1
    assert rows(session, Scan) == []
    assert buffered.flush() == 1
    [scan] = rows(session, Scan)
    assert scan.id == scan_id and scan.verdict == Verdict.genuine and scan.ua_class == UAClass.mobile
    [counter] = rows(session, MarkCheck)
    assert counter.count == 1 and counter.first_scan_id == scan_id == counter.last_scan_id


def test_checked_n_times_counts_what_is_not_written_yet(world, client, session, buffered, other_app):
    """Does "checked N times" include this process's checks still in its buffer, and another process's once
    they are flushed (the lookup reads the counter in the same statement)?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    assert [check(client, b.code(1))["checks"]["count"] for _ in range(3)] == [1, 2, 3]
    other = other_app.test_client()
    assert check(other, b.code(1))["checks"]["count"] == 1          # the first process wrote nothing yet
    buffered.flush()
    assert check(other, b.code(1))["checks"]["count"] == 5          # 3 written + its own 2
    other_app.extensions["gi_checklog"].flush()
    assert check(client, b.code(1))["checks"]["count"] == 6
    buffered.flush()
    [counter] = rows(session, MarkCheck)
    assert counter.count == 6 == len(rows(session, Scan))


def test_a_retried_flush_counts_nothing_twice(world, client, session, buffered):
    """If a flush is written again (its commit's outcome was unknown), are no checks duplicated and no counter
    or alert bumped a second time?"""
    r = client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                     json={"check_alert_threshold": 2, "reason": "test"})
    assert r.status_code == 200
    b = world.batch(10)
    world.activate(b, 1, 10)
    for _ in range(3):
        check(client, b.code(1))
    batch = list(buffered._buffer)
    buffered.flush()
    again = buffered._write(batch)                       # the same rows again, as a retry would send them
    assert again.inserted == [] and again.counters == {}
    [counter] = rows(session, MarkCheck)
    assert counter.count == 3 and len(rows(session, Scan)) == 3
    [alert] = rows(session, Clue)
    assert alert.occurrences == 2                        # the 2nd and 3rd checks, once each


def test_batches_arriving_out_of_order_keep_first_and_last(world, session, buffered, other_app):
    """When a process flushes older checks after another flushed newer ones, do first/last times and their
    scan ids still name the earliest and the latest check (LEAST/GREATEST), and the count add up?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    serial = parse_serial(b.serial(1))
    late = other_app.extensions["gi_checklog"]
    t0 = dt.datetime(2026, 6, 1, 8, tzinfo=UTC)

    def pending(log, minutes: int) -> PendingCheck:
        return PendingCheck(id=log.new_id(), at=t0 + dt.timedelta(minutes=minutes), series=serial.series,
                            seq=serial.seq, mac_ok=True, verdict=Verdict.genuine, detail=None, ip_hash=None,
                            ua_class=UAClass.mobile, counted=True, gi_id=world.gi.id,
                            producer_id=world.producer.org.id)

    newer = [pending(buffered, m) for m in (30, 40)]
    older = [pending(late, m) for m in (10, 50, 20)]
    for c in newer:
        buffered.append(c)
    for c in older:
        late.append(c)
    buffered.flush()
    late.flush()
    [counter] = rows(session, MarkCheck)
    assert counter.count == 5
    assert (counter.first_at, counter.first_scan_id) == (t0 + dt.timedelta(minutes=10), older[0].id)
    assert (counter.last_at, counter.last_scan_id) == (t0 + dt.timedelta(minutes=50), older[1].id)


def test_id_blocks_are_never_handed_out_twice(app, session, other_app, backend):
    """Do two processes get disjoint blocks of check ids, each recorded, and does a row inserted with a default id
    (not through the check log) never take an id inside a block already handed out?"""
    first, second = app.extensions["gi_checklog"], other_app.extensions["gi_checklog"]
    a = [first.new_id() for _ in range(3)]
    b = [second.new_id() for _ in range(3)]
    assert a == list(range(a[0], a[0] + 3)) and b == list(range(b[0], b[0] + 3))
    blocks = rows(session, ScanIdBlock)
    assert len(blocks) == 2
    spans = sorted((blk.first_id, blk.first_id + blk.size - 1) for blk in blocks)
    assert spans[0][1] < spans[1][0]                         # disjoint
    assert all(any(lo <= i <= hi for lo, hi in spans) for i in a + b)
    session.add(Scan(at=dt.datetime.now(UTC), mac_ok=False, verdict=Verdict.malformed, ua_class=UAClass.other))
    session.commit()
    direct = session.scalar(select(func.max(Scan.id)))
    assert direct > spans[1][1]


def test_a_location_waits_for_a_check_another_process_has_not_written(world, client, buffered, other_app):
    """Is a location for a check still in another process's buffer answered 503 with Retry-After (the page
    retries), and accepted once that process has flushed; and does the same process flush its own at once?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    doc = check(client, b.code(1))
    other = other_app.test_client()
    body = {"token": doc["scan"]["token"], "lat": 30.26, "lon": 120.13}
    r = other.post(f"/v/{b.code(1)}/location", headers=JSON, json=body)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1" and r.json["error"] == "check_not_recorded_yet"
    buffered.flush()
    r = other.post(f"/v/{b.code(1)}/location", headers=JSON, json=body)
    assert r.status_code == 200 and r.json["adcode"] == "330106"

    doc = check(client, b.code(2))                           # in this process's own buffer
    r = client.post(f"/v/{b.code(2)}/location", headers=JSON,
                    json={"token": doc["scan"]["token"], "lat": 30.26, "lon": 120.13})
    assert r.status_code == 200


def test_the_warning_shows_on_the_check_that_crosses_the_threshold(world, client, session, buffered):
    """Before any flush, does the check whose count reaches the threshold already show the copied-label warning,
    and does the flush then raise the alert and mark the code, so every later check shows it?"""
    r = client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                     json={"check_alert_threshold": 3, "reason": "test"})
    assert r.status_code == 200
    b = world.batch(10)
    world.activate(b, 1, 10)
    assert "suspect" not in check(client, b.code(1)) and "suspect" not in check(client, b.code(1))
    assert check(client, b.code(1))["suspect"]["reasons"] == ["too_many_checks"]
    assert rows(session, Clue) == []
    buffered.flush()
    [alert] = rows(session, Clue)
    assert alert.alert_kind.value == "too_many_checks" and alert.occurrences == 1
    [counter] = rows(session, MarkCheck)
    assert counter.suspect_reasons == "too_many_checks"
    assert check(client, b.code(1))["suspect"]["reasons"] == ["too_many_checks"]


def test_concurrent_flushes_of_the_same_codes_neither_deadlock_nor_lose(world, app, session, backend):
    """Do several processes flushing checks of the same serials at the same time, in random order, all commit,
    with every counter equal to its rows?"""
    b = world.batch(20)
    world.activate(b, 1, 20)
    serials = [parse_serial(b.serial(n)) for n in range(1, 21)]
    settings = app.config["GI_SETTINGS"]
    apps = [create_app(settings) for _ in range(4)]
    logs = [a.extensions["gi_checklog"] for a in apps]
    errors: list[BaseException] = []
    t0 = dt.datetime(2026, 6, 1, 8, tzinfo=UTC)

    def work(log, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _round in range(5):
                batch = []
                for serial in rng.sample(serials, len(serials)):
                    batch.append(PendingCheck(id=log.new_id(), at=t0 + dt.timedelta(seconds=rng.randrange(3600)),
                                              series=serial.series, seq=serial.seq, mac_ok=True,
                                              verdict=Verdict.genuine, detail=None, ip_hash=None,
                                              ua_class=UAClass.mobile, counted=True, gi_id=world.gi.id,
                                              producer_id=world.producer.org.id))
                log._write_with_retries(batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(log, i)) for i, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for a in apps:
        a.extensions["gi_engine"].dispose()
    assert errors == []
    session.rollback()
    counts = dict(session.execute(select(MarkCheck.seq, MarkCheck.count)).all())
    per_serial = dict(session.execute(select(Scan.seq, func.count()).group_by(Scan.seq)).all())
    assert counts == per_serial and set(counts.values()) == {4 * 5}


def test_closing_writes_what_is_buffered(world, client, session, buffered, app):
    """Does closing the check log (a worker's exit, the engine disposed) write the checks still buffered?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    for n in (1, 2, 3):
        check(client, b.code(n))
    assert buffered.buffered() == 3
    buffered.close()
    assert buffered.buffered() == 0
    assert len(rows(session, Scan)) == 3


def test_a_forked_process_takes_its_own_ids_and_buffer(world, client, buffered, monkeypatch):
    """After a fork (gunicorn's preloaded app), does the child start with an empty buffer and a new id block,
    never the parent's?"""
    b = world.batch(10)
    world.activate(b, 1, 10)
    parent_id = buffered.new_id()
    check(client, b.code(1))
    assert buffered.buffered() == 1
    monkeypatch.setattr(checklog_module.os, "getpid", lambda: 4_000_000)
    child_id = buffered.new_id()
    assert buffered.buffered() == 0 and buffered.pending(*_key(b.serial(1))) == (0, None)
    assert child_id > parent_id + 1                      # a block of its own, not the parent's next id
    buffered.close()                                     # the child's flusher thread stops


def _key(serial_text: str) -> tuple[str, int]:
    s = parse_serial(serial_text)
    return s.series, s.seq


def test_the_id_sequence_is_one_every_writer_shares(app, session, backend):
    """Is the scans id sequence one that every writer draws from: on PostgreSQL stepping by a whole block (one
    nextval is one block), on SQLite the AUTOINCREMENT table's sqlite_sequence row?"""
    if backend == "postgresql":
        step = session.scalar(text("SELECT seqincrement FROM pg_sequence "
                                   "WHERE seqrelid = pg_get_serial_sequence('scans', 'id')::regclass"))
        assert step == checklog_module.ID_BLOCK
    else:
        ddl = session.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'scans'"))
        assert "AUTOINCREMENT" in ddl
        assert session.scalar(text("SELECT count(*) FROM sqlite_sequence WHERE name = 'scans'")) == 1


def test_a_reader_connection_the_server_dropped_is_replaced(world, client, app, backend):
    """The verdict's lookup runs without a pre-ping: when the server has dropped the pooled connection (a restart,
    a proxy's idle cut), is the read retried once on a fresh connection, so the consumer still gets the verdict?
    (SQLite has no server connection to lose: there the lookup runs on the request's own connection.)"""
    from gi_service.db import reader_engine

    b = world.batch(10)
    world.activate(b, 1, 10)
    assert check(client, b.code(1))["verdict"] == "genuine"
    engine = app.extensions["gi_engine"]
    if backend != "postgresql":
        assert "gi_engine" in app.extensions and engine.dialect.name == "sqlite"
        assert check(client, b.code(2))["verdict"] == "genuine"
        return
    twin = reader_engine(engine)
    with twin.connect() as conn:                             # the pooled reader connection(s)
        pids = [conn.connection.driver_connection.info.backend_pid]
    with engine.begin() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    doc = check(client, b.code(2))
    assert doc["verdict"] == "genuine" and doc["checks"]["count"] == 1


def test_apps_sharing_an_engine_each_close_their_own_log_and_leave_the_engine_open(app, world, session):
    """May several apps run on one engine (an embedding application, the test run): does `close_app` write and
    stop that app's buffered checks only, leave the engine usable for its owner, and does disposing the engine
    close every log still open on it?"""
    from gi_service import close_app

    engine = app.extensions["gi_engine"]
    settings = app.config["GI_SETTINGS"]
    first, second = create_app(settings, engine=engine), create_app(settings, engine=engine)
    assert first.extensions["gi_engine"] is engine and not first.extensions["gi_owns_engine"]
    logs = [flushed_by_hand(a.extensions["gi_checklog"]) for a in (first, second)]
    b = world.batch(4)
    world.activate(b, 1, 4)
    for a, n in ((first, 1), (first, 2), (second, 3)):
        check(a.test_client(), b.code(n))
    assert [log.buffered() for log in logs] == [2, 1]

    close_app(first)
    assert logs[0].buffered() == 0 and logs[1].buffered() == 1
    assert len(rows(session, Scan)) == 2                    # the engine still answers its owner
    engine.dispose()                                        # the owner's end closes what is left
    assert logs[1].buffered() == 0 and len(rows(session, Scan)) == 3

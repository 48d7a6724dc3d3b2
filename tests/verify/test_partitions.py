"""The check log partitioned by month on PostgreSQL (gi_service/services/partitions.py); one table on SQLite."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from gi_service import clock
from gi_service.models import AlertKind, Scan, UAClass, Verdict
from gi_service.services import partitions, scans, signals

UTC = dt.timezone.utc


@pytest.fixture(autouse=True)
def partition_layout(app, backend):
    """The database is shared by the session's tests: put its months back as they were after each test here."""
    yield
    if backend != "postgresql":
        return
    with Session(app.extensions["gi_engine"]) as s:
        s.rollback()
        s.execute(text("TRUNCATE scans, clues CASCADE"))
        expected = {partitions.month_name(months_ahead(n)) for n in (1, 2, 3)}
        for p in partitions.partitions(s):
            if p.start is not None and p.name not in expected:
                s.execute(text(f'DROP TABLE "{p.name}"'))
        have = {p.name for p in partitions.partitions(s)}
        for n in (1, 2, 3):
            if partitions.month_name(months_ahead(n)) not in have:
                partitions._make_month(s, months_ahead(n), months_ahead(n + 1))
        s.commit()


def add_check(session, at: dt.datetime) -> int:
    return session.execute(insert(Scan).values(at=at, mac_ok=False, verdict=Verdict.unknown, ua_class=UAClass.mobile)
                           .returning(Scan.id)).scalar_one()


def partition_of(session, scan_id: int) -> str:
    return session.scalar(text("SELECT tableoid::regclass::text FROM scans WHERE id = :id"), {"id": scan_id})


def months_ahead(n: int) -> dt.date:
    first = partitions.month_start(clock.now())
    for _ in range(n):
        first = partitions.next_month(first)
    return first


def test_the_log_is_partitioned_by_month_on_postgresql(session, backend):
    """Is `scans` on PostgreSQL partitioned by month, with the table from before partitioning, the coming months
    and a default partition for evidence; and on SQLite one plain table?"""
    if backend != "postgresql":
        assert not partitions.is_partitioned(session)
        assert partitions.ensure_months(session, today=clock.now().date()) == []
        return
    assert partitions.is_partitioned(session)
    names = [p.name for p in partitions.partitions(session)]
    assert names[0].startswith("scans_before_y")
    assert names[1:] == [partitions.month_name(months_ahead(n)) for n in (1, 2, 3)]
    kept = session.scalar(text("SELECT c.relname FROM pg_partitioned_table t JOIN pg_class c ON c.oid = t.partdefid "
                               "WHERE t.partrelid = to_regclass('scans')"))
    assert kept == partitions.DEFAULT_PARTITION


def test_making_months_ahead_moves_early_checks_and_is_idempotent(session, backend):
    """Does `ensure_months` make the missing months, move a check that arrived before its month existed out of the
    default partition into it, and change nothing when run again?"""
    far = months_ahead(6)
    at = dt.datetime(far.year, far.month, 3, 12, tzinfo=UTC)
    scan_id = add_check(session, at)
    session.commit()
    if backend != "postgresql":
        assert partitions.ensure_months(session, today=far) == []
        return
    assert partition_of(session, scan_id) == partitions.DEFAULT_PARTITION
    made = partitions.ensure_months(session, today=months_ahead(4), ahead=2)
    session.commit()
    assert made == [partitions.month_name(months_ahead(n)) for n in (4, 5, 6)]
    assert partition_of(session, scan_id) == partitions.month_name(far)
    assert partitions.ensure_months(session, today=months_ahead(4), ahead=2) == []
    session.commit()


def test_hosts_making_months_at_once_take_turns(app, session, backend):
    """When two hosts run the partition command at the same moment, does one wait for the other (advisory lock) and
    then find nothing left to make, rather than both failing or making a month twice?"""
    if backend != "postgresql":
        assert partitions.ensure_months(session, today=months_ahead(8)) == []
        return
    engine = app.extensions["gi_engine"]
    first, second = Session(engine), Session(engine)
    made_first = partitions.ensure_months(first, today=months_ahead(8), ahead=0)     # holds the lock, not committed
    result: dict = {}
    t = threading.Thread(target=lambda: result.setdefault("second", partitions.ensure_months(
        second, today=months_ahead(8), ahead=0)))
    t.start()
    t.join(timeout=1.0)
    assert t.is_alive()                                       # waiting on the lock
    first.commit()
    t.join(timeout=30)
    second.commit()
    first.close()
    second.close()
    assert made_first == [partitions.month_name(months_ahead(8))] and result["second"] == []


def test_retention_drops_whole_months_and_keeps_the_evidence(session, backend):
    """Does prune drop each month older than the retention period whole (no row-by-row delete on PostgreSQL),
    keeping the check a clue points to, which stays readable through `scans`?"""
    month = months_ahead(1)
    ats = [dt.datetime(month.year, month.month, d, 9, tzinfo=UTC) for d in (2, 3, 4)]
    ids = [add_check(session, at) for at in ats]
    signals.raise_alert(session, AlertKind.unknown_burst, subject="evidence", at=ats[0], summary="evidence",
                        details={}, places=[], scan_id=ids[0])
    session.commit()
    later = dt.datetime(month.year + 3, month.month, 1, tzinfo=UTC)      # three years on: the month is past retention
    result = scans.prune(session, now=later)
    session.rollback()
    left = session.scalars(select(Scan.id).where(Scan.id.in_(ids))).all()
    assert left == [ids[0]]
    assert result.scans_deleted == 2
    if backend == "postgresql":
        assert partitions.month_name(month) in result.partitions_dropped
        assert partition_of(session, ids[0]) == partitions.DEFAULT_PARTITION
        names = [p.name for p in partitions.partitions(session)]
        assert partitions.month_name(month) not in names
    again = scans.prune(session, now=later)
    assert again.scans_deleted == 0 and again.partitions_dropped == []


def test_reading_the_log_by_time_touches_only_its_months(session, backend):
    """Does a query over one month of checks read only that month's partition (and the small default one), as
    statistics, EPCIS and the signals do?"""
    month = months_ahead(2)
    lo = dt.datetime(month.year, month.month, 1, tzinfo=UTC)
    hi = dt.datetime(*partitions.next_month(month).timetuple()[:3], tzinfo=UTC)
    query = "SELECT count(*) FROM scans WHERE at >= :lo AND at < :hi"
    if backend != "postgresql":                              # one table: the whole of it
        plan = session.execute(text("EXPLAIN QUERY PLAN " + query), {"lo": lo, "hi": hi}).all()
        assert any("scans" in row[-1] for row in plan)
        return
    plan = "\n".join(session.execute(text("EXPLAIN " + query), {"lo": lo, "hi": hi}).scalars())
    assert partitions.month_name(month) in plan
    assert partitions.month_name(months_ahead(1)) not in plan and "scans_before_" not in plan


def test_the_cron_command_makes_months_ahead(app, session, backend):
    """Does `gi-service scans partitions --ahead N` make the missing months on PostgreSQL (and say so), find
    nothing to do when run again, and say on SQLite that the log is one table?"""
    from click.testing import CliRunner

    from gi_service.cli import main

    env = {"GI_DATABASE_URL": app.config["GI_SETTINGS"].database_url, "GI_INSTANCE_PATH": str(app.instance_path)}
    first = CliRunner().invoke(main, ["scans", "partitions", "--ahead", "5"], env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    if backend != "postgresql":
        assert "one table" in first.output
        return
    expected = [partitions.month_name(months_ahead(n)) for n in (4, 5)]
    assert "made 2 partition(s)" in first.output and all(name in first.output for name in expected)
    again = CliRunner().invoke(main, ["scans", "partitions", "--ahead", "5"], env=env, catch_exceptions=False)
    assert "has its partition already" in again.output

"""The scan log's retention policy: IP hashes forgotten after 30 days, checks after two years, evidence kept."""
from __future__ import annotations

import datetime as dt

from click.testing import CliRunner
from sqlalchemy import func, select

from gi_service.cli import main
from gi_service.models import Clue, ConsumerReport, MarkCheck, Scan
from gi_service import clock

JSON = {"Accept": "application/json"}
PHONE = "Mozilla/5.0 (iPhone) Mobile"


def test_prune_forgets_old_hashes_and_checks_but_keeps_evidence_and_counts(world, client, session, monkeypatch):
    """After `gi-service scans prune`: are IP hashes older than 30 days cleared, checks older than two years
    deleted except the one a consumer report points to, the counters untouched, and a second run a no-op?"""
    b = world.batch(5)
    world.activate(b, 1, 5)
    now = dt.datetime.now(dt.timezone.utc)
    moments = {"three_years": now - dt.timedelta(days=1100), "reported": now - dt.timedelta(days=1000),
               "two_months": now - dt.timedelta(days=60), "today": now}
    tokens = {}
    for name, at in moments.items():
        monkeypatch.setattr(clock, "now", lambda at=at: at)
        r = client.get(f"/v/{b.code(1)}", headers={"User-Agent": PHONE, **JSON})
        tokens[name] = r.json["scan"]["token"]
        if name == "reported":
            rep = client.post(f"/v/{b.code(1)}/report", headers=JSON,
                              json={"token": tokens[name], "description": "label looks reprinted", "shop_name": "A"})
            assert rep.status_code == 201, rep.json
    monkeypatch.undo()
    env = {"GI_DATABASE_URL": world.app.config["GI_SETTINGS"].database_url,
           "GI_INSTANCE_PATH": str(world.app.instance_path)}
    first = CliRunner().invoke(main, ["scans", "prune"], env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "cleared 3 IP hashes" in first.output and "deleted 1 checks" in first.output and "kept 1" in first.output
    session.rollback()
    left = session.execute(select(Scan.at, Scan.ip_hash).order_by(Scan.id)).all()
    assert len(left) == 3
    assert [h is None for _at, h in left] == [True, True, False]
    reported_scan = session.scalar(select(Clue.scan_id))
    assert reported_scan in session.scalars(select(Scan.id)).all()
    assert session.scalar(select(MarkCheck.count)) == 4                       # "checked 4 times" stays true
    again = CliRunner().invoke(main, ["scans", "prune"], env=env, catch_exceptions=False)
    assert "cleared 0 IP hashes" in again.output and "deleted 0 checks" in again.output
    assert session.scalar(select(func.count()).select_from(Scan)) == 3
    assert session.scalar(select(ConsumerReport.ip_hash)) is None               # the report's hash too


def test_prune_forgets_old_records_of_check_id_blocks(app, session):
    """Are records of which process took which block of check ids kept for 30 days, and older ones forgotten?"""
    from gi_service.models import ScanIdBlock
    from gi_service.services import scans as scan_service

    log = app.extensions["gi_checklog"]
    log.new_id()                                           # a block taken now
    now = dt.datetime.now(dt.timezone.utc)
    session.add(ScanIdBlock(first_id=10**12, size=128, taken_at=now - dt.timedelta(days=31), host="old", pid=1))
    session.commit()
    result = scan_service.prune(session)
    assert result.id_blocks_deleted == 1
    session.rollback()
    assert [blk.host for blk in session.scalars(select(ScanIdBlock))] != ["old"]
    assert session.scalar(select(func.count()).select_from(ScanIdBlock)) == 1      # this process's, kept

"""Tamper evidence and retention of the audit trail: every direct edit of the database is caught and located,
pruning keeps what remains verifiable, and the operator's commands are recorded like any staff action."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from gi_service.cli import UNAUDITED, main
from gi_service.db import write_session
from gi_service.models import AuditCheckpoint, AuditHead, AuditRecord
from gi_service.services import audit
from tests.factories import ServiceClock

N = 6


@pytest.fixture
def trail(app, client, factory, database, tmp_path):
    """Six records: three token creations, a refused one, two sign-ins; and the CLI's environment."""
    authority = factory.authority()
    for n in range(3):
        assert client.post("/api/v1/tokens", headers=authority.headers, json={"name": f"t{n}"}).status_code == 201
    assert client.post("/api/v1/tokens", headers=authority.headers, json={"name": ""}).status_code == 422
    for password in ("wrong-password-0", "password-123456"):
        client.post("/api/v1/auth/login", json={"username": authority.principal.username, "password": password})
    settings = app.config["GI_SETTINGS"]
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path / "cli"),
           "GI_LEDGER_SIGNING_KEY": settings.ledger_signing_key, "GI_MARK_KEYS": settings.mark_keys,
           "GI_MARK_KEY_ID": settings.mark_key_id}
    with fresh(app) as s:
        assert s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.seq.is_not(None))) == N
    return env


def fresh(app) -> Session:
    return Session(app.extensions["gi_engine"], expire_on_commit=False)


def verify(app) -> audit.VerifyResult:
    with fresh(app) as s:
        return audit.verify(s, signer=app.extensions["gi_signer"])


def tamper(app, statement) -> None:
    with fresh(app) as s:
        s.execute(statement)
        s.commit()


def cli(env, *args):
    return CliRunner().invoke(main, ["audit", *args], env=env)


def sign_checkpoint(app):
    with write_session(app.extensions["gi_engine"]) as s:
        cp = audit.checkpoint(s, app.extensions["gi_signer"])
        s.commit()
        return cp


RECORDS = AuditRecord.__table__


def test_an_untouched_trail_verifies_from_the_service_and_the_command_line(app, trail):
    """Does the chain of six records verify, by the service and by `gi-service audit verify`?"""
    result = verify(app)
    assert (result.ok, result.records, result.head_seq, result.pending) == (True, N, N, 0)
    out = cli(trail, "verify")
    assert out.exit_code == 0 and f"audit trail OK: {N} records" in out.output


@pytest.mark.parametrize("field,value", [("username", "someone-else"), ("outcome", "success"),
                                         ("address", "10.9.9.9"), ("detail", {"sign_in": False})])
def test_a_changed_record_is_caught_at_that_record(app, trail, field, value):
    """Is an edit of any field of record 4 (the refused write) reported at record 4, by both?"""
    tamper(app, update(RECORDS).where(RECORDS.c.seq == 4).values({field: value}))
    result = verify(app)
    assert (result.ok, result.first_broken_seq) == (False, 4) and "altered" in result.problem
    out = cli(trail, "verify")
    assert out.exit_code == 1 and "BROKEN at record 4" in out.output


def test_a_deleted_record_is_caught_where_it_was(app, trail):
    """Is deleting record 3 reported as record 3 missing; deleting the last one as the end no longer the head?"""
    tamper(app, delete(RECORDS).where(RECORDS.c.seq == 3))
    result = verify(app)
    assert (result.ok, result.first_broken_seq) == (False, 3) and "missing" in result.problem
    tamper(app, delete(RECORDS).where(RECORDS.c.seq == N))
    assert verify(app).first_broken_seq == 3
    assert cli(trail, "verify").exit_code == 1


def test_deleting_the_newest_record_is_caught_by_the_head(app, trail):
    """Is dropping the newest record (the chain still consistent) caught against the head?"""
    tamper(app, delete(RECORDS).where(RECORDS.c.seq == N))
    result = verify(app)
    assert (result.ok, result.first_broken_seq) == (False, N) and "head" in result.problem


def test_an_inserted_record_is_caught(app, trail):
    """Is a record slipped into the chain (a well-formed link after the last, the head left alone) caught?"""
    with fresh(app) as s:
        last = s.scalar(select(AuditRecord).where(AuditRecord.seq == N))
        forged = AuditRecord(at=last.at, channel="api", action="api.create_user", outcome="success", detail={},
                             username="ghost", seq=N + 1, prev_hash=last.hash, hash_alg="sha256")
        s.add(forged)
        s.flush()
        forged.hash = audit.record_hash(last.hash, forged, "sha256")
        s.commit()
    result = verify(app)
    assert (result.ok, result.first_broken_seq) == (False, N + 1) and "head" in result.problem


def test_a_rewritten_history_is_caught_by_a_signed_checkpoint(app, trail):
    """If an intruder edits record 2 and recomputes every later link and the head, does the chain look whole
    but a checkpoint signed before contradict it?"""
    sign_checkpoint(app)
    with fresh(app) as s:
        rows = list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
        rows[1].username = "someone-else"
        prev = rows[0].hash
        for row in rows[1:]:
            row.prev_hash, row.hash = prev, audit.record_hash(prev, row, row.hash_alg)
            prev = row.hash
        s.get(AuditHead, 1).hash = prev
        s.commit()
    result = verify(app)
    assert (result.ok, result.first_broken_seq) == (False, N) and "checkpoint" in result.problem


def test_a_forged_checkpoint_signature_is_caught(app, trail):
    cp = sign_checkpoint(app)
    tamper(app, update(AuditCheckpoint.__table__).where(AuditCheckpoint.__table__.c.id == cp.id)
           .values(signature=cp.signature[:-4] + "AAAA"))
    result = verify(app)
    assert not result.ok and "invalid signature" in result.problem


def test_writers_leave_records_unsealed_and_the_sealer_chains_them_in_id_order(app, trail):
    """Are records written without chain fields (as a writer does) chained by `audit seal`, in id order?"""
    with fresh(app) as s:
        for n in range(3):
            s.add(audit.Capture(channel="api", action=f"api.x{n}").record(audit.SUCCESS))
        s.commit()
    assert verify(app).pending == 3
    out = cli(trail, "seal")
    assert out.exit_code == 0 and "sealed 3" in out.output
    with fresh(app) as s:
        tail = list(s.scalars(select(AuditRecord).where(AuditRecord.seq > N).order_by(AuditRecord.seq)))
    assert [r.action for r in tail] == ["api.x0", "api.x1", "api.x2"]
    assert verify(app).ok


def test_prune_keeps_the_retention_period_and_what_remains_verifiable(app, trail, monkeypatch):
    """Does pruning delete only records older than the period, sign a checkpoint at the cut, and leave a trail
    that verifies from it — and is a deletion beyond the cut still caught?"""
    clock = ServiceClock(monkeypatch, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=200))
    with fresh(app) as s:     # a record within the period, among the old ones
        s.add(audit.Capture(channel="api", action="api.recent").record(audit.SUCCESS))
        s.commit()
    with write_session(app.extensions["gi_engine"]) as s:
        with pytest.raises(Exception, match="at least 180 days"):
            audit.prune(s, app.extensions["gi_signer"], retention_days=30)
        s.rollback()
    with write_session(app.extensions["gi_engine"]) as s:
        result = audit.prune(s, app.extensions["gi_signer"], retention_days=180)
        s.commit()
    assert (result.deleted, result.cut_seq) == (N, N)
    result = verify(app)
    assert (result.ok, result.records, result.start_seq) == (True, 1, N)
    with fresh(app) as s:
        assert [r.action for r in s.scalars(select(AuditRecord))] == ["api.recent"]
    # An intruder deletes the kept record as well as the prune checkpoint: caught.
    tamper(app, delete(AuditCheckpoint.__table__))
    assert not verify(app).ok
    del clock


def test_prune_from_the_command_line_refuses_short_periods_in_production_only(app, trail, monkeypatch):
    """Does `audit prune` use GI_AUDIT_RETENTION_DAYS, and production refuse a setting below 180 at start?"""
    out = cli({**trail, "GI_AUDIT_RETENTION_DAYS": "30"}, "prune")
    assert out.exit_code == 0 and "no audit record older than 30 days" in out.output
    from gi_service.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="GI_AUDIT_RETENTION_DAYS"):
        load_settings({"GI_ENV": "production", "GI_AUDIT_RETENTION_DAYS": "90"})


def test_the_backup_export_holds_every_record_with_its_chain(app, trail, tmp_path):
    """Does `audit export` write a header (head, checkpoints, public key) and every record with its links?"""
    sign_checkpoint(app)
    out = cli(trail, "export", "--out", str(tmp_path / "audit.jsonl"))
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    header, rows = lines[0], lines[1:]
    assert header["head"]["seq"] >= N and header["checkpoints"][0]["seq"] == N
    assert "BEGIN PUBLIC KEY" in header["signing_key"]["public_key_pem"]
    assert [r["seq"] for r in rows[:N]] == list(range(1, N + 1))
    prev = "0" * 64
    for r in rows[:N]:
        assert r["prev_hash"] == prev and r["hash_alg"] == "sha256"
        prev = r["hash"]


def test_operator_commands_are_recorded_and_none_is_forgotten(app, trail, factory):
    """Is a CLI write recorded as the operator's (OS user, host, parameters but never a password), a failed one
    as a failure; and is every command either recorded or listed as changing nothing?"""
    authority = factory.authority()
    ok = CliRunner().invoke(main, ["tokens", "create", "--username", authority.principal.username], env=trail)
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, ["tokens", "revoke", "99999"], env=trail)
    assert bad.exit_code == 1
    with fresh(app) as s:
        rs = list(s.scalars(select(AuditRecord).where(AuditRecord.channel == "cli").order_by(AuditRecord.id)))
    assert [(r.action, r.outcome, r.role) for r in rs] == [("cli.tokens.create", "success", "operator"),
                                                          ("cli.tokens.revoke", "failure", "operator")]
    assert rs[0].detail["params"]["username"] == authority.principal.username and rs[0].username
    assert rs[0].target == f"user:{authority.principal.username}" and rs[1].target == "token:99999"
    assert rs[1].error_code == "command_failed" and "no token 99999" in rs[1].detail["message"]
    assert all(r.seq is not None for r in rs)
    import click

    def leaves(group, path=()):
        for name, cmd in group.commands.items():
            yield from leaves(cmd, (*path, name)) if isinstance(cmd, click.Group) else [" ".join((*path, name))]

    commands = set(leaves(main))
    assert UNAUDITED <= commands
    for name in commands - UNAUDITED:
        cmd = main
        for part in name.split():
            cmd = cmd.commands[part]
        assert getattr(cmd.callback, "gi_audited", None) == "cli." + name.replace(" ", "."), name


def test_a_trail_that_switched_to_sm3_names_its_hash_per_record_and_verifies_end_to_end(app, trail):
    """Under the SM suite, are new records chained with SM3 (named in each), and does the mixed chain verify?"""
    from gi_service.services import ledger

    with fresh(app) as s:
        s.add(audit.Capture(channel="api", action="api.after_switch").record(audit.SUCCESS))
        s.commit()
    ledger.configure("sm3")
    try:
        with write_session(app.extensions["gi_engine"]) as s:
            assert audit.seal(s) == 1
            s.commit()
    finally:
        ledger.configure("sha256")
    with fresh(app) as s:
        algs = [r.hash_alg for r in s.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
    assert algs == ["sha256"] * N + ["sm3"] and verify(app).ok
    tamper(app, update(RECORDS).where(RECORDS.c.seq == N + 1).values(hash_alg="sha256"))
    assert verify(app).first_broken_seq == N + 1


def test_writers_do_not_wait_for_the_sealer_nor_for_one_another(app, backend):
    """PostgreSQL: while a sealer holds the chain's head (uncommitted), can two writers' transactions each
    insert and commit their records without waiting (a lock wait would fail at once under lock_timeout), and
    does a second sealer skip instead of queueing?"""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time whatever the design; the claim is PostgreSQL's")
    from sqlalchemy import text

    engine = app.extensions["gi_engine"]
    with write_session(engine) as s:                             # the head row, as the migration made it
        audit.seal(s)
        s.commit()
    sealer = Session(engine)
    audit.seal(sealer)                                           # holds the head row's lock, not committed
    writers = [Session(engine), Session(engine)]
    try:
        for n, w in enumerate(writers):
            w.execute(text("SET LOCAL lock_timeout = '1ms'"))
            w.add(audit.Capture(channel="api", action=f"api.w{n}").record(audit.SUCCESS))
            w.flush()
        for w in writers:
            w.commit()
        other = Session(engine)
        other.execute(text("SET LOCAL lock_timeout = '1ms'"))
        assert audit.seal(other, wait=False) == 0                # skipped: no wait, no error
        other.rollback()
        other.close()
    finally:
        sealer.rollback()
        sealer.close()
        for w in writers:
            w.close()
    with write_session(engine) as s:
        assert audit.seal(s) == 2
        s.commit()
    assert verify(app).ok

"""The consumer check reads a hot standby, within a bound on staleness (heavy tier; gi_service/replicas.py).

A private primary (initdb) and a hot standby made from it with pg_basebackup (streaming replication) run
on loopback ports as the `postgres` user (PostgreSQL and pgbouncer refuse to run as root), in a directory
of their own, with pgbouncer in front of both in transaction pooling mode; the app reaches both through
pgbouncer, as deployed. Everything is stopped by this module, whatever happens.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from gi_service import create_app, migrate
from gi_service.config import Settings, finalize
from tests.conftest import CACHE_DIR, PG_URL
from tests.factories import Factory
from tests.verify.conftest import World

pytestmark = pytest.mark.heavy

BIN = Path(os.environ.get("GI_PG_BIN", "/usr/lib/postgresql/15/bin"))
JSON = {"Accept": "application/json", "User-Agent": "Mozilla/5.0 (iPhone) Mobile"}
MAX_LAG_MS = 500
PGBOUNCER = os.environ.get("GI_PGBOUNCER", "/usr/sbin/pgbouncer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*cmd: str, **kw) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def cluster():
    """A primary and a streaming hot standby on free loopback ports; yields (primary_url, standby_url)."""
    if not PG_URL:
        pytest.skip("the replication test runs with the PostgreSQL backend (GI_TEST_DATABASE_URL)")
    if not (BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL's server binaries are missing in {BIN}")
    if not Path(PGBOUNCER).exists():
        pytest.fail(f"pgbouncer is missing ({PGBOUNCER}): `make test` and .ci/run install Debian's package")
    base = Path(tempfile.mkdtemp(prefix="gi-replica-", dir="/var/tmp"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
    primary, standby = base / "primary", base / "standby"
    p_port, s_port = free_port(), free_port()
    started: list[Path] = []
    bouncer = False
    try:
        as_postgres(str(BIN / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-locale")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(f"port = {p_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                       "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n"
                       "shared_buffers = 32MB\nmax_connections = 60\n")
        as_postgres(str(BIN / "pg_ctl"), "-D", str(primary), "-l", str(base / "primary.log"), "-w", "start")
        started.append(primary)
        admin = f"postgresql+psycopg://postgres@127.0.0.1:{p_port}/postgres"
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE gi"))
        engine.dispose()
        primary_url = f"postgresql+psycopg://postgres@127.0.0.1:{p_port}/gi"
        engine = create_engine(primary_url)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
        migrate.upgrade(primary_url)
        as_postgres(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(p_port), "-U", "postgres",
                    "-D", str(standby), "-R", "-X", "stream", "-c", "fast")
        with open(standby / "postgresql.conf", "a") as conf:
            conf.write(f"port = {s_port}\n")
        as_postgres(str(BIN / "pg_ctl"), "-D", str(standby), "-l", str(base / "standby.log"), "-w", "start")
        started.append(standby)
        # pgbouncer in front of both, in transaction pooling as in production (deploy/pgbouncer.ini).
        b_port = free_port()
        (base / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"gi_primary = host=127.0.0.1 port={p_port} dbname=gi user=postgres\n"
            f"gi_standby = host=127.0.0.1 port={s_port} dbname=gi user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {b_port}\nunix_socket_dir =\nauth_type = any\n"
            f"pool_mode = transaction\ndefault_pool_size = 10\nmax_client_conn = 200\n"
            f"pidfile = {base}/pgbouncer.pid\nlogfile = {base}/pgbouncer.log\n")
        as_postgres(PGBOUNCER, "-d", str(base / "pgbouncer.ini"))
        bouncer = True
        deadline = time.monotonic() + 10
        while not (base / "pgbouncer.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield {"primary": primary_url, "standby": f"postgresql+psycopg://postgres@127.0.0.1:{s_port}/gi",
               "primary_pooled": f"postgresql+psycopg://postgres@127.0.0.1:{b_port}/gi_primary",
               "standby_pooled": f"postgresql+psycopg://postgres@127.0.0.1:{b_port}/gi_standby"}
    finally:
        pid_file = base / "pgbouncer.pid"
        if bouncer and pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), 15)
            except (OSError, ValueError):
                pass
        for data in reversed(started):
            subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
                           + [str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def pooled_settings(cluster: dict, tmp_path, max_lag_ms: int) -> Settings:
    """The app as deployed: primary and standby both reached through pgbouncer (transaction pooling), so no
    prepared statements and no state kept on a server connection between transactions."""
    return finalize(Settings(env="test", instance_path=tmp_path / "instance", database_url=cluster["primary_pooled"],
                             secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR,
                             public_base_url="http://gi.test", ratelimit_enabled=False,
                             database_replica_urls=(cluster["standby_pooled"],), replica_max_lag_ms=max_lag_ms,
                             database_prepared_statements=False))


def caught_up(primary, standby, timeout_s: float = 30) -> None:
    with primary.connect() as conn:
        target = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with standby.connect() as conn:
            if conn.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:t AS pg_lsn)"), {"t": target}).scalar():
                return
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up")


def test_a_paused_standby_never_shows_a_voided_mark_as_genuine_beyond_the_bound(cluster, tmp_path,
                                                                                cheap_password_hashing):
    """With the standby's replay paused and a mark voided on the primary: once the standby is more than
    GI_REPLICA_MAX_LAG_MS behind, does the check read the primary (410 voided) instead of the standby's stale
    'genuine'; and once replay resumes, do checks read the standby again?"""
    primary_url, standby_url = cluster["primary"], cluster["standby"]
    settings = pooled_settings(cluster, tmp_path, MAX_LAG_MS)
    app = create_app(settings)
    app.config["TESTING"] = True
    client = app.test_client()
    session = Session(app.extensions["gi_engine"], expire_on_commit=False)
    primary, standby = create_engine(primary_url), create_engine(standby_url, isolation_level="AUTOCOMMIT")
    router = app.extensions["gi_replicas"]
    try:
        world = World(Factory(app, session), client, app)
        b = world.batch(10)
        world.activate(b, 1, 10)
        router.beat_now()
        caught_up(primary, standby)

        r = client.get(f"/v/{b.code(2)}", headers=JSON)
        assert r.status_code == 200 and r.json["verdict"] == "genuine"
        assert router.replica_reads == 1 and router.primary_reads == 0       # the standby answered

        with standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_pause()"))
        world.void(b, 2)
        time.sleep(MAX_LAG_MS / 1000 + 0.5)          # the heartbeat keeps coming on the primary; replay stands
        r = client.get(f"/v/{b.code(2)}", headers=JSON)
        assert r.status_code == 410 and r.json["error"] == "voided"
        assert router.stale >= 1 and router.primary_reads >= 1

        with standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
        router.beat_now()
        caught_up(primary, standby)
        time.sleep(1.1)                               # the standby's time aside ends
        before = router.replica_reads
        r = client.get(f"/v/{b.code(2)}", headers=JSON)
        assert r.status_code == 410 and router.replica_reads == before + 1
    finally:
        session.close()
        app.extensions["gi_engine"].dispose()
        primary.dispose()
        standby.dispose()


def test_a_caller_reads_its_own_writes_while_consumers_read_the_standby(cluster, tmp_path, cheap_password_hashing):
    """With a lag bound far larger than the standby's lag and its replay paused: after a producer voids a mark
    through the API, does that producer's own check of the code read the primary (410 voided) at once, while a
    consumer (no token, no session) is still answered by the standby within the bound?"""
    primary_url, standby_url = cluster["primary"], cluster["standby"]
    settings = pooled_settings(cluster, tmp_path, 600_000)
    app = create_app(settings)
    app.config["TESTING"] = True
    client = app.test_client()
    session = Session(app.extensions["gi_engine"], expire_on_commit=False)
    primary, standby = create_engine(primary_url), create_engine(standby_url, isolation_level="AUTOCOMMIT")
    router = app.extensions["gi_replicas"]
    try:
        world = World(Factory(app, session), client, app)
        b = world.batch(10)
        world.activate(b, 1, 10)
        router.beat_now()
        caught_up(primary, standby)
        with standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_pause()"))
        world.void(b, 3)                                              # the producer's token writes
        mine = client.get(f"/v/{b.code(3)}", headers={**JSON, **world.producer.headers})
        assert mine.status_code == 410 and router.behind_caller >= 1
        consumer = client.get(f"/v/{b.code(3)}", headers=JSON)
        assert consumer.status_code == 200 and consumer.json["verdict"] == "genuine"   # stale, within the bound
        with standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
        caught_up(primary, standby)
        reads = router.replica_reads
        assert client.get(f"/v/{b.code(3)}", headers={**JSON, **world.producer.headers}).status_code == 410
        assert router.replica_reads == reads + 1                     # the standby has the write now
    finally:
        with standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
        session.close()
        app.extensions["gi_engine"].dispose()
        primary.dispose()
        standby.dispose()

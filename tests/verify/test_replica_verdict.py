"""The consumer check reads a hot standby, within a bound on staleness (heavy tier; gi_service/replicas.py).

A private primary (initdb) and a hot standby made from it with pg_basebackup (streaming replication) run
on loopback ports as the `postgres` user (PostgreSQL and pgbouncer refuse to run as root), in a directory
of their own, with pgbouncer in front of both in transaction pooling mode; the app reaches both through
pgbouncer, as deployed. Everything is stopped by this module, whatever happens.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from gi_service import create_app
from gi_service.config import Settings, finalize
from tests import topology
from tests.conftest import CACHE_DIR
from tests.factories import Factory
from tests.verify.conftest import World

pytestmark = pytest.mark.heavy

JSON = {"Accept": "application/json", "User-Agent": "Mozilla/5.0 (iPhone) Mobile"}
MAX_LAG_MS = 500


@pytest.fixture(scope="module")
def cluster():
    """A primary and a streaming hot standby, pgbouncer in front of both; yields their URLs."""
    topology.require()
    topo = topology.Topology()
    try:
        primary = topo.start_primary()
        standby = topo.add_standby("standby")
        port = topo.start_pgbouncer({"gi_primary": "primary", "gi_standby": "standby"})
        yield {"topology": topo, "primary": primary, "standby": standby,
               "primary_pooled": f"postgresql+psycopg://postgres@127.0.0.1:{port}/gi_primary",
               "standby_pooled": f"postgresql+psycopg://postgres@127.0.0.1:{port}/gi_standby"}
    finally:
        topo.stop()


def pooled_settings(cluster: dict, tmp_path, max_lag_ms: int) -> Settings:
    """The app as deployed: primary and standby both reached through pgbouncer (transaction pooling), so no
    prepared statements and no state kept on a server connection between transactions."""
    return finalize(Settings(env="test", instance_path=tmp_path / "instance", database_url=cluster["primary_pooled"],
                             secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR,
                             public_base_url="http://gi.test", ratelimit_enabled=False,
                             database_replica_urls=(cluster["standby_pooled"],), replica_max_lag_ms=max_lag_ms,
                             database_prepared_statements=False))


def caught_up(primary, standby) -> None:
    topology.caught_up(primary.url.render_as_string(hide_password=False),
                       standby.url.render_as_string(hide_password=False))


class Deployed:
    """The app as deployed on the cluster (through pgbouncer), with direct handles on both servers."""

    def __init__(self, cluster: dict, tmp_path, max_lag_ms: int):
        self.app = create_app(pooled_settings(cluster, tmp_path, max_lag_ms))
        self.app.config["TESTING"] = True
        self.client = self.app.test_client()
        self.session = Session(self.app.extensions["gi_engine"], expire_on_commit=False)
        self.primary = create_engine(cluster["primary"])
        self.standby = create_engine(cluster["standby"], isolation_level="AUTOCOMMIT")
        self.router = self.app.extensions["gi_replicas"]
        self.factory = Factory(self.app, self.session)

    def world_with_batch(self):
        """A ledger world with an activated batch of 10, replicated to the standby."""
        world = World(self.factory, self.client, self.app)
        batch = world.batch(10)
        world.activate(batch, 1, 10)
        self.synced()
        return world, batch

    def synced(self) -> None:
        self.router.beat_now()
        caught_up(self.primary, self.standby)

    def replay(self, on: bool) -> None:
        with self.standby.connect() as conn:
            conn.execute(text("SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()"))

    def close(self) -> None:
        self.replay(True)
        self.session.close()
        self.app.extensions["gi_engine"].dispose()
        self.primary.dispose()
        self.standby.dispose()


@pytest.fixture
def deployed(cluster, tmp_path, cheap_password_hashing):
    """Builds a Deployed app with a given lag bound; closes it (and resumes replay) after the test."""
    made: list[Deployed] = []

    def build(max_lag_ms: int = MAX_LAG_MS) -> Deployed:
        made.append(Deployed(cluster, tmp_path, max_lag_ms))
        return made[-1]

    yield build
    for d in made:
        d.close()


def test_a_paused_standby_never_shows_a_voided_mark_as_genuine_beyond_the_bound(deployed):
    """With the standby's replay paused and a mark voided on the primary: once the standby is more than
    GI_REPLICA_MAX_LAG_MS behind, does the check read the primary (410 voided) instead of the standby's stale
    'genuine'; and once replay resumes, do checks read the standby again?"""
    d = deployed(MAX_LAG_MS)
    world, b = d.world_with_batch()
    r = d.client.get(f"/v/{b.code(2)}", headers=JSON)
    assert r.status_code == 200 and r.json["verdict"] == "genuine"
    assert d.router.replica_reads == 1 and d.router.primary_reads == 0       # the standby answered

    d.replay(False)
    world.void(b, 2)
    time.sleep(MAX_LAG_MS / 1000 + 0.5)          # the heartbeat keeps coming on the primary; replay stands
    r = d.client.get(f"/v/{b.code(2)}", headers=JSON)
    assert r.status_code == 410 and r.json["error"] == "voided"
    assert d.router.stale >= 1 and d.router.primary_reads >= 1

    d.replay(True)
    d.synced()
    time.sleep(1.1)                               # the standby's time aside ends
    before = d.router.replica_reads
    r = d.client.get(f"/v/{b.code(2)}", headers=JSON)
    assert r.status_code == 410 and d.router.replica_reads == before + 1


def test_a_caller_reads_its_own_writes_while_consumers_read_the_standby(deployed):
    """With a lag bound far larger than the standby's lag and its replay paused: after a producer voids a mark
    through the API, does that producer's own check of the code read the primary (410 voided) at once, while a
    consumer (no token, no session) is still answered by the standby within the bound?"""
    d = deployed(600_000)
    world, b = d.world_with_batch()
    d.replay(False)
    world.void(b, 3)                                              # the producer's token writes
    mine = d.client.get(f"/v/{b.code(3)}", headers={**JSON, **world.producer.headers})
    assert mine.status_code == 410 and d.router.behind_caller >= 1
    consumer = d.client.get(f"/v/{b.code(3)}", headers=JSON)
    assert consumer.status_code == 200 and consumer.json["verdict"] == "genuine"   # stale, within the bound
    d.replay(True)
    d.synced()
    reads = d.router.replica_reads
    assert d.client.get(f"/v/{b.code(3)}", headers={**JSON, **world.producer.headers}).status_code == 410
    assert d.router.replica_reads == reads + 1                   # the standby has the write now


def test_anonymous_public_reads_use_the_standby_and_signed_in_reads_the_primary(deployed):
    """Is a public read by an anonymous caller (the producers list) answered from the standby — so, with replay
    paused, a producer just added on the primary is missing there within the bound — while a signed-in caller
    reads the primary and sees it; and once the standby is beyond the bound, does the anonymous read go to the
    primary too?"""
    d = deployed(MAX_LAG_MS)
    authority = d.factory.authority("110101")
    d.synced()
    assert d.client.get("/api/v1/producers").status_code == 200
    assert d.router.replica_sessions == 1
    d.replay(False)
    newcomer = d.factory.producer("110101")
    d.router.beat_now()
    names = lambda r: {p["id"] for p in r.json["items"]}  # noqa: E731
    assert newcomer.org.id not in names(d.client.get("/api/v1/producers"))                   # the standby
    assert newcomer.org.id in names(d.client.get("/api/v1/producers", headers=authority.headers))   # primary
    time.sleep(MAX_LAG_MS / 1000 + 0.5)
    assert newcomer.org.id in names(d.client.get("/api/v1/producers"))                       # standby set aside


def test_signed_in_statistics_read_the_standby_until_the_caller_itself_writes(deployed):
    """Are a supervisor's statistics (a signed-in read declared `standby_reads`) answered by the standby — so,
    with replay paused, an approval just made on the primary is not yet counted there within the bound —
    while the supervisor who made it reads the primary until a standby has replayed its write (it sees its own
    approval at once)? And does another signed-in read (the producers list) still read the primary?"""
    d = deployed(600_000)
    world, _b = d.world_with_batch()
    other = d.factory.authority("341600")                     # another supervisor of the same city
    d.synced()
    year = {"year": world.year}
    approved = lambda r: r.json["total"]["marks"]["approved"]  # noqa: E731

    def stats(actor):
        r = d.client.get("/api/v1/statistics", headers=actor.headers, query_string=year)
        assert r.status_code == 200, r.json
        return r

    sessions = d.router.replica_sessions
    base = approved(stats(world.authority))
    assert d.router.replica_sessions == sessions + 1                       # the standby answered

    d.replay(False)
    request = d.client.post("/api/v1/mark-requests", headers=world.producer.headers,
                            json={"gi_id": world.gi.id, "pack_size_g": 250, "quantity": 7, "year": world.year})
    assert request.status_code == 201
    assert d.client.post(f"/api/v1/mark-requests/{request.json['id']}/approve", headers=world.authority.headers,
                         json={"printer_id": world.printer.org.id}).status_code == 201
    sessions, behind = d.router.replica_sessions, d.router.behind_caller
    assert approved(stats(world.authority)) == base + 7                    # its own approval, at once
    assert d.router.behind_caller == behind + 1 and d.router.replica_sessions == sessions   # from the primary
    assert approved(stats(other)) == base                                  # the standby: stale, within the bound
    assert d.router.replica_sessions == sessions + 1
    assert d.client.get("/api/v1/producers", headers=other.headers).status_code == 200
    assert d.router.replica_sessions == sessions + 1                       # not declared: the primary

    d.replay(True)
    d.synced()
    assert approved(stats(world.authority)) == base + 7 and d.router.replica_sessions == sessions + 2


def test_partition_retention_on_the_cluster_drops_whole_months_on_both_nodes_and_keeps_the_evidence(
        deployed, cluster, tmp_path):
    """On the cluster, through pgbouncer in transaction pooling: does `gi-service scans partitions` (the cron
    line) make the months ahead, and does retention three years on drop a month whole on the primary — and so,
    through streaming replication, on the standby — while the check a clue points to survives, readable on
    both nodes through `scans`?"""
    import datetime as dt

    from click.testing import CliRunner
    from sqlalchemy import insert

    from gi_service import clock
    from gi_service.cli import main
    from gi_service.models import AlertKind, Scan, UAClass, Verdict
    from gi_service.services import partitions, scans, signals

    d = deployed(MAX_LAG_MS)
    settings = d.app.config["GI_SETTINGS"]
    env = {"GI_DATABASE_URL": cluster["primary_pooled"], "GI_DATABASE_PREPARED_STATEMENTS": "false",
           "GI_INSTANCE_PATH": str(tmp_path / "cli"), "GI_SECRET_KEY": settings.secret_key,
           "GI_MARK_KEYS": settings.mark_keys, "GI_MARK_KEY_ID": settings.mark_key_id,
           "GI_LEDGER_SIGNING_KEY": settings.ledger_signing_key, "GI_DATA_KEYS": settings.data_keys}
    made = CliRunner().invoke(main, ["scans", "partitions", "--ahead", "3"], env=env)
    assert made.exit_code == 0, made.output
    month = partitions.next_month(partitions.month_start(clock.now()))
    ats = [dt.datetime(month.year, month.month, day, 9, tzinfo=dt.timezone.utc) for day in (2, 3, 4)]
    ids = [d.session.execute(insert(Scan).values(at=at, mac_ok=False, verdict=Verdict.unknown,
                                                 ua_class=UAClass.mobile).returning(Scan.id)).scalar_one()
           for at in ats]
    signals.raise_alert(d.session, AlertKind.unknown_burst, subject="evidence", at=ats[0], summary="evidence",
                        details={}, places=[], scan_id=ids[0])
    d.session.commit()
    d.synced()

    def on_standby() -> set[str]:
        with Session(d.standby) as s:
            return {p.name for p in partitions.partitions(s)}

    assert partitions.month_name(month) in on_standby()

    result = scans.prune(d.session, now=dt.datetime(month.year + 3, month.month, 1, tzinfo=dt.timezone.utc))
    d.session.rollback()
    # (the cluster is the module's: other tests' checks in that month go too; ours are looked for below)
    assert partitions.month_name(month) in result.partitions_dropped and result.scans_deleted >= 2
    d.synced()
    assert partitions.month_name(month) not in on_standby()
    for engine in (d.primary, d.standby):
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT id, tableoid::regclass::text FROM scans WHERE id = ANY(:ids)"),
                                {"ids": ids}).all()
        assert kept == [(ids[0], partitions.DEFAULT_PARTITION)]


def test_two_app_instances_behind_nginx_answer_through_pgbouncer(cluster, deployed, tmp_path):
    """Do two gunicorn instances behind nginx (GI_TRUSTED_PROXIES=1), each reaching the primary and the standby
    through pgbouncer, both answer; and is a consumer's check logged under the client's address as nginx saw it
    (the keyed daily hash of it) — neither nginx's own address nor a forged X-Forwarded-For?"""
    import http.client
    import json

    from gi_service.services import scans

    topo = cluster["topology"]
    d = deployed(MAX_LAG_MS)
    settings = d.app.config["GI_SETTINGS"]
    _world, b = d.world_with_batch()
    env = {"GI_ENV": "development", "GI_DATABASE_URL": cluster["primary_pooled"],
           "GI_DATABASE_REPLICA_URLS": cluster["standby_pooled"], "GI_DATABASE_PREPARED_STATEMENTS": "false",
           "GI_TRUSTED_PROXIES": "1", "GI_SECRET_KEY": settings.secret_key, "GI_MARK_KEYS": settings.mark_keys,
           "GI_MARK_KEY_ID": settings.mark_key_id, "GI_LEDGER_SIGNING_KEY": settings.ledger_signing_key,
           "GI_PUBLIC_BASE_URL": "http://gi.test", "GI_INSTANCE_PATH": str(tmp_path / "instance"),
           "GI_CACHE_DIR": str(CACHE_DIR), "GI_RATELIMIT_ENABLED": "false", "GI_WORKERS": "1", "GI_THREADS": "2",
           "GI_MAX_REQUESTS": "0", "GI_LOG_LEVEL": "WARNING"}
    first, second = topo.start_app(env), topo.start_app(env)
    port = topo.start_nginx([first, second])

    def get(path: str, headers: dict) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=("127.0.0.3", 0))
        conn.request("GET", path, headers=headers)
        return conn.getresponse()

    upstreams = {get("/api/v1/health", {}).getheader("X-Upstream") for _ in range(8)}
    assert upstreams == {f"127.0.0.1:{first}", f"127.0.0.1:{second}"}
    r = get(f"/v/{b.code(1)}", {**JSON, "X-Forwarded-For": "198.51.100.9"})
    doc = json.loads(r.read())
    assert r.status == 200 and doc["verdict"] == "genuine"
    scan_id = int(doc["scan"]["token"].split(".")[0])
    primary = create_engine(cluster["primary"])
    try:
        deadline = time.monotonic() + 10
        row = None
        while row is None and time.monotonic() < deadline:        # written behind the answer
            with primary.connect() as conn:
                row = conn.execute(text("SELECT at, ip_hash FROM scans WHERE id = :id"), {"id": scan_id}).first()
            time.sleep(0.1)
    finally:
        primary.dispose()
    assert row is not None
    assert row.ip_hash == scans.ip_hash(settings.secret_key, "127.0.0.3", row.at)
    assert row.ip_hash not in (scans.ip_hash(settings.secret_key, a, row.at) for a in ("127.0.0.2", "198.51.100.9"))

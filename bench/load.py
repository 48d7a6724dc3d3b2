"""Benchmark: what the framework and the view cost the verification verdict (issue 5 §7, issue 14 §5).

Run as `python -m bench.load [--rounds N] [--duration S] [--checks N] [--connections C] [--rebuild] ...`.

Four endpoints, side by side in one run:

* trivial: `GET /api/v1/health` of the app (no database);
* JSON verdict: the app's `GET /v/{code}` with `Accept: application/json`;
* HTML verdict: the app's `GET /v/{code}` with a browser's Accept header (the page with its inline map);
* bare verdict: bench/bare.py, a plain WSGI callable that answers the same JSON document as the
  JSON verdict, built by the same service functions (MAC check, lookup, rate limiter, buffered
  check log, description: `verification.consumer_check` and `json_body`) with no Flask in
  between. The difference between it and the JSON verdict is the framework and the view.

Two figures, each measured with its endpoints interleaved (the order rotates every round) so that
a machine whose load drifts moves all of them alike; each ratio is taken within a round and the
median of the rounds' ratios is reported with its min-max:

(a) application CPU per answer, in this process, over --checks checks per endpoint and round
    (Flask's test client for the app's endpoints, a direct call of the bare callable): process CPU
    time hardly depends on what else the machine runs. The PostgreSQL and Redis CPU per answer is
    shown beside it. Targets: JSON verdict <= 1.5x the bare verdict's, HTML verdict <= 2x.
(b) throughput under load: gunicorn in its production configuration (gi_service/gunicorn_conf.py,
    GI_ENV=production, GI_MAX_REQUESTS=0 so that no worker is recycled during a run) serves the
    app (`gi_service.wsgi:app`) and, on a second port, the bare verdict (`bench.bare:application`),
    both on 127.0.0.1; wrk drives each endpoint for --duration seconds per round with the same
    connections and threads, after a --warmup of each. Targets: JSON verdict >= 70 % of the bare
    verdict's req/s, HTML verdict >= 60 %; the trivial endpoint is shown beside them. For each run:
    CPU per answer of the servers (masters, workers, and any worker a master replaced: a reaped
    child's CPU lives on in its parent's cutime + cstime), of every PostgreSQL process and of the
    redis-server, all from /proc; the machine's CPU idle (/proc/stat) and load average
    (/proc/loadavg), and the CPU other processes used. An endpoint that left the CPU idle (more
    than 15 %) was not saturated, and its throughput is not its capacity: the output says so.
    Beside each verdict's throughput ratio, the ratio its CPU per answer under load predicts for a
    saturated CPU (steadier when other work takes a varying share of a shared machine; information
    only, the target is on req/s).

The targets are printed with the measured ratio and met/missed; the benchmark exits 0 either
way (a benchmark reports, it does not gate); --only cpu or --only load measures one figure. The
codes requested are --codes random issued serials (20,000): mostly activated on an active lot
(200 genuine), some never activated (409 genuine_not_activated). Any other status, socket errors
and timeouts are counted as errors. Before the load, a few codes are checked on both servers: the
bare verdict must answer the JSON verdict's status, verdict and document shape.

The database is a private PostgreSQL 15 cluster (initdb from GI_BENCH_PG_BIN, default
/usr/lib/postgresql/15/bin) in --pg-dir (GI_BENCH_PG_DIR, default ~/.cache/gi-service/bench-pg;
as root, where the postgres user runs it, /var/tmp/gi-service/bench-pg when that directory is
out of its reach). It persists across runs, so the data are built once; its server is started with
pg_ctl on a free loopback port for the run and stopped at the end (also on Ctrl-C or an error),
with production durability (fsync, synchronous_commit on) and shared_buffers 1GB. All its
processes are children of its postmaster, so the database's CPU is counted exactly. With
--database-url (or GI_BENCH_LOAD_DATABASE_URL) an external server is used instead: its CPU is
then approximate (the backends connected to the bench database, found by their process titles;
not the background processes nor backends that exited), and the output says so.

The data live in the database gi_bench_load (created with PostGIS, migrated with the project's
migrations) and are reused by later runs while their parameters match (table bench_load_meta);
--rebuild drops and rebuilds them. They hold:

* a world built through the services (authority, GI with its area, producer with plots and an
  approved authorization, printer, quota) and --service-batches batches of 1,000,000 marks
  approved, printed (a few spoiled), issued and mostly activated on lots through the services
  (10 x 1,000,000 = 10,000,000 issued marks; a batch is a few range rows); some marks voided or
  reported lost, one lot recalled;
* --synthetic-batches synthetic 1,000-mark batches in 100 more series added by SQL as
  bench/ledger.py does (mixed fates, 1-8 range rows each), so the range index has a realistic size;
* --scans past checks in `scans` (verdicts derived from the ledger, user-agent classes, some bots,
  forged and malformed codes, a few shared locations) and the matching `mark_checks` counters,
  inserted with generate_series; then VACUUM ANALYZE.

The defaults (about 28 M issued marks, 1 M past checks; never fewer than 10 M and 1 M) take a few
minutes to build the first time. Each run adds its own checks to `scans` (every verdict GET is
logged): the sizes printed are the ones present at the start of the run.

The mark keys, ledger signing key and secret are fixed bench values derived here, passed to the
servers as GI_* variables, so the codes computed here are the servers' codes in every run. The
rate limiter on /v/ stays in the measured path as in production, counting in a private
redis-server started here on a free loopback port (Debian's `redis-server`), with
GI_RATELIMIT_VERIFY=1000000/minute so that it never throttles the load; without redis-server the
limiter is switched off for the run and the output says so. wrk is Debian's package `wrk`;
without it the benchmark says so and is skipped (`make bench` installs both).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import gc
import grp
import hashlib
import json
import logging
import os
import pwd
import random
import runpy
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gi_service import migrate
from gi_service.codes import MarkKeyring, Serial, format_serial, make_code
from gi_service import clock
from gi_service.db import make_engine, write_session
from gi_service.models import LotStatus, MarkState
from gi_service.services import jurisdiction, marks, producers

from . import bare
from . import ledger as ledger_bench

DATABASE = "gi_bench_load"
CACHE_DIR = ledger_bench.CACHE_DIR
PG_BIN = Path(os.environ.get("GI_BENCH_PG_BIN") or "/usr/lib/postgresql/15/bin")
ROOT_PG_DIR = Path("/var/tmp/gi-service/bench-pg")   # as root, when the default is out of the postgres user's reach
# The private cluster's settings (written to bench.conf in its directory at every start): production
# durability, shared buffers that hold the ledger's hot indexes, room for the one-off data build.
PG_SETTINGS = {
    "listen_addresses": "127.0.0.1", "unix_socket_directories": "", "max_connections": "100",
    "shared_buffers": "1GB", "effective_cache_size": "4GB", "maintenance_work_mem": "256MB",
    "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
    "max_wal_size": "4GB", "checkpoint_timeout": "15min",
}
# issue 14 §5: application CPU per answer at most this many times the bare verdict's (figure a) ...
CPU_TARGETS = {"json": 1.5, "html": 2.0}
# ... and throughput at least this share of the bare verdict's (figure b).
THROUGHPUT_TARGETS = {"json": 0.70, "html": 0.60}
NOT_SATURATED_IDLE = 0.15        # CPU idle above this during an endpoint's runs: it did not saturate the machine
MIN_ISSUED, MIN_SCANS = 10_000_000, 1_000_000
DATA_VERSION = 1                 # bump when the data this module builds changes shape
BATCH_MARKS = 1_000_000          # marks issued per service-built batch
SPOILED = 200                    # spoiled in printing per batch (approved on top, so BATCH_MARKS are issued)
LOTS_PER_BATCH = 20              # each batch in 20 segments: the first 80 % of each activated on its own lot
ACTIVATED_SHARE = 0.8
PLOTS = 12
GENUINE_SHARE = 0.85             # of the request codes: activated on an active lot (200); the rest issued (409)
ENDPOINTS = ("health", "json", "html", "bare")
NAMES = {"health": "trivial GET /api/v1/health", "json": "JSON verdict GET /v/{code}",
         "html": "HTML verdict GET /v/{code}", "bare": "bare verdict (no Flask)"}
EXPECTED = {"health": {200}, "json": {200, 409}, "html": {200, 409}, "bare": {200, 409}}
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
ACCEPT = {"health": "application/json", "json": "application/json", "html": HTML_ACCEPT, "bare": "application/json"}
ACCEPT_LANGUAGE = "zh-CN,zh;q=0.9,en;q=0.6"
USER_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Mobile/15E148 MicroMessenger/8.0.49")

log = logging.getLogger("bench.load")

# --- fixed bench secrets (never used outside this benchmark) ----------------------------------

def _derived(label: str) -> bytes:
    return hashlib.sha256(f"gi-service bench.load {label} (not a secret)".encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MARK_KEYS = f"A:{_b64(_derived('mark key A'))}"
MARK_KEY_ID = "A"
SIGNING_KEY = _b64(_derived("ledger signing key"))
SECRET_KEY = "bench-load-" + _derived("secret key").hex()
PUBLIC_BASE_URL = "https://gi.bench.example"


def _ms(us: float) -> str:
    return f"{us / 1000:.1f} ms"


# --- the database ------------------------------------------------------------------------------

def _admin(url: str) -> Engine:
    u = make_url(url)
    return make_engine(u.set(database="postgres").render_as_string(hide_password=False),
                       isolation_level="AUTOCOMMIT")


def prepare_database(url: str, rebuild: bool) -> str:
    """Create (or, with rebuild, drop and create) the database and PostGIS; returns the server version."""
    name = make_url(url).database
    admin = _admin(url)
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": name}).scalar()
            if exists and rebuild:
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
                exists = False
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            return conn.execute(text("SHOW server_version")).scalar()
    finally:
        engine.dispose()


def _params(args) -> dict:
    return {"version": DATA_VERSION, "service_batches": args.service_batches, "batch_marks": BATCH_MARKS,
            "synthetic_batches": args.synthetic_batches, "scans": args.scans,
            "keys": hashlib.sha256(MARK_KEYS.encode()).hexdigest()[:16]}


def read_meta(engine: Engine) -> dict | None:
    with engine.connect() as conn:
        if not conn.execute(text("SELECT to_regclass('bench_load_meta')")).scalar():
            return None
        row = conn.execute(text("SELECT value FROM bench_load_meta WHERE key = 'data'")).scalar()
    return json.loads(row) if row else None


def _has_rows(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT to_regclass('mark_ranges')")).scalar()
                    and conn.execute(text("SELECT EXISTS (SELECT 1 FROM mark_ranges)")).scalar())


@dataclass
class Data:
    series: str            # the series of the service-built batches (the codes requested)
    batch_ids: list[int]
    build_s: float | None  # None when reused


def _serial(series: str, seq: int) -> str:
    return format_serial(series[:4], 2000 + int(series[4:]), seq)


def add_plots(world: ledger_bench.World, rng: random.Random) -> None:
    """A few more surveyed plots of the producer inside the GI's area (the page marks where they are)."""
    from gi_service.models import GIProduct
    from gi_service.services import registry

    with write_session(world.engine) as s:
        gi = s.get(GIProduct, world.gi_id)
        area = registry.area_by_id(s, gi.origin_area_id).geom
        inner = area.buffer(-0.01)
        min_x, min_y, max_x, max_y = inner.bounds
        import shapely

        made = 0
        while made < PLOTS:
            x, y = rng.uniform(min_x, max_x), rng.uniform(min_y, max_y)
            if not inner.contains(shapely.Point(x, y)):
                continue
            made += 1
            producers.create_plot(s, world.producer.organisation_id, gi_id=world.gi_id, name=f"地块 {made}",
                                  geom=ledger_bench.square(x, y, rng.uniform(80, 300)), survey_year=2025,
                                  by=world.producer)
        s.commit()


def service_batch(world: ledger_bench.World, index: int, recall: bool) -> tuple[int, str]:
    """One batch through the services: approve, print (spoils), issue, activate lots, void/lose a few."""
    request_id = ledger_bench.new_request(world, BATCH_MARKS + SPOILED)
    with write_session(world.engine) as s:
        batch = marks.approve_request(s, request_id, by=world.authority, printer_id=world.printer.organisation_id,
                                      key_id=MARK_KEY_ID)
        s.commit()
        series, first, batch_id = batch.series, batch.seq_start, batch.id
    with write_session(world.engine) as s:
        marks.record_printed(s, batch_id, by=world.printer,
                             spoiled=[(_serial(series, first + 10), _serial(series, first + 10 + SPOILED - 1))])
        s.commit()
    with write_session(world.engine) as s:
        marks.issue_batch(s, batch_id, by=world.printer)
        s.commit()
    start = first + 10 + SPOILED           # the first 10 serials are issued too, then the spoiled ones
    segment = (BATCH_MARKS - 10) // LOTS_PER_BATCH
    active = int(segment * ACTIVATED_SHARE)
    lot_ids = []
    for k in range(LOTS_PER_BATCH):
        lo = start + k * segment
        with write_session(world.engine) as s:
            lot, _ = marks.activate(s, by=world.producer, spans=[(_serial(series, lo), _serial(series, lo + active - 1))],
                                    lot_no=f"BL-{index:02d}-{k:02d}",
                                    production_date=clock.now().date() - dt.timedelta(days=20 + k),
                                    lot_quantity=active, pack_size_g=ledger_bench.PACK_G,
                                    test_report_no=f"R-2026-{index:02d}{k:02d}", testing_body=ledger_bench.TESTING_BODY,
                                    test_passed=True)
            s.commit()
            lot_ids.append(lot.id)
    with write_session(world.engine) as s:
        lo = start + 3 * segment + 1000
        marks.void(s, by=world.producer, spans=[(_serial(series, lo), _serial(series, lo + 4))], kind="voided",
                   reason="damaged labels")
        lo = start + 7 * segment + active + 500   # among the not activated marks
        marks.void(s, by=world.producer, spans=[(_serial(series, lo), _serial(series, lo + 49))], kind="lost",
                   reason="a roll of labels lost in transit")
        s.commit()
    if recall:
        with write_session(world.engine) as s:
            marks.recall_lot(s, lot_ids[-1], by=world.producer, reason="residue test failed after release")
            s.commit()
    return batch_id, series


def insert_scans(engine: Engine, series: str, lo: int, hi: int, n: int) -> None:
    """`n` past checks over the last year (ids grow with time) and their per-serial counters."""
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.20261122)"))
        conn.execute(text("""
            WITH g AS MATERIALIZED (
                SELECT n, random() AS kind, random() AS ua, random() AS loc, floor(random() * 300000) AS ip,
                       CAST(:lo + floor(random() * (:hi - :lo + 1)) AS BIGINT) AS seq
                FROM generate_series(1, :n) AS n
            ), s AS (
                SELECT g.*, now() - make_interval(secs => 365 * 86400 * (1 - g.n / CAST(:n AS float))) AS at,
                       r.state, l.status AS lot_status
                FROM g
                LEFT JOIN LATERAL (SELECT r.state, r.lot_id, r.seq_end FROM mark_ranges r
                                   WHERE r.series = :series AND r.seq_start <= g.seq
                                   ORDER BY r.seq_start DESC LIMIT 1) r ON r.seq_end >= g.seq
                LEFT JOIN lots l ON l.id = r.lot_id
            ), v AS (
                SELECT s.*,
                       CASE WHEN kind < 0.01 THEN 'malformed' WHEN kind < 0.06 THEN 'unknown'
                            WHEN state IS NULL THEN 'unknown'
                            WHEN state = 'activated' AND lot_status = 'recalled' THEN 'recalled'
                            WHEN state = 'activated' THEN 'genuine'
                            WHEN state = 'issued' THEN 'genuine_not_activated'
                            WHEN state IN ('voided', 'spoiled') THEN 'voided'
                            ELSE 'lost_or_stolen' END AS verdict
                FROM s
            )
            INSERT INTO scans (at, series, seq, mac_ok, verdict, detail, ip_hash, ua_class, lat, lon, adcode,
                               located_at)
            SELECT at,
                   CASE WHEN verdict = 'malformed' THEN NULL ELSE :series END,
                   CASE WHEN verdict = 'malformed' THEN NULL ELSE seq END,
                   verdict NOT IN ('malformed', 'unknown'),
                   verdict,
                   CASE verdict WHEN 'malformed' THEN 'malformed' WHEN 'unknown' THEN 'bad_mac'
                        WHEN 'genuine' THEN NULL WHEN 'recalled' THEN 'recalled'
                        ELSE CAST(state AS VARCHAR(32)) END,
                   substr(md5('bench-ip-' || CAST(ip AS VARCHAR(12))), 1, 32),
                   CASE WHEN ua < 0.70 THEN 'mobile' WHEN ua < 0.85 THEN 'in_app' WHEN ua < 0.93 THEN 'desktop'
                        WHEN ua < 0.97 THEN 'bot' ELSE 'other' END,
                   CASE WHEN loc < 0.03 AND verdict NOT IN ('malformed', 'unknown') THEN 33.84 END,
                   CASE WHEN loc < 0.03 AND verdict NOT IN ('malformed', 'unknown') THEN 115.78 END,
                   CASE WHEN loc < 0.03 AND verdict NOT IN ('malformed', 'unknown') THEN '341602' END,
                   CASE WHEN loc < 0.03 AND verdict NOT IN ('malformed', 'unknown')
                        THEN at + interval '1 minute' END
            FROM v ORDER BY n"""), {"series": series, "lo": lo, "hi": hi, "n": n})
        conn.execute(text("""
            INSERT INTO mark_checks (series, seq, count, first_at, first_scan_id, first_adcode, last_at,
                                     last_scan_id, last_adcode, last_located_at)
            SELECT series, seq, count(*), min(at), min(id), (array_agg(adcode ORDER BY id))[1], max(at), max(id),
                   (array_agg(adcode ORDER BY located_at DESC) FILTER (WHERE adcode IS NOT NULL))[1],
                   max(located_at)
            FROM scans
            WHERE mac_ok AND verdict NOT IN ('unknown', 'malformed') AND ua_class <> 'bot'
            GROUP BY series, seq
            ON CONFLICT (series, seq) DO NOTHING"""))


def build(url: str, args, rng: random.Random) -> Data:
    """Migrate, build the world and the ledger through the services, add synthetic rows and scans."""
    started = time.perf_counter()
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        quota = (args.service_batches + 1) * (BATCH_MARKS + SPOILED) * ledger_bench.PACK_G
        world = ledger_bench.build_world(engine, quota_g=quota)
        add_plots(world, rng)
        batch_ids, series = [], None
        for i in range(args.service_batches):
            t0 = time.perf_counter()
            batch_id, series = service_batch(world, i, recall=(i == 0))
            batch_ids.append(batch_id)
            print(f"load: built batch {i + 1}/{args.service_batches} through the services "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
        if args.synthetic_batches:
            t0 = time.perf_counter()
            ledger_bench.grow_ledger(world, args.synthetic_batches, True)
            print(f"load: added {args.synthetic_batches:,} synthetic 1,000-mark batches by SQL "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
        with engine.connect() as conn:
            lo, hi = conn.execute(text("SELECT min(seq_start), max(seq_end) FROM mark_batches WHERE id = ANY(:ids)"),
                                  {"ids": batch_ids}).one()
        if args.scans:
            t0 = time.perf_counter()
            insert_scans(engine, series, lo, hi, args.scans)
            print(f"load: inserted {args.scans:,} past scans and their mark_checks ({time.perf_counter() - t0:.1f} s)",
                  flush=True)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_load_meta (key VARCHAR(40) PRIMARY KEY, value TEXT NOT NULL)")
            meta = {**_params(args), "series": series, "batch_ids": batch_ids,
                    "built_at": clock.now().isoformat(), "build_s": round(time.perf_counter() - started, 1)}
            conn.execute(text("INSERT INTO bench_load_meta VALUES ('data', :v)"), {"v": json.dumps(meta)})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        return Data(series, batch_ids, time.perf_counter() - started)
    finally:
        engine.dispose()


def ensure_data(url: str, args, rng: random.Random) -> Data:
    engine = make_engine(url)
    try:
        meta = read_meta(engine)
        wanted = _params(args)
        if meta is not None and all(meta.get(k) == v for k, v in wanted.items()) and not args.rebuild:
            migrate.upgrade(url)  # a newer migration since the data was built: bring the schema up to date
            return Data(meta["series"], meta["batch_ids"], None)
        stale = meta is not None or _has_rows(engine)
    finally:
        engine.dispose()
    if stale and not args.rebuild:
        print("load: the bench database holds other data (parameters changed); rebuilding it", flush=True)
    if stale or args.rebuild:
        prepare_database(url, rebuild=True)
    return build(url, args, rng)


def data_sizes(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            by_state = dict(conn.execute(text(
                "SELECT state, sum(seq_end - seq_start + 1) FROM mark_ranges GROUP BY state")).all())
            n_ranges, n_batches, n_series = conn.execute(text(
                "SELECT (SELECT count(*) FROM mark_ranges), (SELECT count(*) FROM mark_batches), "
                "(SELECT count(DISTINCT series) FROM mark_batches)")).one()
            n_scans, n_checks, n_events, n_lots = conn.execute(text(
                "SELECT (SELECT count(*) FROM scans), (SELECT count(*) FROM mark_checks), "
                "(SELECT count(*) FROM ledger_events), (SELECT count(*) FROM lots)")).one()
            db_mb = conn.execute(text("SELECT pg_database_size(current_database()) / 1048576.0")).scalar()
            settings = dict(conn.execute(text(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('shared_buffers', 'synchronous_commit', 'max_connections', 'fsync')")).all())
    finally:
        engine.dispose()
    issued_states = (MarkState.issued, MarkState.activated, MarkState.voided, MarkState.lost, MarkState.stolen)
    issued = sum(int(by_state.get(s.value, 0)) for s in issued_states)
    states = ", ".join(f"{s} {int(n):,}" for s, n in sorted(by_state.items(), key=lambda kv: -kv[1]))
    return [f"marks issued to producers: {issued:,} (issued, activated, voided, lost or stolen); by state: {states}",
            f"ledger: {n_ranges:,} mark_ranges rows, {n_batches:,} batches in {n_series} series, {n_lots:,} lots, "
            f"{n_events:,} ledger events",
            f"past scans: {n_scans:,} scans rows, {n_checks:,} mark_checks rows; database {db_mb:,.0f} MB",
            "PostgreSQL: " + ", ".join(f"{k} {v}" for k, v in sorted(settings.items()))]


# --- the request paths --------------------------------------------------------------------------

def sample_paths(url: str, data: Data, n: int, rng: random.Random, keyring: MarkKeyring) -> tuple[list[str], int]:
    """`n` /v/{code} paths: GENUINE_SHARE activated on an active lot, the rest issued, never activated."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT r.seq_start, r.seq_end, r.state, l.status FROM mark_ranges r "
                "LEFT JOIN lots l ON l.id = r.lot_id WHERE r.batch_id = ANY(:ids)"), {"ids": data.batch_ids}).all()
    finally:
        engine.dispose()
    genuine = [(a, b) for a, b, state, lot in rows
               if state == MarkState.activated.value and lot == LotStatus.active.value]
    waiting = [(a, b) for a, b, state, _ in rows if state == MarkState.issued.value]

    def pick(spans: list[tuple[int, int]]) -> int:
        weights = [b - a + 1 for a, b in spans]
        a, b = rng.choices(spans, weights=weights)[0]
        return rng.randint(a, b)

    prefix, year = data.series[:4], 2000 + int(data.series[4:])
    paths, n_genuine = [], 0
    for _ in range(n):
        is_genuine = rng.random() < GENUINE_SHARE
        n_genuine += is_genuine
        seq = pick(genuine if is_genuine else waiting)
        paths.append(f"/v/{make_code(keyring, Serial(prefix, year, seq))}")
    return paths, n_genuine



# --- the private PostgreSQL cluster -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_user() -> pwd.struct_passwd | None:
    """The user the cluster runs as: `postgres` when we are root (the server refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root, but there is no `postgres` user to run the private cluster as") from None


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` can enter every existing directory above `path` (the ones to create will be 0755)."""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    for parent in path.absolute().parents:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue
        bit = 0o100 if st.st_uid == user.pw_uid else 0o010 if st.st_gid in groups else 0o001
        if not st.st_mode & bit:
            return False
    return True


def pg_dir(option: str | None) -> tuple[Path, str | None]:
    """The cluster's directory, and why it is not the default one (or None)."""
    if option:
        return Path(option).expanduser(), None
    wanted = CACHE_DIR / "bench-pg"
    user = _postgres_user()
    if user is None or _reachable(wanted, user):
        return wanted, None
    return ROOT_PG_DIR, f"{wanted} is out of the postgres user's reach (we run as root)"


class PgCluster:
    """A private PostgreSQL cluster: data in `datadir` (built once, kept across runs), its server up only
    during the run, on a free loopback port; every one of its processes is a child of its postmaster."""

    def __init__(self, datadir: Path, bindir: Path = PG_BIN):
        self.datadir, self.bindir = datadir, bindir
        self.user = _postgres_user()
        self.port = 0
        self.pid: int | None = None
        self.log_path = datadir / "bench-server.log"      # the server writes it, so it lives in its directory

    def _run(self, program: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        as_user = {} if self.user is None else {"user": self.user.pw_uid, "group": self.user.pw_gid,
                                                "extra_groups": []}
        return subprocess.run([str(self.bindir / program), *args], capture_output=True, text=True, timeout=timeout,
                              cwd="/", start_new_session=True, **as_user)

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        missing = [p for p in reversed(self.datadir.absolute().parents) if not p.exists()]
        self.datadir.mkdir(parents=True, exist_ok=True)
        for p in missing:
            p.chmod(0o755)
        self.datadir.chmod(0o700)
        self._chown(self.datadir)
        out = self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                        "--locale=C.UTF-8")
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed ({out.returncode}): {(out.stderr or out.stdout).strip()}")
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write("\n# bench.load's settings, rewritten at every start\ninclude 'bench.conf'\n")

    def _status(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.datadir), "status", timeout=30).returncode == 0

    def start(self) -> None:
        if not self.initialized:
            self.init()
        if self._status():   # left running by a run that was killed
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60", "stop", timeout=90)
        self.port = free_port()
        conf = self.datadir / "bench.conf"
        conf.write_text("".join(f"{k} = '{v}'\n" for k, v in {**PG_SETTINGS, "port": self.port}.items()))
        self._chown(conf)
        out = self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log_path), "-w", "-t", "120", "start",
                        timeout=180)
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed ({out.returncode}): {(out.stderr or out.stdout).strip()}\n"
                               f"{self.log_tail()}")
        self.pid = int((self.datadir / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.pid is None:
            return
        self.pid = None
        out = self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "60", "stop", timeout=90)
        if out.returncode != 0:
            print(f"load: pg_ctl stop failed ({out.returncode}): {(out.stderr or out.stdout).strip()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"


# --- the servers ---------------------------------------------------------------------------------

def server_env(url: str, port: int, instance: Path, args, ratelimit_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GI_")}
    env.update({
        "GI_ENV": "production", "GI_DATABASE_URL": url, "GI_SECRET_KEY": SECRET_KEY,
        "GI_PUBLIC_BASE_URL": PUBLIC_BASE_URL, "GI_MARK_KEYS": MARK_KEYS, "GI_MARK_KEY_ID": MARK_KEY_ID,
        "GI_LEDGER_SIGNING_KEY": SIGNING_KEY, "GI_HOST": "127.0.0.1", "GI_PORT": str(port),
        "GI_INSTANCE_PATH": str(instance), "GI_CACHE_DIR": str(CACHE_DIR),
        # Measure the rate limiter on /v/ (with its Redis, as in production) without being throttled by it.
        "GI_RATELIMIT_VERIFY": "1000000/minute",
        # No worker recycling during a run: the same workers from the first request to the last.
        "GI_MAX_REQUESTS": "0",
    })
    if ratelimit_url:
        env["GI_RATELIMIT_STORAGE_URL"] = ratelimit_url
    else:
        env["GI_RATELIMIT_ENABLED"] = "false"
    if args.workers:
        env["GI_WORKERS"] = str(args.workers)
    if args.threads:
        env["GI_THREADS"] = str(args.threads)
    return env


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """os.environ is `env` inside the block (the settings are read from it)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def gunicorn_settings(env: dict[str, str]) -> dict:
    """The values gi_service/gunicorn_conf.py computes for this environment (what the servers run with)."""
    with environment(env):
        conf = runpy.run_module("gi_service.gunicorn_conf")
    return {k: conf.get(k) for k in ("workers", "threads", "worker_class", "max_requests", "max_requests_jitter",
                                     "preload_app", "accesslog", "timeout")}


def _ping_redis(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    """A private redis-server on loopback for the rate limiter's counters (production refuses memory://)."""

    def __init__(self, binary: str, workdir: Path):
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if _ping_redis(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class Server:
    """gunicorn with the production config serving `target`, started here and always stopped here."""

    def __init__(self, env: dict[str, str], target: str, log_path: Path):
        self.env, self.target, self.log_path = env, target, log_path
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{env['GI_PORT']}"

    def start(self, timeout: float = 90.0) -> None:
        cmd = [sys.executable, "-m", "gunicorn", "-c", "python:gi_service.gunicorn_conf", self.target]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=Path(__file__).resolve().parent.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.target}) exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:   # any HTTP answer will do (the bare callable answers 404 here)
                with urllib.request.urlopen(self.base + "/api/v1/health", timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn ({self.target}) did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def workers(self) -> set[int]:
        procs = _procs()
        return {pid for pid, p in procs.items() if p[0] == self.proc.pid}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_problems(self) -> str | None:
        text_ = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        tracebacks = text_.count("Traceback")
        if tracebacks or "[CRITICAL]" in text_:
            return f"gunicorn ({self.target}) logged {tracebacks} traceback(s); its last lines:\n{self.log_tail(40)}"
        return None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)     # gunicorn's graceful shutdown of its workers
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)   # the session started for this server only
            self.proc.wait(timeout=10)
        finally:
            self._log.close()


# --- counting CPU ------------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _procs() -> dict[int, tuple[int, float, float]]:
    """pid -> (parent pid, its own CPU seconds, CPU seconds of the children it reaped), from /proc."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue        # exited meanwhile
        out[int(name)] = (int(f[1]), (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK)
    return out


def tree_cpu(procs: dict[int, tuple[int, float, float]], root: int) -> float:
    """CPU seconds of a process and its children, including every child that exited: a reaped child's
    CPU lives on in its parent's cutime + cstime (a worker the gunicorn master replaced, a PostgreSQL
    backend that disconnected), so the sum never goes back."""
    return sum(own + reaped for pid, (ppid, own, reaped) in procs.items() if pid == root or ppid == root)


def backends_cpu(procs: dict[int, tuple[int, float, float]], database: str) -> float:
    """External server: the backends connected to the bench database, by their titles (approximate)."""
    total = 0.0
    for pid, (_, own, _) in procs.items():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                title = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres:") and f" {database} " in title:
            total += own
    return total


@dataclass
class Sample:
    wall: float
    own: float                  # this process's CPU (all its threads)
    children: float             # CPU of the children this process reaped (wrk)
    parts: dict[str, float]     # server:app, server:bare, db, redis
    busy: float                 # the machine: CPU seconds busy, over all cores
    idle: float                 # ... and idle (idle + iowait)
    load: tuple[float, float, float]


@dataclass
class Meter:
    """Reads the CPU of everything the benchmark runs, and of the machine."""
    servers: dict[str, int] = field(default_factory=dict)   # gunicorn masters by name (app, bare)
    postmaster: int | None = None                     # the private cluster
    database: str | None = None                       # or an external server's bench database
    redis: int | None = None

    def sample(self) -> Sample:
        procs = _procs()
        parts = {**{f"server:{name}": tree_cpu(procs, pid) for name, pid in self.servers.items()},
                 "db": (tree_cpu(procs, self.postmaster) if self.postmaster
                        else backends_cpu(procs, self.database) if self.database else 0.0),
                 "redis": tree_cpu(procs, self.redis) if self.redis else 0.0}
        with open("/proc/stat") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:9]]   # user nice system idle iowait irq softirq steal
        with open("/proc/loadavg") as fh:
            load = tuple(float(x) for x in fh.read().split()[:3])
        t = os.times()
        return Sample(time.monotonic(), t.user + t.system, t.children_user + t.children_system, parts,
                      (sum(ticks) - ticks[3] - ticks[4]) / TICK, (ticks[3] + ticks[4]) / TICK, load)


@dataclass
class Usage:
    """What one measured stretch cost: CPU ms per answer by part, and the state of the machine."""
    answers: int
    ms: dict[str, float]        # app (this process), server, db, redis: CPU ms per answer
    idle: float                 # share of the machine's CPU time left idle
    others: float               # cores busy with processes that are not the benchmark's
    load: tuple[float, float, float]


def usage(before: Sample, after: Sample, answers: int, app_cpu: float | None = None,
          server: str | None = None) -> Usage:
    """Per answer: this process's CPU (`app_cpu`), the serving gunicorn's (`server`: the other one, idle,
    is not charged to the answers but is the benchmark's), PostgreSQL's and Redis's."""
    n = max(1, answers)
    ms = {k: (after.parts[k] - before.parts[k]) / n * 1000 for k in ("db", "redis")}
    ms["server"] = (after.parts[f"server:{server}"] - before.parts[f"server:{server}"]) / n * 1000 if server else 0.0
    if app_cpu is not None:
        ms["app"] = app_cpu / n * 1000
    busy, idle = after.busy - before.busy, after.idle - before.idle
    ours = (after.own - before.own) + (after.children - before.children) + sum(
        after.parts[k] - before.parts[k] for k in after.parts)
    wall = max(1e-9, after.wall - before.wall)
    return Usage(answers, ms, idle / max(1e-9, busy + idle), max(0.0, busy - ours) / wall, after.load)


# --- figure (a): application CPU per answer, in this process -------------------------------------

@dataclass
class Stretch:
    endpoint: str
    round: int
    usage: Usage
    statuses: dict[int, int]

    @property
    def app_ms(self) -> float:
        return self.usage.ms["app"]


def in_process(env: dict[str, str], paths: list[str], args, meter: Meter) -> list[Stretch]:
    """--rounds rounds of --checks checks per endpoint: the app through Flask's test client, the bare
    verdict by a direct call, all on one app's configured objects; CPU of this process per answer."""
    from sqlalchemy.orm import configure_mappers

    from gi_service import create_app

    with environment(env):
        app = create_app()
    configure_mappers()
    for name in app.jinja_env.list_templates(filter_func=lambda n: n.endswith(".html")):
        app.jinja_env.get_template(name)     # as gi_service.wsgi does before the fork
    client = app.test_client()
    bare_app = bare.make_application(app)
    checklog = app.extensions.get("gi_checklog")
    flush = getattr(checklog, "flush", None)       # what a stretch buffered is written within it
    headers = {ep: {"Accept": ACCEPT[ep], "Accept-Language": ACCEPT_LANGUAGE, "User-Agent": USER_AGENT}
               for ep in ENDPOINTS}
    cycle = iter(paths * (1 + (len(ENDPOINTS) * (args.rounds + 1) * args.checks) // max(1, len(paths))))

    def one(ep: str) -> int:
        if ep == "bare":
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": next(cycle), "QUERY_STRING": "",
                       "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                       "REMOTE_ADDR": "127.0.0.1", "HTTP_ACCEPT": ACCEPT[ep], "HTTP_ACCEPT_LANGUAGE": ACCEPT_LANGUAGE,
                       "HTTP_USER_AGENT": USER_AGENT, "wsgi.url_scheme": "http"}
            status = []
            b"".join(bare_app(environ, lambda s, h, exc=None: status.append(s)))
            return int(status[0][:3])
        resp = client.get("/api/v1/health" if ep == "health" else next(cycle), headers=headers[ep])
        resp.get_data()
        resp.close()
        return resp.status_code

    endpoints = list(ENDPOINTS)
    warm = max(20, args.checks // 10)
    for ep in endpoints:
        for _ in range(warm):
            one(ep)
    if flush:
        flush()
    stretches = []
    try:
        for i in range(args.rounds):
            k = i % len(endpoints)
            for ep in endpoints[k:] + endpoints[:k]:
                gc.collect()
                statuses: dict[int, int] = {}
                before, cpu0 = meter.sample(), time.process_time()
                for _ in range(args.checks):
                    s = one(ep)
                    statuses[s] = statuses.get(s, 0) + 1
                if flush:
                    flush()
                cpu1, after = time.process_time(), meter.sample()
                st = Stretch(ep, i, usage(before, after, args.checks, cpu1 - cpu0), statuses)
                stretches.append(st)
                print(f"load: (a) round {i + 1} {ep:<6} {st.app_ms:6.2f} ms application CPU per answer "
                      f"(+ {st.usage.ms['db']:.2f} ms PostgreSQL, {st.usage.ms['redis']:.2f} ms Redis)", flush=True)
    finally:
        app.extensions["gi_engine"].dispose()
    return stretches


def _spread(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)}-{format(max(values), fmt)}"


def report_cpu(stretches: list[Stretch], args) -> None:
    print(f"load: (a) application CPU per answer in one process, {args.checks} checks per endpoint in each of "
          f"{args.rounds} interleaved rounds (Flask's test client for the app, a direct call for the bare verdict; "
          "medians of the rounds):")
    print(f"load: (a)   {'endpoint':<28} {'application':>11} {'PostgreSQL':>11} {'Redis':>8}   statuses")
    by = {ep: [s for s in stretches if s.endpoint == ep] for ep in ENDPOINTS}
    for ep, ss in by.items():
        if not ss:
            continue
        counts: dict[int, int] = {}
        for s in ss:
            for k, n in s.statuses.items():
                counts[k] = counts.get(k, 0) + n
        unexpected = sum(n for k, n in counts.items() if k not in EXPECTED[ep])
        med = {k: statistics.median(s.usage.ms[k] for s in ss) for k in ("app", "db", "redis")}
        print(f"load: (a)   {NAMES[ep]:<28} {med['app']:>8.2f} ms {med['db']:>8.2f} ms {med['redis']:>5.2f} ms   "
              + ", ".join(f"{k}: {n:,}" for k, n in sorted(counts.items()))
              + (f" ({unexpected:,} unexpected)" if unexpected else ""))
    for ep, target in CPU_TARGETS.items():
        ratios = [s.app_ms / b.app_ms for s, b in zip(by[ep], by["bare"])]
        ratio = statistics.median(ratios)
        print(f"load: (a) target: {NAMES[ep]}: application CPU per answer <= {target:g}x the bare verdict's: "
              f"measured {ratio:.2f}x (median of {len(ratios)} rounds, {_spread(ratios, '.2f')}x): "
              f"{'met' if ratio <= target else 'missed'}")


# --- figure (b): throughput under load ------------------------------------------------------------

WRK_SCRIPT = r"""
-- bench.load: random paths from a file, one Accept header; status counts and latency percentiles.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

paths = {}
statuses = {}

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then paths[#paths + 1] = line end
  end
  f:close()
  wrk.headers["Accept"] = args[2]
  wrk.headers["Accept-Language"] = args[4]
  wrk.headers["User-Agent"] = args[3]
  math.randomseed(os.time() * 100 + id)
  for _ = 1, 10 do math.random() end
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses") or {}) do counts[k] = (counts[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(counts) do parts[#parts + 1] = string.format('"%d": %d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'GIBENCH {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %.0f, "p90_us": %.0f, ' ..
    '"p99_us": %.0f, "max_us": %.0f, "mean_us": %.1f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status_errors": %d, "timeouts": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ", ")))
end
"""


@dataclass
class Run:
    endpoint: str
    round: int
    rps: float
    p50_us: float
    p99_us: float
    requests: int
    statuses: dict[int, int]
    socket_errors: int
    mean_bytes: float
    usage: Usage | None = None

    def unexpected(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if s not in EXPECTED[self.endpoint]}


def run_wrk(wrk: str, base: str, endpoint: str, paths_file: Path, script: Path, seconds: float, args,
            round_: int = -1) -> Run:
    cmd = [wrk, "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{seconds:g}s",
           "--timeout", "10s", "-s", str(script), base, "--", str(paths_file), ACCEPT[endpoint], USER_AGENT,
           ACCEPT_LANGUAGE]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("GIBENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    r = json.loads(line[len("GIBENCH "):])
    seconds_run = r["duration_us"] / 1e6
    sock = r["connect"] + r["read"] + r["write"] + r["timeouts"]
    return Run(endpoint, round_, r["requests"] / seconds_run, r["p50_us"], r["p99_us"], r["requests"],
               {int(k): v for k, v in r["statuses"].items()}, sock, r["bytes"] / max(1, r["requests"]))


def _get(url: str, accept: str) -> tuple[int, str, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept, "Accept-Language": ACCEPT_LANGUAGE,
                                               "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get_content_type(), dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), dict(exc.headers), exc.read()


def _key_paths(doc, prefix: str = "") -> set[str]:
    """The document's shape: the dotted paths of its keys (list items merged)."""
    if isinstance(doc, dict):
        return set().union(*({prefix + k} | _key_paths(v, prefix + k + ".") for k, v in doc.items())) if doc else set()
    if isinstance(doc, list):
        return set().union(set(), *(_key_paths(v, prefix + "[].") for v in doc))
    return set()


# The JSON verdict's error envelope carries the request's id (a Flask-side request attribute): not part
# of the verdict's document.
FLASK_ONLY = {"request_id"}


def check_answers(app_base: str, bare_base: str, paths: list[str]) -> list[str]:
    """A few requests before the load: statuses and content types as expected, and the bare verdict
    answering the JSON verdict's document (same status, verdict and shape)."""
    problems = []
    for path in paths[:8]:
        status, ctype, _, body = _get(app_base + path, HTML_ACCEPT)
        if status not in (200, 409) or ctype != "text/html":
            problems.append(f"HTML verdict {path}: {status} {ctype} {body[:200]!r}")
        status, ctype, _, body = _get(app_base + path, "application/json")
        if status not in (200, 409) or ctype != "application/json":
            problems.append(f"JSON verdict {path}: {status} {ctype} {body[:200]!r}")
            continue
        doc = json.loads(body)
        verdict = doc.get("verdict") or doc.get("error")
        if verdict not in ("genuine", "genuine_not_activated"):
            problems.append(f"JSON verdict {path}: verdict {verdict}")
        b_status, b_ctype, b_headers, b_body = _get(bare_base + path, "application/json")
        if b_status != status or b_ctype != "application/json" or b_headers.get("Cache-Control") != "no-store":
            problems.append(f"bare verdict {path}: {b_status} {b_ctype} (Cache-Control "
                            f"{b_headers.get('Cache-Control')}), the JSON verdict {status}: {b_body[:200]!r}")
            continue
        b_doc = json.loads(b_body)
        b_verdict = b_doc.get("verdict") or b_doc.get("error")
        a, b = _key_paths(doc) - FLASK_ONLY, _key_paths(b_doc)
        if b_verdict != verdict or a != b:
            problems.append(f"bare verdict {path}: verdict {b_verdict} (JSON verdict: {verdict}); keys only in the "
                            f"JSON verdict's {sorted(a - b) or 'none'}, only in the bare one's "
                            f"{sorted(b - a) or 'none'}")
    return problems


def _total_ms(run: Run) -> float:
    return run.usage.ms["server"] + run.usage.ms["db"] + run.usage.ms["redis"]


def report_load(runs: list[Run], args, exact_db: bool) -> None:
    print(f"load: (b) throughput under load, {args.rounds} interleaved rounds x {args.duration:g} s per endpoint "
          "(medians of the rounds; CPU per answer: servers + PostgreSQL + Redis):")
    print(f"load: (b)   {'endpoint':<28} {'req/s':>8} {'p50':>9} {'p99':>9} {'CPU per answer':>24} "
          f"{'CPU idle':>9} {'load avg':>10} {'others':>7}")
    by = {ep: [r for r in runs if r.endpoint == ep] for ep in ENDPOINTS}
    unsaturated = []
    for ep, rs in by.items():
        if not rs:
            continue
        med = lambda f: statistics.median(f(r) for r in rs)  # noqa: E731
        cpu = (f"{med(lambda r: r.usage.ms['server']):.2f}+{med(lambda r: r.usage.ms['db']):.2f}"
               f"+{med(lambda r: r.usage.ms['redis']):.2f} ms")
        idle = med(lambda r: r.usage.idle)
        loads = [r.usage.load[0] for r in rs]
        print(f"load: (b)   {NAMES[ep]:<28} {med(lambda r: r.rps):>8.1f} {_ms(med(lambda r: r.p50_us)):>9} "
              f"{_ms(med(lambda r: r.p99_us)):>9} {cpu:>24} {idle:>8.0%} {_spread(loads, '.1f'):>10} "
              f"{med(lambda r: r.usage.others):>6.2f}c   "
              f"({', '.join(f'{r.rps:.0f}' for r in rs)} req/s; {statistics.mean(r.mean_bytes for r in rs) / 1024:.1f}"
              " KB/answer)")
        if idle > NOT_SATURATED_IDLE:
            unsaturated.append(f"{NAMES[ep]} left {idle:.0%} of the CPU idle: not saturated, its req/s is not its "
                               "capacity (more connections, workers or threads would raise it)")
    print("load: (b) CPU idle: the machine's, during the endpoint's runs (/proc/stat); load avg: the 1-minute load "
          "average at the end of its runs (min-max); others: cores busy outside the benchmark's processes "
          "(other work on the shared machine, and interrupts)")
    if not exact_db:
        print("load: (b) PostgreSQL CPU is approximate: an external server (only the bench database's backends, "
              "found by their titles)")
    for line in unsaturated:
        print(f"load: (b) {line}")
    for ep, rs in by.items():
        if not rs:
            continue
        counts: dict[int, int] = {}
        for r in rs:
            for s, n in r.statuses.items():
                counts[s] = counts.get(s, 0) + n
        unexpected = {s: n for s, n in counts.items() if s not in EXPECTED[ep]}
        sock = sum(r.socket_errors for r in rs)
        shown = ", ".join(f"{s}: {n:,}" for s, n in sorted(counts.items()))
        print(f"load: (b) {NAMES[ep]}: {sum(r.requests for r in rs):,} answers ({shown}); errors: "
              f"{sum(unexpected.values()) + sock:,} (unexpected statuses {unexpected or 'none'}, "
              f"socket errors/timeouts {sock})")
    # Each round's endpoint against the same round's bare verdict: drift of the machine's load between
    # rounds moves both.
    for ep in ("json", "html", "health"):
        ratios = [r.rps / b.rps for r, b in zip(by[ep], by["bare"])]
        ratio = statistics.median(ratios)
        target = THROUGHPUT_TARGETS.get(ep)
        verdict = (f"target >= {target:.0%}: {'met' if ratio >= target else 'missed'}" if target
                   else "for reference, no target")
        print(f"load: (b) {'target: ' if target else ''}{NAMES[ep]}: throughput = {ratio:.1%} of the bare verdict's "
              f"(median of {len(ratios)} rounds, {_spread([x * 100 for x in ratios], '.1f')} %): {verdict}")
        if ep != "health":
            # What the CPU each answer took predicts for a saturated CPU: steadier than req/s when other
            # work on the machine takes a varying share of it. Information only: the target is req/s.
            shares = [_total_ms(b) / _total_ms(r) for r, b in zip(by[ep], by["bare"])]
            print(f"load: (b)   its CPU per answer under load (servers + PostgreSQL + Redis) predicts "
                  f"{statistics.median(shares):.1%} of the bare verdict's throughput on a saturated CPU "
                  f"(median of the rounds, {_spread([x * 100 for x in shares], '.1f')} %)")


# --- the run ---------------------------------------------------------------------------------------

def _loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


class _Terminated(Exception):
    pass


def _on_sigterm(signum, frame):   # noqa: ARG001
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds of both figures; the ratios are "
                        "taken per round and their median reported")
    parser.add_argument("--duration", type=float, default=5.0, help="(b) seconds of load per endpoint and round")
    parser.add_argument("--warmup", type=float, default=5.0, help="(b) seconds of warm-up per endpoint (not reported)")
    parser.add_argument("--checks", type=int, default=400, help="(a) checks per endpoint and round, in this process")
    parser.add_argument("--only", choices=("cpu", "load"), help="measure only figure (a) cpu or (b) load")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (the same for each endpoint)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=0, help="GI_WORKERS for gunicorn (default: its config's)")
    parser.add_argument("--threads", type=int, default=0, help="GI_THREADS for gunicorn (default: its config's)")
    parser.add_argument("--codes", type=int, default=20_000,
                        help="distinct codes requested at random (enough that a run checks each a few times at most, "
                             "as consumers do: a code checked more than its GI's threshold raises a copied-label "
                             "alert)")
    parser.add_argument("--service-batches", type=int, default=10, help="1,000,000-mark batches via the services")
    parser.add_argument("--synthetic-batches", type=int, default=20_000, help="1,000-mark batches added by SQL")
    parser.add_argument("--scans", type=int, default=1_000_000, help="past scans inserted")
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the bench database")
    parser.add_argument("--pg-dir", default=os.environ.get("GI_BENCH_PG_DIR"),
                        help="directory of the private PostgreSQL cluster (GI_BENCH_PG_DIR; default "
                             "~/.cache/gi-service/bench-pg)")
    parser.add_argument("--database-url", default=os.environ.get("GI_BENCH_LOAD_DATABASE_URL"),
                        help="use this external database instead of the private cluster (GI_BENCH_LOAD_DATABASE_URL;"
                             " its CPU is then counted approximately)")
    parser.add_argument("--keep-server", action="store_true",
                        help="after the load, keep the servers running until Enter (for profiling by hand)")
    parser.add_argument("--seed", type=int, default=20261122, help="seed of the data build")
    parser.add_argument("--sample-seed", type=int, default=None,
                        help="seed of the codes requested (default: new each run, so that repeated runs do not "
                             "check the same codes over and over and make them look copied)")
    args = parser.parse_args(argv)
    if args.service_batches * BATCH_MARKS + args.synthetic_batches * 1000 < MIN_ISSUED or args.scans < MIN_SCANS:
        parser.error(f"the data must hold at least {MIN_ISSUED:,} marks and {MIN_SCANS:,} past checks")
    if args.rounds < 1 or args.checks < 1 or args.duration <= 0:
        parser.error("--rounds, --checks and --duration must be positive")
    logging.getLogger("alembic").setLevel(logging.WARNING)

    wrk = shutil.which("wrk")
    if wrk is None and args.only != "cpu":
        print("load: not run: wrk is not installed (Debian: `sudo apt-get install wrk`; `make bench` installs it)")
        return 0
    missing = bare.missing_service_functions()
    if missing:
        print(f"load: not run: the bare verdict (bench/bare.py) needs {' and '.join(missing)}, which this tree does "
              "not have (issue 14)")
        return 0

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args, wrk)
    except KeyboardInterrupt:
        print("load: interrupted")
        return 130
    except _Terminated:
        print("load: terminated")
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args, wrk: str | None) -> int:
    print(f"load: machine: {os.cpu_count()} cores, load average {_loadavg()} (1, 5, 15 min) before the benchmark",
          flush=True)
    cluster = None
    with contextlib.ExitStack() as stack:
        if args.database_url:
            url = args.database_url
        else:
            datadir, why = pg_dir(args.pg_dir)
            cluster = PgCluster(datadir)
            if why:
                print(f"load: private cluster in {datadir}: {why}")
            fresh = not cluster.initialized
            try:
                stack.callback(cluster.stop)
                cluster.start()
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                print(f"load: not run: cannot start the private PostgreSQL cluster in {datadir} ({exc})")
                return 0
            url = cluster.url
            print(f"load: private PostgreSQL cluster {'created' if fresh else 'reused'} in {datadir}, serving "
                  f"127.0.0.1:{cluster.port} for this run (postmaster {cluster.pid}; stopped at the end)", flush=True)
        try:
            version = prepare_database(url, rebuild=False)   # ensure_data drops it for --rebuild
        except Exception as exc:  # noqa: BLE001 - a missing server is reported, not raised
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            hint = " (Debian: `sudo apt-get install postgresql-15-postgis-3`)" if "postgis" in reason.lower() else ""
            print(f"load: not run: cannot prepare the database ({reason}){hint}")
            return 0
        print(f"load: PostgreSQL {version} at {make_url(url).render_as_string(hide_password=True)}"
              + ("" if cluster else " (external server: its CPU is counted approximately)"), flush=True)
        jurisdiction.configure(CACHE_DIR)
        data = ensure_data(url, args, random.Random(args.seed))
        print("load: data " + (f"built in {data.build_s:.0f} s" if data.build_s is not None
                               else "reused from an earlier run (--rebuild to rebuild it)"), flush=True)
        sizes = data_sizes(url)
        for line in sizes:
            print(f"load: data: {line}", flush=True)

        keyring = MarkKeyring.from_setting(MARK_KEYS, MARK_KEY_ID)
        sample_seed = args.sample_seed if args.sample_seed is not None else random.SystemRandom().randrange(2**31)
        print(f"load: codes sampled with --sample-seed {sample_seed}", flush=True)
        paths, n_genuine = sample_paths(url, data, args.codes, random.Random(sample_seed), keyring)
        print(f"load: {len(paths):,} codes ({n_genuine:,} genuine -> 200, {len(paths) - n_genuine:,} not activated "
              "-> 409)", flush=True)

        tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gi-bench-load-")))
        meter = Meter(postmaster=cluster.pid if cluster else None,
                      database=None if cluster else make_url(url).database)
        redis_bin = shutil.which("redis-server")
        redis = Redis(redis_bin, tmp_path / "redis") if redis_bin else None
        if redis is None:
            print("load: redis-server is not installed (Debian: `sudo apt-get install redis-server`; `make bench` "
                  "installs it): the rate limiter, which needs Redis in production, is disabled for this run")
        else:
            stack.callback(redis.stop)
            redis.start()
            meter.redis = redis.proc.pid
            print(f"load: rate limiter on /v/: GI_RATELIMIT_VERIFY=1000000/minute, counters in a private "
                  f"redis-server at {redis.url}", flush=True)
        ports = {"app": free_port(), "bare": free_port()}
        envs = {k: server_env(url, port, tmp_path / "instance", args, redis.url if redis else None)
                for k, port in ports.items()}
        stretches: list[Stretch] = []
        runs: list[Run] = []
        try:
            if args.only != "load":
                print(f"load: (a) {args.checks} checks per endpoint and round, {args.rounds} rounds, in this process "
                      f"(load average {_loadavg()})", flush=True)
                stretches = in_process(envs["app"], paths, args, meter)
            if args.only != "cpu":
                runs = load(args, wrk, envs, paths, meter, tmp_path, stack)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"load: not completed: {exc}")
            if cluster is not None:
                print(f"load: the private cluster's log ends:\n{cluster.log_tail()}")
        if stretches:
            report_cpu(stretches, args)
        if runs:
            report_load(runs, args, exact_db=cluster is not None)
        print(f"load: load average {_loadavg()} (1, 5, 15 min) at the end")
        for line in sizes:
            print(f"load: data: {line}")
    return 0


def load(args, wrk: str, envs: dict[str, dict[str, str]], paths: list[str], meter: Meter, tmp_path: Path,
         stack: contextlib.ExitStack) -> list[Run]:
    """Figure (b): both servers up, wrk on each endpoint in turn, CPU and the machine around each run."""
    conf = gunicorn_settings(envs["app"])
    targets = {"app": "gi_service.wsgi:app", "bare": "bench.bare:application"}
    print(f"load: (b) gunicorn -c python:gi_service.gunicorn_conf {targets['app']}, and {targets['bare']} on a "
          f"second port, GI_ENV=production: "
          f"{conf['workers']} workers x {conf['threads']} threads ({conf['worker_class']}) "
          f"each, preload {conf['preload_app']}, access log {'on' if conf['accesslog'] else 'off'}, max_requests "
          f"{conf['max_requests']} (GI_MAX_REQUESTS=0: no worker recycling); {os.cpu_count()} cores", flush=True)
    print(f"load: (b) wrk on loopback: {args.connections} connections, {args.wrk_threads} thread(s); "
          f"{args.warmup:g} s warm-up per endpoint, then {args.rounds} rounds x {args.duration:g} s per endpoint, "
          "interleaved (the order rotates)", flush=True)
    verdicts = tmp_path / "verdict.txt"
    verdicts.write_text("\n".join(paths) + "\n")
    health = tmp_path / "health.txt"
    health.write_text("/api/v1/health\n")
    script = tmp_path / "bench.lua"
    script.write_text(WRK_SCRIPT)
    servers = {k: Server(envs[k], targets[k], tmp_path / f"gunicorn-{k}.log") for k in targets}
    for name, server in servers.items():
        stack.callback(_report_log, server)
        stack.callback(server.stop)
        server.start()
        meter.servers[name] = server.proc.pid
    plan = {"health": ("app", health), "json": ("app", verdicts), "html": ("app", verdicts),
            "bare": ("bare", verdicts)}
    endpoints = list(ENDPOINTS)
    for p in check_answers(servers["app"].base, servers["bare"].base, paths):
        print(f"load: (b) unexpected answer before the load: {p}")
    for ep in endpoints:
        server, file = plan[ep]
        run_wrk(wrk, servers[server].base, ep, file, script, args.warmup, args)
    workers = {k: s.workers() for k, s in servers.items()}
    runs = []
    for i in range(args.rounds):
        k = i % len(endpoints)
        for ep in endpoints[k:] + endpoints[:k]:
            server, file = plan[ep]
            before = meter.sample()
            run = run_wrk(wrk, servers[server].base, ep, file, script, args.duration, args, i)
            run.usage = usage(before, meter.sample(), run.requests, server=server)
            runs.append(run)
            u = run.usage
            print(f"load: (b) round {i + 1} {ep:<6} {run.rps:8.1f} req/s, p50 {_ms(run.p50_us)}, p99 "
                  f"{_ms(run.p99_us)}, CPU per answer {u.ms['server']:.2f} server + {u.ms['db']:.2f} PostgreSQL + "
                  f"{u.ms['redis']:.2f} Redis ms; CPU idle {u.idle:.0%}, load avg {u.load[0]:.2f}, others "
                  f"{u.others:.2f} cores", flush=True)
    for k, s in servers.items():
        replaced = workers[k] - s.workers()
        print(f"load: (b) {targets[k]}: {len(workers[k])} workers, "
              + (f"{len(replaced)} replaced by the master during the rounds (their CPU is counted)" if replaced
                 else "none replaced during the rounds"))
    if args.keep_server:
        input("load: " + ", ".join(f"{targets[k]} at {s.base} (master pid {s.proc.pid})" for k, s in servers.items())
              + "; press Enter to stop them ")
    return runs


def _report_log(server: Server) -> None:
    problem = server.log_problems()
    if problem:
        print(f"load: {problem}")


if __name__ == "__main__":
    sys.exit(main())

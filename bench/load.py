"""Benchmark: the verification verdict under load, beside a trivial endpoint of the same app (issue 5 §7).

Run as `python -m bench.load [--duration S] [--rounds N] [--connections C] [--rebuild] ...`.

gunicorn serves the app in its production configuration (gi_service/gunicorn_conf.py,
GI_ENV=production) on PostgreSQL, on 127.0.0.1 and a free port. wrk, a second process on
loopback, drives it for a bounded time per run with the same connections and threads for each
of three endpoints, interleaved over --rounds rounds after a short warm-up of each:

* trivial: `GET /api/v1/health` (no database);
* JSON verdict: `GET /v/{code}` with `Accept: application/json`;
* HTML verdict: `GET /v/{code}` with a browser's Accept header (the page with its inline map).

The codes are a few thousand random issued serials: mostly activated on an active lot (200
genuine), some never activated (409 genuine_not_activated). Any other status, and socket errors
and timeouts, are counted as errors. Printed: req/s, p50 and p99 per endpoint (medians over the
rounds), the verdicts' throughput as a share of the trivial endpoint's, and PASS/MISS against
the target (>= 60 %). Exits 0 either way: a benchmark reports, it does not gate.

The data lives in its own database (GI_BENCH_LOAD_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1/gi_bench_load; created with PostGIS if missing, migrated
with the project's migrations) and is reused by later runs while its parameters match (table
bench_load_meta); --rebuild drops and rebuilds it. It holds:

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

Each run adds its own checks to `scans` (every verdict GET is logged): the sizes printed are the
ones present at the start of the run.

The mark keys, ledger signing key and secret are fixed bench values derived here, passed to
gunicorn as GI_* variables, so the codes computed here are the server's codes in every run.
The rate limiter on /v/ stays in the measured path as in production, counting in a private
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
import hashlib
import json
import logging
import os
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
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from gi_service import migrate
from gi_service.codes import MarkKeyring, Serial, format_serial, make_code
from gi_service.db import make_engine, utcnow, write_session
from gi_service.models import LotStatus, MarkState
from gi_service.services import jurisdiction, marks, producers

from . import ledger as ledger_bench

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1/gi_bench_load"
CACHE_DIR = ledger_bench.CACHE_DIR
TARGET_RATIO = 0.60
DATA_VERSION = 1                 # bump when the data this module builds changes shape
BATCH_MARKS = 1_000_000          # marks issued per service-built batch
SPOILED = 200                    # spoiled in printing per batch (approved on top, so BATCH_MARKS are issued)
LOTS_PER_BATCH = 20              # each batch in 20 segments: the first 80 % of each activated on its own lot
ACTIVATED_SHARE = 0.8
PLOTS = 12
GENUINE_SHARE = 0.85             # of the request codes: activated on an active lot (200); the rest issued (409)
EXPECTED = {"health": {200}, "json": {200, 409}, "html": {200, 409}}
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
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
                                    production_date=utcnow().date() - dt.timedelta(days=20 + k),
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
                    "built_at": utcnow().isoformat(), "build_s": round(time.perf_counter() - started, 1)}
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
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
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


# --- the server ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(url: str, port: int, instance: Path, args, ratelimit_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GI_")}
    env.update({
        "GI_ENV": "production", "GI_DATABASE_URL": url, "GI_SECRET_KEY": SECRET_KEY,
        "GI_PUBLIC_BASE_URL": PUBLIC_BASE_URL, "GI_MARK_KEYS": MARK_KEYS, "GI_MARK_KEY_ID": MARK_KEY_ID,
        "GI_LEDGER_SIGNING_KEY": SIGNING_KEY, "GI_HOST": "127.0.0.1", "GI_PORT": str(port),
        "GI_INSTANCE_PATH": str(instance), "GI_CACHE_DIR": str(CACHE_DIR),
        # Measure the rate limiter on /v/ (with its Redis, as in production) without being throttled by it.
        "GI_RATELIMIT_VERIFY": "1000000/minute",
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


def gunicorn_settings(env: dict[str, str]) -> dict:
    """The values gi_service/gunicorn_conf.py computes for this environment (what the server runs with)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        conf = runpy.run_module("gi_service.gunicorn_conf")
    finally:
        os.environ.clear()
        os.environ.update(saved)
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
    """gunicorn with the production config, started here and always stopped here."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{env['GI_PORT']}"

    def start(self, timeout: float = 90.0) -> None:
        cmd = [sys.executable, "-m", "gunicorn", "-c", "python:gi_service.gunicorn_conf", "gi_service.wsgi:app"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=Path(__file__).resolve().parent.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/api/v1/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer /api/v1/health within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

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


# --- the load --------------------------------------------------------------------------------------

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
  wrk.headers["Accept-Language"] = "zh-CN,zh;q=0.9,en;q=0.6"
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


def cpu_seconds(master_pid: int, database: str) -> dict[str, float] | None:
    """CPU time (user + system) so far of the gunicorn master and workers, and of the PostgreSQL
    backends connected to the bench database (by their process titles); None without /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"server": 0.0, "db": 0.0}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                title = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue        # exited meanwhile
        cpu = (int(fields[11]) + int(fields[12])) / tick
        if int(pid) == master_pid or int(fields[1]) == master_pid:
            out["server"] += cpu
        elif title.startswith("postgres:") and f" {database} " in title:
            out["db"] += cpu
    return out


@dataclass
class Run:
    endpoint: str
    rps: float
    p50_us: float
    p99_us: float
    requests: int
    statuses: dict[int, int]
    socket_errors: int
    mean_bytes: float
    server_cpu_ms: float | None = None    # gunicorn CPU per answer
    db_cpu_ms: float | None = None        # PostgreSQL backends' CPU per answer

    def unexpected(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if s not in EXPECTED[self.endpoint]}


def run_wrk(wrk: str, base: str, endpoint: str, paths_file: Path, accept: str, script: Path, seconds: float,
            args) -> Run:
    cmd = [wrk, "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{seconds:g}s",
           "--timeout", "10s", "-s", str(script), base, "--", str(paths_file), accept, USER_AGENT]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("GIBENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    r = json.loads(line[len("GIBENCH "):])
    seconds_run = r["duration_us"] / 1e6
    sock = r["connect"] + r["read"] + r["write"] + r["timeouts"]
    return Run(endpoint, r["requests"] / seconds_run, r["p50_us"], r["p99_us"], r["requests"],
               {int(k): v for k, v in r["statuses"].items()}, sock, r["bytes"] / max(1, r["requests"]))


def check_answers(base: str, paths: list[str]) -> list[str]:
    """A few requests before the load: the verdicts, their statuses and content types are what we expect."""
    problems = []
    for path in paths[:12]:
        for accept, mime in (("application/json", "application/json"), (HTML_ACCEPT, "text/html")):
            req = urllib.request.Request(base + path, headers={"Accept": accept, "User-Agent": USER_AGENT})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    status, ctype, body = resp.status, resp.headers.get_content_type(), resp.read()
            except urllib.error.HTTPError as exc:
                status, ctype, body = exc.code, exc.headers.get_content_type(), exc.read()
            if status not in (200, 409) or ctype != mime:
                problems.append(f"{path} ({mime}): {status} {ctype} {body[:200]!r}")
            elif mime == "application/json":
                doc = json.loads(body)
                verdict = doc.get("verdict") or doc.get("error")
                if verdict not in ("genuine", "genuine_not_activated"):
                    problems.append(f"{path}: verdict {verdict}")
    return problems


def report(runs: list[Run], rounds: int, sizes: list[str]) -> None:
    names = {"health": "trivial GET /api/v1/health", "json": "JSON verdict GET /v/{code}",
             "html": "HTML verdict GET /v/{code}"}
    med = {}
    print(f"load: {'endpoint':<30} {'req/s':>9} {'p50':>10} {'p99':>10} {'CPU/answer':>20}   (medians of {rounds} "
          "runs; req/s of each run)")
    for ep in ("health", "json", "html"):
        rs = [r for r in runs if r.endpoint == ep]
        med[ep] = (statistics.median(r.rps for r in rs), statistics.median(r.p50_us for r in rs),
                   statistics.median(r.p99_us for r in rs))
        each = ", ".join(f"{r.rps:.0f}" for r in rs)
        cpu = "n/a"
        if all(r.server_cpu_ms is not None for r in rs):
            cpu = (f"{statistics.median(r.server_cpu_ms for r in rs):.2f} + "
                   f"{statistics.median(r.db_cpu_ms for r in rs):.2f} ms")
        print(f"load: {names[ep]:<30} {med[ep][0]:>9.1f} {_ms(med[ep][1]):>10} {_ms(med[ep][2]):>10} {cpu:>20}   "
              f"({each}; {statistics.mean(r.mean_bytes for r in rs) / 1024:.1f} KB/answer)")
    print("load: CPU/answer = gunicorn's CPU + the PostgreSQL backends' CPU per answer (from /proc; unlike req/s it "
          "hardly depends on what else the machine runs)")
    total = {ep: sum(r.requests for r in runs if r.endpoint == ep) for ep in med}
    for ep in ("health", "json", "html"):
        counts: dict[int, int] = {}
        for r in runs:
            if r.endpoint == ep:
                for s, n in r.statuses.items():
                    counts[s] = counts.get(s, 0) + n
        unexpected = {s: n for s, n in counts.items() if s not in EXPECTED[ep]}
        sock = sum(r.socket_errors for r in runs if r.endpoint == ep)
        shown = ", ".join(f"{s}: {n:,}" for s, n in sorted(counts.items()))
        print(f"load: {names[ep]}: {total[ep]:,} answers ({shown}); errors: "
              f"{sum(unexpected.values()) + sock:,} (unexpected statuses {unexpected or 'none'}, "
              f"socket errors/timeouts {sock})")
    errors = sum(sum(r.unexpected().values()) + r.socket_errors for r in runs)
    trivial = [r for r in runs if r.endpoint == "health"]
    for ep in ("json", "html"):
        # Each round's verdict against the same round's trivial endpoint: a machine whose load drifts
        # between rounds moves both.
        ratios = [r.rps / t.rps for r, t in zip([r for r in runs if r.endpoint == ep], trivial)]
        ratio = statistics.median(ratios)
        ok = ratio >= TARGET_RATIO and errors == 0
        print(f"load: {'PASS' if ok else 'MISS'} {names[ep]} throughput = {ratio:.1%} of the trivial endpoint's "
              f"(target >= {TARGET_RATIO:.0%}; median of the rounds' ratios "
              f"{', '.join(f'{x:.1%}' for x in ratios)}); p50 {med[ep][1] / med['health'][1]:.1f}x, "
              f"p99 {med[ep][2] / med['health'][2]:.1f}x the trivial endpoint's")
    for line in sizes:
        print(f"load: data: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per endpoint and round")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per endpoint (not reported)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (trivial, JSON, HTML); medians")
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
    parser.add_argument("--keep-server", action="store_true",
                        help="after the load, keep gunicorn running until Enter (for profiling by hand)")
    parser.add_argument("--seed", type=int, default=20261122, help="seed of the data build")
    parser.add_argument("--sample-seed", type=int, default=None,
                        help="seed of the codes requested (default: new each run, so that repeated runs do not "
                             "check the same codes over and over and make them look copied)")
    args = parser.parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    url = os.environ.get("GI_BENCH_LOAD_DATABASE_URL", DEFAULT_URL)

    wrk = shutil.which("wrk")
    if wrk is None:
        print("load: not run: wrk is not installed (Debian: `sudo apt-get install wrk`; `make bench` installs it)")
        return 0
    try:
        version = prepare_database(url, rebuild=False)   # ensure_data drops it for --rebuild
    except Exception as exc:  # noqa: BLE001 - a missing server is reported, not raised
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"load: not run: cannot prepare the database ({reason})")
        return 0
    print(f"load: PostgreSQL {version} at {make_url(url).render_as_string(hide_password=True)}", flush=True)
    jurisdiction.configure(CACHE_DIR)
    rng = random.Random(args.seed)
    data = ensure_data(url, args, rng)
    print("load: data " + (f"built in {data.build_s:.0f} s" if data.build_s is not None
                           else "reused from an earlier run (--rebuild to rebuild it)"), flush=True)
    sizes = data_sizes(url)
    for line in sizes:
        print(f"load: data: {line}", flush=True)

    keyring = MarkKeyring.from_setting(MARK_KEYS, MARK_KEY_ID)
    sample_seed = args.sample_seed if args.sample_seed is not None else random.SystemRandom().randrange(2**31)
    print(f"load: codes sampled with --sample-seed {sample_seed}", flush=True)
    paths, n_genuine = sample_paths(url, data, args.codes, random.Random(sample_seed), keyring)
    with tempfile.TemporaryDirectory(prefix="gi-bench-load-") as tmp:
        tmp_path = Path(tmp)
        files = {"health": tmp_path / "health.txt", "verdict": tmp_path / "verdict.txt"}
        files["health"].write_text("/api/v1/health\n")
        files["verdict"].write_text("\n".join(paths) + "\n")
        script = tmp_path / "bench.lua"
        script.write_text(WRK_SCRIPT)
        plan = {"health": (files["health"], "application/json"), "json": (files["verdict"], "application/json"),
                "html": (files["verdict"], HTML_ACCEPT)}
        redis_bin = shutil.which("redis-server")
        redis = Redis(redis_bin, tmp_path / "redis") if redis_bin else None
        if redis is None:
            print("load: redis-server is not installed (Debian: `sudo apt-get install redis-server`; `make bench` "
                  "installs it): the rate limiter, which needs Redis in production, is disabled for this run")
        env = server_env(url, free_port(), tmp_path / "instance", args, redis.url if redis else None)
        conf = gunicorn_settings(env)
        print(f"load: gunicorn -c python:gi_service.gunicorn_conf gi_service.wsgi:app, GI_ENV=production: "
              f"{conf['workers']} workers x {conf['threads']} threads ({conf['worker_class']}), preload "
              f"{conf['preload_app']}, access log {'on' if conf['accesslog'] else 'off'}, max_requests "
              f"{conf['max_requests']} +- {conf['max_requests_jitter']}; {os.cpu_count()} cores", flush=True)
        print(f"load: wrk on loopback, {args.connections} connections, {args.wrk_threads} thread(s); "
              f"{len(paths):,} codes ({n_genuine:,} genuine -> 200, {len(paths) - n_genuine:,} not activated -> "
              f"409); {args.warmup:g} s warm-up, then {args.rounds} x {args.duration:g} s per endpoint, "
              "interleaved", flush=True)
        server = Server(env, tmp_path / "gunicorn.log")
        runs: list[Run] = []
        try:
            if redis is not None:
                redis.start()
                print(f"load: rate limiter on /v/: GI_RATELIMIT_VERIFY=1000000/minute, counters in a private "
                      f"redis-server at {redis.url}", flush=True)
            server.start()
            problems = check_answers(server.base, paths)
            for p in problems:
                print(f"load: unexpected answer before the load: {p}")
            for ep in ("health", "json", "html"):
                run_wrk(wrk, server.base, ep, *plan[ep], script, args.warmup, args)
            database = make_url(url).database
            for i in range(args.rounds):
                for ep in ("health", "json", "html"):
                    before = cpu_seconds(server.proc.pid, database)
                    run = run_wrk(wrk, server.base, ep, *plan[ep], script, args.duration, args)
                    after = cpu_seconds(server.proc.pid, database)
                    cpu = ""
                    if before and after and run.requests:
                        run.server_cpu_ms = (after["server"] - before["server"]) / run.requests * 1000
                        run.db_cpu_ms = (after["db"] - before["db"]) / run.requests * 1000
                        cpu = f", CPU/answer {run.server_cpu_ms:.2f} ms gunicorn + {run.db_cpu_ms:.2f} ms PostgreSQL"
                    runs.append(run)
                    print(f"load: round {i + 1} {ep:<6} {run.rps:8.1f} req/s, p50 {_ms(run.p50_us)}, "
                          f"p99 {_ms(run.p99_us)}{cpu}", flush=True)
            if args.keep_server:
                input(f"load: gunicorn (master pid {server.proc.pid}) serves {server.base}; press Enter to stop it ")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"load: not completed: {exc}")
        finally:
            server.stop()
            if redis is not None:
                redis.stop()
        log_text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        tracebacks = log_text.count("Traceback")
        if tracebacks or "[CRITICAL]" in log_text:
            print(f"load: the server logged {tracebacks} traceback(s); its last lines:\n{server.log_tail(40)}")
    if runs:
        report(runs, args.rounds, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

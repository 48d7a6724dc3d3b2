"""Benchmark: the special-mark ledger costs O(1) per approval and per serial lookup, whatever the size.

Run as `python -m bench.ledger [--reps N] [--lookups N] [--big-batches N] [--seed S] [--no-postgres]
[--no-sqlite]`.

1. Approval: `marks.approve_request` + commit of a 1,000-mark and of a 1,000,000-mark batch,
   interleaved in one run (median of --reps each); target: ratio <= 2, because a batch is
   stored as O(1) rows. The rows each approval writes are counted (PostgreSQL:
   pg_stat_xact_user_tables before the commit; SQLite: total_changes).
2. Lookup: `marks.find_mark` (and the verification path `verify_code` + `find_mark`) for random
   existing serials in a ledger of 10^3 marks and one of 10^8 marks, interleaved in one run,
   each lookup in its own session as a request would; target: median ratio <= 1.5 on PostgreSQL.
   The big ledger is the small one (built through the services) plus synthetic SQL rows:
   --big-batches batches of 1,000 marks in 100 series (20 GIs x 5 years), each split into 1-8
   ranges of mixed fates (activated on a lot, issued, spoiled, voided, lost), inserted in a
   scattered order, with their requests and lots; then ANALYZE.
3. Offline verification-code checks (no database) are benchmarked in bench/codes.py.

Both parts run on PostgreSQL (GI_BENCH_DATABASE_URL, default
postgresql+psycopg://postgres@127.0.0.1/gi_bench; the database and the postgis extension are
created if missing; each ledger lives in a fresh schema dropped at the end) and on SQLite
(temp files). Exits 0 either way: a benchmark reports, it does not gate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import shapely
from sqlalchemy import Engine, bindparam, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gi_service import migrate
from gi_service.codes import (
    MarkKeyring,
    Serial,
    format_serial,
    make_code,
    suggest_prefix,
    verify_code,
)
from gi_service import clock
from gi_service.db import UTCDateTime, make_engine, write_session
from gi_service.models import AuthorizationBasis, GICategory, GIKind, OrgKind
from gi_service.services import accounts, jurisdiction, marks, producers, registry
from gi_service.services.accounts import Principal, principal_for
from gi_service.services.uscc import make_uscc

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1/gi_bench"
CACHE_DIR = Path(os.environ.get("GI_CACHE_DIR") or Path.home() / ".cache" / "gi-service")
TARGET_APPROVE_RATIO = 2.0
TARGET_LOOKUP_RATIO = 1.5
SMALL, LARGE = 1_000, 1_000_000
YEAR = 2026
PACK_G = 250
TESTING_BODY = "亳州市检验中心"
MARKS_PER_BATCH = 1_000
EXTRA_GIS = 20
SERIES_YEARS = (2022, 2023, 2024, 2025, 2026)
MAX_PIECES = 8

# Mixed fates of the synthetic ranges (per 20): 12 activated on a lot, 4 issued, 2 spoiled, 1 voided, 1 lost.
FATE_SQL = ("CASE WHEN (p.n * 31 + k.n * 17) % 20 < 12 THEN 'activated' "
            "WHEN (p.n * 31 + k.n * 17) % 20 < 16 THEN 'issued' "
            "WHEN (p.n * 31 + k.n * 17) % 20 < 18 THEN 'spoiled' "
            "WHEN (p.n * 31 + k.n * 17) % 20 < 19 THEN 'voided' ELSE 'lost' END")
PIECES_SQL = f"(((p.n * 7919) % 10007) % {MAX_PIECES} + 1)"   # 1..8 ranges per batch, ~4.5 on average


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _p(values: list[float], q: float) -> float:
    xs = sorted(values)
    return xs[max(0, math.ceil(q * len(xs)) - 1)]


def _with_schema(url: str, schema: str) -> str:
    """The same PostgreSQL URL with its search_path set to `schema` then public (where PostGIS lives)."""
    u = make_url(url)
    return u.update_query_dict({"options": f"-csearch_path={schema},public"}).render_as_string(hide_password=False)


# --- databases -------------------------------------------------------------------------------

class Backend:
    """Fresh migrated databases of one backend: PostgreSQL schemas or SQLite files, all dropped at the end."""

    def __init__(self, name: str, base_url: str | None = None, tmp: Path | None = None):
        self.name, self.base_url, self.tmp = name, base_url, tmp
        self.run_id = uuid.uuid4().hex[:8]
        self.schemas: list[str] = []
        self.engines: list[Engine] = []

    @property
    def is_pg(self) -> bool:
        return self.name == "postgresql"

    def prepare(self) -> str:
        if not self.is_pg:
            return f"SQLite {sqlite3.sqlite_version} in temp files under {self.tmp}"
        url = make_url(self.base_url)
        admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                            isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                    {"d": url.database}).scalar():
                    conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
        finally:
            admin.dispose()
        engine = make_engine(self.base_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
                version = conn.execute(text("SHOW server_version")).scalar()
        finally:
            engine.dispose()
        return (f"PostgreSQL {version} at {url.render_as_string(hide_password=True)}, "
                f"schemas bench_ledger_{self.run_id}_*")

    def fresh(self, label: str) -> Engine:
        if self.is_pg:
            schema = f"bench_ledger_{self.run_id}_{label}"
            admin = make_engine(self.base_url)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            admin.dispose()
            self.schemas.append(schema)
            url = _with_schema(self.base_url, schema)
        else:
            url = f"sqlite:///{self.tmp / f'{label}.sqlite3'}"
        migrate.upgrade(url)
        engine = make_engine(url)
        self.engines.append(engine)
        return engine

    def drop_all(self) -> None:
        for engine in self.engines:
            engine.dispose()
        if self.is_pg and self.schemas:
            admin = make_engine(self.base_url)
            with admin.begin() as conn:
                for schema in self.schemas:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.dispose()


# --- a world built through the services (as tests/factories.py LedgerWorld does) -------------

def square(lon: float, lat: float, side_m: float) -> shapely.Polygon:
    hy = side_m / 2 / 111_320.0
    hx = side_m / 2 / (111_320.0 * math.cos(math.radians(lat)))
    return shapely.box(lon - hx, lat - hy, lon + hx, lat + hy)


@dataclass
class World:
    engine: Engine
    authority: Principal
    producer: Principal
    printer: Principal
    gi_id: int
    account_id: int


def _member(session: Session, org, n: int) -> Principal:
    user = accounts.create_user(session, username=f"bench{n}-{org.kind.value}", password="bench-password-123456",
                                organisation_id=org.id)
    session.flush()
    return principal_for(user)


def build_world(engine: Engine, quota_g: int) -> World:
    """Authority, GI with its area, producer with a plot and an approved authorization, printer, quota."""
    with write_session(engine) as s:
        authority_org = accounts.create_organisation(s, kind=OrgKind.authority, adcode="341600",
                                                     name="亳州市市场监督管理局 (bench)")
        authority = _member(s, authority_org, 1)
        gi = registry.create_gi(s, {"name_zh": "亳白芍", "kind": GIKind.protected_product,
                                    "category": GICategory.herbal_medicine, "area_adcodes": ["341602"],
                                    "standard_yield_kg_per_mu": 350, "name_pinyin": "Bo Bai Shao",
                                    "testing_body": TESTING_BODY}, by=authority, reason="benchmark")
        producer_org = accounts.create_organisation(s, kind=OrgKind.producer, adcode="341602",
                                                    uscc=make_uscc("9", "1", "341602", "MA000001"),
                                                    name="亳州白芍合作社 (bench)")
        producer = _member(s, producer_org, 2)
        printer_org = accounts.create_organisation(s, kind=OrgKind.printer, adcode="340104",
                                                   uscc=make_uscc("9", "1", "340104", "MA000002"),
                                                   name="合肥防伪印务 (bench)")
        printer = _member(s, printer_org, 3)
        point = registry.area_by_id(s, gi.origin_area_id).geom.representative_point()
        producers.create_plot(s, producer_org.id, gi_id=gi.id, name="plot", geom=square(point.x, point.y, 100),
                              survey_year=2025, by=producer)
        producers.create_authorization(s, producer_id=producer_org.id, gi_id=gi.id,
                                       basis=AuthorizationBasis.approved_producer, by=authority, reason="benchmark",
                                       announcement_no="B-1", approve=True)
        account = marks.open_account(s, producer_id=producer_org.id, gi_id=gi.id, year=YEAR, by=authority)
        marks.adjust_account(s, account.id, quota_g, reason="benchmark quota", by=authority)
        s.commit()
        return World(engine, authority, producer, printer, gi.id, account.id)


def new_request(world: World, quantity: int) -> int:
    with write_session(world.engine) as s:
        request = marks.create_request(s, gi_id=world.gi_id, pack_size_g=PACK_G, quantity=quantity, year=YEAR,
                                       by=world.producer)
        s.commit()
        return request.id


def lifecycle_batch(world: World, key_id: str) -> int:
    """One real 1,000-mark batch through the services: approve, print (spoils), issue, activate, void."""
    request_id = new_request(world, MARKS_PER_BATCH)
    with write_session(world.engine) as s:
        batch = marks.approve_request(s, request_id, by=world.authority, printer_id=world.printer.organisation_id,
                                      key_id=key_id)
        s.commit()
        series, first, batch_id = batch.series, batch.seq_start, batch.id

    def serial(seq: int) -> str:
        return format_serial(series[:4], 2000 + int(series[4:]), seq)

    with write_session(world.engine) as s:
        marks.record_printed(s, batch_id, by=world.printer, spoiled=[(serial(first + 10), serial(first + 12))])
        s.commit()
    with write_session(world.engine) as s:
        marks.issue_batch(s, batch_id, by=world.printer)
        s.commit()
    with write_session(world.engine) as s:
        marks.activate(s, by=world.producer, spans=[(serial(first + 20), serial(first + 519))], lot_no="L-1",
                       production_date=clock.now().date() - dt.timedelta(days=30), lot_quantity=1000,
                       pack_size_g=PACK_G, test_report_no="R-2026-001", testing_body=TESTING_BODY, test_passed=True)
        s.commit()
    with write_session(world.engine) as s:
        marks.void(s, by=world.producer, spans=[(serial(first + 600), serial(first + 604))], kind="voided",
                   reason="damaged")
        s.commit()
    return batch_id


# --- part 1: approvals -----------------------------------------------------------------------

@dataclass
class Approval:
    approve_s: float
    commit_s: float
    rows: dict[str, int]
    batch_ranges: int

    @property
    def total_s(self) -> float:
        return self.approve_s + self.commit_s


def _row_counts(session: Session, is_pg: bool) -> dict[str, int]:
    """Rows inserted (+), updated (~) and deleted (-) per table, as counted by the backend.

    Only differences taken inside one transaction mean anything: PostgreSQL 15's pg_stat_xact_*
    views also hold the not-yet-flushed counts of this connection's earlier transactions.
    """
    if not is_pg:
        return {"rows": session.connection().connection.dbapi_connection.total_changes}
    rows = session.execute(text(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
        "WHERE schemaname = current_schema()"))
    out: dict[str, int] = {}
    for name, ins, upd, dele in rows:
        for what, n in (("+", ins), ("~", upd), ("-", dele)):
            out[f"{name}{what}"] = n
    return out


def _written(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def approve_once(world: World, quantity: int, key_id: str, is_pg: bool) -> Approval:
    request_id = new_request(world, quantity)
    with write_session(world.engine) as s:
        before = _row_counts(s, is_pg)
        started = time.perf_counter()
        batch = marks.approve_request(s, request_id, by=world.authority, printer_id=world.printer.organisation_id,
                                      key_id=key_id)
        approve_s = time.perf_counter() - started
        rows = _written(before, _row_counts(s, is_pg))   # untimed, before the commit
        started = time.perf_counter()
        s.commit()
        commit_s = time.perf_counter() - started
        batch_id = batch.id
    with Session(world.engine) as s:
        n_ranges = len(marks.batch_ranges(s, batch_id))
    return Approval(approve_s, commit_s, rows, n_ranges)


def bench_approvals(backend: Backend, reps: int, key_id: str) -> dict[str, float]:
    tag = f"ledger: [{backend.name}]"
    engine = backend.fresh("approve")
    world = build_world(engine, quota_g=(reps + 2) * (SMALL + LARGE) * PACK_G * 2)
    for size in (SMALL, LARGE):  # warm-up: first allocation of the series, caches, plans
        approve_once(world, size, key_id, backend.is_pg)
    runs: dict[int, list[Approval]] = {SMALL: [], LARGE: []}
    for i in range(reps):
        for size in ((SMALL, LARGE) if i % 2 == 0 else (LARGE, SMALL)):
            runs[size].append(approve_once(world, size, key_id, backend.is_pg))
    med = {}
    for size in (SMALL, LARGE):
        rs = runs[size]
        med[size] = statistics.median(r.total_s for r in rs)
        print(f"{tag} approve a {size:,}-mark batch + commit: median {_ms(med[size])} "
              f"(approve {_ms(statistics.median(r.approve_s for r in rs))}, "
              f"commit {_ms(statistics.median(r.commit_s for r in rs))}; "
              f"min {_ms(min(r.total_s for r in rs))}, max {_ms(max(r.total_s for r in rs))}; {len(rs)} runs)")
    for size in (SMALL, LARGE):
        r = runs[size][-1]
        total = sum(r.rows.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(r.rows.items())) if backend.is_pg else "total_changes"
        same = all(x.rows == r.rows and x.batch_ranges == r.batch_ranges for x in runs[size])
        print(f"{tag} rows written per {size:,}-mark approval: {total} ({detail}); the batch is "
              f"{r.batch_ranges} mark_ranges row{'s' if r.batch_ranges != 1 else ''}"
              f"{'' if same else ' (varies between runs!)'}")
    ratio = med[LARGE] / med[SMALL]
    rows_small = sum(runs[SMALL][-1].rows.values())
    rows_large = sum(runs[LARGE][-1].rows.values())
    print(f"{tag} approval ratio {LARGE:,} / {SMALL:,} marks = {ratio:.2f} (target <= {TARGET_APPROVE_RATIO:g}); "
          f"rows written {rows_large} vs {rows_small}")
    print(f"{tag} {_verdict(ratio <= TARGET_APPROVE_RATIO)} approve 1,000,000 / 1,000 marks <= "
          f"{TARGET_APPROVE_RATIO:g}x")
    print(f"{tag} {_verdict(rows_small == rows_large)} rows written per approval independent of the batch size")
    return {"ratio": ratio}


# --- part 2: lookups -------------------------------------------------------------------------

def _numbers_table(conn, n: int, is_pg: bool) -> None:
    conn.exec_driver_sql("CREATE TEMP TABLE bench_n (n INTEGER PRIMARY KEY)")
    if is_pg:
        conn.execute(text("INSERT INTO bench_n SELECT generate_series(1, :n)"), {"n": n})
    else:
        conn.execute(text("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n) "
                          "INSERT INTO bench_n SELECT n FROM g"), {"n": n})


def grow_ledger(world: World, batches: int, is_pg: bool) -> dict[str, float]:
    """Add `batches` synthetic 1,000-mark batches (requests, lots, 1-8 ranges each) in 100 series; ANALYZE."""
    started = time.perf_counter()
    # 20 more GIs through the service, each with its own mark prefix: 20 x 5 years = 100 series.
    with write_session(world.engine) as s:
        taken = set(s.scalars(text("SELECT mark_prefix FROM gis WHERE mark_prefix IS NOT NULL")))
        series = []
        for i in range(EXTRA_GIS):
            gi = registry.create_gi(s, {"name_zh": f"基准产品{i + 1}", "kind": GIKind.protected_product,
                                        "category": GICategory.herbal_medicine,
                                        "name_pinyin": f"Ji Zhun Chan Pin {i + 1}", "standard_yield_kg_per_mu": 300},
                                    by=world.authority, reason="benchmark")
            gi.mark_prefix = suggest_prefix(gi.name_pinyin, taken)
            taken.add(gi.mark_prefix)
            series += [(gi.mark_prefix + f"{y % 100:02d}", gi.id, y) for y in SERIES_YEARS]
        s.commit()
    now = bindparam("now", clock.now(), type_=UTCDateTime())
    with world.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE bench_series (idx INTEGER PRIMARY KEY, series VARCHAR(6), "
                             "gi_id INTEGER, year INTEGER)")
        conn.execute(text("INSERT INTO bench_series VALUES (:idx, :series, :gi_id, :year)"),
                     [{"idx": i, "series": se, "gi_id": g, "year": y} for i, (se, g, y) in enumerate(series)])
        _numbers_table(conn, batches, is_pg)
        base = {t: conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar()
                for t in ("mark_requests", "mark_batches", "lots", "mark_ranges")}
        ns = len(series)
        params = {"ns": ns, "m": MARKS_PER_BATCH, "req0": base["mark_requests"], "bat0": base["mark_batches"],
                  "lot0": base["lots"], "rng0": base["mark_ranges"], "producer": world.producer.organisation_id,
                  "printer": world.printer.organisation_id, "prod_user": world.producer.user_id,
                  "auth_user": world.authority.user_id, "pack": PACK_G, "body": TESTING_BODY,
                  "pdate": clock.now().date() - dt.timedelta(days=60)}
        batch_of = "FROM bench_n p JOIN bench_series s ON s.idx = (p.n - 1) % :ns"
        conn.execute(text(
            "INSERT INTO mark_requests (id, producer_id, gi_id, year, pack_size_g, quantity, status, "
            "requested_by_id, requested_at, decided_by_id, decided_at, decision_reason) "
            "SELECT :req0 + p.n, :producer, s.gi_id, s.year, :pack, :m, 'approved', :prod_user, :now, :auth_user, "
            f":now, 'approved' {batch_of}").bindparams(now), params)
        conn.execute(text(
            "INSERT INTO mark_batches (id, request_id, producer_id, gi_id, printer_id, year, series, seq_start, "
            "seq_end, pack_size_g, key_id, status, approved_by_id, approved_at, ordered_at, printed_at, issued_at) "
            "SELECT :bat0 + p.n, :req0 + p.n, :producer, s.gi_id, :printer, s.year, s.series, "
            "1 + ((p.n - 1) / :ns) * :m, ((p.n - 1) / :ns + 1) * :m, :pack, 'A', 'issued', :auth_user, "
            f":now, :now, :now, :now {batch_of}").bindparams(now), params)
        conn.execute(text(
            "INSERT INTO lots (id, producer_id, gi_id, lot_no, production_date, quantity, pack_size_g, "
            "test_report_no, testing_body, test_passed, status, created_at) "
            "SELECT :lot0 + p.n, :producer, s.gi_id, 'SYN-' || CAST(p.n AS VARCHAR(12)), :pdate, :m, :pack, "
            f"'R-SYN', :body, TRUE, 'active', :now {batch_of}").bindparams(now), params)
        # Each batch split into 1-8 ranges; rows inserted in a scattered order, as later splits would be.
        conn.execute(text(
            "INSERT INTO mark_ranges (id, batch_id, series, seq_start, seq_end, state, lot_id, reason, event_seq, "
            "updated_at) "
            f"SELECT :rng0 + (p.n - 1) * {MAX_PIECES} + k.n, :bat0 + p.n, s.series, "
            f"1 + ((p.n - 1) / :ns) * :m + ((k.n - 1) * :m) / {PIECES_SQL}, "
            f"((p.n - 1) / :ns) * :m + (k.n * :m) / {PIECES_SQL}, {FATE_SQL}, "
            f"CASE WHEN {FATE_SQL} = 'activated' THEN :lot0 + p.n END, NULL, p.n, :now "
            f"{batch_of} JOIN bench_n k ON k.n <= {PIECES_SQL} "
            "ORDER BY (p.n * 7919 + k.n * 104729) % 100003").bindparams(now), params)
        conn.execute(text(
            "INSERT INTO serial_counters (series, next_seq) "
            "SELECT series, max(seq_end) + 1 FROM mark_batches WHERE series IN (SELECT series FROM bench_series) "
            "GROUP BY series"))
        if is_pg:
            for t in ("mark_requests", "mark_batches", "lots", "mark_ranges"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"))
        conn.exec_driver_sql("DROP TABLE bench_n")
        conn.exec_driver_sql("DROP TABLE bench_series")
    with world.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return {"build_s": time.perf_counter() - started}


def ledger_size(engine: Engine, is_pg: bool) -> str:
    with engine.connect() as conn:
        n_marks, n_ranges = conn.execute(text(
            "SELECT coalesce(sum(seq_end - seq_start + 1), 0), count(*) FROM mark_ranges")).one()
        n_batches, n_series = conn.execute(text(
            "SELECT count(*), count(DISTINCT series) FROM mark_batches")).one()
        n_lots = conn.execute(text("SELECT count(*) FROM lots")).scalar()
        size = ""
        if is_pg:
            table_mb, index_mb = conn.execute(text(
                "SELECT pg_relation_size('mark_ranges') / 1048576.0, "
                "pg_relation_size('uq_mark_ranges_series_seq_start') / 1048576.0")).one()
            size = f"; mark_ranges {table_mb:.0f} MB + (series, seq_start) index {index_mb:.0f} MB"
    return (f"{int(n_marks):,} marks in {n_ranges:,} ranges, {n_batches:,} batches, {n_series} series, "
            f"{n_lots:,} lots{size}")


class QueryLog:
    """The SQL statements an engine runs while enabled (to show and EXPLAIN the app's own query)."""

    def __init__(self, engine: Engine):
        self.statements: list[tuple[str, object]] = []
        self.enabled = False
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._record)

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.enabled:
            self.statements.append((statement, parameters))


def explain(engine: Engine, serial: Serial, is_pg: bool) -> tuple[list[str], int]:
    log = QueryLog(engine)
    with Session(engine) as s:
        log.enabled = True
        status = marks.find_mark(s, serial)
        log.enabled = False
    log.remove()
    assert status is not None
    queries = [(st, p) for st, p in log.statements if "mark_ranges" in st]
    statement, parameters = queries[0]
    with engine.connect() as conn:
        prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if is_pg else "EXPLAIN QUERY PLAN "
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    lines = [r[0] for r in rows] if is_pg else [r[-1] for r in rows]
    return [" ".join(statement.split())] + lines, len(log.statements)


def sample_serials(engine: Engine, n: int, rng: random.Random) -> list[Serial]:
    """`n` random serials among those issued (uniform over marks: every batch has 1,000)."""
    with engine.connect() as conn:
        batches = conn.execute(text("SELECT series, seq_start, seq_end FROM mark_batches ORDER BY id")).all()
    out = []
    for _ in range(n):
        series, lo, hi = rng.choice(batches)
        out.append(Serial(series[:4], 2000 + int(series[4:]), rng.randint(lo, hi)))
    return out


def bench_lookups(backend: Backend, lookups: int, big_batches: int, keyring: MarkKeyring,
                  rng: random.Random) -> dict[str, float]:
    tag = f"ledger: [{backend.name}]"
    ledgers = {}
    for label in ("small", "big"):
        engine = backend.fresh(label)
        world = build_world(engine, quota_g=10**9)
        lifecycle_batch(world, keyring.active)
        extra = ""
        if label == "big":
            built = grow_ledger(world, big_batches, backend.is_pg)
            extra = f" (synthetic part built in {built['build_s']:.1f} s)"
        else:
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        print(f"{tag} {label} ledger: {ledger_size(engine, backend.is_pg)}{extra}", flush=True)
        ledgers[label] = engine

    serials = {label: sample_serials(engine, lookups, rng) for label, engine in ledgers.items()}
    codes = {label: [make_code(keyring, s) for s in ss] for label, ss in serials.items()}

    for label, engine in ledgers.items():
        plan, n_queries = explain(engine, serials[label][0], backend.is_pg)
        print(f"{tag} {label} ledger: find_mark runs {n_queries} queries (range, batch, lot if any); "
              f"the range lookup and its plan:")
        for line in plan:
            print(f"{tag}     {line}")
        if any("Seq Scan" in line for line in plan):
            print(f"{tag}     (a table this small fits one page: the planner reads it whole instead of the index)")

    def find(engine: Engine, serial: Serial) -> bool:
        with Session(engine) as s:
            return marks.find_mark(s, serial) is not None

    def full(engine: Engine, code: str) -> bool:
        check = verify_code(keyring, code)
        if not check.valid:
            return False
        with Session(engine) as s:
            return marks.find_mark(s, check.serial) is not None

    ops: list[tuple[str, str, Callable[[int], bool]]] = []
    for label, engine in ledgers.items():
        ops.append((label, "find_mark", lambda i, e=engine, ss=serials[label]: find(e, ss[i])))
        ops.append((label, "verify_code + find_mark", lambda i, e=engine, cs=codes[label]: full(e, cs[i])))
    warm = min(300, lookups)
    for i in range(warm):
        for _, _, op in ops:
            op(i)
    times: dict[tuple[str, str], list[float]] = {(lbl, kind): [] for lbl, kind, _ in ops}
    missing = 0
    clock = time.perf_counter
    for i in range(lookups):
        order = ops[:]
        rng.shuffle(order)
        for label, kind, op in order:
            started = clock()
            found = op(i)
            times[(label, kind)].append(clock() - started)
            missing += not found
    results = {}
    for kind in ("find_mark", "verify_code + find_mark"):
        small, big = times[("small", kind)], times[("big", kind)]
        m_small, m_big = statistics.median(small), statistics.median(big)
        p_small, p_big = _p(small, 0.99), _p(big, 0.99)
        ratio = m_big / m_small
        results[kind] = ratio
        print(f"{tag} {kind}: 10^3 marks median {_ms(m_small)}, p99 {_ms(p_small)}; "
              f"10^8 marks median {_ms(m_big)}, p99 {_ms(p_big)}; median ratio {ratio:.2f}, "
              f"p99 ratio {p_big / p_small:.2f} ({lookups} lookups each, interleaved, one session per lookup)")
    print(f"{tag} {lookups * 4} lookups of existing serials, {missing} not found")
    for kind, ratio in results.items():
        print(f"{tag} {_verdict(ratio <= TARGET_LOOKUP_RATIO and missing == 0)} {kind} 10^8 / 10^3 marks <= "
              f"{TARGET_LOOKUP_RATIO:g}x (median)")
    return results


# --- main ------------------------------------------------------------------------------------

def run_backend(backend: Backend, args, keyring: MarkKeyring) -> None:
    try:
        print(f"ledger: [{backend.name}] {backend.prepare()}", flush=True)
    except Exception as exc:  # noqa: BLE001 - a missing server is reported, not raised
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"ledger: [{backend.name}] not run: cannot prepare the database ({reason})")
        return
    try:
        started = time.perf_counter()
        bench_approvals(backend, args.reps, keyring.active)
        bench_lookups(backend, args.lookups, args.big_batches, keyring, random.Random(args.seed))
        print(f"ledger: [{backend.name}] done in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        backend.drop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="approvals of each size (median)")
    parser.add_argument("--lookups", type=int, default=2000, help="timed lookups per ledger and path")
    parser.add_argument("--big-batches", type=int, default=100_000, help="synthetic 1,000-mark batches (10^8 marks)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    jurisdiction.configure(CACHE_DIR)
    keyring, _ = MarkKeyring.generate("A")

    print("ledger: offline verification-code checks (no database) are measured by bench/codes.py "
          "(python -m bench.codes); not repeated here")
    if not args.no_postgres:
        run_backend(Backend("postgresql", base_url=os.environ.get("GI_BENCH_DATABASE_URL", DEFAULT_PG_URL)),
                    args, keyring)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="gi-bench-ledger-") as tmp:
            run_backend(Backend("sqlite", tmp=Path(tmp)), args, keyring)
    return 0


if __name__ == "__main__":
    sys.exit(main())

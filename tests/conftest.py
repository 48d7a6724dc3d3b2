"""Fixtures: every app/session test runs on SQLite and, when configured, on PostgreSQL+PostGIS.

Set GI_TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1/gi_test) to add the
PostgreSQL backend. Under CI=true it is required: a missing database fails the run.

Rate limits are off in the ordinary `app`; tests/verify/test_ratelimit.py builds limited apps. Set
GI_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) to run those against Redis too; under CI=true it
is required, and a Redis that does not answer fails the tests that use it.
"""
from __future__ import annotations

import copy
import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gi_service import caches, close_app, create_app
from gi_service.config import Settings, finalize
from gi_service.db import Base, make_engine
from gi_service import migrate

PG_URL = os.environ.get("GI_TEST_DATABASE_URL", "").strip()
REDIS_URL = os.environ.get("GI_TEST_REDIS_URL", "").strip()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CACHE_DIR = Path(os.environ.get("GI_CACHE_DIR") or Path.home() / ".cache" / "gi-service")


def pytest_configure(config):
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI=true but GI_TEST_DATABASE_URL is not set: the PostgreSQL backend must run in CI")
    if IN_CI and not REDIS_URL:
        raise pytest.UsageError("CI=true but GI_TEST_REDIS_URL is not set: the rate limits must be tested on Redis in CI")


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def ratelimit_storages() -> list[str]:
    """Rate-limit storages to test: in memory always, Redis when GI_TEST_REDIS_URL is set."""
    return ["memory", "redis"] if REDIS_URL else ["memory"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """GI_TEST_REDIS_URL, checked to answer: a configured Redis that is down fails (never skips)."""
    import redis

    if not REDIS_URL:
        pytest.fail("a Redis test ran without GI_TEST_REDIS_URL; parametrize it with ratelimit_storages()")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"GI_TEST_REDIS_URL={REDIS_URL} does not answer: {exc}", pytrace=False)
    return REDIS_URL


def with_schema(url: str, schema: str) -> str:
    """The same PostgreSQL URL with its search_path set to `schema` then public (where PostGIS lives)."""
    u = make_url(url)
    return u.update_query_dict({"options": f"-csearch_path={schema},public"}).render_as_string(hide_password=False)


class Database:
    """A migrated database of one backend, emptied between tests."""

    def __init__(self, backend: str, tmp: Path):
        self.backend = backend
        if backend == "sqlite":
            self.url = f"sqlite:///{tmp / 'test.sqlite3'}"
            self.schema = None
        else:
            self.schema = f"t_{uuid.uuid4().hex[:10]}"
            admin = make_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            self.url = with_schema(PG_URL, self.schema)
        migrate.upgrade(self.url)
        self.engine = make_engine(self.url)
        self._sequences: list[str] | None = None
        self._snapshots: dict[str, object] = {}   # key -> an in-memory SQLite copy, or a PostgreSQL schema
        self.worlds: dict[str, object] = {}       # key -> the world object `reused_world` built with those rows

    def clear(self) -> None:
        """Empty every table and restart the sequences the tables own (ids count from 1 in every test).

        On PostgreSQL, DELETE with the triggers off (session_replication_role = replica: no foreign-key or
        append-only checks) and ALTER SEQUENCE … RESTART is what TRUNCATE … RESTART IDENTITY does to a
        test's few rows, in 3 ms instead of 90: TRUNCATE makes new files for each of the ~60 tables."""
        caches.forget(self.engine)   # the next test's rows take the same ids
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        with self.engine.begin() as conn:
            if self.backend == "postgresql":
                sequences = self._pg_sequences(conn)
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.exec_driver_sql("; ".join([*(f"DELETE FROM {name}" for name in tables),
                                                *(f"ALTER SEQUENCE {seq} RESTART" for seq in sequences)]))
            else:
                conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))

    def _pg_sequences(self, conn) -> list[str]:
        if self._sequences is None:
            self._sequences = conn.execute(text(
                "SELECT s.oid::regclass::text FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
                "AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
                "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE s.relkind = 'S' AND n.nspname = current_schema()")).scalars().all()
        return self._sequences

    def snapshot(self, key: str) -> None:
        """Keep a copy of every row (and where every sequence stands) under `key`, to `restore` later.

        SQLite: an in-memory copy made with SQLite's online backup. PostgreSQL: a schema of its own holding
        a copy of each table that has rows, and the sequences' values."""
        if self.backend == "sqlite":
            copy_db = sqlite3.connect(":memory:", check_same_thread=False)
            raw = self.engine.raw_connection()
            try:
                raw.driver_connection.backup(copy_db)
            finally:
                raw.close()
            self._snapshots[key] = copy_db
            return
        schema = f"{self.schema}_{len(self._snapshots)}"
        tables = [t.name for t in Base.metadata.sorted_tables]
        with self.engine.begin() as conn:
            filled = conn.execute(text(" UNION ALL ".join(
                f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables))).scalars().all()
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            for name in filled:
                conn.exec_driver_sql(f'CREATE TABLE "{schema}".{name} AS SELECT * FROM {name}')
            values = [conn.execute(text(f"SELECT last_value, is_called FROM {seq}")).one()
                      for seq in self._pg_sequences(conn)]
            sequences = dict(zip(self._pg_sequences(conn), values))
        self._snapshots[key] = (schema, filled, sequences)

    def has_snapshot(self, key: str) -> bool:
        return key in self._snapshots

    def restore(self, key: str) -> None:
        """Make the database hold exactly the rows it held at `snapshot(key)` (sequences included)."""
        caches.forget(self.engine)
        found = self._snapshots[key]
        if self.backend == "sqlite":
            raw = self.engine.raw_connection()
            try:
                found.backup(raw.driver_connection)
            finally:
                raw.close()
            return
        schema, filled, sequences = found
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        with self.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.exec_driver_sql("; ".join([
                *(f"DELETE FROM {name}" for name in tables),
                *(f'INSERT INTO {name} SELECT * FROM "{schema}".{name}' for name in filled),
                *(f"SELECT setval('{seq}', {int(value)}, {bool(called)})" for seq, (value, called) in sequences.items()),
            ]))

    def drop(self) -> None:
        self.engine.dispose()
        for found in self._snapshots.values():
            if isinstance(found, sqlite3.Connection):
                found.close()
        if self.schema:
            admin = make_engine(PG_URL)
            with admin.begin() as conn:
                for found in self._snapshots.values():
                    conn.execute(text(f'DROP SCHEMA "{found[0]}" CASCADE'))
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()


def _reuse_url_builders() -> None:
    """Every test builds its own app, and werkzeug compiles two URL-builder functions for each of the ~190
    URL rules of every app it builds (ast + compile: 40 ms of the 50 a create_app takes). A builder depends
    only on its rule's parsed form and defaults, so the test process compiles each one once and hands the
    same function to every later app. Production builds one app per process and is left as it is."""
    from werkzeug.routing import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "gi_reused", False):
        return
    built: dict = {}

    def reused(self, append_unknown: bool = True):
        key = (self.rule, repr(self._trace), repr(sorted((self.defaults or {}).items())), append_unknown)
        function = built.get(key)
        if function is None:
            function = built[key] = compile_builder(self, append_unknown)
        return function

    reused.gi_reused = True  # type: ignore[attr-defined]
    Rule._compile_builder = reused  # type: ignore[method-assign]


_reuse_url_builders()


@pytest.fixture(scope="session", params=backends())
def database(request, tmp_path_factory):
    db = Database(request.param, tmp_path_factory.mktemp(request.param))
    yield db
    db.drop()


@pytest.fixture(scope="session")
def test_keys(tmp_path_factory) -> dict[str, str]:
    """Mark keys, the ledger's signing key and the personal-data keys, made once per test process as the
    embedded default makes them (in the instance folder): a world built by one test (`reused_world`) carries
    codes, checkpoints and encrypted contacts that the next test's app must read."""
    made = finalize(Settings(env="test", instance_path=tmp_path_factory.mktemp("keys"), database_url="sqlite://",
                             secret_key="test-secret-key-" + "x" * 32, public_base_url="http://gi.test"))
    return dict(mark_keys=made.mark_keys, mark_key_id=made.mark_key_id, ledger_signing_key=made.ledger_signing_key,
                data_keys=made.data_keys)


@pytest.fixture
def app(database, tmp_path, test_keys):
    settings = finalize(Settings(env="test", instance_path=tmp_path / "instance", database_url=database.url,
                                 secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR,
                                 public_base_url="http://gi.test", ratelimit_enabled=False, **test_keys))
    # One engine per database for the whole test process: its pool and its compiled-statement cache outlive
    # the test (a new engine made every statement be compiled again and every test open a new connection).
    application = create_app(settings, engine=database.engine)
    application.config["TESTING"] = True
    yield application
    close_app(application)
    database.clear()


@pytest.fixture
def reused_world(database, app, session):
    """`reused_world(key, build, rebind)`: a world built once per test process and database, its rows restored
    for every later test that asks for it.

    The first test to ask builds it (`build()`, through the services and the API as before) and the database's
    rows are copied aside; every later test gets those rows back exactly (ids and sequences included) and a
    shallow copy of the world object, handed to `rebind(world)` to take the test's own client, app, factory and
    clock. For worlds whose building is most of their tests' time (a two-year statistics story); a test may
    change anything in the database: the next one starts again from the copy. The world's ORM objects are
    detached and loaded (read their columns; query the session for relationships)."""
    def get(key: str, build, rebind):
        # Kept on the database whose snapshots hold their rows: pytest builds a backend's database again when
        # the order of tests alternates between backends, and a world known without its snapshot was a KeyError.
        built = database.worlds
        if key not in built:
            world = build()
            # The world's rows as loaded, detached from the building test's session (whose end would expire
            # them): every test, the first included, reads the same loaded objects.
            session.commit()
            session.expunge_all()
            database.snapshot(key)
            built[key] = copy.copy(world)     # as built: this test may change its own copy
            return world
        database.restore(key)
        world = copy.copy(built[key])
        rebind(world)
        return world

    return get


@pytest.fixture
def ledger_world(factory, client, reused_world):
    """`ledger_world(year=…)`: tests.factories.LedgerWorld built once per test process, database and arguments,
    then restored (call it before the test writes anything)."""
    from tests.factories import LedgerWorld

    def get(year: int = 2026, **kw):
        return reused_world(f"ledger-{year}-{sorted(kw.items())}", lambda: LedgerWorld(factory, client, year=year, **kw),
                            lambda world: world.rebind(factory, client))

    return get


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app):
    """A session on the app's database for service-level tests and factories.

    No app context is kept pushed: each test-client request must get its own, as in production.
    """
    s = Session(app.extensions["gi_engine"], expire_on_commit=False)
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def backend(database) -> str:
    return database.backend


@pytest.fixture
def factory(app, session):
    from tests.factories import Factory

    return Factory(app, session)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Factories create several accounts per test; production-strength argon2 would dominate the run.

    Verification reads the parameters from each hash, so logins behave exactly as in production.
    """
    from argon2 import PasswordHasher

    from gi_service.services import accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def pytest_collection_finish(session):
    """Python's cyclic garbage collector, left at its defaults (a young collection every 700 allocations, a full
    one every 100 of those), took a quarter of a test process's time: each test builds an app (~190 URL rules,
    ORM state, compiled statements) and throws it away, and every full collection walked everything the
    process had imported and collected too. The collected tests and the imported modules are moved out of
    the collector's sight (gc.freeze), and young collections run every 50,000 allocations: the cycles a test
    leaves are still collected, a few times per test instead of hundreds."""
    import gc

    if os.environ.get("GI_TEST_GC_DEFAULTS"):
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

"""Declarative base, shared column types, engine and per-request sessions."""
from __future__ import annotations

import datetime as dt
import os
import random
import selectors
import threading
import time
import weakref
from typing import Annotated, Any, Sequence, TypeVar

import shapely
from flask import current_app, g, request
from geoalchemy2 import Geometry as PostGISGeometry
from geoalchemy2.elements import WKBElement
from sqlalchemy import JSON, DateTime, Engine, LargeBinary, MetaData, String, create_engine, event, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from . import clock, replicas
from .errors import NotFound

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SRID = 4326


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on both backends (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.timezone.utc)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class GeometryType(TypeDecorator):
    """A WGS-84 geometry: a PostGIS geometry column on PostgreSQL, WKB bytes elsewhere.

    Services always see shapely geometries; spatial questions are answered by
    PostGIS on PostgreSQL and by shapely on SQLite (see services/spatial.py).
    """

    impl = LargeBinary
    cache_ok = True
    # Read by GeoAlchemy2's DDL hooks: no implicit index or management, we declare the GiST index.
    spatial_index = False
    use_N_D_index = False
    management = False
    use_typmod = None
    dimension = 2

    def __init__(self, geometry_type: str = "GEOMETRY", srid: int = SRID) -> None:
        super().__init__()
        self.geometry_type = geometry_type
        self.srid = srid

    def load_dialect_impl(self, dialect):
        # GeoAlchemy2's DDL hooks probe with dialect=None; they must see a plain column
        # so they do not add indexes of their own behind the migrations' back.
        if dialect is None:
            return LargeBinary()
        if dialect.name == "postgresql":
            # The GiST index is declared explicitly (models + migrations), not implicitly.
            return dialect.type_descriptor(
                PostGISGeometry(self.geometry_type, srid=self.srid, spatial_index=False)
            )
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect):
        if value is None:
            return None
        if not isinstance(value, shapely.Geometry):
            raise TypeError(f"expected a shapely geometry, got {type(value).__name__}")
        wkb = shapely.to_wkb(value, include_srid=False)
        if dialect.name == "postgresql":
            return WKBElement(wkb, srid=self.srid)
        return wkb

    def process_result_value(self, value: Any, dialect):
        if value is None:
            return None
        if isinstance(value, WKBElement):
            data = value.data
            if isinstance(data, str):
                return shapely.from_wkb(bytes.fromhex(data))
            return shapely.from_wkb(bytes(data))
        if isinstance(value, str):
            return shapely.from_wkb(bytes.fromhex(value))
        return shapely.from_wkb(bytes(value))


class JSONType(TypeDecorator):
    """JSONB on PostgreSQL, JSON text elsewhere."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def _clock_now() -> dt.datetime:
    # Looked up at each insert: a row's default timestamp reads the service clock, as the services do.
    return clock.now()


intpk = Annotated[int, mapped_column(primary_key=True)]
str_short = Annotated[str, mapped_column(String(120))]
str_long = Annotated[str, mapped_column(String(1000))]
timestamp = Annotated[dt.datetime, mapped_column(UTCDateTime(), default=_clock_now)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSONType(), list[Any]: JSONType()}


def _nul_at(rows: Any) -> str | int | None:
    """The name (or position) of the first bound value holding U+0000, looking into every row and into arrays
    (an unnest's); None when there is none."""
    stack: list[tuple[Any, Any]] = [(None, row) for row in rows]
    while stack:
        name, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "?" if name is None else name
        elif isinstance(value, dict):
            stack.extend(value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((i if name is None else name, v) for i, v in enumerate(value))
    return None


def _refuse_nul_characters(conn, cursor, statement, parameters, context, executemany) -> None:
    """No text the service stores or looks up may hold U+0000: PostgreSQL's text types cannot (the driver
    fails, which was a 500), so it is refused before any statement is sent, alike on both backends and from
    every door (API, pages, CLI, imports): 422 invalid_character, naming the value's bind parameter."""
    if not parameters:
        return
    name = _nul_at(parameters if executemany and isinstance(parameters, (list, tuple)) else (parameters,))
    if name is None:
        return
    from .errors import ValidationFailed

    positions = getattr(getattr(context, "compiled", None), "positiontup", None)
    if isinstance(name, int) and positions and name < len(positions):
        name = positions[name]       # SQLite's qmark parameters: the bind's name
    field = str(name).rsplit("_", 1)[0] if str(name)[-1:].isdigit() else str(name)
    raise ValidationFailed(f"the value for `{field}` contains the NUL character (U+0000), which no text may "
                           "hold; remove it", code="invalid_character",
                           details=[{"field": field, "problem": "contains U+0000"}])


def refuse_nul_characters(engine: Engine) -> Engine:
    """Give `engine` the U+0000 guard: every engine whose statements bind text from a request (the writer, a
    standby's public reads). Not the autocommit engines of the verdict lookup (`autocommit_engine`): they bind
    only a parsed serial, and the consumer check is the hot path."""
    event.listen(engine, "before_cursor_execute", _refuse_nul_characters)
    return engine


def make_engine(url: str, *, prepared: bool | None = None, **kwargs: Any) -> Engine:
    """Create an engine with the per-backend settings the service relies on."""
    return refuse_nul_characters(_make_engine(url, prepared=prepared, **kwargs))


def _make_engine(url: str, *, prepared: bool | None = None, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
            # We issue BEGIN ourselves (below); pysqlite's implicit transactions would defer it.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # A writing request takes the write lock at BEGIN: a deferred transaction that reads
            # and then writes fails with "database is locked" instead of waiting when another
            # writer committed meanwhile, which would break concurrent approvals. Readers stay
            # deferred so they never block anyone (WAL).
            immediate = conn.get_execution_options().get("gi_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if prepared is None:
        prepared = os.environ.get("GI_DATABASE_PREPARED_STATEMENTS", "true").strip().lower() not in (
            "0", "false", "no", "off")
    connect_args = dict(kwargs.pop("connect_args", {}))
    if not prepared:
        # Behind pgbouncer in transaction pooling (before 1.21), a statement prepared on one server
        # connection is unknown on the next: psycopg must not prepare any.
        connect_args["prepare_threshold"] = None
    engine = follow_the_primary(create_engine(url, connect_args=connect_args, **kwargs))
    _connect_args[engine] = connect_args
    return engine


# ---------------------------------------------------------------------------------------------------------------
# Failover behind pgbouncer.
#
# A multi-host URL with `target_session_attrs=read-write` lets libpq pick the server that accepts writes, and that
# is enough when the app reaches PostgreSQL directly. Behind pgbouncer 1.18 it is not: a pgbouncer answers a
# client's login from the parameters its pool cached at its first server login, `in_hot_standby` and
# `default_transaction_read_only` included, and keeps them until it is reloaded with another target. After a
# failover the dead primary's pgbouncer still says "read-write" (libpq takes it, and every statement then fails)
# and the promoted standby's pgbouncer still says "in hot standby" (libpq refuses it): the app never gets to the
# new primary. So for such a URL the app asks each host in turn, through its pgbouncer, what the server behind
# answers now, as libpq does when a server reports nothing (`SHOW transaction_read_only`), and takes the first
# that accepts writes. Errors a pgbouncer sends when its server is gone (SQLSTATE 08P01: "server conn crashed?",
# "server login has been failing", "query_wait_timeout") discard the connection like a lost one.

_WRITABLE_CHECKS = {
    # target_session_attrs: (the question, the answer of a server that does not qualify)
    "read-write": (b"SHOW transaction_read_only", b"on"),
    "primary": (b"SELECT pg_is_in_recovery()", b"t"),
}
_CHECK_TIMEOUT_S = 10.0           # a URL without connect_timeout: how long a host may take to answer the check
_FIRST_ANSWER_S = 0.5             # ... and how long before the next host is asked meanwhile
_DISCONNECT_STATES = ("57P01", "57P02", "57P03")   # admin shutdown, crash shutdown, cannot connect now


def wanted_session(engine: Engine) -> str | None:
    """The `target_session_attrs` of a PostgreSQL engine's URL when the app checks it itself, else None."""
    attrs = engine.url.query.get("target_session_attrs")
    attrs = attrs[-1] if isinstance(attrs, tuple) else attrs
    return attrs if attrs in _WRITABLE_CHECKS else None


def follow_the_primary(engine: Engine) -> Engine:
    """Give a PostgreSQL `engine` the failover behaviour above: its own check of `target_session_attrs`
    (read-write, primary) on every host of the URL in turn, and pgbouncer's and the server's connection-level
    errors taken for a lost connection (also a read-only refusal, SQLSTATE 25006, on an engine that wants a
    writable server: the server behind its pgbouncer is no longer the primary). Returns `engine`."""
    if engine.dialect.name != "postgresql":
        return engine
    wants_writes = wanted_session(engine) is not None

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, _record, cargs, cparams):
        attrs = cparams.get("target_session_attrs")
        if attrs not in _WRITABLE_CHECKS:
            return None                     # libpq's own connect
        return _connect_checked(dialect, cargs, cparams, attrs)

    @event.listens_for(engine, "handle_error")
    def _classify(context) -> None:
        if context.is_disconnect:
            return
        state = getattr(context.original_exception, "sqlstate", None) or ""
        if state.startswith("08") or state in _DISCONNECT_STATES or (wants_writes and state == "25006"):
            context.is_disconnect = True

    return engine


def host_attempts(params: dict[str, Any]) -> list[dict[str, Any]]:
    """libpq's connection parameters split into one set per host of a multi-host `host`/`hostaddr`/`port`
    (one port for all, or one each), in order (shuffled with `load_balance_hosts=random`), without
    `target_session_attrs`. Counts that do not match are left to libpq to refuse."""
    one = {k: v for k, v in params.items() if k != "target_session_attrs"}
    hosts = str(params.get("host") or "").split(",")
    addrs = str(params.get("hostaddr") or "").split(",")
    count = len(hosts) if params.get("host") else len(addrs)
    ports = str(params.get("port") or "").split(",")
    ports = ports * count if len(ports) == 1 else ports
    if len(ports) != count or (params.get("host") and params.get("hostaddr") and len(addrs) != count):
        return [one]
    attempts = []
    for n in range(count):
        attempt = dict(one)
        if params.get("host"):
            attempt["host"] = hosts[n]
        if params.get("hostaddr"):
            attempt["hostaddr"] = addrs[n]
        if ports[n]:
            attempt["port"] = ports[n]
        else:
            attempt.pop("port", None)
        attempts.append(attempt)
    if params.get("load_balance_hosts") == "random":
        random.shuffle(attempts)
    return attempts


def _connect_checked(dialect, cargs, cparams: dict[str, Any], attrs: str):
    """The first host of `cparams` whose server qualifies for `attrs` now, asked through its pgbouncer if any.

    Each host has `connect_timeout` to connect and as much to answer. A host that has not answered within
    `_FIRST_ANSWER_S` is kept waiting while the next ones are asked, and waited for to the end only when none
    of them qualifies: right after its server died, a pgbouncer keeps a query waiting for a server instead of
    refusing it (until query_wait_timeout), while a busy but healthy one answers late."""
    try:
        timeout = float(cparams.get("connect_timeout") or 0)
    except ValueError:
        timeout = 0.0
    timeout = max(2.0, timeout) if timeout > 0 else _CHECK_TIMEOUT_S      # libpq's rule: at least 2 s
    question, refusal = _WRITABLE_CHECKS[attrs]
    failures: list[str] = []
    waiting: list[tuple[Any, str, float, dict]] = []      # (connection, host, deadline, what came so far)

    def verdict(conn, where: str, until: float, deadline: float, got: dict) -> bool | None:
        """True: `conn` qualifies; False: it does not (closed); None: no answer by `until`, before `deadline`."""
        try:
            answer = _answer(conn, until, got)
        except dialect.loaded_dbapi.Error as exc:
            failures.append(f"{where}: {' '.join(str(exc).split())}")
        else:
            if answer is _NO_ANSWER_YET:
                if time.monotonic() < deadline:
                    return None
                failures.append(f"{where}: no answer within {timeout:g} s")
            elif answer != refusal:
                return True
            else:
                failures.append(f"{where}: the server does not qualify for target_session_attrs={attrs}")
        conn.close()
        return False

    try:
        for attempt in host_attempts(cparams):
            where = f"{attempt.get('host') or attempt.get('hostaddr')}:{attempt.get('port', '')}"
            conn = None
            try:
                conn = dialect.connect(*cargs, **attempt)
                conn.pgconn.send_query(question)
            except dialect.loaded_dbapi.Error as exc:
                failures.append(f"{where}: {' '.join(str(exc).split())}")
                if conn is not None:
                    conn.close()
                continue
            deadline, got = time.monotonic() + timeout, {}
            found = verdict(conn, where, min(deadline, time.monotonic() + _FIRST_ANSWER_S), deadline, got)
            if found:
                return conn
            if found is None:
                waiting.append((conn, where, deadline, got))
        while waiting:
            conn, where, deadline, got = waiting.pop(0)
            if verdict(conn, where, deadline, deadline, got):
                return conn
    finally:
        for conn, *_ in waiting:
            conn.close()
    raise dialect.loaded_dbapi.OperationalError(
        f"no host qualifies for target_session_attrs={attrs}: " + "; ".join(failures))


_NO_ANSWER_YET = object()


def _answer(conn, deadline: float, got: dict):
    """The one value the query sent on psycopg connection `conn` returns, or `_NO_ANSWER_YET` at `deadline`
    (the query stays sent and `got` keeps what came: call again with it to wait longer); psycopg itself would
    wait without a bound. Raises psycopg's error for an error answer or a lost connection."""
    import psycopg
    from psycopg import pq

    pgconn = conn.pgconn

    def ready(events: int) -> bool:
        with selectors.DefaultSelector() as selector:
            selector.register(pgconn.socket, events)
            return bool(selector.select(max(0.0, deadline - time.monotonic())))

    while pgconn.flush():
        if not ready(selectors.EVENT_WRITE):
            return _NO_ANSWER_YET
    while True:
        pgconn.consume_input()
        if pgconn.is_busy():
            if not ready(selectors.EVENT_READ):
                return _NO_ANSWER_YET
            continue
        result = pgconn.get_result()
        if result is None:
            break
        if result.status == pq.ExecStatus.TUPLES_OK and result.ntuples == 1:
            got["answer"] = result.get_value(0, 0)
        elif result.status == pq.ExecStatus.FATAL_ERROR:
            got["error"] = (result.error_message or b"").decode("utf-8", "replace").strip()
    if "error" in got or got.get("answer") is None:
        raise psycopg.OperationalError(got.get("error") or "no answer")
    return got["answer"]


_connect_args: "weakref.WeakKeyDictionary[Engine, dict]" = weakref.WeakKeyDictionary()


def connect_args_of(engine: Engine) -> dict:
    """The driver arguments `engine` was made with (twins and standbys are made alike)."""
    return dict(_connect_args.get(engine, {}))


_readers: "weakref.WeakKeyDictionary[Engine, tuple[int, Engine]]" = weakref.WeakKeyDictionary()
_readers_lock = threading.Lock()


def autocommit_engine(url, like: Engine, **kwargs: Any) -> Engine:
    """An engine for single reads in autocommit at `url` (the reader twin, a standby's), made with the driver
    arguments of `like`: no pre-ping (the caller replaces a connection found dead) and nothing to reset."""
    return follow_the_primary(create_engine(url, pool_pre_ping=False, isolation_level="AUTOCOMMIT",
                                            pool_reset_on_return=None, connect_args=connect_args_of(like), **kwargs))


def reader_engine(engine: Engine) -> Engine:
    """PostgreSQL: a twin of `engine` for single reads outside any transaction (the consumer check).

    Autocommit, so a read is one round trip with no BEGIN/COMMIT around it; no pre-ping on checkout
    (``read_first`` replaces a connection found dead and reads once more: reads are safe to repeat);
    nothing to reset when a connection goes back to the pool. psycopg prepares a statement on a
    connection once it has run a few times there, so the hot lookup is parsed and planned once per
    connection. The twin is disposed with its engine and rebuilt in a forked child.
    """
    found = _readers.get(engine)
    pid = os.getpid()
    if found is not None and found[0] == pid:
        return found[1]
    with _readers_lock:
        found = _readers.get(engine)
        if found is not None and found[0] == pid:
            return found[1]
        twin = autocommit_engine(engine.url, engine, pool_size=engine.pool.size() if hasattr(engine.pool, "size")
                                 else 5)
        if found is None:
            @event.listens_for(engine, "engine_disposed")
            def _dispose_twin(parent):
                entry = _readers.pop(parent, None)
                if entry is not None:
                    # In a forked child the inherited twin's sockets are the parent's: leave them be.
                    entry[1].dispose(close=entry[0] == os.getpid())
        _readers[engine] = (pid, twin)
        return twin


def read_first(session: Session, statement, params: dict[str, Any]):
    """The first row of a read: on PostgreSQL outside a transaction, on a standby within the lag bound when
    standbys are configured (gi_service/replicas.py), else on the autocommit twin (see above); otherwise
    (SQLite, or a session already in a transaction, which must see its own writes) on the session's
    connection."""
    engine = session.get_bind()
    if engine.dialect.name != "postgresql" or session.in_transaction():
        return session.connection().execute(statement, params).first()
    router = replicas.for_engine(engine)    # the primary's, or that of a standby session's engine
    if router is not None:          # a standby within the lag bound (gi_service/replicas.py)
        found = router.read_first(statement, params, after_lsn=replicas.caller_lsn())
        if found is not replicas.NO_STANDBY:
            return found
        engine = router.primary
    twin = reader_engine(engine)
    for attempt in (1, 2):
        try:
            with twin.connect() as conn:
                return conn.execute(statement, params).first()
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def init_app(app, engine: Engine) -> None:
    app.extensions["gi_engine"] = engine
    app.extensions["gi_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            # Anything the handler did not commit is rolled back: no half-written state.
            session.rollback()
            session.close()


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        session = _standby_session() if "gi_replicas" in current_app.extensions else None
        if session is None:
            session = current_app.extensions["gi_sessionmaker"]()
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            session.connection(execution_options={"gi_write": True})
        g.db_session = session
    return g.db_session


def _standby_session() -> Session | None:
    """A session on a standby within the lag bound for a read that may have one (else None).

    Public endpoints (registry, areas, OGC API, open data, the consumer page) read the same for everyone
    who has not signed in. A signed-in caller reads the primary, except on endpoints declared with
    `standby_reads` (statistics): there a standby serves it once it has replayed the caller's own last
    write (replicas.caller_lsn), so an authority never misses what it just did."""
    if request.method not in ("GET", "HEAD"):
        return None
    access = getattr(current_app.view_functions.get(request.endpoint or ""), "gi_access", None)
    if access is None:
        return None
    signed = "Authorization" in request.headers or bool(
        request.cookies.get(current_app.config.get("SESSION_COOKIE_NAME", "")))
    if signed or access.level != "public":
        if not access.standby_reads:
            return None
    after = replicas.caller_lsn() if signed else None
    engine = current_app.extensions["gi_replicas"].session_engine(after_lsn=after)
    return Session(engine, expire_on_commit=False) if engine is not None else None


def write_session(engine: Engine) -> Session:
    """A session whose transaction takes SQLite's write lock at once (for CLI and worker writes)."""
    session = Session(engine, expire_on_commit=False)
    session.connection(execution_options={"gi_write": True})
    return session


def get_engine() -> Engine:
    return current_app.extensions["gi_engine"]


def where_given(stmt, model, **values: Any):
    """Add `model.<name> == value` to a select for every value that is not None (optional filters)."""
    for name, value in values.items():
        if value is not None:
            stmt = stmt.where(getattr(model, name) == value)
    return stmt


Row = TypeVar("Row")


def get_by_id(session: Session, model: type[Row], row_id: int, *, what: str, code: str, lock: bool = False,
              options: Sequence[Any] = ()) -> Row:
    """The `model` row with id `row_id`, or 404 "{what} {row_id} does not exist" with the stable error `code`.

    `lock` reads it FOR UPDATE (its own table only, so eager joins stay outside the lock; on SQLite the
    transaction's write lock does); `options` are loader options (e.g. selectinload of its children).
    """
    stmt = select(model).where(model.id == row_id)
    if options:
        stmt = stmt.options(*options)
    if lock:
        stmt = stmt.with_for_update(of=model)
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"{what} {row_id} does not exist", code=code)
    return row


def dialect_insert(session: Session):
    """The backend's own `insert` (PostgreSQL's or SQLite's), which has `on_conflict_do_*` upserts."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if is_postgres(session) else sqlite.insert


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"

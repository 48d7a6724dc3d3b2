"""Failover behind pgbouncer, at the engine's level (gi_service/db.py, `follow_the_primary`).

The failover itself, through two pgbouncers, is the heavy tier's (tests/verify/test_failover.py). Here: an error
pgbouncer sends when its server is gone (SQLSTATE 08P01) discards the connection instead of handing it to the
next request, and a URL asking for `target_session_attrs=read-write` takes the first host whose server answers
that it accepts writes, asked by query (a pgbouncer's login parameters may be stale). PostgreSQL-only, except
the splitting of a multi-host URL.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from gi_service import db
from gi_service.db import host_attempts, make_engine
from tests.conftest import PG_URL

needs_postgres = pytest.mark.skipif(not PG_URL, reason="PostgreSQL-only (GI_TEST_DATABASE_URL)")

# What pgbouncer 1.18 sends (always SQLSTATE 08P01) when the server behind it is gone.
PGBOUNCER_ERRORS = ["server conn crashed?", "server login has been failing, try again later (server_login_retry)",
                    "query_wait_timeout"]


def raise_sql(sqlstate: str, message: str) -> str:
    """A statement the server answers with an error of `sqlstate` and `message`, its connection left alive."""
    message = message.replace("'", "''")
    return f"DO $$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}'; END $$"


def read_write_url(*hosts: str, **query: str) -> str:
    """PG_URL's server and database, reached through `hosts` ("host:port"; "" for PG_URL's own) in that order,
    with target_session_attrs=read-write."""
    url = make_url(PG_URL)
    own = f"{url.host or '127.0.0.1'}:{url.port or 5432}"
    return url.set(host=None, port=None).update_query_dict(
        {"host": [h or own for h in hosts], "target_session_attrs": "read-write", "connect_timeout": "2", **query},
        append=False).render_as_string(hide_password=False)


@needs_postgres
@pytest.mark.parametrize("message", PGBOUNCER_ERRORS)
def test_an_error_pgbouncer_sends_discards_the_connection(message):
    """Is a statement answered with pgbouncer's 08P01 taken for a lost connection (SQLAlchemy invalidates it),
    so the next checkout gets a new server session instead of the one that failed?"""
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            before = conn.scalar(text("SELECT pg_backend_pid()"))
            with pytest.raises(DBAPIError) as failed:
                conn.exec_driver_sql(raise_sql("08P01", message))
            assert failed.value.connection_invalidated
            assert getattr(failed.value.orig, "sqlstate", None) == "08P01"
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_backend_pid()")) != before
    finally:
        engine.dispose()


@needs_postgres
def test_an_ordinary_error_keeps_the_connection():
    """A statement's own error (division by zero) is no reason to drop its connection."""
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            before = conn.scalar(text("SELECT pg_backend_pid()"))
            with pytest.raises(DBAPIError) as failed:
                conn.execute(text("SELECT 1 / 0"))
            assert not failed.value.connection_invalidated
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_backend_pid()")) == before
    finally:
        engine.dispose()


@needs_postgres
def test_a_read_only_refusal_discards_a_connection_that_asked_for_writes():
    """On an engine whose URL asks for a server that accepts writes, is a read-only refusal (SQLSTATE 25006: the
    server behind a pgbouncer is no longer the primary) taken for a lost connection, and not on another?"""
    asked = make_engine(read_write_url(""), pool_size=1, max_overflow=0)
    plain = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        for engine, discarded in ((asked, True), (plain, False)):
            with engine.connect() as conn:
                with pytest.raises(DBAPIError) as failed:
                    conn.exec_driver_sql(raise_sql("25006", "cannot execute UPDATE in a read-only transaction"))
                assert failed.value.connection_invalidated is discarded
    finally:
        asked.dispose()
        plain.dispose()


@needs_postgres
def test_a_read_write_url_takes_the_first_host_that_accepts_writes(unused_port):
    """A host that refuses the connection is passed over; the server's own answer decides, asked by query."""
    engine = make_engine(read_write_url(f"127.0.0.1:{unused_port}", ""))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_is_in_recovery()")) is False
    finally:
        engine.dispose()


@needs_postgres
def test_a_read_write_url_refuses_a_server_that_answers_read_only(unused_port):
    """A server whose sessions are read-only (here by `default_transaction_read_only`) does not qualify, and when
    no host does, connecting fails with every host's reason."""
    engine = make_engine(read_write_url(f"127.0.0.1:{unused_port}", "",
                                        options="-c default_transaction_read_only=on"))
    try:
        with pytest.raises(OperationalError) as failed:
            engine.connect()
        message = str(failed.value)
        assert "no host qualifies for target_session_attrs=read-write" in message
        assert f"127.0.0.1:{unused_port}" in message and "does not qualify" in message
    finally:
        engine.dispose()


@needs_postgres
def test_a_host_slow_to_answer_is_waited_for_when_no_other_qualifies(monkeypatch):
    """A host that has not answered when the next one is asked is still waited for (to connect_timeout) when
    none of the others qualifies: a busy primary is not passed over."""
    monkeypatch.setattr(db, "_FIRST_ANSWER_S", 0.0)      # no host answers "at once"
    engine = make_engine(read_write_url("", ""))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_is_in_recovery()")) is False
    finally:
        engine.dispose()


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_multi_host_url_is_split_as_libpq_splits_it():
    """One set of parameters per host, in order, each with its own port (or the one port for all), without
    target_session_attrs; counts that do not match are left to libpq."""
    both = host_attempts({"host": "db1,db2", "port": "6432,6433", "dbname": "gi",
                          "target_session_attrs": "read-write"})
    assert both == [{"host": "db1", "port": "6432", "dbname": "gi"}, {"host": "db2", "port": "6433", "dbname": "gi"}]
    assert [a["port"] for a in host_attempts({"host": "db1,db2", "port": "6432"})] == ["6432", "6432"]
    assert host_attempts({"host": "db1,db2"}) == [{"host": "db1"}, {"host": "db2"}]
    assert host_attempts({"hostaddr": "10.0.0.1,10.0.0.2", "port": "6432"}) == [
        {"hostaddr": "10.0.0.1", "port": "6432"}, {"hostaddr": "10.0.0.2", "port": "6432"}]
    assert host_attempts({"host": "db1,db2,db3", "port": "1,2"}) == [{"host": "db1,db2,db3", "port": "1,2"}]

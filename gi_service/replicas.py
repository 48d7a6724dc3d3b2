"""Reads on hot standbys with a bound on staleness (PostgreSQL streaming replication).

``GI_DATABASE_REPLICA_URLS`` names the standbys (comma-separated); ``GI_DATABASE_URL`` stays the
primary. The consumer check's lookup — the public read every scan makes — goes to a standby; every
write, and every read inside a writing transaction, stays on the primary. Without replica settings
nothing here runs and everything reads the primary as before.

How stale a standby may be
    Each app process keeps one row fresh on the primary (``replication_heartbeat``), a few times a
    second (a row updated only when it is older than ``BEAT_S``, so many processes cost little
    WAL). A standby's copy of that row is as old as the standby is behind: an idle primary does not
    look like lag (the heartbeat keeps coming), and a standby whose replay stalled or whose
    connection broke cannot hide it (its copy only ages). The lookup reads the row's age in the same
    statement as the verdict's facts, on the standby's own clock; an answer older than
    ``GI_REPLICA_MAX_LAG_MS`` (1,000 ms) is thrown away, the standby is set aside for ``SET_ASIDE_S``
    and the lookup runs on the primary. So a mark voided, a lot recalled or an authorization suspended
    on the primary is never shown as genuine by a standby for longer than that bound (plus the
    heartbeat's period). "Checked N times" may lag by the check log's flush interval plus the bound.

A standby that does not answer is set aside the same way; with no usable standby, reads go to the
primary.

Public reads by anonymous callers (registry, areas, OGC API, open data, the consumer page's display
facts) get a whole session on a standby (``session_engine``, used by ``db.get_session``): the standby
was found within the bound at most ``PROBE_S`` before. Every writing request uses the primary, and so do
signed-in callers, except on reads declared ``standby_reads`` (the statistics, API and pages: heavy
reads of settled facts by supervisors): those get a standby session once a probe shows the standby has
replayed the caller's own last write (below), else the primary.

Read your own writes
    After a request by a signed-in user (web session) or a bearer token writes (POST, PUT, PATCH,
    DELETE answered below 400), the primary's WAL position is kept for that user and that token
    (``remember``: in Redis when the rate limits use Redis, so every app process sees it; else in this
    process) for ``STICKY_S`` seconds. While it is kept, that caller's reads are answered by a standby
    only if the standby has replayed past that position (read in the same statement), else by the
    primary: an authority that voids a mark and opens its page sees it voided at once. Consumers carry
    no session or token, so their checks never stick.
"""
from __future__ import annotations

import contextvars
import hashlib
import itertools
import logging
import os
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine, create_engine, event, literal_column, select, text, true
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

BEAT_S = 0.2          # how often each process refreshes the heartbeat on the primary
STICKY_S = 30         # how long a caller's write position is kept (far beyond any lag a standby may have)
SET_ASIDE_S = 1.0     # how long a lagging or failing standby is skipped before it is tried again
PROBE_S = 0.2         # a standby found within the bound serves public read sessions this long unprobed

# The heartbeat's age in milliseconds and how far this server has replayed (one row, always; the
# position is NULL on a primary, which is never a standby here).
_HEARTBEAT_AGE = (select(literal_column("(extract(epoch FROM clock_timestamp() - at) * 1000)").label("heartbeat_age_ms"),
                         literal_column("pg_last_wal_replay_lsn()::text").label("replayed"))
                  .select_from(text("replication_heartbeat")).where(text("id = 1")))


def _lsn(value: str) -> int:
    """A WAL position 'X/Y' as a number, to compare two of them."""
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


class ReplicaRouter:
    """The standbys of one primary: which one to read from, and the heartbeat that judges them."""

    def __init__(self, primary: Engine, urls: list[str], *, max_lag_ms: int = 1000, beat: bool = True):
        self.primary = primary
        self.urls = list(urls)
        self.max_lag_ms = max_lag_ms
        self.beat = beat
        self._engines: list[Engine] = []
        self._aside: dict[int, float] = {}
        self._turn = itertools.count()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._joined: dict[int, Any] = {}
        # Figures for operators and tests.
        self.replica_reads = self.primary_reads = self.stale = self.failed = self.behind_caller = 0
        self.replica_sessions = 0
        self._session_engines: list[Engine] = []
        self._probed: dict[int, float] = {}

    def _ensure_process(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            # After a fork, the parent's connections are not ours.
            from .db import autocommit_engine, connect_args_of, follow_the_primary, refuse_nul_characters

            self._engines = [autocommit_engine(url, self.primary) for url in self.urls]
            # Sessions of public reads on a standby: ordinary pooled engines, known to lead back here, with the
            # writer's guard against U+0000 (a search's text reaches them).
            self._session_engines = [refuse_nul_characters(follow_the_primary(create_engine(
                url, pool_pre_ping=True, connect_args=connect_args_of(self.primary)))) for url in self.urls]
            for engine in self._session_engines:
                _routers[engine] = self
            self._probed = {}
            self._aside = {}
            self._pid = pid
            self._stop = threading.Event()
            if self.beat:
                threading.Thread(target=self._beat, name="gi-heartbeat", daemon=True).start()

    def _beat(self) -> None:
        stmt = text("UPDATE replication_heartbeat SET at = clock_timestamp() "
                    "WHERE id = 1 AND at < clock_timestamp() - make_interval(secs => :s)")
        while not self._stop.wait(BEAT_S):
            try:
                with self.primary.begin() as conn:
                    conn.execute(stmt, {"s": BEAT_S / 2})
            except Exception:  # the primary is away: readers will judge the standbys stale
                log.debug("heartbeat not written", exc_info=True)

    def session_engine(self, *, after_lsn: str | None = None) -> Engine | None:
        """An engine (transactional, pooled) on a standby found within the lag bound in the last
        ``PROBE_S``, for a request's session of reads; None if no standby qualifies. With `after_lsn` (the
        caller's own last write) the standby is probed now and must have replayed that far."""
        self._ensure_process()
        now = time.monotonic()
        for index in self._candidates():
            checked = self._probed.get(index, 0.0)
            if after_lsn is not None or now - checked > PROBE_S:
                try:
                    with self._engines[index].connect() as conn:
                        age, replayed = conn.execute(_HEARTBEAT_AGE).first()
                except DBAPIError:
                    self.failed += 1
                    self.set_aside(index)
                    continue
                if age is None or age > self.max_lag_ms:
                    self.stale += 1
                    self.set_aside(index)
                    continue
                self._probed[index] = now
                if after_lsn is not None and (replayed is None or _lsn(replayed) < _lsn(after_lsn)):
                    self.behind_caller += 1
                    continue
            self.replica_sessions += 1
            return self._session_engines[index]
        return None

    def beat_now(self) -> None:
        """Refresh the heartbeat at once (tests, and a process that just started)."""
        with self.primary.begin() as conn:
            conn.execute(text("UPDATE replication_heartbeat SET at = clock_timestamp() WHERE id = 1"))

    def close(self) -> None:
        self._stop.set()
        for engine in [*self._engines, *self._session_engines]:
            engine.dispose()

    def _candidates(self) -> list[int]:
        now = time.monotonic()
        usable = [i for i in range(len(self.urls)) if self._aside.get(i, 0) <= now]
        if not usable:
            return []
        start = next(self._turn) % len(usable)
        return usable[start:] + usable[:start]

    def set_aside(self, index: int) -> None:
        self._aside[index] = time.monotonic() + SET_ASIDE_S

    def read_first(self, statement, params: dict[str, Any], *, after_lsn: str | None = None):
        """The first row of `statement` from a standby within the lag bound, or None if none could answer.

        The statement is joined to the heartbeat's age (one round trip); a standby beyond the bound or
        failing is set aside and the next one tried. With `after_lsn` (the caller's own last write) a
        standby that has not replayed that far is passed over (not set aside: it is only behind this
        caller). The caller reads the primary when this returns ``NO_STANDBY``.
        """
        self._ensure_process()
        joined = self._joined.get(id(statement))
        if joined is None:
            # Built once per statement (a reused statement keeps its compiled form).
            heartbeat, sub = _HEARTBEAT_AGE.subquery("heartbeat"), statement.subquery("found").lateral()
            joined = self._joined[id(statement)] = (
                select(heartbeat.c.heartbeat_age_ms, heartbeat.c.replayed, sub).select_from(heartbeat)
                .outerjoin(sub, true()))
        for index in self._candidates():
            try:
                with self._engines[index].connect() as conn:
                    row = conn.execute(joined, params).first()
            except DBAPIError:
                self.failed += 1
                self.set_aside(index)
                log.warning("standby %d did not answer; reading the primary", index, exc_info=True)
                continue
            age, replayed = row[0], row[1]
            if age is None or age > self.max_lag_ms:
                self.stale += 1
                self.set_aside(index)
                continue
            if after_lsn is not None and (replayed is None or _lsn(replayed) < _lsn(after_lsn)):
                self.behind_caller += 1
                continue
            self.replica_reads += 1
            found = tuple(row[2:])
            return None if all(v is None for v in found) else found
        self.primary_reads += 1
        return NO_STANDBY


NO_STANDBY = object()


# --- read your own writes ------------------------------------------------------------------------

_caller_lsn: contextvars.ContextVar[str | None] = contextvars.ContextVar("gi_caller_lsn", default=None)


def caller_lsn() -> str | None:
    """The WAL position this request's caller last wrote at, if it must read its own writes."""
    return _caller_lsn.get()


class Positions:
    """Where each caller last wrote: in Redis (shared by every process) or in this process."""

    def __init__(self, redis_url: str | None):
        self._redis = None
        self._memory: dict[str, tuple[str, float]] = {}
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)

    def remember(self, keys: list[str], lsn: str) -> None:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=False)
                for key in keys:
                    pipe.set(f"gi:ryw:{key}", lsn, ex=STICKY_S)
                pipe.execute()
                return
            except Exception:
                log.warning("read-your-writes: Redis unreachable; keeping the position in this process only")
        until = time.monotonic() + STICKY_S
        for key in keys:
            self._memory[key] = (lsn, until)

    def recall(self, keys: list[str]) -> str | None:
        values: list[str] = []
        if self._redis is not None:
            try:
                values = [v.decode() for v in self._redis.mget([f"gi:ryw:{k}" for k in keys]) if v]
            except Exception:
                log.warning("read-your-writes: Redis unreachable; reading the primary", exc_info=True)
                return "FFFFFFFF/FFFFFFFF"          # unknown: no standby can be proven fresh enough
        now = time.monotonic()
        for key in keys:
            hit = self._memory.get(key)
            if hit is not None and hit[1] > now:
                values.append(hit[0])
        return max(values, key=_lsn) if values else None


def _caller_keys() -> list[str]:
    """The user (web session) and the bearer token of this request, as position keys (never the secret)."""
    from flask import g, request, session

    keys = []
    principal = g.get("principal")
    if principal is not None:
        keys.append(f"user:{principal.user_id}")
    elif request.cookies and session.get("uid"):
        keys.append(f"user:{session['uid']}")
    header = request.headers.get("Authorization")
    if header:
        keys.append("token:" + hashlib.sha256(header.encode()).hexdigest()[:32])
    return keys


def init_app(app, router: ReplicaRouter, redis_url: str | None) -> None:
    """Keep each writing caller's WAL position; make its later reads wait for a standby that has it."""
    from flask import request

    positions = Positions(redis_url)
    app.extensions["gi_replica_positions"] = positions

    @app.before_request
    def _recall_position():
        if not request.cookies and "Authorization" not in request.headers:
            return                                   # a consumer: nothing to look up
        keys = _caller_keys()
        if keys:
            _caller_lsn.set(positions.recall(keys))

    @app.after_request
    def _remember_position(resp):
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and resp.status_code < 400:
            keys = _caller_keys()
            if keys:
                try:
                    with router.primary.connect() as conn:
                        lsn = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()
                    positions.remember(keys, lsn)
                except Exception:
                    log.warning("read-your-writes: the write position could not be read", exc_info=True)
        return resp

    @app.teardown_request
    def _forget(_exc):
        _caller_lsn.set(None)

_routers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def attach(primary: Engine, urls: list[str], *, max_lag_ms: int) -> ReplicaRouter:
    """The standbys of `primary`, closed when it is disposed."""
    router = ReplicaRouter(primary, urls, max_lag_ms=max_lag_ms)
    _routers[primary] = router

    @event.listens_for(primary, "engine_disposed")
    def _close(_engine, _ref=weakref.ref(router)):
        found = _ref()
        if found is not None and found._pid == os.getpid():
            found.close()

    return router


def for_engine(engine: Engine) -> ReplicaRouter | None:
    return _routers.get(engine) if len(_routers) else None

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
"""
from __future__ import annotations

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
SET_ASIDE_S = 1.0     # how long a lagging or failing standby is skipped before it is tried again

# The heartbeat's age in milliseconds, on the server that answers (one row, always).
_HEARTBEAT_AGE = (select(literal_column(
    "(extract(epoch FROM clock_timestamp() - at) * 1000)").label("heartbeat_age_ms"))
    .select_from(text("replication_heartbeat")).where(text("id = 1")))


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
        self.replica_reads = self.primary_reads = self.stale = self.failed = 0

    def _ensure_process(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            # After a fork, the parent's connections are not ours.
            self._engines = [create_engine(url, pool_pre_ping=False, isolation_level="AUTOCOMMIT",
                                           pool_reset_on_return=None) for url in self.urls]
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

    def beat_now(self) -> None:
        """Refresh the heartbeat at once (tests, and a process that just started)."""
        with self.primary.begin() as conn:
            conn.execute(text("UPDATE replication_heartbeat SET at = clock_timestamp() WHERE id = 1"))

    def close(self) -> None:
        self._stop.set()
        for engine in self._engines:
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

    def read_first(self, statement, params: dict[str, Any]):
        """The first row of `statement` from a standby within the lag bound, or None if none could answer.

        The statement is joined to the heartbeat's age (one round trip); a standby beyond the bound or
        failing is set aside and the next one tried. The caller reads the primary when this returns
        ``NO_STANDBY``.
        """
        self._ensure_process()
        joined = self._joined.get(id(statement))
        if joined is None:
            # Built once per statement (a reused statement keeps its compiled form).
            heartbeat, sub = _HEARTBEAT_AGE.subquery("heartbeat"), statement.subquery("found").lateral()
            joined = self._joined[id(statement)] = (
                select(heartbeat.c.heartbeat_age_ms, sub).select_from(heartbeat).outerjoin(sub, true()))
        for index in self._candidates():
            try:
                with self._engines[index].connect() as conn:
                    row = conn.execute(joined, params).first()
            except DBAPIError:
                self.failed += 1
                self.set_aside(index)
                log.warning("standby %d did not answer; reading the primary", index, exc_info=True)
                continue
            age = row[0]
            if age is None or age > self.max_lag_ms:
                self.stale += 1
                self.set_aside(index)
                continue
            self.replica_reads += 1
            found = tuple(row[1:])
            return None if all(v is None for v in found) else found
        self.primary_reads += 1
        return NO_STANDBY


NO_STANDBY = object()

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

"""The check log written behind the answer: consumer checks buffered in each process, flushed in batches.

A consumer's check must not wait for its own row: the answer is ready after one read (the verdict's
lookup). So each process appends its checks to an in-memory buffer and a flusher thread writes the
buffer at least every ``GI_CHECK_FLUSH_MS`` (200 ms), sooner when it holds ``FLUSH_SOON`` checks, in
**one transaction**: the ``scans`` rows, one aggregated upsert of the ``mark_checks`` counters, and the
copied-label signals computed over the batch (services/signals.py ``on_flush``).

Ids before rows
    A check's id is handed out when it is answered (the page's scan token names it), so each process
    takes blocks of ids (migration 0007): on PostgreSQL one ``nextval`` of the scans sequence, which
    counts in steps of the block size; on SQLite the ``sqlite_sequence`` row of the AUTOINCREMENT
    table, raised under the write lock. Each allocation is recorded in ``scan_id_blocks`` in the same
    committed transaction, so no block is ever handed out twice, even across a crash. Ids are unique
    but not in time order across processes: whatever compares checks compares their times.

Idempotent, deadlock-free flushes
    A flush whose commit outcome is unknown (the connection dropped at COMMIT) is retried with the
    same rows: scans are inserted ``ON CONFLICT DO NOTHING`` on their key (``(id, at)`` on PostgreSQL,
    where the log is partitioned by month: services/partitions.py; a retry carries the same time) and
    the counters are built only from
    the rows really inserted, so a retry never counts a check twice. Counter upserts go in key order
    (so two processes' flushes never wait on each other in a cycle), and first/last times merge
    with LEAST/GREATEST, since batches from several processes arrive out of order.

"Checked N times"
    The verdict's lookup reads the serial's counter in the same statement; the process adds its own
    checks not yet written (``pending``), so the count is exact to within one flush interval across
    processes and exact within one.

Stopping
    ``close()`` flushes and stops the flusher: called by gunicorn's ``worker_exit`` hook (SIGTERM,
    recycling), at interpreter exit (``atexit``: Ctrl-C of ``gi-service serve``) and when the app's
    engine is disposed. After a fork (gunicorn's preloaded app) the child starts its own flusher and
    takes its own id block; it never uses its parent's. A process killed with SIGKILL loses the checks
    it had answered and not committed: at most the buffer (``GI_CHECK_BUFFER``, plus one per thread
    appending at that moment) plus the batch being written (at most as many): 2 × (``GI_CHECK_BUFFER``
    + threads) per process. A request that finds the buffer full writes it before answering.
    With synchronous replication, flushes commit without waiting for a standby (``synchronous_commit =
    local``): a failover may also lose what the old primary had committed and not yet sent, typically
    the last few hundred milliseconds of checks. Every other write, id blocks included, waits.

Tests (and ``GI_CHECK_FLUSH_MS=0``) get a synchronous flush: each check is written before its answer,
through the same code.
"""
from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, case, event, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .. import clock
from ..models import MarkCheck, Scan, UAClass, Verdict

log = logging.getLogger(__name__)

FLUSH_SOON = 256            # a flush starts at once when the buffer holds this many checks
WAIT_FOR_ROW_S = 1.0        # how long a location/report waits for its check's row before a 503
WAIT_POLL_S = 0.05
RETRIES = (0.05, 0.2, 0.5)  # pauses between attempts of one flush whose write failed
HOST = socket.gethostname()[:64]


@dataclass(frozen=True, slots=True)
class PendingCheck:
    """One consumer check, answered, not necessarily written yet (what a ``scans`` row holds, and more)."""

    id: int
    at: dt.datetime
    series: str | None
    seq: int | None
    mac_ok: bool
    verdict: Verdict
    detail: str | None
    ip_hash: str | None
    ua_class: UAClass
    counted: bool               # bumps the serial's counters (a real mark, checked by a person)
    gi_id: int | None = None    # for the signals: the mark's GI and producer
    producer_id: int | None = None


@dataclass
class FlushResult:
    """What one flush wrote: the checks really inserted and the counters they moved."""

    inserted: list[PendingCheck]
    counters: dict[tuple[str, int], Any]      # (series, seq) -> row of mark_checks after the upsert


OnFlush = Callable[[Session, FlushResult], None]


class CheckLog:
    """The check log of one database in one process: id blocks, the buffer and its flusher."""

    def __init__(self, engine: Engine, *, interval_s: float = 0.2, buffer_max: int = 1000,
                 on_flush: OnFlush | None = None):
        self.engine = engine
        self.interval_s = interval_s
        self.buffer_max = max(1, buffer_max)
        self.on_flush = on_flush
        self.synchronous = interval_s <= 0
        self._lock = threading.Lock()          # buffer, pending counts, id block
        self._flush_lock = threading.Lock()    # one flush at a time in this process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._buffer: list[PendingCheck] = []
        self._pending: dict[tuple[str, int], list] = {}   # (series, seq) -> [count, first at] not yet written
        self._next_id = 0
        self._last_id = -1
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # Figures for operators and tests.
        self.appended = self.written = self.batches = self.failures = self.dropped = 0

    # --- ids ---------------------------------------------------------------------------------

    def new_id(self) -> int:
        """The next check id of this process's block (a new block is taken when it runs out)."""
        self._ensure_process()
        with self._lock:
            if self._next_id > self._last_id:
                first, size = self._take_block()
                self._next_id, self._last_id = first, first + size - 1
            value = self._next_id
            self._next_id += 1
            return value

    def _take_block(self) -> tuple[int, int]:
        """One block of ids, taken in a committed transaction (see the module docstring)."""
        pid = os.getpid()
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                first, size = conn.execute(text(
                    "WITH s AS (SELECT pg_get_serial_sequence('scans', 'id')::regclass AS seq) "
                    "INSERT INTO scan_id_blocks (first_id, size, taken_at, host, pid) "
                    "SELECT nextval(s.seq), p.seqincrement, now(), :host, :pid "
                    "FROM s JOIN pg_sequence p ON p.seqrelid = s.seq RETURNING first_id, size"),
                    {"host": HOST, "pid": pid}).one()
            return int(first), int(size)
        size = ID_BLOCK
        with self.engine.connect().execution_options(gi_write=True) as conn, conn.begin():
            conn.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) SELECT 'scans', (SELECT coalesce(max(id), 0) FROM scans) "
                "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'scans')")
            top = conn.exec_driver_sql("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'scans' RETURNING seq",
                                       (size,)).scalar_one()
            first = int(top) - size + 1
            conn.execute(sqlite.insert(_blocks_table()).values(first_id=first, size=size, taken_at=clock.now(), host=HOST,
                                                               pid=pid))
        return first, size

    # --- the buffer --------------------------------------------------------------------------

    def append(self, check: PendingCheck) -> None:
        """Log one answered check; it is written within one flush interval (at once when synchronous)."""
        self._ensure_process()
        with self._lock:
            self._buffer.append(check)
            if check.counted:
                entry = self._pending.get((check.series, check.seq))
                if entry is None:
                    self._pending[(check.series, check.seq)] = [1, check.at]
                else:
                    entry[0] += 1
                    if check.at < entry[1]:
                        entry[1] = check.at
            size = len(self._buffer)
            self.appended += 1
        if self.synchronous or self._closed:
            self.flush()
        elif size >= self.buffer_max:
            # Back-pressure: the buffer is at its bound, so this request writes it (or waits for the
            # flusher that is writing). What a crash can lose stays bounded.
            self.flush()
        elif size >= FLUSH_SOON:
            self._wake.set()

    def pending(self, series: str, seq: int) -> tuple[int, dt.datetime | None]:
        """This process's checks of a serial not written yet: (count, earliest time)."""
        entry = self._pending.get((series, seq))
        return (entry[0], entry[1]) if entry else (0, None)

    def holds(self, scan_id: int) -> bool:
        """Whether the check `scan_id` is waiting in this process's buffer."""
        with self._lock:
            return any(c.id == scan_id for c in self._buffer)

    def buffered(self) -> int:
        return len(self._buffer)

    # --- flushing ----------------------------------------------------------------------------

    def flush(self) -> int:
        """Write what the buffer holds in one transaction; returns the number of checks written."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                result = self._write_with_retries(batch)
            except Exception:
                self.failures += 1
                with self._lock:
                    # Keep them for the next flush (it is idempotent), within the bound.
                    self._buffer[:0] = batch
                    excess = len(self._buffer) - 2 * self.buffer_max
                    if excess > 0:
                        lost = self._buffer[:excess]
                        del self._buffer[:excess]
                        self.dropped += excess
                        self._forget(lost)
                log.exception("check log: could not write %d checks; kept for the next flush (%d dropped so far)",
                              len(batch), self.dropped)
                return 0
            with self._lock:
                self._forget(batch)
            self.written += len(result.inserted)
            self.batches += 1
            return len(result.inserted)

    def _forget(self, checks: Iterable[PendingCheck]) -> None:
        for c in checks:
            if c.counted:
                key = (c.series, c.seq)
                entry = self._pending.get(key)
                if entry is not None:
                    entry[0] -= 1
                    if entry[0] <= 0:
                        del self._pending[key]

    def _write_with_retries(self, batch: list[PendingCheck]) -> FlushResult:
        for attempt, pause in enumerate((*RETRIES, None)):
            try:
                return self._write(batch)
            except DBAPIError as exc:
                # Lost connection, serialization failure, deadlock...: the same rows again are safe.
                if pause is None:
                    raise
                log.warning("check log: flush attempt %d failed (%s); retrying", attempt + 1,
                            type(exc.orig).__name__ if exc.orig is not None else exc)
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _write(self, batch: list[PendingCheck]) -> FlushResult:
        session = Session(self.engine, expire_on_commit=False)
        try:
            if self.engine.dialect.name == "postgresql":
                # With synchronous replication, every other write waits for a standby; checks need not
                # (a failover may lose the last flushes, as a crash may: see the module docstring).
                # Id blocks are taken in their own, synchronous, transactions: never handed out twice.
                session.execute(text("SET LOCAL synchronous_commit = local"))
                result = _write_postgresql(session, batch)
            else:
                session.connection(execution_options={"gi_write": True})
                result = _write_sqlite(session, batch)
            if self.on_flush is not None and result.inserted:
                self.on_flush(session, result)
            session.commit()
            return result
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # --- the flusher and the process's life ----------------------------------------------------

    def _ensure_process(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            if self._pid is not None:
                # A forked child: its parent's block, buffer and flusher are not its own.
                self._buffer, self._pending = [], {}
                self._next_id, self._last_id = 0, -1
                self._flush_lock = threading.Lock()
                self._wake, self._stop = threading.Event(), threading.Event()
                self._closed = False
            self._pid = pid
            if not self.synchronous:
                self._thread = threading.Thread(target=self._run, name="gi-check-log", daemon=True)
                self._thread.start()
            _register_exit(self)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
            except Exception:  # never let the flusher die
                log.exception("check log: flusher error")

    def close(self) -> None:
        """Flush what is buffered and stop the flusher (idempotent; later checks are written at once)."""
        if self._pid != os.getpid():
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        try:
            self.flush()
        except Exception:
            log.exception("check log: final flush failed")

    # --- waiting for a row ---------------------------------------------------------------------

    def wait_for(self, scan_id: int, timeout_s: float = WAIT_FOR_ROW_S) -> bool:
        """Whether the row of check `scan_id` exists, waiting up to `timeout_s` for a flush to write it.

        A location or report usually arrives at another process than the check: its row appears
        within one flush interval of that process. A check still in this process's buffer is
        written at once.
        """
        if self._pid == os.getpid() and self.holds(scan_id):
            self.flush()
        stmt = select(Scan.id).where(Scan.id == bindparam("id"))
        deadline = time.monotonic() + timeout_s
        while True:
            with self.engine.connect() as conn:
                if conn.execute(stmt, {"id": scan_id}).first() is not None:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_POLL_S)


ID_BLOCK = 128   # ids per block on SQLite (on PostgreSQL: the sequence's increment, set by migration 0007)


def _blocks_table():
    from ..models import ScanIdBlock

    return ScanIdBlock.__table__


# --- the writes, per backend -----------------------------------------------------------------------

_PG_FLUSH = text("""
WITH batch AS (
    SELECT * FROM unnest(CAST(:id AS bigint[]), CAST(:at AS timestamptz[]), CAST(:series AS varchar[]),
                         CAST(:seq AS bigint[]), CAST(:mac_ok AS boolean[]), CAST(:verdict AS varchar[]),
                         CAST(:detail AS varchar[]), CAST(:ip_hash AS varchar[]), CAST(:ua_class AS varchar[]),
                         CAST(:counted AS boolean[]))
        AS b(id, at, series, seq, mac_ok, verdict, detail, ip_hash, ua_class, counted)),
inserted AS (
    INSERT INTO scans (id, at, series, seq, mac_ok, verdict, detail, ip_hash, ua_class)
    SELECT id, at, series, seq, mac_ok, verdict, detail, ip_hash, ua_class FROM batch
    ON CONFLICT (id, at) DO NOTHING
    RETURNING id),
counted AS (
    SELECT b.series, b.seq, count(*) AS n,
           min(b.at) AS first_at, (array_agg(b.id ORDER BY b.at, b.id))[1] AS first_scan_id,
           max(b.at) AS last_at, (array_agg(b.id ORDER BY b.at DESC, b.id DESC))[1] AS last_scan_id
    FROM batch b JOIN inserted i ON i.id = b.id
    WHERE b.counted
    GROUP BY b.series, b.seq),
counters AS (
    INSERT INTO mark_checks AS c (series, seq, count, first_at, first_scan_id, last_at, last_scan_id)
    SELECT series, seq, n, first_at, first_scan_id, last_at, last_scan_id FROM counted ORDER BY series, seq
    ON CONFLICT (series, seq) DO UPDATE SET
        count = c.count + excluded.count,
        first_scan_id = CASE WHEN excluded.first_at < c.first_at THEN excluded.first_scan_id ELSE c.first_scan_id END,
        first_at = LEAST(c.first_at, excluded.first_at),
        last_scan_id = CASE WHEN excluded.last_at >= c.last_at THEN excluded.last_scan_id ELSE c.last_scan_id END,
        last_at = GREATEST(c.last_at, excluded.last_at)
    RETURNING c.series, c.seq, c.count, c.first_at, c.first_adcode, c.last_adcode, c.suspect_at, c.suspect_reasons)
SELECT 'i' AS kind, id, NULL AS series, NULL AS seq, NULL::bigint AS count, NULL::timestamptz AS first_at,
       NULL AS first_adcode, NULL AS last_adcode, NULL::timestamptz AS suspect_at, NULL AS suspect_reasons
FROM inserted
UNION ALL
SELECT 'c', NULL, series, seq, count, first_at, first_adcode, last_adcode, suspect_at, suspect_reasons FROM counters
""")


def _write_postgresql(session: Session, batch: list[PendingCheck]) -> FlushResult:
    """One statement: the batch's scans, and the counters of the rows really inserted, in key order."""
    params = {
        "id": [c.id for c in batch], "at": [c.at for c in batch], "series": [c.series for c in batch],
        "seq": [c.seq for c in batch], "mac_ok": [c.mac_ok for c in batch],
        "verdict": [c.verdict.value for c in batch], "detail": [c.detail for c in batch],
        "ip_hash": [c.ip_hash for c in batch], "ua_class": [c.ua_class.value for c in batch],
        "counted": [c.counted for c in batch],
    }
    rows = session.connection().execute(_PG_FLUSH, params).all()
    ids = {row.id for row in rows if row.kind == "i"}
    counters = {(row.series, row.seq): _Counter.of(row) for row in rows if row.kind == "c"}
    return FlushResult([c for c in batch if c.id in ids], counters)


@dataclass(frozen=True, slots=True)
class _Counter:
    count: int
    first_at: dt.datetime | None
    first_adcode: str | None
    last_adcode: str | None
    suspect_at: dt.datetime | None
    suspect_reasons: str | None

    @classmethod
    def of(cls, row) -> _Counter:
        return cls(int(row.count), _utc(row.first_at), row.first_adcode, row.last_adcode, _utc(row.suspect_at),
                   row.suspect_reasons)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


_SCAN_COLUMNS = ("id", "at", "series", "seq", "mac_ok", "verdict", "detail", "ip_hash", "ua_class")


def _sqlite_upsert():
    stmt = sqlite.insert(MarkCheck).values({c: bindparam(c) for c in (
        "series", "seq", "count", "first_at", "first_scan_id", "last_at", "last_scan_id")})
    t, x = MarkCheck.__table__.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[MarkCheck.series, MarkCheck.seq],
        set_={"count": t.count + x.count,
              "first_scan_id": case((x.first_at < t.first_at, x.first_scan_id), else_=t.first_scan_id),
              "first_at": func.min(t.first_at, x.first_at),
              "last_scan_id": case((x.last_at >= t.last_at, x.last_scan_id), else_=t.last_scan_id),
              "last_at": func.max(t.last_at, x.last_at)},
    ).returning(MarkCheck.count, MarkCheck.first_at, MarkCheck.first_adcode, MarkCheck.last_adcode,
                MarkCheck.suspect_at, MarkCheck.suspect_reasons)


# Built once (a reused statement keeps its compiled form).
_SQLITE_UPSERT = _sqlite_upsert()


def _write_sqlite(session: Session, batch: list[PendingCheck]) -> FlushResult:
    """Under the write lock: insert the checks not written yet, then one upsert per serial, in key order."""
    conn = session.connection()
    ids = [c.id for c in batch]
    existing: set[int] = set()
    for i in range(0, len(ids), 500):
        existing.update(conn.execute(select(Scan.id).where(Scan.id.in_(ids[i:i + 500]))).scalars())
    inserted = [c for c in batch if c.id not in existing]
    if inserted:
        conn.execute(Scan.__table__.insert(), [{k: getattr(c, k) for k in _SCAN_COLUMNS} for c in inserted])
    groups: dict[tuple[str, int], list[PendingCheck]] = {}
    for c in inserted:
        if c.counted:
            groups.setdefault((c.series, c.seq), []).append(c)
    counters = {}
    for key in sorted(groups):
        checks = sorted(groups[key], key=lambda c: (c.at, c.id))
        row = conn.execute(_SQLITE_UPSERT, {"series": key[0], "seq": key[1], "count": len(checks),
                                    "first_at": checks[0].at, "first_scan_id": checks[0].id,
                                    "last_at": checks[-1].at, "last_scan_id": checks[-1].id}).one()
        counters[key] = _Counter(int(row[0]), _utc(row[1]), row[2], row[3], _utc(row[4]), row[5])
    return FlushResult(inserted, counters)


# --- one check log per engine ----------------------------------------------------------------------

_logs: "weakref.WeakKeyDictionary[Engine, weakref.WeakSet[CheckLog]]" = weakref.WeakKeyDictionary()
_exit_lock = threading.Lock()


def attach(engine: Engine, *, interval_s: float, buffer_max: int, on_flush: OnFlush | None) -> CheckLog:
    """A check log on `engine`, flushed and stopped when the engine is disposed (or by `close`).

    An engine usually carries one app's log; an engine shared by several apps (an embedding application,
    a test run) carries one per app, each closed by its owner or all of them when the engine goes."""
    checklog = CheckLog(engine, interval_s=interval_s, buffer_max=buffer_max, on_flush=on_flush)
    logs = _logs.get(engine)
    if logs is None:
        logs = _logs[engine] = weakref.WeakSet()
        event.listen(engine, "engine_disposed", _close_logs_of)
    logs.add(checklog)
    return checklog


def _close_logs_of(engine: Engine) -> None:
    for checklog in list(_logs.get(engine, ())):
        checklog.close()


def close_all() -> None:
    """Flush and stop every check log of this process (gunicorn's worker_exit, interpreter exit)."""
    for logs in list(_logs.values()):
        for checklog in list(logs):
            checklog.close()


def _register_exit(_checklog: CheckLog) -> None:
    global _atexit_pid
    with _exit_lock:
        if _atexit_pid != os.getpid():
            _atexit_pid = os.getpid()
            atexit.register(_close_at_exit, os.getpid())


_atexit_pid: int | None = None


def _close_at_exit(pid: int) -> None:
    if os.getpid() == pid:
        close_all()

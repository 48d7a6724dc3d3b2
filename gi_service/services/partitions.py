"""The check log (`scans`) partitioned by month on PostgreSQL: partitions made ahead, old months dropped whole.

A billion checks a year cannot be pruned row by row. On PostgreSQL ``scans`` is a table partitioned by
range of ``at`` (migration 0008), with:

* one partition per calendar month (UTC), ``scans_y2027m01`` for January 2027, made ahead by
  ``gi-service scans partitions`` (cron, daily; several hosts may run it at once: an advisory lock
  makes them take turns, and what exists is skipped) — never from inside ``create_app``;
* ``scans_before_yYYYYmMM``: the table as it was before partitioning, attached as one partition
  for everything before that month (no row copied: a validated check constraint lets the attach
  skip its scan);
* ``scans_kept``, the default partition: checks a clue points to, kept as evidence when their month
  is dropped, and any check whose month has no partition yet (the command moves those into the
  month's partition when it makes it).

Retention (``scans.prune``) detaches a month older than the retention period, copies the checks a
clue points to back into ``scans`` (they land in ``scans_kept``), and drops the month, in one
transaction. Queries that read the log by time prune to the months they name (plus ``scans_kept``).
SQLite keeps one table.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

MONTH_NAME = re.compile(r"^scans_y(\d{4})m(\d{2})$")
BEFORE_NAME = re.compile(r"^scans_before_y(\d{4})m(\d{2})$")
DEFAULT_PARTITION = "scans_kept"
LOCK_KEY = 0x67695F7363616E73   # 'gi_scans': the advisory lock partition maintenance takes turns on
AHEAD_MONTHS = 3


def month_start(day: dt.date | dt.datetime) -> dt.date:
    return dt.date(day.year, day.month, 1)


def next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def month_name(first: dt.date) -> str:
    return f"scans_y{first.year:04d}m{first.month:02d}"


def _bound(first: dt.date) -> str:
    return f"{first.isoformat()} 00:00:00+00"


@dataclass(frozen=True)
class Partition:
    name: str
    start: dt.date | None      # None: from the beginning (MINVALUE)
    end: dt.date               # exclusive


def is_partitioned(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    return bool(session.scalar(text(
        "SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass('scans')")))


def partitions(session: Session) -> list[Partition]:
    """The monthly and before-partitions of ``scans`` (not the default one), oldest first."""
    rows = session.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('scans')")).scalars().all()
    out = []
    for name in rows:
        if m := MONTH_NAME.match(name):
            start = dt.date(int(m[1]), int(m[2]), 1)
            out.append(Partition(name, start, next_month(start)))
        elif m := BEFORE_NAME.match(name):
            out.append(Partition(name, None, dt.date(int(m[1]), int(m[2]), 1)))
    return sorted(out, key=lambda p: p.end)


def ensure_months(session: Session, *, today: dt.date, ahead: int = AHEAD_MONTHS) -> list[str]:
    """Make the partitions of this month and the next `ahead` months that do not exist yet.

    Takes the maintenance advisory lock for the transaction (hosts running it at once take turns).
    A check that arrived before its month's partition existed sits in ``scans_kept``: it is moved
    into the new partition in the same transaction. Returns the partitions made; the caller commits.
    """
    if not is_partitioned(session):
        return []
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    existing = partitions(session)
    made = []
    first = month_start(today)
    for _ in range(ahead + 1):
        end = next_month(first)
        if not _covered(existing, first, end):
            _make_month(session, first, end)
            made.append(month_name(first))
        first = end
    return made


def _covered(existing: list[Partition], start: dt.date, end: dt.date) -> bool:
    return any((p.start is None or p.start <= start) and end <= p.end for p in existing)


def _make_month(session: Session, start: dt.date, end: dt.date) -> None:
    name = month_name(start)
    lo, hi = _bound(start), _bound(end)
    # A standalone table first, filled with any strays of its month from the default partition, then
    # attached: creating it directly as a partition would fail while the default holds such rows.
    session.execute(text(f'CREATE TABLE "{name}" (LIKE scans INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'))
    session.execute(text(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_range" '
                         f"CHECK (at IS NOT NULL AND at >= '{lo}' AND at < '{hi}')"))
    session.execute(text(f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE at >= :lo AND at < :hi RETURNING *) '
                         f'INSERT INTO "{name}" SELECT * FROM moved'), {"lo": lo, "hi": hi})
    session.execute(text(f'ALTER TABLE scans ATTACH PARTITION "{name}" FOR VALUES FROM (\'{lo}\') TO (\'{hi}\')'))
    session.execute(text(f'ALTER TABLE "{name}" DROP CONSTRAINT "{name}_range"'))


@dataclass(frozen=True)
class Dropped:
    name: str
    rows: int
    kept: int


def drop_before(session: Session, cutoff: dt.datetime) -> list[Dropped]:
    """Drop every monthly partition that ends at or before `cutoff`, keeping the checks clues point to.

    Each month is detached, its evidence copied back into ``scans`` (it lands in ``scans_kept``, since
    no partition covers that month any more) and dropped, in the caller's transaction. The partition
    from before partitioning is not dropped here (its range has no start); prune deletes its old rows.
    """
    if not is_partitioned(session):
        return []
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    out = []
    cutoff_day = cutoff.astimezone(dt.timezone.utc).date()
    for p in partitions(session):
        if p.start is None or p.end > cutoff_day:
            continue
        session.execute(text(f'ALTER TABLE scans DETACH PARTITION "{p.name}"'))
        rows = session.scalar(text(f'SELECT count(*) FROM "{p.name}"'))
        kept = session.execute(text(
            f'INSERT INTO scans SELECT * FROM "{p.name}" s '
            "WHERE s.id IN (SELECT scan_id FROM clues WHERE scan_id IS NOT NULL)")).rowcount
        session.execute(text(f'DROP TABLE "{p.name}"'))
        out.append(Dropped(p.name, int(rows), int(kept or 0)))
    return out


def before_partition(session: Session) -> Partition | None:
    """The partition holding the log as it was before partitioning (None if none)."""
    return next((p for p in partitions(session) if p.start is None), None)

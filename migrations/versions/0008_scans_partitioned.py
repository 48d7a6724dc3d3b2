"""The check log partitioned by month on PostgreSQL

``scans`` becomes a table partitioned by range of ``at`` (services/partitions.py). The table as it
was is attached as one partition for everything before next month, without copying a row: a check
constraint on its range, validated first, lets the attach skip its own scan. Its primary key grows
to (id, at), since a partitioned table's unique keys must hold the partition key; ids stay unique
(the id blocks of migration 0007). Then the partitions of the coming months and the default
partition ``scans_kept`` (evidence kept from dropped months, strays) are made. SQLite keeps one table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 15:40:00
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

AHEAD = 3


def _next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    today = dt.datetime.now(dt.timezone.utc).date()
    start = _next_month(dt.date(today.year, today.month, 1))
    newest = bind.execute(sa.text("SELECT max(at) FROM scans")).scalar()
    if newest is not None:
        newest_day = newest.astimezone(dt.timezone.utc).date()
        while start <= newest_day:        # checks dated in the future (clock skew): keep them in the old table
            start = _next_month(start)
    bound = f"{start.isoformat()} 00:00:00+00"
    before = f"scans_before_y{start.year:04d}m{start.month:02d}"
    seq = bind.execute(sa.text("SELECT pg_get_serial_sequence('scans', 'id')")).scalar_one()
    op.execute(f'ALTER TABLE scans RENAME TO "{before}"')
    op.execute(f'ALTER INDEX pk_scans RENAME TO "pk_{before}"')
    op.execute(f'ALTER INDEX ix_scans_series_seq RENAME TO "ix_{before}_series_seq"')
    op.execute(f'ALTER INDEX ix_scans_ip_hash_at RENAME TO "ix_{before}_ip_hash_at"')
    op.execute(f'CREATE TABLE scans (LIKE "{before}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (at)')
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY scans.id")
    op.execute("ALTER TABLE scans ADD CONSTRAINT pk_scans PRIMARY KEY (id, at)")
    op.execute("CREATE INDEX ix_scans_series_seq ON scans (series, seq)")
    op.execute("CREATE INDEX ix_scans_ip_hash_at ON scans (ip_hash, at)")
    # The old table as the partition of everything before `bound`: its key becomes (id, at) (an index
    # build, not a copy), and a validated constraint on its range spares the attach a scan.
    op.execute(f'CREATE UNIQUE INDEX "{before}_id_at" ON "{before}" (id, at)')
    op.execute(f'ALTER TABLE "{before}" DROP CONSTRAINT "pk_{before}"')
    op.execute(f'ALTER TABLE "{before}" ADD CONSTRAINT "{before}_range" CHECK (at IS NOT NULL AND at < \'{bound}\') '
               "NOT VALID")
    op.execute(f'ALTER TABLE "{before}" VALIDATE CONSTRAINT "{before}_range"')
    op.execute(f'ALTER TABLE scans ATTACH PARTITION "{before}" FOR VALUES FROM (MINVALUE) TO (\'{bound}\')')
    op.execute(f'ALTER TABLE "{before}" DROP CONSTRAINT "{before}_range"')
    op.execute("CREATE TABLE scans_kept PARTITION OF scans DEFAULT")
    first = start
    for _ in range(AHEAD):
        end = _next_month(first)
        op.execute(f'CREATE TABLE "scans_y{first.year:04d}m{first.month:02d}" PARTITION OF scans '
                   f"FOR VALUES FROM ('{first.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')")
        first = end


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    seq = bind.execute(sa.text("SELECT pg_get_serial_sequence('scans', 'id')")).scalar_one()
    op.execute("CREATE TABLE scans_flat (LIKE scans INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute("INSERT INTO scans_flat SELECT * FROM scans")
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY scans_flat.id")
    op.execute("DROP TABLE scans")
    op.execute("ALTER TABLE scans_flat RENAME TO scans")
    op.execute("ALTER TABLE scans ADD CONSTRAINT pk_scans PRIMARY KEY (id)")
    op.execute("CREATE INDEX ix_scans_series_seq ON scans (series, seq)")
    op.execute("CREATE INDEX ix_scans_ip_hash_at ON scans (ip_hash, at)")

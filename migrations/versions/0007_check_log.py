"""Check log written behind the answer: scan ids handed out in blocks

Consumer checks are buffered in each process and written by a flusher (services/checklog.py);
a check's id must exist before its row, so every process takes blocks of ids:

* PostgreSQL: the scans id sequence counts in steps of ``ID_BLOCK``; one ``nextval`` is one block
  ``[v, v + ID_BLOCK - 1]`` that no other caller can get (Hibernate's "pooled" allocation). A
  plain INSERT that takes the default id uses one block for one row: ids stay unique, with gaps.
* SQLite: ``scans`` becomes AUTOINCREMENT, so ``sqlite_sequence`` is its sequence; a block is
  taken by raising that row by ``ID_BLOCK`` under the write lock, and a plain INSERT's rowid
  always lies above every block handed out.

Each allocation is also recorded in ``scan_id_blocks`` in the same transaction: a committed write,
so a block survives a crash of the server (a bare ``nextval`` is not flushed to the WAL by a
transaction that writes nothing else) and is never handed out twice; and an operator can see
which process took which ids.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 15:20:00
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ID_BLOCK = 128   # kept in step with gi_service.services.checklog (which reads it back on PostgreSQL)


def upgrade() -> None:
    op.create_table('scan_id_blocks',
    sa.Column('first_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('taken_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('host', sa.String(length=64), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('first_id', name=op.f('pk_scan_id_blocks'))
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER SEQUENCE {_pg_sequence(bind)} INCREMENT BY {ID_BLOCK}")
    else:
        # Recreate the table as AUTOINCREMENT (SQLite cannot alter a key in place); keep the ids.
        with op.batch_alter_table('scans', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}) as batch_op:
            pass
        op.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'scans', (SELECT coalesce(max(id), 0) FROM scans) "
                   "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'scans')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER SEQUENCE {_pg_sequence(bind)} INCREMENT BY 1")
    else:
        with op.batch_alter_table('scans', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': False}) as batch_op:
            pass
    op.drop_table('scan_id_blocks')


def _pg_sequence(bind) -> str:
    return bind.execute(sa.text("SELECT pg_get_serial_sequence('scans', 'id')")).scalar_one()

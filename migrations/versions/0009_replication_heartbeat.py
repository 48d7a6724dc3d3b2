"""Replication heartbeat: one row the primary keeps fresh, read on standbys to judge their lag

With standbys configured (GI_DATABASE_REPLICA_URLS), each app process updates this row on the
primary a few times a second (gi_service/replicas.py). A standby's copy of it is as old as the
standby is behind, whether the primary is busy or idle, and a standby whose replay stalled cannot
hide it: the verdict's lookup reads it in the same statement and goes to the primary when it is
older than GI_REPLICA_MAX_LAG_MS.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 15:45:00
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replication_heartbeat',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replication_heartbeat'))
    )
    op.execute("INSERT INTO replication_heartbeat (id, at) VALUES (1, CURRENT_TIMESTAMP)")


def downgrade() -> None:
    op.drop_table('replication_heartbeat')

"""Consumer checks: one row per scan of a code, and per-serial check counters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 05:34:59.996138
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mark_checks',
    sa.Column('series', sa.String(length=6), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('first_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('first_scan_id', sa.BigInteger(), nullable=False),
    sa.Column('first_adcode', sa.String(length=6), nullable=True),
    sa.Column('last_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_scan_id', sa.BigInteger(), nullable=False),
    sa.Column('last_adcode', sa.String(length=6), nullable=True),
    sa.Column('last_located_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('series', 'seq', name=op.f('pk_mark_checks'))
    )
    op.create_table('scans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('series', sa.String(length=6), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('mac_ok', sa.Boolean(), nullable=False),
    sa.Column('verdict', sa.Enum('genuine', 'genuine_not_activated', 'voided', 'lost_or_stolen', 'recalled',
                                 'authorization_suspended', 'unknown', 'malformed', name='scan_verdict',
                                 native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('detail', sa.String(length=32), nullable=True),
    sa.Column('ip_hash', sa.String(length=32), nullable=True),
    sa.Column('ua_class', sa.Enum('mobile', 'in_app', 'desktop', 'bot', 'other', name='ua_class', native_enum=False,
                                  create_constraint=True, length=32), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('adcode', sa.String(length=6), nullable=True),
    sa.Column('located_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scans'))
    )
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.create_index('ix_scans_series_seq', ['series', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_index('ix_scans_series_seq')

    op.drop_table('scans')
    op.drop_table('mark_checks')

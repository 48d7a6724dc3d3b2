"""Failed sign-ins under names no account has, counted and locked like an account's

A lockout answered only for real accounts told an attacker which usernames exist (guess a name a few times:
a 429 means there is an account). Failures under a name without an account are now counted in a table of
their own, keyed by the name's SHA-256 (no names in clear in this table), and locked the
same way; a row is forgotten 30 days after its last failure.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 02:00:00
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unknown_name_failures',
    sa.Column('name_digest', sa.String(length=64), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('lockouts', sa.Integer(), nullable=False),
    sa.Column('locked_until', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_failed_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name_digest', name=op.f('pk_unknown_name_failures'))
    )
    with op.batch_alter_table('unknown_name_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unknown_name_failures_last_failed_at'), ['last_failed_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('unknown_name_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unknown_name_failures_last_failed_at'))
    op.drop_table('unknown_name_failures')

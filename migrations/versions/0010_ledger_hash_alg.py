"""Ledger events record the hash they are chained with (SHA-256, or SM3 under the SM suite)

NULL means SHA-256, so existing events keep their meaning without a rewrite.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 16:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hash_alg', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.drop_column('hash_alg')

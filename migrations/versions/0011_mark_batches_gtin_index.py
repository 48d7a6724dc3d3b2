"""An index on mark_batches.gtin: the GS1 resolver's walk-up finds a GTIN's batches by it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 16:55:00
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mark_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mark_batches_gtin'), ['gtin'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mark_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mark_batches_gtin'))

"""Count print-file downloads per order, so a repeated download is flagged

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 05:27:20.563810
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mark_batches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('print_downloads', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_download_at', gi_service.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('mark_batches', schema=None) as batch_op:
        batch_op.drop_column('last_download_at')
        batch_op.drop_column('print_downloads')


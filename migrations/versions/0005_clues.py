"""Copied-label alerts, consumer reports of suspected fakes, GI sales regions

Existing GIs get an empty list of sales regions (no regional signal until one is declared).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 06:46:44.154865
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clues',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('alert', 'consumer_report', name='clue_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('alert_kind', sa.Enum('too_many_checks', 'impossible_travel', 'outside_sales_regions', 'unknown_burst', name='alert_kind', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('dedup_key', sa.String(length=120), nullable=True),
    sa.Column('status', sa.Enum('open', 'acknowledged', 'dismissed', 'referred', name='clue_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=True),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('series', sa.String(length=6), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('scan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('adcode', sa.String(length=6), nullable=True),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('details', gi_service.db.JSONType(), nullable=False),
    sa.Column('status_reason', sa.String(length=1000), nullable=True),
    sa.Column('status_by_id', sa.Integer(), nullable=True),
    sa.Column('status_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_clues_gi_id_gis')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_clues_producer_id_organisations')),
    sa.ForeignKeyConstraint(['status_by_id'], ['users.id'], name=op.f('fk_clues_status_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clues')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_clues_dedup_key'))
    )
    with op.batch_alter_table('clues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clues_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_clues_producer_id'), ['producer_id'], unique=False)
        batch_op.create_index('ix_clues_series_seq', ['series', 'seq'], unique=False)
        batch_op.create_index('ix_clues_status_id', ['status', 'id'], unique=False)

    op.create_table('clue_places',
    sa.Column('clue_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('scan_place', 'producer_place', 'gi_authority', name='place_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('adcode', sa.String(length=6), nullable=False),
    sa.ForeignKeyConstraint(['clue_id'], ['clues.id'], name=op.f('fk_clue_places_clue_id_clues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('clue_id', 'role', 'adcode', name=op.f('pk_clue_places'))
    )
    with op.batch_alter_table('clue_places', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clue_places_adcode'), ['adcode'], unique=False)

    op.create_table('consumer_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clue_id', sa.Integer(), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('shop_name', sa.String(length=200), nullable=False),
    sa.Column('shop_address', sa.String(length=300), nullable=True),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('adcode', sa.String(length=6), nullable=True),
    sa.Column('photo_key', sa.String(length=200), nullable=True),
    sa.Column('photo_sha256', sa.String(length=64), nullable=True),
    sa.Column('photo_bytes', sa.Integer(), nullable=True),
    sa.Column('photo_width', sa.Integer(), nullable=True),
    sa.Column('photo_height', sa.Integer(), nullable=True),
    sa.Column('photo_original_sha256', sa.String(length=64), nullable=True),
    sa.Column('photo_taken_at', sa.String(length=19), nullable=True),
    sa.Column('ip_hash', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['clue_id'], ['clues.id'], name=op.f('fk_consumer_reports_clue_id_clues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consumer_reports')),
    sa.UniqueConstraint('clue_id', name=op.f('uq_consumer_reports_clue_id'))
    )
    with op.batch_alter_table('gi_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sales_adcodes', gi_service.db.JSONType(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('check_alert_threshold', sa.Integer(), nullable=True))

    with op.batch_alter_table('gis', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sales_adcodes', gi_service.db.JSONType(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('check_alert_threshold', sa.Integer(), nullable=True))

    with op.batch_alter_table('mark_checks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_located_scan_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('suspect_at', gi_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspect_reasons', sa.String(length=120), nullable=True))

    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.create_index('ix_scans_ip_hash_at', ['ip_hash', 'at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_index('ix_scans_ip_hash_at')

    with op.batch_alter_table('mark_checks', schema=None) as batch_op:
        batch_op.drop_column('suspect_reasons')
        batch_op.drop_column('suspect_at')
        batch_op.drop_column('last_located_scan_id')

    with op.batch_alter_table('gis', schema=None) as batch_op:
        batch_op.drop_column('check_alert_threshold')
        batch_op.drop_column('sales_adcodes')

    with op.batch_alter_table('gi_versions', schema=None) as batch_op:
        batch_op.drop_column('check_alert_threshold')
        batch_op.drop_column('sales_adcodes')

    op.drop_table('consumer_reports')
    with op.batch_alter_table('clue_places', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clue_places_adcode'))

    op.drop_table('clue_places')
    with op.batch_alter_table('clues', schema=None) as batch_op:
        batch_op.drop_index('ix_clues_status_id')
        batch_op.drop_index('ix_clues_series_seq')
        batch_op.drop_index(batch_op.f('ix_clues_producer_id'))
        batch_op.drop_index(batch_op.f('ix_clues_gi_id'))

    op.drop_table('clues')

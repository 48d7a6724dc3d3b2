"""Special-mark ledger: quotas, requests, batches, serial ranges, lots, hash-chained events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:42:42.632948
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('signature', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_checkpoints'))
    )
    op.create_table('ledger_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_head'))
    )
    # The chain starts from a fixed genesis hash; every append locks and advances this row.
    op.bulk_insert(sa.table("ledger_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger),
                            sa.column("hash", sa.String)), [{"id": 1, "seq": 0, "hash": "0" * 64}])
    op.create_table('serial_counters',
    sa.Column('series', sa.String(length=6), nullable=False),
    sa.Column('next_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('series', name=op.f('pk_serial_counters'))
    )
    op.create_table('idempotency_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', gi_service.db.JSONType(), nullable=True),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_records_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('user_id', 'key', name='uq_idempotency_records_user_id_key')
    )
    op.create_table('lots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('lot_no', sa.String(length=64), nullable=False),
    sa.Column('production_date', sa.Date(), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('pack_size_g', sa.Integer(), nullable=False),
    sa.Column('test_report_no', sa.String(length=100), nullable=False),
    sa.Column('testing_body', sa.String(length=200), nullable=False),
    sa.Column('test_passed', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('active', 'recalled', name='lot_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('recall_reason', sa.String(length=1000), nullable=True),
    sa.Column('recalled_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_lots_gi_id_gis')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_lots_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lots')),
    sa.UniqueConstraint('producer_id', 'lot_no', name='uq_lots_producer_id_lot_no')
    )
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lots_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lots_producer_id'), ['producer_id'], unique=False)

    op.create_table('mark_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('pack_size_g', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('status', sa.Enum('requested', 'approved', 'refused', 'cancelled', name='request_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('decision_reason', sa.String(length=1000), nullable=True),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('quantity > 0 AND pack_size_g > 0', name=op.f('ck_mark_requests_positive')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_mark_requests_decided_by_id_users')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_mark_requests_gi_id_gis')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_mark_requests_producer_id_organisations')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_mark_requests_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mark_requests'))
    )
    with op.batch_alter_table('mark_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mark_requests_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mark_requests_producer_id'), ['producer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mark_requests_status'), ['status'], unique=False)

    op.create_table('quota_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('base_g', sa.BigInteger(), nullable=False),
    sa.Column('adjusted_g', sa.BigInteger(), nullable=False),
    sa.Column('transferred_in_g', sa.BigInteger(), nullable=False),
    sa.Column('transferred_out_g', sa.BigInteger(), nullable=False),
    sa.Column('consumed_g', sa.BigInteger(), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('base_g + adjusted_g + transferred_in_g - transferred_out_g - consumed_g >= 0', name=op.f('ck_quota_accounts_not_overspent')),
    sa.CheckConstraint('consumed_g >= 0 AND transferred_in_g >= 0 AND transferred_out_g >= 0 AND base_g >= 0', name=op.f('ck_quota_accounts_non_negative')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_quota_accounts_gi_id_gis')),
    sa.ForeignKeyConstraint(['opened_by_id'], ['users.id'], name=op.f('fk_quota_accounts_opened_by_id_users')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_quota_accounts_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_accounts')),
    sa.UniqueConstraint('year', 'producer_id', 'gi_id', name='uq_quota_accounts_year_producer_gi')
    )
    with op.batch_alter_table('quota_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quota_accounts_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_quota_accounts_producer_id'), ['producer_id'], unique=False)

    op.create_table('mark_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('printer_id', sa.Integer(), nullable=True),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('series', sa.String(length=6), nullable=False),
    sa.Column('seq_start', sa.BigInteger(), nullable=False),
    sa.Column('seq_end', sa.BigInteger(), nullable=False),
    sa.Column('pack_size_g', sa.Integer(), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=True),
    sa.Column('key_id', sa.String(length=1), nullable=False),
    sa.Column('status', sa.Enum('approved', 'ordered', 'printed', 'issued', 'closed', name='batch_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=False),
    sa.Column('approved_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ordered_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('printed_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('issued_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('seq_end >= seq_start', name=op.f('ck_mark_batches_range_order')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_mark_batches_approved_by_id_users')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_mark_batches_gi_id_gis')),
    sa.ForeignKeyConstraint(['printer_id'], ['organisations.id'], name=op.f('fk_mark_batches_printer_id_organisations')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_mark_batches_producer_id_organisations')),
    sa.ForeignKeyConstraint(['request_id'], ['mark_requests.id'], name=op.f('fk_mark_batches_request_id_mark_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mark_batches')),
    sa.UniqueConstraint('request_id', name=op.f('uq_mark_batches_request_id')),
    sa.UniqueConstraint('series', 'seq_start', name='uq_mark_batches_series_seq_start')
    )
    with op.batch_alter_table('mark_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mark_batches_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mark_batches_printer_id'), ['printer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mark_batches_producer_id'), ['producer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mark_batches_status'), ['status'], unique=False)

    op.create_table('quota_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_g', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('counterparty_account_id', sa.Integer(), nullable=True),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('details', gi_service.db.JSONType(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=False),
    sa.Column('at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['quota_accounts.id'], name=op.f('fk_quota_entries_account_id_quota_accounts')),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_quota_entries_by_id_users')),
    sa.ForeignKeyConstraint(['counterparty_account_id'], ['quota_accounts.id'], name=op.f('fk_quota_entries_counterparty_account_id_quota_accounts')),
    sa.ForeignKeyConstraint(['request_id'], ['mark_requests.id'], name=op.f('fk_quota_entries_request_id_mark_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_entries'))
    )
    with op.batch_alter_table('quota_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quota_entries_account_id'), ['account_id'], unique=False)

    op.create_table('ledger_events',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_org_id', sa.Integer(), nullable=True),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('printer_id', sa.Integer(), nullable=True),
    sa.Column('gi_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('lot_id', sa.Integer(), nullable=True),
    sa.Column('series', sa.String(length=6), nullable=True),
    sa.Column('ranges', gi_service.db.JSONType(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('data', gi_service.db.JSONType(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['actor_org_id'], ['organisations.id'], name=op.f('fk_ledger_events_actor_org_id_organisations')),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_ledger_events_actor_user_id_users')),
    sa.ForeignKeyConstraint(['batch_id'], ['mark_batches.id'], name=op.f('fk_ledger_events_batch_id_mark_batches')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_ledger_events_gi_id_gis')),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_ledger_events_lot_id_lots')),
    sa.ForeignKeyConstraint(['printer_id'], ['organisations.id'], name=op.f('fk_ledger_events_printer_id_organisations')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_ledger_events_producer_id_organisations')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_ledger_events')),
    sa.UniqueConstraint('hash', name=op.f('uq_ledger_events_hash'))
    )
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_events_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_events_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_events_producer_id'), ['producer_id'], unique=False)

    op.create_table('mark_ranges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('series', sa.String(length=6), nullable=False),
    sa.Column('seq_start', sa.BigInteger(), nullable=False),
    sa.Column('seq_end', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.Enum('allocated', 'printed', 'spoiled', 'issued', 'activated', 'voided', 'lost', 'stolen', name='mark_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('lot_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('event_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('seq_end >= seq_start', name=op.f('ck_mark_ranges_range_order')),
    sa.ForeignKeyConstraint(['batch_id'], ['mark_batches.id'], name=op.f('fk_mark_ranges_batch_id_mark_batches')),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_mark_ranges_lot_id_lots')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mark_ranges')),
    sa.UniqueConstraint('series', 'seq_start', name='uq_mark_ranges_series_seq_start')
    )
    with op.batch_alter_table('mark_ranges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mark_ranges_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mark_ranges_lot_id'), ['lot_id'], unique=False)

    with op.batch_alter_table('gis', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mark_prefix', sa.String(length=4), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_gis_mark_prefix'), ['mark_prefix'])



def downgrade() -> None:
    with op.batch_alter_table('gis', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_gis_mark_prefix'), type_='unique')
        batch_op.drop_column('mark_prefix')

    with op.batch_alter_table('mark_ranges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mark_ranges_lot_id'))
        batch_op.drop_index(batch_op.f('ix_mark_ranges_batch_id'))

    op.drop_table('mark_ranges')
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_events_producer_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_events_kind'))
        batch_op.drop_index(batch_op.f('ix_ledger_events_batch_id'))

    op.drop_table('ledger_events')
    with op.batch_alter_table('quota_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quota_entries_account_id'))

    op.drop_table('quota_entries')
    with op.batch_alter_table('mark_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mark_batches_status'))
        batch_op.drop_index(batch_op.f('ix_mark_batches_producer_id'))
        batch_op.drop_index(batch_op.f('ix_mark_batches_printer_id'))
        batch_op.drop_index(batch_op.f('ix_mark_batches_gi_id'))

    op.drop_table('mark_batches')
    with op.batch_alter_table('quota_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quota_accounts_producer_id'))
        batch_op.drop_index(batch_op.f('ix_quota_accounts_gi_id'))

    op.drop_table('quota_accounts')
    with op.batch_alter_table('mark_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mark_requests_status'))
        batch_op.drop_index(batch_op.f('ix_mark_requests_producer_id'))
        batch_op.drop_index(batch_op.f('ix_mark_requests_gi_id'))

    op.drop_table('mark_requests')
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lots_producer_id'))
        batch_op.drop_index(batch_op.f('ix_lots_gi_id'))

    op.drop_table('lots')
    op.drop_table('idempotency_records')
    op.drop_table('serial_counters')
    op.drop_table('ledger_head')
    op.drop_table('ledger_checkpoints')

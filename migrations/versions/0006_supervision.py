"""Supervision: findings, cases, credit, annual reports

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 07:04:07.927726
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('annual_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'submitted', name='annual_report_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('figures', gi_service.db.JSONType(), nullable=False),
    sa.Column('generated_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('output_kg', sa.Numeric(precision=16, scale=3), nullable=True),
    sa.Column('output_value_yuan', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('submitted_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_annual_reports_gi_id_gis')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_annual_reports_producer_id_organisations')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_annual_reports_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annual_reports')),
    sa.UniqueConstraint('producer_id', 'gi_id', 'year', name='uq_annual_reports_producer_gi_year')
    )
    with op.batch_alter_table('annual_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annual_reports_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_annual_reports_producer_id'), ['producer_id'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('open', 'investigating', 'referred', 'concluded', name='case_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('outcome', sa.Enum('violation_confirmed', 'no_violation', name='case_outcome', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('measure', sa.Text(), nullable=True),
    sa.Column('violations', gi_service.db.JSONType(), nullable=False),
    sa.Column('serious', sa.Boolean(), nullable=False),
    sa.Column('owner_org_id', sa.Integer(), nullable=False),
    sa.Column('opened_by_org_id', sa.Integer(), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('concluded_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('concluded_by_id', sa.Integer(), nullable=True),
    sa.Column('gi_id', sa.Integer(), nullable=True),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('adcode', sa.String(length=6), nullable=False),
    sa.ForeignKeyConstraint(['concluded_by_id'], ['users.id'], name=op.f('fk_cases_concluded_by_id_users')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_cases_gi_id_gis')),
    sa.ForeignKeyConstraint(['opened_by_id'], ['users.id'], name=op.f('fk_cases_opened_by_id_users')),
    sa.ForeignKeyConstraint(['opened_by_org_id'], ['organisations.id'], name=op.f('fk_cases_opened_by_org_id_organisations')),
    sa.ForeignKeyConstraint(['owner_org_id'], ['organisations.id'], name=op.f('fk_cases_owner_org_id_organisations')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_cases_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('number', name=op.f('uq_cases_number'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_adcode'), ['adcode'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index('ix_cases_owner_status', ['owner_org_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_producer_id'), ['producer_id'], unique=False)

    op.create_table('findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('filed_by_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('observed_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('adcode', sa.String(length=6), nullable=False),
    sa.Column('premises_name', sa.String(length=200), nullable=False),
    sa.Column('premises_kind', sa.Enum('production', 'wholesale', 'retail', 'e_commerce', name='premises_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('premises_url', sa.String(length=500), nullable=True),
    sa.Column('premises_address', sa.String(length=300), nullable=True),
    sa.Column('premises_uscc', sa.String(length=18), nullable=True),
    sa.Column('gi_id', sa.Integer(), nullable=True),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('violations', gi_service.db.JSONType(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_findings_case_id_cases')),
    sa.ForeignKeyConstraint(['filed_by_id'], ['users.id'], name=op.f('fk_findings_filed_by_id_users')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_findings_gi_id_gis')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_findings_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_findings_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_findings')),
    sa.UniqueConstraint('organisation_id', 'client_id', name='uq_findings_organisation_client')
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index('ix_findings_adcode_observed', ['adcode', 'observed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_producer_id'), ['producer_id'], unique=False)

    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.Column('by_org_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=True),
    sa.Column('data', gi_service.db.JSONType(), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_case_events_by_id_users')),
    sa.ForeignKeyConstraint(['by_org_id'], ['organisations.id'], name=op.f('fk_case_events_by_org_id_organisations')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_events_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events'))
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_events_case_id'), ['case_id'], unique=False)

    op.create_table('case_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('clue_id', sa.Integer(), nullable=True),
    sa.Column('finding_id', sa.Integer(), nullable=True),
    sa.Column('added_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], name=op.f('fk_case_evidence_added_by_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_evidence_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clue_id'], ['clues.id'], name=op.f('fk_case_evidence_clue_id_clues')),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], name=op.f('fk_case_evidence_finding_id_findings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_evidence')),
    sa.UniqueConstraint('case_id', 'clue_id', name='uq_case_evidence_clue'),
    sa.UniqueConstraint('case_id', 'finding_id', name='uq_case_evidence_finding')
    )
    with op.batch_alter_table('case_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_evidence_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_evidence_clue_id'), ['clue_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_evidence_finding_id'), ['finding_id'], unique=False)

    op.create_table('case_parties',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('opened', 'production_place', 'sales_place', 'circulation_place', 'issuing_authority', name='case_party_role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_parties_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_case_parties_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('case_id', 'organisation_id', 'role', name=op.f('pk_case_parties'))
    )
    with op.batch_alter_table('case_parties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_parties_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('credit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=True),
    sa.Column('at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.Enum('violation', 'serious_violation', 'suspended', 'marks_voided', 'suspension_lifted', 'listed', 'delisted', name='credit_entry_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('details', gi_service.db.JSONType(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_credit_entries_by_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_credit_entries_case_id_cases')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_credit_entries_gi_id_gis')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_credit_entries_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_entries'))
    )
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_entries_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_entries_producer_id'), ['producer_id'], unique=False)

    op.create_table('finding_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('client_photo_id', sa.String(length=64), nullable=True),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('taken_at', sa.String(length=19), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=True),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], name=op.f('fk_finding_photos_finding_id_findings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finding_photos')),
    sa.UniqueConstraint('finding_id', 'client_photo_id', name='uq_finding_photos_client')
    )
    with op.batch_alter_table('finding_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_finding_photos_finding_id'), ['finding_id'], unique=False)

    op.create_table('serious_violators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('listed_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('repair_after', sa.Date(), nullable=True),
    sa.Column('delisted_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delisted_by_id', sa.Integer(), nullable=True),
    sa.Column('delist_reason', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_serious_violators_case_id_cases')),
    sa.ForeignKeyConstraint(['delisted_by_id'], ['users.id'], name=op.f('fk_serious_violators_delisted_by_id_users')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_serious_violators_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_serious_violators'))
    )
    with op.batch_alter_table('serious_violators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_serious_violators_producer_id'), ['producer_id'], unique=False)

    op.create_table('finding_codes',
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.String(length=32), nullable=True),
    sa.Column('series', sa.String(length=6), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['mark_batches.id'], name=op.f('fk_finding_codes_batch_id_mark_batches')),
    sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], name=op.f('fk_finding_codes_finding_id_findings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_finding_codes_producer_id_organisations')),
    sa.PrimaryKeyConstraint('finding_id', 'position', name=op.f('pk_finding_codes'))
    )
    with op.batch_alter_table('authorization_events', schema=None) as batch_op:
        batch_op.alter_column('changed_by_id',
               existing_type=sa.INTEGER(),
               nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('authorization_events', schema=None) as batch_op:
        batch_op.alter_column('changed_by_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    op.drop_table('finding_codes')
    with op.batch_alter_table('serious_violators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_serious_violators_producer_id'))

    op.drop_table('serious_violators')
    with op.batch_alter_table('finding_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_finding_photos_finding_id'))

    op.drop_table('finding_photos')
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_entries_producer_id'))
        batch_op.drop_index(batch_op.f('ix_credit_entries_case_id'))

    op.drop_table('credit_entries')
    with op.batch_alter_table('case_parties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_parties_organisation_id'))

    op.drop_table('case_parties')
    with op.batch_alter_table('case_evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_evidence_finding_id'))
        batch_op.drop_index(batch_op.f('ix_case_evidence_clue_id'))
        batch_op.drop_index(batch_op.f('ix_case_evidence_case_id'))

    op.drop_table('case_evidence')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_events_case_id'))

    op.drop_table('case_events')
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_findings_producer_id'))
        batch_op.drop_index(batch_op.f('ix_findings_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_findings_gi_id'))
        batch_op.drop_index(batch_op.f('ix_findings_case_id'))
        batch_op.drop_index('ix_findings_adcode_observed')

    op.drop_table('findings')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_producer_id'))
        batch_op.drop_index('ix_cases_owner_status')
        batch_op.drop_index(batch_op.f('ix_cases_gi_id'))
        batch_op.drop_index(batch_op.f('ix_cases_adcode'))

    op.drop_table('cases')
    with op.batch_alter_table('annual_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annual_reports_producer_id'))
        batch_op.drop_index(batch_op.f('ix_annual_reports_gi_id'))

    op.drop_table('annual_reports')

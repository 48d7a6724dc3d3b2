"""foundation: accounts, registry, areas, plots, authorizations

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 04:06:53.807894
"""
from alembic import op
import sqlalchemy as sa

import gi_service.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('organisations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('authority', 'producer', 'printer', 'inspection', name='org_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('uscc', sa.String(length=18), nullable=True),
    sa.Column('adcode', sa.String(length=6), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('contact', sa.String(length=200), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations')),
    sa.UniqueConstraint('uscc', name=op.f('uq_organisations_uscc'))
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisations_adcode'), ['adcode'], unique=False)

    op.create_table('gis',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('search_text', sa.String(length=600), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_pinyin', sa.String(length=200), nullable=True),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.Enum('protected_product', 'collective_mark', 'certification_mark', 'foreign_gi', name='gi_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('registration_no', sa.String(length=100), nullable=True),
    sa.Column('registration_date', sa.Date(), nullable=True),
    sa.Column('legacy_agi_code', sa.String(length=32), nullable=True),
    sa.Column('status', sa.Enum('applied', 'published', 'registered', 'amended', 'revoked', name='gi_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('category', sa.Enum('tea', 'grain', 'fruit', 'vegetable', 'meat', 'aquatic', 'herbal_medicine', 'wine', 'spirits', 'processed_food', 'handicraft', 'other', name='gi_category', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('origin_country', sa.String(length=2), nullable=False),
    sa.Column('managing_body', sa.String(length=200), nullable=True),
    sa.Column('standard', sa.String(length=200), nullable=True),
    sa.Column('quality_requirements', gi_service.db.JSONType(), nullable=False),
    sa.Column('testing_body', sa.String(length=200), nullable=True),
    sa.Column('standard_yield_kg_per_mu', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('area_description', sa.Text(), nullable=True),
    sa.Column('area_adcodes', gi_service.db.JSONType(), nullable=False),
    sa.Column('authority_id', sa.Integer(), nullable=False),
    sa.Column('origin_area_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['authority_id'], ['organisations.id'], name=op.f('fk_gis_authority_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gis'))
    )
    with op.batch_alter_table('gis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gis_authority_id'), ['authority_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gis_origin_area_id'), ['origin_area_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_users_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('authorizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('basis', sa.Enum('approved_producer', 'collective_member', 'certification_licensee', 'foreign_gi_distributor', name='authorization_basis', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'suspended', 'revoked', 'lapsed', name='authorization_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('announcement_no', sa.String(length=100), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_authorizations_gi_id_gis')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_authorizations_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorizations')),
    sa.UniqueConstraint('producer_id', 'gi_id', name='uq_authorizations_producer_id_gi_id')
    )
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorizations_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_producer_id'), ['producer_id'], unique=False)

    op.create_table('gi_area_units',
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('adcode', sa.String(length=6), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_gi_area_units_gi_id_gis'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gi_id', 'adcode', name=op.f('pk_gi_area_units'))
    )
    with op.batch_alter_table('gi_area_units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gi_area_units_adcode'), ['adcode'], unique=False)

    op.create_table('gi_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('change_kind', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('changed_fields', gi_service.db.JSONType(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_pinyin', sa.String(length=200), nullable=True),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('kind', sa.Enum('protected_product', 'collective_mark', 'certification_mark', 'foreign_gi', name='gi_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('registration_no', sa.String(length=100), nullable=True),
    sa.Column('registration_date', sa.Date(), nullable=True),
    sa.Column('legacy_agi_code', sa.String(length=32), nullable=True),
    sa.Column('status', sa.Enum('applied', 'published', 'registered', 'amended', 'revoked', name='gi_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('category', sa.Enum('tea', 'grain', 'fruit', 'vegetable', 'meat', 'aquatic', 'herbal_medicine', 'wine', 'spirits', 'processed_food', 'handicraft', 'other', name='gi_category', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('origin_country', sa.String(length=2), nullable=False),
    sa.Column('managing_body', sa.String(length=200), nullable=True),
    sa.Column('standard', sa.String(length=200), nullable=True),
    sa.Column('quality_requirements', gi_service.db.JSONType(), nullable=False),
    sa.Column('testing_body', sa.String(length=200), nullable=True),
    sa.Column('standard_yield_kg_per_mu', sa.Numeric(precision=10, scale=2), nullable=True),
    sa.Column('area_description', sa.Text(), nullable=True),
    sa.Column('area_adcodes', gi_service.db.JSONType(), nullable=False),
    sa.Column('authority_id', sa.Integer(), nullable=False),
    sa.Column('origin_area_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['authority_id'], ['organisations.id'], name=op.f('fk_gi_versions_authority_id_organisations')),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_gi_versions_changed_by_id_users')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_gi_versions_gi_id_gis')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gi_versions')),
    sa.UniqueConstraint('gi_id', 'version', name='uq_gi_versions_gi_id_version')
    )
    with op.batch_alter_table('gi_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gi_versions_authority_id'), ['authority_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gi_versions_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_gi_versions_origin_area_id'), ['origin_area_id'], unique=False)

    op.create_table('origin_areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('geom', gi_service.db.GeometryType('MULTIPOLYGON'), nullable=False),
    sa.Column('crs', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('source_crs', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('adcodes', gi_service.db.JSONType(), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('area_mu', sa.Float(), nullable=False),
    sa.Column('min_x', sa.Float(), nullable=False),
    sa.Column('min_y', sa.Float(), nullable=False),
    sa.Column('max_x', sa.Float(), nullable=False),
    sa.Column('max_y', sa.Float(), nullable=False),
    sa.Column('warnings', gi_service.db.JSONType(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_origin_areas_created_by_id_users')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_origin_areas_gi_id_gis')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_origin_areas'))
    )
    with op.batch_alter_table('origin_areas', schema=None) as batch_op:
        batch_op.create_index('ix_origin_areas_bbox', ['min_x', 'max_x', 'min_y', 'max_y'], unique=False)
        batch_op.create_index(batch_op.f('ix_origin_areas_gi_id'), ['gi_id'], unique=False)

    op.create_table('plots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('gi_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('geom', gi_service.db.GeometryType('MULTIPOLYGON'), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('area_mu', sa.Float(), nullable=False),
    sa.Column('survey_year', sa.Integer(), nullable=False),
    sa.Column('adcode', sa.String(length=6), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_plots_created_by_id_users')),
    sa.ForeignKeyConstraint(['gi_id'], ['gis.id'], name=op.f('fk_plots_gi_id_gis')),
    sa.ForeignKeyConstraint(['producer_id'], ['organisations.id'], name=op.f('fk_plots_producer_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plots'))
    )
    with op.batch_alter_table('plots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plots_adcode'), ['adcode'], unique=False)
        batch_op.create_index(batch_op.f('ix_plots_gi_id'), ['gi_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plots_producer_id'), ['producer_id'], unique=False)

    op.create_table('authorization_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authorization_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('announcement_no', sa.String(length=100), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_authorization_events_authorization_id_authorizations')),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_authorization_events_changed_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorization_events'))
    )
    with op.batch_alter_table('authorization_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_events_authorization_id'), ['authorization_id'], unique=False)


    # gis <-> origin_areas reference each other: add the forward keys once both exist.
    for table in ("gis", "gi_versions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(op.f(f"fk_{table}_origin_area_id_origin_areas"),
                                        "origin_areas", ["origin_area_id"], ["id"])

    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_origin_areas_geom", "origin_areas", ["geom"], postgresql_using="gist")
        op.create_index("ix_plots_geom", "plots", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_plots_geom", table_name="plots")
        op.drop_index("ix_origin_areas_geom", table_name="origin_areas")
    for table in ("gis", "gi_versions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"fk_{table}_origin_area_id_origin_areas"), type_="foreignkey")

    with op.batch_alter_table('authorization_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_events_authorization_id'))

    op.drop_table('authorization_events')
    with op.batch_alter_table('plots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plots_producer_id'))
        batch_op.drop_index(batch_op.f('ix_plots_gi_id'))
        batch_op.drop_index(batch_op.f('ix_plots_adcode'))

    op.drop_table('plots')
    with op.batch_alter_table('origin_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_origin_areas_gi_id'))
        batch_op.drop_index('ix_origin_areas_bbox')

    op.drop_table('origin_areas')
    with op.batch_alter_table('gi_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gi_versions_origin_area_id'))
        batch_op.drop_index(batch_op.f('ix_gi_versions_gi_id'))
        batch_op.drop_index(batch_op.f('ix_gi_versions_authority_id'))

    op.drop_table('gi_versions')
    with op.batch_alter_table('gi_area_units', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gi_area_units_adcode'))

    op.drop_table('gi_area_units')
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorizations_producer_id'))
        batch_op.drop_index(batch_op.f('ix_authorizations_gi_id'))

    op.drop_table('authorizations')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_organisation_id'))

    op.drop_table('users')
    with op.batch_alter_table('gis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gis_origin_area_id'))
        batch_op.drop_index(batch_op.f('ix_gis_authority_id'))

    op.drop_table('gis')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisations_adcode'))

    op.drop_table('organisations')

"""Sign-in fit for level 3 and personal data encrypted at rest

Users gain the password rules' state (changed at, must change, failures and a temporary lockout, the demo and
test accounts' exemption) and TOTP (the secret, encrypted; enabled at; the last time step used); API tokens
say whether they were issued after a second factor; recovery codes are a table of argon2 hashes. Producer
contacts (organisations.contact) become encrypted text, and consumer reports may carry the reporter's name
and phone number, encrypted.

Existing contacts are encrypted here with the current data key. The key store is the one the caller hands
Alembic (`gi-service db upgrade` hands the one its settings name: GI_DATA_KEYS / GI_DATA_KEYS_FILE /
GI_DATA_KEY_ID, or instance/data_keys outside production); run the upgrade with the same settings as the
service. A database without contacts needs no key. Downgrading decrypts them back.

Existing accounts count their password age from this upgrade (not from their creation: nobody is forced to
change on the day of the upgrade), and existing tokens keep working until they expire.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 21:00:00
"""

from alembic import context, op
import sqlalchemy as sa

import gi_service.db
from gi_service import clock

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

CONTEXT = "organisations.contact"


def _keystore():
    from gi_service import datacrypt, keystore

    store = context.config.attributes.get("gi_keystore") or datacrypt._default
    if store is None:
        from gi_service.config import load_settings

        store = keystore.from_settings(load_settings())
    return store


def _contacts(conn):
    return conn.execute(sa.text("SELECT id, contact FROM organisations WHERE contact IS NOT NULL")).all()


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_changed_at', gi_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('lockouts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_until', gi_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rules_exempt', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('totp_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled_at', gi_service.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    users = sa.table('users', sa.column('password_changed_at', gi_service.db.UTCDateTime(timezone=True)))
    op.execute(users.update().values(password_changed_at=clock.now()))

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('two_factor', sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=200), nullable=False),
    sa.Column('created_at', gi_service.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', gi_service.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_recovery_codes_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('consumer_reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reporter_name', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reporter_phone', sa.Text(), nullable=True))

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.alter_column('contact', existing_type=sa.String(length=200), type_=sa.Text(),
                              existing_nullable=True)
    conn = op.get_bind()
    rows = _contacts(conn)
    if rows:
        from gi_service import datacrypt

        store = _keystore()
        for row_id, contact in rows:
            if not datacrypt.is_envelope(contact):
                conn.execute(sa.text("UPDATE organisations SET contact = :c WHERE id = :id"),
                             {"c": datacrypt.seal(store, contact, CONTEXT), "id": row_id})


def downgrade() -> None:
    conn = op.get_bind()
    rows = _contacts(conn)
    if rows:
        from gi_service import datacrypt

        store = _keystore()
        for row_id, contact in rows:
            if datacrypt.is_envelope(contact):
                conn.execute(sa.text("UPDATE organisations SET contact = :c WHERE id = :id"),
                             {"c": datacrypt.unseal(store, contact, CONTEXT)[:200], "id": row_id})
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.alter_column('contact', existing_type=sa.Text(), type_=sa.String(length=200),
                              existing_nullable=True)
    with op.batch_alter_table('consumer_reports', schema=None) as batch_op:
        batch_op.drop_column('reporter_phone')
        batch_op.drop_column('reporter_name')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_user_id'))
    op.drop_table('recovery_codes')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('two_factor')
    with op.batch_alter_table('users', schema=None) as batch_op:
        for name in ('totp_last_step', 'totp_enabled_at', 'totp_secret', 'rules_exempt', 'locked_until',
                     'lockouts', 'failed_logins', 'must_change_password', 'password_changed_at'):
            batch_op.drop_column(name)

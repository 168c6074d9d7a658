"""widget sessions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'widget_sessions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('guid', sa.String(length=48), nullable=False),
        sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('widget_type', sa.String(length=40), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('url_token_hash', sa.String(length=64), nullable=False),
        sa.Column('url_expires_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('opened_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('session_token_hash', sa.String(length=64), nullable=True),
        sa.Column('session_expires_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_widget_sessions_client_id_clients'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_widget_sessions_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_widget_sessions')),
        sa.UniqueConstraint('guid', name=op.f('uq_widget_sessions_guid')),
        sa.UniqueConstraint('url_token_hash', name=op.f('uq_widget_sessions_url_token_hash')),
        sa.UniqueConstraint('session_token_hash', name=op.f('uq_widget_sessions_session_token_hash')),
    )
    op.create_index(op.f('ix_widget_sessions_client_id'), 'widget_sessions', ['client_id'], unique=False)
    op.create_index(op.f('ix_widget_sessions_user_id'), 'widget_sessions', ['user_id'], unique=False)
    # A plain nullable ADD COLUMN works on SQLite without a table rebuild.
    op.add_column(
        'members',
        sa.Column('end_user_present_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.drop_column('end_user_present_at')
    op.drop_index(op.f('ix_widget_sessions_user_id'), table_name='widget_sessions')
    op.drop_index(op.f('ix_widget_sessions_client_id'), table_name='widget_sessions')
    op.drop_table('widget_sessions')

"""browser logins for the engineer console and the developer portal

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('operator_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=100), nullable=True),
    sa.Column('created_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_web_sessions_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_web_sessions_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_web_sessions_token_hash'))
    )
    op.create_index(op.f('ix_web_sessions_client_id'), 'web_sessions', ['client_id'], unique=False)
    op.create_index(op.f('ix_web_sessions_operator_id'), 'web_sessions', ['operator_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_web_sessions_operator_id'), table_name='web_sessions')
    op.drop_index(op.f('ix_web_sessions_client_id'), table_name='web_sessions')
    op.drop_table('web_sessions')

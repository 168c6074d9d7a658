"""OpenAgg serves SimpleFIN: setup tokens and their accesses, and the requests each
access made in the last day (its rate limit, shared by every API process)

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('simplefin_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('guid', sa.String(length=48), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('claim_code_hash', sa.String(length=64), nullable=False),
    sa.Column('claim_expires_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('access_password_hash', sa.String(length=64), nullable=True),
    sa.Column('revoked_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_simplefin_tokens_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_simplefin_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simplefin_tokens')),
    sa.UniqueConstraint('claim_code_hash', name=op.f('uq_simplefin_tokens_claim_code_hash')),
    sa.UniqueConstraint('guid', name=op.f('uq_simplefin_tokens_guid'))
    )
    op.create_index(op.f('ix_simplefin_tokens_client_id'), 'simplefin_tokens', ['client_id'], unique=False)
    op.create_index(op.f('ix_simplefin_tokens_user_id'), 'simplefin_tokens', ['user_id'], unique=False)
    op.create_table('simplefin_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('requested_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['simplefin_tokens.id'], name=op.f('fk_simplefin_requests_token_id_simplefin_tokens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_simplefin_requests'))
    )
    op.create_index('ix_simplefin_requests_token_time', 'simplefin_requests', ['token_id', 'requested_at'])


def downgrade() -> None:
    op.drop_index('ix_simplefin_requests_token_time', table_name='simplefin_requests')
    op.drop_table('simplefin_requests')
    op.drop_index(op.f('ix_simplefin_tokens_user_id'), table_name='simplefin_tokens')
    op.drop_index(op.f('ix_simplefin_tokens_client_id'), table_name='simplefin_tokens')
    op.drop_table('simplefin_tokens')

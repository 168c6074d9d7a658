"""support tickets, their history, and the platform's operators

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('operators',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('guid', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('api_key_hash', sa.String(length=64), nullable=False),
    sa.Column('is_disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('api_key_hash', name=op.f('uq_operators_api_key_hash')),
    sa.UniqueConstraint('email', name=op.f('uq_operators_email')),
    sa.UniqueConstraint('guid', name=op.f('uq_operators_guid'))
    )
    op.create_table('support_tickets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('guid', sa.String(length=48), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('open_member_id', sa.BigInteger(), nullable=True),
    sa.Column('institution_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('special_instructions', sa.Text(), nullable=True),
    sa.Column('account_guids', sa.JSON(), nullable=True),
    sa.Column('connection_status', sa.String(length=20), nullable=True),
    sa.Column('cause', sa.String(length=40), nullable=True),
    sa.Column('report_count', sa.Integer(), nullable=False),
    sa.Column('queue_position', sa.Integer(), nullable=True),
    sa.Column('estimated_resolution_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('aai_prompts', sa.JSON(), nullable=True),
    sa.Column('aai_answers_enc', sa.LargeBinary(), nullable=True),
    sa.Column('operator_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('verifying_since', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('anonymized_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_support_tickets_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_support_tickets_institution_id_institutions')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_support_tickets_member_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_support_tickets_operator_id_operators'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_support_tickets_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_tickets')),
    sa.UniqueConstraint('guid', name=op.f('uq_support_tickets_guid')),
    sa.UniqueConstraint('open_member_id', name=op.f('uq_support_tickets_open_member_id'))
    )
    op.create_index('ix_support_tickets_client_created', 'support_tickets', ['client_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_support_tickets_institution_id'), 'support_tickets', ['institution_id'], unique=False)
    op.create_index(op.f('ix_support_tickets_member_id'), 'support_tickets', ['member_id'], unique=False)
    op.create_index('ix_support_tickets_queue', 'support_tickets', ['status', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_support_tickets_user_id'), 'support_tickets', ['user_id'], unique=False)

    op.create_table('support_ticket_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor_type', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.String(length=255), nullable=True),
    sa.Column('actor_name', sa.String(length=255), nullable=True),
    sa.Column('from_status', sa.String(length=40), nullable=True),
    sa.Column('to_status', sa.String(length=40), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=True),
    sa.Column('client_address', sa.String(length=100), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('end_user_present', sa.Boolean(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_support_ticket_events_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['support_tickets.id'], name=op.f('fk_support_ticket_events_ticket_id_support_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_ticket_events'))
    )
    op.create_index('ix_support_ticket_events_action_at', 'support_ticket_events', ['action', 'at'], unique=False)
    op.create_index('ix_support_ticket_events_client_at', 'support_ticket_events', ['client_id', 'at'], unique=False)
    op.create_index('ix_support_ticket_events_ticket', 'support_ticket_events', ['ticket_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_support_ticket_events_ticket', table_name='support_ticket_events')
    op.drop_index('ix_support_ticket_events_client_at', table_name='support_ticket_events')
    op.drop_index('ix_support_ticket_events_action_at', table_name='support_ticket_events')

    op.drop_table('support_ticket_events')
    op.drop_index(op.f('ix_support_tickets_user_id'), table_name='support_tickets')
    op.drop_index('ix_support_tickets_queue', table_name='support_tickets')
    op.drop_index(op.f('ix_support_tickets_member_id'), table_name='support_tickets')
    op.drop_index(op.f('ix_support_tickets_institution_id'), table_name='support_tickets')
    op.drop_index('ix_support_tickets_client_created', table_name='support_tickets')

    op.drop_table('support_tickets')
    op.drop_table('operators')

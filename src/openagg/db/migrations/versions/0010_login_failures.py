"""the console's and portal's login throttle is counted in the database

It was a dictionary in each API process: behind a load balancer with N processes an
attacker had N times the attempts, and a restart forgot them.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failures',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('failed_at', openagg.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_key_time', 'login_failures', ['key_hash', 'failed_at'])
    op.create_index(op.f('ix_login_failures_failed_at'), 'login_failures', ['failed_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_login_failures_failed_at'), table_name='login_failures')
    op.drop_index('ix_login_failures_key_time', table_name='login_failures')
    op.drop_table('login_failures')

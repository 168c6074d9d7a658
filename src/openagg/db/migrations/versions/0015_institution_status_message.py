"""the institution's own words about a member's status (an OFX server's MESSAGE,
say), shown as connection_status_message while the member keeps that status

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('status_message', sa.Text(), nullable=True))
        batch.add_column(sa.Column('status_message_for', sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.drop_column('status_message_for')
        batch.drop_column('status_message')

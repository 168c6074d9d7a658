"""SimpleFIN setup tokens: who made each (the client's backend, the portal, the widget)

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('simplefin_tokens') as batch:
        batch.add_column(sa.Column('created_by', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('simplefin_tokens') as batch:
        batch.drop_column('created_by')

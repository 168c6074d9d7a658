"""connector platform: institution options (plain and sealed), secrets a connector
keeps per member, and the PKCE verifier of a pending OAuth step

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('institutions') as batch:
        batch.add_column(sa.Column('options', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('options_enc', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('members') as batch:
        batch.add_column(sa.Column('secrets_enc', sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column('oauth_verifier_enc', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.drop_column('oauth_verifier_enc')
        batch.drop_column('secrets_enc')
    with op.batch_alter_table('institutions') as batch:
        batch.drop_column('options_enc')
        batch.drop_column('options')

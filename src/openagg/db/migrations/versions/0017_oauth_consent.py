"""OAuth consents that end: when a member's consent ends, and when the client was told

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.add_column(
            sa.Column(
                'consent_expires_at', openagg.db.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch.add_column(
            sa.Column(
                'consent_renewal_notified_at',
                openagg.db.models.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch.create_index(batch.f('ix_members_consent_expires_at'), ['consent_expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('members') as batch:
        batch.drop_index(batch.f('ix_members_consent_expires_at'))
        batch.drop_column('consent_renewal_notified_at')
        batch.drop_column('consent_expires_at')

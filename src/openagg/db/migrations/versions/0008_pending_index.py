"""ingest speed: index only PENDING transactions by date

``ix_transactions_status_date`` (status, date) served one query, the purge of stale
pending transactions, yet every ingested row, nearly all POSTED, cost an insert at a
random place in it. A partial index on the PENDING rows alone serves the purge (both
databases use it for ``status = 'PENDING'``, bound or literal) and stays tiny.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'PENDING'")


def upgrade() -> None:
    op.create_index(
        'ix_transactions_pending_date',
        'transactions',
        ['date'],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.drop_index('ix_transactions_status_date', table_name='transactions')


def downgrade() -> None:
    op.create_index(
        'ix_transactions_status_date', 'transactions', ['status', 'date'], unique=False
    )
    op.drop_index('ix_transactions_pending_date', table_name='transactions')

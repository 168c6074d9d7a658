"""ingest speed: one index fewer on transactions

``ix_transactions_account_date`` duplicated the leading column of the unique
``(account_id, external_id)`` constraint, which already serves ingest's lookups
and the per-account transaction list (one account's rows are few enough to sort).
Every index on ``transactions`` costs a b-tree insert per ingested row.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain DROP INDEX on both databases: no table copy.
    op.drop_index('ix_transactions_account_date', table_name='transactions')


def downgrade() -> None:
    op.create_index(
        'ix_transactions_account_date', 'transactions', ['account_id', 'date', 'id'], unique=False
    )

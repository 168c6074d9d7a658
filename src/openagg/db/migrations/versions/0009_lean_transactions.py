"""ingest speed: transactions keep one foreign key and one date index

Every ingested transaction row paid for four foreign-key checks (on PostgreSQL a
trigger each) and two date indexes. Only ``account_id`` stays a foreign key:
deleting a client, user or member removes their accounts, and the accounts'
cascade removes the transactions. ``ix_transactions_user_date`` serves the
member's list too (``user_id = ? AND member_id = ?``), so the member's date index
goes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

OWNERS = (('client_id', 'clients'), ('user_id', 'users'), ('member_id', 'members'))
PENDING = sa.text("status = 'PENDING'")


def _fk(column: str, table: str) -> str:
    return f'fk_transactions_{column}_{table}'


def _pending_index(create: bool) -> None:
    if create:
        op.create_index(
            'ix_transactions_pending_date',
            'transactions',
            ['date'],
            unique=False,
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )
    else:
        op.drop_index('ix_transactions_pending_date', table_name='transactions')


def upgrade() -> None:
    op.drop_index('ix_transactions_member_date', table_name='transactions')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite cannot drop a constraint: the table is copied without them. The
        # partial index is made again by hand (the copy would lose its WHERE).
        _pending_index(create=False)
        with op.batch_alter_table('transactions', recreate='always') as batch:
            for column, table in OWNERS:
                batch.drop_constraint(_fk(column, table), type_='foreignkey')
        _pending_index(create=True)
    else:
        for column, table in OWNERS:
            op.drop_constraint(_fk(column, table), 'transactions', type_='foreignkey')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _pending_index(create=False)
        with op.batch_alter_table('transactions', recreate='always') as batch:
            for column, table in OWNERS:
                batch.create_foreign_key(
                    _fk(column, table), table, [column], ['id'], ondelete='CASCADE'
                )
        _pending_index(create=True)
    else:
        for column, table in OWNERS:
            op.create_foreign_key(
                _fk(column, table), 'transactions', table, [column], ['id'], ondelete='CASCADE'
            )
    op.create_index(
        'ix_transactions_member_date', 'transactions', ['member_id', 'date', 'id'], unique=False
    )

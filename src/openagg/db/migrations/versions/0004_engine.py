"""engine scale-out: caps, wake-ups

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# engine/wakeup.py listens on this channel; keep the two in step.
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION openagg_notify_job_queued() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('openagg_jobs', '');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table('institution_limits',
    sa.Column('institution_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('max_concurrent', sa.Integer(), nullable=True),
    sa.Column('max_per_day', sa.Integer(), nullable=True),
    sa.Column('usage_day', sa.Date(), nullable=True),
    sa.Column('started_on_day', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_institution_limits_institution_id_institutions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('institution_id', name=op.f('pk_institution_limits'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('institution_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('deferred_until', openagg.db.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deferred_reason', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_jobs_queued', ['priority', 'id'], unique=False, postgresql_where=sa.text("state = 'queued'"), sqlite_where=sa.text("state = 'queued'"))
        batch_op.create_index('ix_jobs_running_institution', ['institution_id'], unique=False, postgresql_where=sa.text("state = 'running'"), sqlite_where=sa.text("state = 'running'"))

    if op.get_bind().dialect.name == 'postgresql':
        # Wake listening workers when a job becomes claimable; NOTIFY is delivered at
        # commit, so a listener never sees a job its transaction has not committed.
        op.execute(NOTIFY_FUNCTION)
        op.execute(
            "CREATE TRIGGER jobs_notify_inserted AFTER INSERT ON jobs "
            "FOR EACH STATEMENT EXECUTE FUNCTION openagg_notify_job_queued()"
        )
        op.execute(
            "CREATE TRIGGER jobs_notify_requeued AFTER UPDATE OF state ON jobs "
            "FOR EACH ROW WHEN (NEW.state = 'queued' AND OLD.state <> 'queued') "
            "EXECUTE FUNCTION openagg_notify_job_queued()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS jobs_notify_requeued ON jobs")
        op.execute("DROP TRIGGER IF EXISTS jobs_notify_inserted ON jobs")
        op.execute("DROP FUNCTION IF EXISTS openagg_notify_job_queued()")
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_running_institution')
        batch_op.drop_index('ix_jobs_queued')
        batch_op.drop_column('deferred_reason')
        batch_op.drop_column('deferred_until')
        batch_op.drop_column('institution_id')
    op.drop_table('institution_limits')

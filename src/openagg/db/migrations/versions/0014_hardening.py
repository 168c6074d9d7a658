"""hardening: the login throttle counts an attempt before the password is checked,
in one locked row per key, with growing delays; a pending OAuth step keeps what the
app asked of it (members.oauth_options)

``login_failures`` held one row per failure, counted after the password was
checked: concurrent attempts all passed the check before any was counted. Its rows
are a quarter of an hour of history and are not carried over.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import openagg.db.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("oauth_options", sa.JSON(), nullable=True))
    op.create_table(
        "login_counts",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", openagg.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_login_counts")),
    )
    op.create_index(op.f("ix_login_counts_last_failed_at"), "login_counts", ["last_failed_at"])
    op.drop_index(op.f("ix_login_failures_failed_at"), table_name="login_failures")
    op.drop_index("ix_login_failures_key_time", table_name="login_failures")
    op.drop_table("login_failures")


def downgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failed_at", openagg.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_key_time", "login_failures", ["key_hash", "failed_at"])
    op.create_index(op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"])
    op.drop_index(op.f("ix_login_counts_last_failed_at"), table_name="login_counts")
    op.drop_table("login_counts")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("oauth_options")

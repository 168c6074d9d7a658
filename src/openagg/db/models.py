"""Tables. Portable SQL only: the same schema runs on SQLite and PostgreSQL.

Every tenant-owned row carries ``client_id`` so that lookups are always scoped.
Money is stored in integer cents; timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Always timezone-aware UTC in Python, whatever the backend keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=naming)


class Client(Base):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(64))
    background_aggregation_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("client_id", "external_id"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_: Mapped[str | None] = mapped_column("metadata", Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Institution(Base):
    __tablename__ = "institutions"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    connector: Mapped[str] = mapped_column(String(50))
    # Which upstream source the connector uses; bumping it makes members RECONNECTED.
    data_source: Mapped[str] = mapped_column(String(50), default="default")
    is_retired: Mapped[bool] = mapped_column(Boolean, default=False)
    throttle_exempt: Mapped[bool] = mapped_column(Boolean, default=False)
    # MX institution fields (url, logos, supports_*, credentials...).
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    credentials: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("client_id", "user_id", "external_id"),
        Index("ix_members_next_background_at", "next_background_at"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[str | None] = mapped_column("metadata", Text)
    is_oauth: Mapped[bool] = mapped_column(Boolean, default=False)
    use_cases: Mapped[list[str] | None] = mapped_column(JSON)
    # Assigned only by openagg.services.member_state.
    connection_status: Mapped[str | None] = mapped_column(String(20))
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # None: follow the client's default.
    background_aggregation_is_disabled: Mapped[bool | None] = mapped_column(Boolean)
    aggregated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    successfully_aggregated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_job_succeeded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    is_authenticated: Mapped[bool] = mapped_column(Boolean, default=False)
    has_processed_accounts: Mapped[bool] = mapped_column(Boolean, default=False)
    has_processed_transactions: Mapped[bool] = mapped_column(Boolean, default=False)
    has_processed_account_numbers: Mapped[bool] = mapped_column(Boolean, default=False)
    credentials_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    credentials_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    consecutive_credential_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Current MFA challenges (questions only, never answers).
    challenges: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    challenge_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Connector session between MFA rounds (encrypted) and when it stops being valid.
    connector_state_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    connector_state_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    oauth_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    callback_payload: Mapped[str | None] = mapped_column(String(1024))
    data_source: Mapped[str | None] = mapped_column(String(50))
    next_background_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Job(Base):
    """The durable work queue. A job is enqueued in the transaction that asks for it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "state", "priority", "run_after"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    # Set to member_id while queued/running/waiting and NULL after: the unique
    # constraint is the database's guarantee of one job per member at a time.
    active_member_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    answers_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_delayed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Attempt(Base):
    """One run of a connector for a member: the answer to "why did this break"."""

    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cause: Mapped[str | None] = mapped_column(String(40))
    status_after: Mapped[str | None] = mapped_column(String(20))
    institution_message: Mapped[str | None] = mapped_column(Text)
    transactions_created: Mapped[int] = mapped_column(Integer, default=0)
    transactions_updated: Mapped[int] = mapped_column(Integer, default=0)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("member_id", "external_id"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str | None] = mapped_column(String(40))
    subtype: Mapped[str | None] = mapped_column(String(40))
    account_number_last4: Mapped[str | None] = mapped_column(String(8))
    currency_code: Mapped[str | None] = mapped_column(String(3))
    balance_cents: Mapped[int | None] = mapped_column(BigInteger)
    available_balance_cents: Mapped[int | None] = mapped_column(BigInteger)
    # Less common MX account fields (apr, credit_limit, payment_due_at...), as MX names them.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AccountNumber(Base):
    __tablename__ = "account_numbers"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    account_number: Mapped[str] = mapped_column(String(40))
    routing_number: Mapped[str | None] = mapped_column(String(20))
    passed_validation: Mapped[bool] = mapped_column(Boolean, default=True)


class AccountOwner(Base):
    __tablename__ = "account_owners"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), unique=True
    )
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    owner: Mapped[dict[str, Any]] = mapped_column(JSON)


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("account_id", "external_id"),
        Index("ix_transactions_user_date", "user_id", "date", "id"),
        Index("ix_transactions_member_date", "member_id", "date", "id"),
        Index("ix_transactions_account_date", "account_id", "date", "id"),
        Index("ix_transactions_status_date", "status", "date"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(7))
    date: Mapped[dt.date] = mapped_column(Date)
    transacted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    description: Mapped[str | None] = mapped_column(String(255))
    original_description: Mapped[str | None] = mapped_column(String(255))
    memo: Mapped[str | None] = mapped_column(String(255))
    category: Mapped[str | None] = mapped_column(String(100))
    category_guid: Mapped[str | None] = mapped_column(String(48))
    top_level_category: Mapped[str | None] = mapped_column(String(100))
    top_level_category_guid: Mapped[str | None] = mapped_column(String(48))
    merchant_guid: Mapped[str | None] = mapped_column(String(48))
    merchant_category_code: Mapped[int | None] = mapped_column(Integer)
    check_number_string: Mapped[str | None] = mapped_column(String(40))
    currency_code: Mapped[str | None] = mapped_column(String(3))
    flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Holding(Base):
    __tablename__ = "holdings"
    __table_args__ = (UniqueConstraint("account_id", "external_id"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    symbol: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(String(255))
    holding_type: Mapped[str | None] = mapped_column(String(40))
    currency_code: Mapped[str | None] = mapped_column(String(3))
    quantity: Mapped[float | None] = mapped_column(Float)
    cost_basis: Mapped[float | None] = mapped_column(Float)
    current_price: Mapped[float | None] = mapped_column(Float)
    market_value: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

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
    false,
    text,
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
    # What the connector is told about this institution (``ctx.options``): plain
    # options, and those whose key ends in "secret" or "password", sealed.
    options: Mapped[dict[str, str] | None] = mapped_column(JSON)
    options_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("client_id", "user_id", "external_id"),
        Index("ix_members_next_background_at", "next_background_at"),
        Index("ix_members_consent_expires_at", "consent_expires_at"),
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
    # Counts the changes to the member's transactions: a cached transaction list
    # (api/list_cache.py) is served again only while its members' counts are unchanged.
    transactions_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    credentials_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    credentials_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    consecutive_credential_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Current MFA challenges (questions only, never answers).
    challenges: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    challenge_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Connector session between MFA rounds (encrypted) and when it stops being valid.
    connector_state_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    connector_state_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Secrets the connector earned (tokens, access URLs, client ids), sealed; kept
    # across jobs, apart from the credentials the end user typed.
    secrets_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The OAuth step's state (``oauth_token``) and its PKCE verifier, sealed.
    oauth_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    oauth_verifier_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The institution's own words about the status it last caused (an OFX server's
    # MESSAGE), shown while the member still has that status.
    status_message: Mapped[str | None] = mapped_column(Text)
    status_message_for: Mapped[str | None] = mapped_column(String(20))
    # Managed data (MX's partner-managed members): the partner or an imported statement
    # file writes its accounts and transactions; no connector ever aggregates it.
    is_managed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What the app asked of the pending OAuth step (MX's oauth_window_uri and create
    # parameters): skip the first aggregation, where to send the end user back.
    oauth_options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # When the end user's consent at an OAuth institution ends, as its connector reports
    # it (``ctx.secrets["consent_expires_at"]``); None when the provider does not say.
    # ``consent_renewal_notified_at``: when the client was told it ends soon (once a
    # consent).
    consent_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consent_renewal_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    callback_payload: Mapped[str | None] = mapped_column(String(1024))
    data_source: Mapped[str | None] = mapped_column(String(50))
    next_background_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Last time the end user acted on this member through the Connect widget.
    end_user_present_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Job(Base):
    """The durable work queue. A job is enqueued in the transaction that asks for it."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "state", "priority", "run_after"),
        # The claim's order: due jobs are found without sorting the whole backlog.
        Index(
            "ix_jobs_queued",
            "priority",
            "id",
            postgresql_where=text("state = 'queued'"),
            sqlite_where=text("state = 'queued'"),
        ),
        # Counting an institution's running jobs (its concurrency cap) reads only these.
        Index(
            "ix_jobs_running_institution",
            "institution_id",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
    )
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
    # A revocation job (kind "revoke", no member: it outlives the member it was
    # deleted with) carries the member's sealed secrets exactly as the member held
    # them (bound to its guid, in ``options``), until the job ends.
    secrets_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_delayed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when claimed (queue/jobs.py), for the per-institution concurrency cap.
    institution_id: Mapped[int | None] = mapped_column(BigInteger)
    # Last time an institution cap pushed run_after out, and why (kept after it runs).
    deferred_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deferred_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class InstitutionLimit(Base):
    """Fair use of one institution (queue/jobs.py, queue/caps.py): its caps and the
    per-day counter. Claimers lock this row, so the caps hold across all workers."""

    __tablename__ = "institution_limits"
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institutions.id", ondelete="CASCADE"), primary_key=True
    )
    # None: the global default (OPENAGG_INSTITUTION_MAX_*); 0: no cap.
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    max_per_day: Mapped[int | None] = mapped_column(Integer)
    # Aggregations started on usage_day (UTC), counted while a per-day cap applies.
    usage_day: Mapped[dt.date | None] = mapped_column(Date)
    started_on_day: Mapped[int] = mapped_column(Integer, default=0)


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
        # The user's index also serves a member's list (user_id = ? AND member_id = ?):
        # a user has few members, and a second date index cost every ingested row.
        Index("ix_transactions_user_date", "user_id", "date", "id"),
        # Only PENDING rows (the stale-pending purge): POSTED rows, nearly all of them,
        # cost ingest no insert into this index.
        Index(
            "ix_transactions_pending_date",
            "date",
            postgresql_where=text("status = 'PENDING'"),
            sqlite_where=text("status = 'PENDING'"),
        ),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    # The account's owners, copied for the lists' filters. Only account_id is a
    # foreign key: deleting a client, user or member reaches the transactions
    # through their accounts, and each foreign key costs every ingested row a check.
    client_id: Mapped[int] = mapped_column(PK)
    user_id: Mapped[int] = mapped_column(PK)
    member_id: Mapped[int] = mapped_column(PK)
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


class WidgetSession(Base):
    """A Connect widget URL and, once the URL is opened, the session it became.

    Both tokens are secrets: only their SHA-256 hashes are stored."""

    __tablename__ = "widget_sessions"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    widget_type: Mapped[str] = mapped_column(String(40))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    url_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    url_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set when the URL is opened (single use); the session token exists from then on.
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    session_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# --- Webhooks (services/webhooks.py, engine/deliverer.py) ---------------------------


class WebhookEndpoint(Base):
    """A client's URL that receives signed webhooks; the secret is sealed at rest."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # None: every event type.
    event_types: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """The outbox: one row per event, written in the transaction of the change."""

    __tablename__ = "webhook_events"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    # Sent as the webhook-id header: the same on every retry and replay.
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    # No foreign key: a MEMBER deleted event outlives its member.
    member_guid: Mapped[str | None] = mapped_column(String(48), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    callback_payload: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event to one endpoint. ``pending`` until delivered or given up (failed)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "state", "id"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # Deliveries with the same key go out one at a time, oldest first (the member's guid).
    ordering_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deliverer_id: Mapped[str | None] = mapped_column(String(100))
    # Retries give up after a maximum age counted from here (reset by a replay).
    retry_window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One POST of a delivery and what came back."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    succeeded: Mapped[bool] = mapped_column(Boolean)


# --- Aggregation support (services/support/, docs/support.md) -----------------------


class Operator(Base):
    """A person of the platform's own aggregation team (engineer console, CLI)."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # scrypt for the password (people choose them); SHA-256 for the random API key.
    password_hash: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A browser login to the engineer console (an operator) or the developer portal
    (a client). The cookie's token is a secret: only its SHA-256 hash is stored."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "operator" or "client"
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sent back in a header on every change, so another site cannot post with the cookie.
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LoginCount(Base):
    """The recent failed browser logins under one throttle key (an address, an
    account): how many, and when the last one was. In the database, so every API
    process counts alike; an attempt is counted here, in one locked row, before the
    password is checked. The key is stored as its SHA-256 hash (no emails or
    addresses in this table)."""

    __tablename__ = "login_counts"
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class SupportTicket(Base):
    """A request for an aggregation engineer about one member.

    Tickets outlive their user and member (SET NULL) without personal data, so the
    platform's statistics keep counting them."""

    __tablename__ = "support_tickets"
    __table_args__ = (
        # The engineers' queue: open tickets, oldest first.
        Index("ix_support_tickets_queue", "status", "created_at", "id"),
        Index("ix_support_tickets_client_created", "client_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    # Equals member_id while the ticket is open, NULL once it ended: the database's
    # guarantee of one open ticket per member (as jobs.active_member_id).
    open_member_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    status: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    description: Mapped[str | None] = mapped_column(Text)
    special_instructions: Mapped[str | None] = mapped_column(Text)
    account_guids: Mapped[list[str] | None] = mapped_column(JSON)
    # The member's state when first escalated (the incident it belongs to).
    connection_status: Mapped[str | None] = mapped_column(String(20))
    cause: Mapped[str | None] = mapped_column(String(40))
    report_count: Mapped[int] = mapped_column(Integer, default=1)
    queue_position: Mapped[int | None] = mapped_column(Integer)
    estimated_resolution_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Engineer's prompts (questions only) while ADDITIONAL_LOGIN_INFO_REQUIRED, and the
    # end user's answers, sealed, until an engineer reads them once or the ticket ends.
    aai_prompts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    aai_answers_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    # Set when an engineer resolved it: the member's next aggregation closes or reopens it.
    verifying_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    anonymized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SupportTicketEvent(Base):
    """A ticket's history: every report (who asked, how, from where) and every change."""

    __tablename__ = "support_ticket_events"
    __table_args__ = (
        Index("ix_support_ticket_events_ticket", "ticket_id", "id"),
        # The trailing resolution rate and the burst policy read recent rows by action.
        Index("ix_support_ticket_events_action_at", "action", "at"),
        Index("ix_support_ticket_events_client_at", "client_id", "at"),
    )
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("support_tickets.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(40))
    # END_USER, AGENT, OPERATOR or SYSTEM; id and name of that person when known.
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(255))
    actor_name: Mapped[str | None] = mapped_column(String(255))
    from_status: Mapped[str | None] = mapped_column(String(40))
    to_status: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[str | None] = mapped_column(String(10))
    client_address: Mapped[str | None] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Whether the end user had been present for the member (the burst policy counts
    # reports without).
    end_user_present: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)


# --- SimpleFIN served (services/simplefin.py, api/routes/simplefin.py) ---------------


class Import(Base):
    """A statement file imported into a managed member, and what it did."""

    __tablename__ = "imports"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str | None] = mapped_column(String(255))
    # The import's answer: accounts, counts of added/updated/unchanged, warnings.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SimplefinToken(Base):
    """A SimpleFIN setup token for one user and, once claimed, the access it became.

    The claim code and the access password are secrets: only their SHA-256 hashes are
    stored. The access URL's user name is the token's guid."""

    __tablename__ = "simplefin_tokens"
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    guid: Mapped[str] = mapped_column(String(48), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    claim_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    claim_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    access_password_hash: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # API (the client's backend), PORTAL (its staff) or WIDGET (the end user); None
    # for tokens made before this was kept.
    created_by: Mapped[str | None] = mapped_column(String(8))


class SimplefinRequest(Base):
    """One counted request of an access URL, kept for the rolling day of its rate
    limit. In the database, so every API process counts alike."""

    __tablename__ = "simplefin_requests"
    __table_args__ = (Index("ix_simplefin_requests_token_time", "token_id", "requested_at"),)
    id: Mapped[int] = mapped_column(PK, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("simplefin_tokens.id", ondelete="CASCADE"))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

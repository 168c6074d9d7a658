"""Settings from ``OPENAGG_*`` environment variables (and CLI flags that override them)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENAGG_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.openagg/openagg.db"
    # Connections per process (PostgreSQL: up to twice this under load). Mind the
    # server's max_connections times the number of processes.
    database_pool_size: int = 10
    # Log lines as "text" for people or "json" for a log pipeline.
    log_format: Literal["text", "json"] = "text"
    # One line per request: method, path (no query string, no tokens), status, time.
    log_requests: bool = False
    data_dir: Path = Path("./.openagg")
    # "kid:base64key,kid2:base64key"; the first is used for new data. Empty: a dev
    # key generated into data_dir on first start.
    encryption_keys: str = ""
    public_url: str = ""
    # Proxies (comma-separated addresses or networks, "*" for any) whose
    # X-Forwarded-For and X-Forwarded-Proto are believed: the login throttle and the
    # session cookies then see the end user's address and scheme, not the proxy's.
    forwarded_allow_ips: str = "127.0.0.1"
    # A larger request body gets 413 before it is read (api/body_limit.py).
    max_body_bytes: int = 1024 * 1024

    # Aggregation rules (MX's numbers by default).
    foreground_throttle_seconds: int = 3 * 3600
    background_interval_seconds: int = 24 * 3600
    background_jitter_seconds: int = 2 * 3600
    delayed_after_seconds: float = 60
    challenge_expiry_seconds: int = 10 * 60
    connector_state_ttl_seconds: int = 15 * 60
    degraded_window_seconds: int = 24 * 3600
    disconnected_after_seconds: int = 14 * 24 * 3600
    failures_before_degraded: int = 3
    credential_failures_before_prevented: int = 3
    pending_transaction_max_age_days: int = 14

    # Engine.
    worker_concurrency: int = 50
    lease_seconds: int = 30
    poll_interval_seconds: float = 0.5
    scheduler_interval_seconds: float = 5.0
    max_job_attempts: int = 3
    # A deleted member's revocation at its provider (engine/revoker.py): attempts in
    # all, and the wait after a failed one (doubling each time, up to the maximum).
    revocation_max_attempts: int = 6
    revocation_retry_base_seconds: float = 60
    revocation_retry_max_seconds: float = 3600

    # Queue.
    # Fair use of each institution, across all workers; 0 means no cap. Per-institution
    # values (`openagg institutions caps CODE ...`) override these defaults.
    institution_max_concurrent: int = 0  # sessions open at the institution at once
    institution_max_per_day: int = 0  # aggregations started per UTC day
    # PostgreSQL: LISTEN for new jobs so idle workers wake at once (engine/wakeup.py).
    listen_for_jobs: bool = True

    # Connectors.
    # A job's time at the institution (login or MFA answer, then the data); past it
    # the connector call is cancelled and the attempt ends with cause TIMEOUT.
    job_deadline_seconds: float = 300
    # Connectors' requests to private, loopback or link-local addresses are refused
    # unless this is set (tests, labs, a bank on your own network).
    connector_allow_private_addresses: bool = False
    # Each connector's own settings by connector name; OPENAGG_CONNECTOR_<NAME>_<KEY>
    # environment variables give the same (connectors/registry.py).
    connector_options: dict[str, dict[str, str]] = {}

    # OAuth: this many days before a member's consent ends (``consent_expires_at``),
    # the client gets the CONSENT webhook (action EXPIRING), once, to ask the end user
    # to renew it.
    consent_renewal_window_days: float = 7

    # Widget.
    widget_url_ttl_seconds: int = 600  # MX: a widget URL expires after 10 minutes if unused
    widget_session_ttl_seconds: int = 3600  # how long an opened widget may act
    widget_poll_interval_ms: int = 1000  # how often the widget reads a member's status
    # "/demo": the demo host page. Off unless `openagg serve --demo` (or this is set).
    widget_demo: bool = False

    # SimpleFIN served (docs/simplefin.md). Requests each access URL may make in a
    # rolling day (then 429 with Retry-After), and how long a setup token may wait
    # for its claim.
    simplefin_requests_per_day: int = 100
    simplefin_claim_ttl_seconds: int = 24 * 3600

    # The largest statement file POST /users/{guid}/imports takes (then 413).
    import_max_bytes: int = 20 * 1024 * 1024

    # Transaction list responses kept in each API process's memory, served while
    # unchanged (api/list_cache.py); 0 turns the cache off.
    list_cache_mb: int = 64

    # readTransaction: "real" ({"transaction": ...}) or "spec" ({"transactions": [...]}).
    read_transaction_shape: Literal["real", "spec"] = "real"

    # Webhooks.
    webhooks_enabled: bool = True  # whether this process runs a deliverer (serve, worker)
    webhook_timeout_seconds: float = 10  # one POST, connect to last byte
    webhook_concurrency: int = 20  # POSTs in flight per process
    webhook_poll_interval_seconds: float = 1.0
    webhook_retry_base_seconds: float = 30  # doubles each attempt, with jitter
    webhook_retry_max_seconds: float = 3 * 3600
    # Receivers on private, loopback or link-local addresses are refused (SSRF) unless
    # this is set, e.g. when every client is your own app on your own network.
    webhook_allow_private_addresses: bool = False
    webhook_max_attempts: int = 13  # the first try and 12 retries, as at MX
    webhook_max_age_seconds: int = 24 * 3600  # then the delivery is marked failed

    # Support.
    # A DIRECT ticket needs the end user present for the member within this window.
    support_presence_window_seconds: int = 24 * 3600
    # More escalations than this per window, for members without a recent end-user
    # session, look like a batch job: 429 (0: no limit).
    support_burst_max_tickets: int = 20
    support_burst_window_seconds: int = 300
    # The estimate: tickets resolved over this trailing window set the queue's pace;
    # with fewer than the minimum resolutions in it, the assumed pace stands in.
    support_rate_window_seconds: int = 7 * 24 * 3600
    support_rate_min_resolutions: int = 5
    support_assumed_resolutions_per_day: float = 20.0
    # The long-tail view: institutions with at most this many distinct end users.
    support_long_tail_max_users: int = 25

    # Browser logins: the engineer console and the developer portal.
    web_session_ttl_seconds: int = 12 * 3600
    # Failed logins allowed per client address, and per account from all addresses,
    # before each further attempt waits a growing delay (429 meanwhile); a count is
    # forgotten after a window without failures (services/web_sessions.LoginThrottle).
    web_login_max_failures: int = 10
    web_login_account_max_failures: int = 100
    web_login_failure_window_seconds: int = 900

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir


@lru_cache
def get_settings() -> Settings:
    return Settings()

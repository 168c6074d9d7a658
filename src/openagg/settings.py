"""Settings from ``OPENAGG_*`` environment variables (and CLI flags that override them)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENAGG_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.openagg/openagg.db"
    data_dir: Path = Path("./.openagg")
    # "kid:base64key,kid2:base64key"; the first is used for new data. Empty: a dev
    # key generated into data_dir on first start.
    encryption_keys: str = ""
    public_url: str = ""

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

    # Sandbox.
    sandbox_latency_ms: int = 0
    sandbox_slow_seconds: float = 0  # 0: delayed_after_seconds + 2

    # readTransaction: "real" ({"transaction": ...}) or "spec" ({"transactions": [...]}).
    read_transaction_shape: Literal["real", "spec"] = "real"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir


@lru_cache
def get_settings() -> Settings:
    return Settings()

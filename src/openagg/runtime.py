"""The parts one process shares: settings, database, keys, connectors and the clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from openagg.connectors.base import Connector
from openagg.connectors.http import connector_client
from openagg.crypto import KeyRing, load_keyring
from openagg.db.engine import Database
from openagg.domain.policy import FailureRules
from openagg.settings import Settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: KeyRing
    connectors: dict[str, Connector]
    # Replaceable so tests can move time (background schedule, expiry, throttle).
    clock: Callable[[], dt.datetime] = utcnow
    # Set when this process enqueues a job, so an in-process worker starts at once.
    job_enqueued: asyncio.Event = field(default_factory=asyncio.Event)
    # Each connector's HTTP client (``ctx.http``), made on first use.
    _http: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def failure_rules(self) -> FailureRules:
        s = self.settings
        return FailureRules(
            failures_before_degraded=s.failures_before_degraded,
            credential_failures_before_prevented=s.credential_failures_before_prevented,
            disconnected_after=dt.timedelta(seconds=s.disconnected_after_seconds),
        )

    def http_for(self, connector: str) -> httpx.AsyncClient:
        client = self._http.get(connector)
        if client is None:
            client = self._http[connector] = connector_client(
                connector, allow_private=self.settings.connector_allow_private_addresses
            )
        return client


def build_runtime(settings: Settings) -> Runtime:
    from openagg.connectors.registry import build_connectors

    data_dir = settings.ensure_data_dir()
    return Runtime(
        settings=settings,
        db=Database(settings.database_url, pool_size=settings.database_pool_size),
        keys=load_keyring(settings.encryption_keys, data_dir),
        connectors=build_connectors(settings),
    )

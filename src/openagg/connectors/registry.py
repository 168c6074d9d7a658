"""Which connectors this platform runs and which institutions they serve."""

from __future__ import annotations

from openagg.connectors.base import Connector, InstitutionSpec
from openagg.settings import Settings


def build_connectors(settings: Settings) -> dict[str, Connector]:
    from openagg.connectors.sandbox import SandboxConnector

    slow = settings.sandbox_slow_seconds or settings.delayed_after_seconds + 2
    return {"sandbox": SandboxConnector(latency_ms=settings.sandbox_latency_ms, slow_seconds=slow)}


def builtin_institutions() -> list[InstitutionSpec]:
    from openagg.connectors.sandbox import SANDBOX_INSTITUTIONS

    return list(SANDBOX_INSTITUTIONS)

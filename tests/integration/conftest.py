"""Fixtures the support-ticket tests share (tickets, console, portal): a sandbox an
engineer can break and fix, and an engineer."""

from __future__ import annotations

from typing import Any

import pytest

from openagg.connectors.base import Connector, ConnectorContext, ConnectorError, LoginResult
from openagg.db.models import Operator
from openagg.domain.causes import Cause
from openagg.services import operators
from tests.conftest import Platform

ENGINEER_EMAIL = "eve@openagg.test"
ENGINEER_PASSWORD = "correct horse battery staple"


class BreakableConnector:
    """The sandbox, except for institutions an engineer has not fixed yet."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.broken: set[str] = set()

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        if ctx.institution_code in self.broken:
            raise ConnectorError(Cause.DATA_ERROR, "The bank changed its login page.")
        return await self.inner.login(ctx, credentials)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def bank(platform: Platform) -> BreakableConnector:
    connector = BreakableConnector(platform.rt.connectors["sandbox"])
    platform.rt.connectors["sandbox"] = connector
    return connector


@pytest.fixture
async def engineer(platform: Platform) -> Operator:
    new = await operators.create_operator(
        platform.rt, "Eve Engineer", ENGINEER_EMAIL, ENGINEER_PASSWORD
    )
    return new.operator

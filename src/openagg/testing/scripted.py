"""A connector that does what a test tells it, for tests of the engine: each login
follows the next ``Step`` (connect, ask MFA, fail, hang, earn secrets), and every
call is recorded."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from openagg.connectors.base import (
    AccountData,
    Challenge,
    Connector,
    ConnectorContext,
    ConnectorError,
    LoginResult,
    PullResult,
    PullWindow,
    TransactionData,
)


@dataclass
class Step:
    """What one login (or MFA answer) does, in this order: earn ``secrets``, hang
    forever if ``hang``, raise ``error``, ask ``challenges``, else connect."""

    secrets: dict[str, Any] = field(default_factory=dict)
    hang: bool = False
    error: ConnectorError | None = None
    challenges: list[Challenge] = field(default_factory=list)


def checking_account(external_id: str = "CHK-1") -> AccountData:
    return AccountData(external_id, "Checking", "CHECKING", Decimal("100.00"))


def transaction(
    external_id: str, account: str = "CHK-1", amount: str = "12.34", day: dt.date | None = None
) -> TransactionData:
    return TransactionData(
        external_id,
        account,
        Decimal(amount),
        "DEBIT",
        day or dt.date.today(),
        f"Purchase {external_id}",
    )


class ScriptedConnector(Connector):
    """Logs in by ``steps`` (a plain connect once they run out) and returns
    ``accounts`` and ``transactions`` with a whole-login pull."""

    def __init__(
        self,
        steps: list[Step] | None = None,
        accounts: list[AccountData] | None = None,
        transactions: list[TransactionData] | None = None,
    ) -> None:
        self.steps = deque(steps or [])
        self.accounts_ = accounts if accounts is not None else [checking_account()]
        self.transactions_ = transactions or []
        # (call, member guid, what ctx.secrets held when called)
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def _step(self, ctx: ConnectorContext, rounds: int) -> LoginResult:
        step = self.steps.popleft() if self.steps else Step()
        ctx.secrets.update(step.secrets)
        if step.hang:
            await asyncio.Event().wait()
        if step.error is not None:
            raise step.error
        return LoginResult({"round": rounds, "authenticated": True}, list(step.challenges))

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        self.calls.append(("login", ctx.member_guid, dict(ctx.secrets)))
        return await self._step(ctx, 1)

    async def answer(
        self, ctx: ConnectorContext, state: dict[str, Any], answers: dict[str, str]
    ) -> LoginResult:
        self.calls.append(("answer", ctx.member_guid, dict(ctx.secrets)))
        return await self._step(ctx, int(state.get("round", 0)) + 1)

    async def pull(
        self, ctx: ConnectorContext, state: dict[str, Any], window: PullWindow
    ) -> PullResult:
        self.calls.append(("pull", ctx.member_guid, dict(ctx.secrets)))
        return PullResult(list(self.accounts_), list(self.transactions_))

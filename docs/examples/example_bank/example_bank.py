"""An OpenAgg connector for Example Bank's JSON API (a made-up bank)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from openagg.connectors import (
    AccountData,
    Cause,
    Connector,
    ConnectorContext,
    ConnectorError,
    LoginResult,
    PullResult,
    PullWindow,
    TransactionData,
)

TYPES = {"checking": "CHECKING", "savings": "SAVINGS", "card": "CREDIT_CARD"}
ERRORS = {401: Cause.BAD_CREDENTIALS, 423: Cause.LOCKED_OUT, 429: Cause.RATE_LIMITED}


def create(options: dict[str, str]) -> Connector:
    """The entry point. ``options`` come from OPENAGG_CONNECTOR_EXAMPLE_<KEY>
    environment variables; this connector needs none."""
    return ExampleBank()


async def _call(ctx: ConnectorContext, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    assert ctx.http is not None  # the engine always gives one
    response = await ctx.http.request(method, ctx.options["base_url"] + path, **kwargs)
    if response.status_code in ERRORS:
        raise ConnectorError(ERRORS[response.status_code], response.text[:200])
    if response.status_code != 200:
        raise ConnectorError(Cause.INSTITUTION_ERROR, f"HTTP {response.status_code}")
    body: dict[str, Any] = response.json()
    return body


def _transaction(t: dict[str, Any]) -> TransactionData:
    amount = Decimal(str(t["amount"]))  # the bank signs amounts; OpenAgg does not
    return TransactionData(
        external_id=t["id"],
        account_external_id=t["account_id"],
        amount=abs(amount),
        type="CREDIT" if amount > 0 else "DEBIT",
        date=dt.date.fromisoformat(t["date"]),
        description=t["description"],
        status="PENDING" if t.get("pending") else "POSTED",
        replaces_external_id=t.get("replaces"),  # the pending id a posted one settles
    )


class ExampleBank(Connector):
    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        login = {
            "username": credentials["LOGIN"],
            "password": credentials["PASSWORD"],
            "client_secret": ctx.options["client_secret"],
            # The bank remembers a device it gave a token to, and asks less of it.
            "device_token": ctx.secrets.get("token"),
        }
        body = await _call(ctx, "POST", "/login", json=login)
        # Kept for the next job: sealed with the member when this job settles.
        ctx.secrets["token"] = body["token"]
        return LoginResult(state={"token": body["token"]})

    async def pull(
        self, ctx: ConnectorContext, state: dict[str, Any], window: PullWindow
    ) -> PullResult:
        auth = {"Authorization": f"Bearer {state['token']}"}
        body = await _call(ctx, "GET", "/accounts", headers=auth)
        accounts = [
            AccountData(
                external_id=a["id"],
                name=a["name"],
                type=TYPES.get(a["type"], "CHECKING"),
                balance=Decimal(str(a["balance"])),
            )
            for a in body["accounts"]
        ]
        transactions = []
        if window.from_date is not None:  # None: this job wants no transactions
            dates = {"from": str(window.from_date), "to": str(window.to_date)}
            body = await _call(ctx, "GET", "/transactions", headers=auth, params=dates)
            transactions = [_transaction(t) for t in body["transactions"]]
        return PullResult(accounts=accounts, transactions=transactions)

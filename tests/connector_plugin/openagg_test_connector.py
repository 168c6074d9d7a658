"""A connector for the fake bank in tests/integration/fake_json_bank.py: sign in
with a username and password, get a session token; the bank registers a device on
first sign-in, and the connector keeps its id (a secret it earned) for the next."""

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


def create(options: dict[str, str]) -> TestBankConnector:
    return TestBankConnector()


class TestBankConnector(Connector):
    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        assert ctx.http is not None
        response = await ctx.http.post(
            f"{ctx.options['base_url']}/login",
            json={
                "username": credentials.get("LOGIN", ""),
                "password": credentials.get("PASSWORD", ""),
                "device_id": ctx.secrets.get("device_id"),
            },
            headers={"X-Api-Secret": ctx.options.get("api_secret", "")},
        )
        if response.status_code == 401:
            raise ConnectorError(Cause.BAD_CREDENTIALS, "Wrong username or password.")
        if response.status_code == 423:
            raise ConnectorError(Cause.LOCKED_OUT, "This account is locked.")
        if response.status_code != 200:
            raise ConnectorError(Cause.INSTITUTION_ERROR, f"HTTP {response.status_code}")
        body = response.json()
        ctx.secrets["device_id"] = body["device_id"]
        ctx.log.info("signed in for %s with %s", ctx.member_guid, credentials)
        return LoginResult({"token": body["token"]})

    async def pull(
        self, ctx: ConnectorContext, state: dict[str, Any], window: PullWindow
    ) -> PullResult:
        assert ctx.http is not None
        response = await ctx.http.get(
            f"{ctx.options['base_url']}/data",
            headers={"Authorization": f"Bearer {state['token']}"},
        )
        if response.status_code != 200:
            raise ConnectorError(Cause.INSTITUTION_ERROR, f"HTTP {response.status_code}")
        body = response.json()
        accounts = [
            AccountData(a["id"], a["name"], "CHECKING", Decimal(a["balance"]))
            for a in body["accounts"]
        ]
        transactions = [
            TransactionData(
                t["id"],
                t["account"],
                abs(Decimal(t["amount"])),
                "CREDIT" if Decimal(t["amount"]) > 0 else "DEBIT",
                dt.date.fromisoformat(t["date"]),
                t["description"],
                status=t.get("status", "POSTED"),
                replaces_external_id=t.get("replaces"),
            )
            for t in body["transactions"]
        ]
        return PullResult(accounts, transactions)

"""The round trip of issue 19: OpenAgg A reads the sandbox and serves it as SimpleFIN;
OpenAgg B connects to A through the ``simplefin`` connector, as it would to SimpleFIN
Bridge; B's transactions are A's.

A is a live server (its own process, its real clock); B is in-process with its clock
set to A's, and its connector reaches A over a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openagg.connectors.simplefin import INSTITUTION_CODE
from tests.conftest import LiveServer, Platform, make_platform, settings_for, start_live_server
from tests.integration.test_simplefin_connector import connect, listed, transactions
from tests.support import credentials_for

COMPARED = ("amount", "type", "date", "description", "status")


@pytest.fixture
def server_a(tmp_path: Path) -> LiveServer:
    (tmp_path / "a").mkdir()
    return start_live_server(tmp_path / "a")


@pytest.fixture
async def platform_b(tmp_path: Path) -> AsyncIterator[Platform]:
    (tmp_path / "b").mkdir()
    settings = settings_for(tmp_path / "b", connector_allow_private_addresses=True)
    settings.ensure_data_dir()
    p, _ = await make_platform(settings)
    p.clock.now = dt.datetime.now(dt.UTC)  # A runs on the real clock
    yield p
    await p.http.aclose()
    await p.rt.db.dispose()


async def _connected_sandbox_user(a: httpx.AsyncClient) -> str:
    user = (await a.post("/users", json={"user": {"id": "round-trip"}})).json()["user"]["guid"]
    creds = (await a.get("/institutions/mxbank/credentials")).json()["credentials"]
    body = {
        "member": {
            "institution_code": "mxbank",
            "credentials": credentials_for(creds, "mxuser", "round-trip-pw"),
        }
    }
    made = await a.post(f"/users/{user}/members", json=body)
    assert made.status_code == 202, made.text
    guid = made.json()["member"]["guid"]
    for _ in range(300):
        got = (await a.get(f"/users/{user}/members/{guid}/status")).json()["member"]
        if got["connection_status"] == "CONNECTED" and not got["is_being_aggregated"]:
            return str(user)
        await asyncio.sleep(0.1)
    raise AssertionError(f"A's sandbox member did not connect: {got}")


async def _all(a: httpx.AsyncClient, path: str, key: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        r = await a.get(path, params={"records_per_page": 1000, "page": page})
        assert r.status_code == 200, r.text
        found += r.json()[key]
        if page >= r.json()["pagination"]["total_pages"]:
            return found
        page += 1


def _simplefin_time(t: dict[str, Any]) -> dt.datetime:
    """What A's start-date compares: the posting time, or for a pending one the time
    it happened (midday of its date when it has no time)."""
    stamp = t["transacted_at"] if t["status"] == "PENDING" else t["posted_at"]
    if stamp:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return dt.datetime.fromisoformat(t["date"]).replace(hour=12, tzinfo=dt.UTC)


async def test_b_reads_through_simplefin_what_a_has(
    server_a: LiveServer, platform_b: Platform
) -> None:
    try:
        async with httpx.AsyncClient(
            base_url=server_a.url, auth=(server_a.client_id, server_a.api_key), timeout=30
        ) as a:
            a_user = await _connected_sandbox_user(a)
            made = await a.post(f"/users/{a_user}/simplefin_tokens")
            assert made.status_code == 201, made.text
            token = made.json()["simplefin_token"]["token"]

            b_user, b_member = await connect(platform_b, token)
            got = (await platform_b.http.get(f"/users/{b_user}/members/{b_member}")).json()
            assert got["member"]["connection_status"] == "CONNECTED", got
            assert got["member"]["institution_code"] == INSTITUTION_CODE

            a_txns = await _all(a, f"/users/{a_user}/transactions", "transactions")
            a_accounts = await _all(a, f"/users/{a_user}/accounts", "accounts")
    finally:
        server_a.stop()

    # B's window: 90 days back from B's today, on A's SimpleFIN times.
    today = platform_b.clock.now.date()
    start = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC) - dt.timedelta(days=90)
    expected = {
        t["guid"]: {k: t[k] for k in COMPARED} | {"account_id": t["account_guid"]}
        for t in a_txns
        if _simplefin_time(t) >= start
    }
    b_txns = await transactions(platform_b, b_user)
    got_b = {
        i: {k: t[k] for k in COMPARED} | {"account_id": t["account_id"]} for i, t in b_txns.items()
    }
    assert len(expected) > 50  # the sandbox's three months, not an empty answer
    assert got_b == expected
    assert any(t["status"] == "PENDING" for t in got_b.values())

    # The accounts too: A's guids are B's ids; owed balances come back positive.
    b_accounts = {
        a["id"]: a for a in await listed(platform_b, f"/users/{b_user}/accounts", "accounts")
    }
    assert set(b_accounts) == {a["guid"] for a in a_accounts}
    for acct in a_accounts:
        assert b_accounts[acct["guid"]]["balance"] == acct["balance"], (acct["name"], acct["type"])

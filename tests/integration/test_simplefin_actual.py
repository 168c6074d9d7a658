"""Actual Budget's own server (``@actual-app/sync-server`` from npm, pinned in
tests/clients/actual_budget) connected to OpenAgg's SimpleFIN server as a self-hoster
would connect it: the setup token saved as Actual's secret, then Actual's
``/simplefin/accounts`` and ``/simplefin/transactions``, which claim the token, read
OpenAgg and turn what they read into Actual's accounts and transactions."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Platform, free_port
from tests.integration.api_helpers import create_member, new_user
from tests.integration.simplefin_client import served
from tests.support import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
ACTUAL = ROOT / "tests" / "clients" / "actual_budget"
ACTUAL_SERVER = ACTUAL / "node_modules" / "@actual-app" / "sync-server" / "build" / "bin"
DEBT_TYPES = {"CREDIT_CARD", "LOAN", "MORTGAGE", "LINE_OF_CREDIT"}


@pytest.fixture
def actual(tmp_path: Path) -> Iterator[str]:
    """Actual's server on a loopback port, its data in ``tmp_path``; yields its URL."""
    node = shutil.which("node")
    if node is None or not (ACTUAL / "node_modules" / ".installed").exists():
        skip_or_fail("Actual Budget's server is not installed (make tests/clients/actual_budget)")
    assert node is not None
    port = free_port()
    env = {
        **os.environ,
        "ACTUAL_PORT": str(port),
        "ACTUAL_HOSTNAME": "127.0.0.1",
        "ACTUAL_DATA_DIR": str(tmp_path / "actual"),
    }
    (tmp_path / "actual").mkdir()
    log = (tmp_path / "actual.log").open("wb")
    process = subprocess.Popen(
        [node, str(ACTUAL_SERVER / "actual-server.js")], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "actual.log").read_text()
            try:
                if httpx.get(f"{url}/account/needs-bootstrap", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Actual's server did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@dataclass
class Budget:
    """Actual's server as its web app calls it, signed in."""

    http: httpx.AsyncClient

    async def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = await self.http.post(path, json=body or {})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["status"] == "ok", answer
        return answer.get("data")


@pytest.fixture
async def budget(actual: str) -> AsyncIterator[Budget]:
    async with httpx.AsyncClient(base_url=actual, timeout=30) as http:
        r = await http.post("/account/bootstrap", json={"password": "correct horse"})
        assert r.status_code == 200, r.text
        http.headers["X-Actual-Token"] = r.json()["data"]["token"]
        yield Budget(http)


async def mx_accounts(mx: httpx.AsyncClient, user: str) -> dict[str, dict[str, Any]]:
    r = await mx.get(f"/users/{user}/accounts", params={"records_per_page": 100})
    return {a["guid"]: a for a in r.json()["accounts"]}


async def mx_transactions(mx: httpx.AsyncClient, user: str) -> dict[str, dict[str, Any]]:
    r = await mx.get(
        f"/users/{user}/transactions",
        params={"from_date": "2000-01-01", "to_date": "2100-01-01", "records_per_page": 1000},
    )
    assert r.json()["pagination"]["total_pages"] == 1
    return {t["guid"]: t for t in r.json()["transactions"]}


def cents(mx_account: dict[str, Any]) -> int:
    """The balance SimpleFIN serves, in cents: what is owed is negative."""
    value = round(mx_account["balance"] * 100)
    return -abs(value) if mx_account["type"] in DEBT_TYPES else value


async def test_actual_budget_links_and_reads_an_openagg_connection(
    platform: Platform, budget: Budget
) -> None:
    user = await new_user(platform.http)
    created = await create_member(platform.http, user, "secret", expect=202)
    member = created.json()["member"]["guid"]
    await platform.drain()
    async with (
        served(platform.app) as url,
        httpx.AsyncClient(base_url=url, headers=platform.http.headers) as mx,
    ):
        r = await mx.post(f"/users/{user}/simplefin_tokens")
        assert r.status_code == 201, r.text
        token = r.json()["simplefin_token"]["token"]
        await budget.call("/secret", {"name": "simplefin_token", "value": token})
        assert await budget.call("/simplefin/status") == {"configured": True}

        # Linking: Actual claims the token and lists the accounts, balances only.
        linked = (await budget.call("/simplefin/accounts"))["accounts"]
        ours = await mx_accounts(mx, user)
        assert {a["id"] for a in linked} == set(ours)
        for a in linked:
            assert a["org"]["name"] == "MX Bank" and a["name"] == ours[a["id"]]["name"]
            assert a["transactions"] == []
        listed = (await mx.get(f"/users/{user}/simplefin_tokens")).json()["simplefin_tokens"]
        assert [t["claimed_at"] is not None for t in listed] == [True]

        # Syncing: the transactions of every account since 2000, as Actual keeps them.
        ids = sorted(ours)
        synced = await budget.call(
            "/simplefin/transactions",
            {"accountId": ids, "startDate": ["2000-01-01"] * len(ids)},
        )
        assert "errors" not in synced, synced
        transactions = await mx_transactions(mx, user)
        seen: set[str] = set()
        for guid in ids:
            got = synced[guid]
            assert got["startingBalance"] == cents(ours[guid]), (guid, got["startingBalance"])
            for kind, pending in (("booked", False), ("pending", True)):
                for t in got["transactions"][kind]:
                    mx_t = transactions[t["transactionId"]]
                    assert mx_t["account_guid"] == guid
                    assert (mx_t["status"] == "PENDING") is pending, mx_t
                    amount = round(mx_t["amount"] * 100)
                    signed = -amount if mx_t["type"] == "DEBIT" else amount
                    assert round(float(t["transactionAmount"]["amount"]) * 100) == signed
                    day = mx_t["transacted_at"] if pending else mx_t["posted_at"]
                    assert t["date"] == day[:10]
                    seen.add(t["transactionId"])
        # Actual asks up to the first day of next month; everything before is there.
        horizon = time.strftime("%Y-%m-01", time.gmtime(time.time() + 31 * 86400))
        expected = {
            i
            for i, t in transactions.items()
            if (t["transacted_at"] if t["status"] == "PENDING" else t["posted_at"]) < horizon
        }
        assert expected and seen == expected

        # The connection breaks in OpenAgg: Actual flags its accounts, keeps the data.
        creds = (await mx.get("/institutions/mxbank/credentials")).json()["credentials"]
        fields = {c["field_name"]: c["guid"] for c in creds}
        r = await mx.put(
            f"/users/{user}/members/{member}",
            json={
                "member": {
                    "credentials": [
                        {"guid": fields["LOGIN"], "value": "mxuser"},
                        {"guid": fields["PASSWORD"], "value": "INVALID"},
                    ]
                }
            },
        )
        assert r.status_code == 200, r.text
        await platform.drain()
        broken = await budget.call(
            "/simplefin/transactions",
            {"accountId": ids, "startDate": ["2000-01-01"] * len(ids)},
        )
        assert set(broken["errors"]) == set(ids)
        for guid in ids:
            [error] = broken["errors"][guid]
            assert error["error_code"] == "ACCOUNT_NEEDS_ATTENTION"
            assert broken[guid]["transactions"] == synced[guid]["transactions"]

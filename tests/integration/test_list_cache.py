"""The transaction list cache (api/list_cache.py): a list asked for again is served
from memory, and never once anything it shows has changed. Each change below is
made on the same day as the cached read (the default window, and so the key, stays
the same), so only the version check can keep the cached body from being served."""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from openagg.api.list_cache import ListCache
from openagg.connectors.base import AccountData, TransactionData
from openagg.db.models import Member
from openagg.engine import ingest
from openagg.engine.scheduler import purge_stale_pending
from openagg.metrics import PROCESS
from openagg.services.clients import create_client
from tests.conftest import Platform
from tests.integration.api_helpers import create_member
from tests.integration.test_connection_statuses import aggregate, connect
from tests.integration.test_transaction_list import setup_member

ALL = {"records_per_page": 1000}


def hits() -> float:
    return PROCESS.get_sample_value("openagg_list_cache_lookups_total", {"result": "hit"}) or 0.0


async def listed(p: Platform, path: str, **params: Any) -> httpx.Response:
    r = await p.http.get(path, params=params)
    assert r.status_code == 200, r.text
    return r


async def uncached(p: Platform, path: str, **params: Any) -> bytes:
    """The list read from the database, the cache set aside."""
    kept = p.app.state.list_cache
    p.app.state.list_cache = ListCache(0)
    try:
        return (await listed(p, path, **params)).content
    finally:
        p.app.state.list_cache = kept


async def cached(p: Platform, path: str, **params: Any) -> dict[str, Any]:
    """Read the list twice: the second answer comes from the cache."""
    first = await listed(p, path, **params)
    before = hits()
    again = await listed(p, path, **params)
    assert hits() == before + 1
    assert again.content == first.content
    body: dict[str, Any] = first.json()
    return body


async def fresh(p: Platform, path: str, **params: Any) -> dict[str, Any]:
    """The list now, which must be what the database holds now."""
    r = await listed(p, path, **params)
    assert r.content == await uncached(p, path, **params)
    body: dict[str, Any] = r.json()
    return body


def ids(body: dict[str, Any]) -> set[str]:
    return {t["id"] for t in body["transactions"]}


async def test_a_list_asked_for_again_comes_from_the_cache(platform: Platform) -> None:
    p = platform
    user, _ = await connect(p, "password")
    path = f"/users/{user}/transactions"
    body = await cached(p, path)
    assert len(body["transactions"]) == 25
    assert (
        (await listed(p, path)).headers["content-type"].startswith("application/vnd.mx.api.v1+json")
    )
    # Another page, or another filter, is another list.
    before = hits()
    second = await listed(p, path, page=2)
    assert hits() == before and not ids(second.json()) & ids(body)
    # An aggregation that changes no transaction keeps the entry.
    await aggregate(
        p, user, (await p.http.get(f"/users/{user}/members")).json()["members"][0]["guid"]
    )
    before = hits()
    assert (await listed(p, path)).json() == body
    assert hits() == before + 1


async def test_an_aggregation_that_changes_transactions_shows_at_once(
    platform: Platform,
) -> None:
    p = platform
    user, guid = await connect(p, "dynamic", code="sandbox_bank")
    path = f"/users/{user}/transactions"
    before = await cached(p, path, **ALL)
    p.clock.advance(hours=4)  # sandbox_bank is throttled for 3 hours; the same day
    await aggregate(p, user, guid)
    after = await fresh(p, path, **ALL)
    assert ids(after) != ids(before)  # pendings replaced by their posted versions


async def test_the_stale_pending_purge_and_a_direct_ingest_show_at_once(
    platform: Platform,
) -> None:
    p = platform
    user, member_guid, _ = await setup_member(p)  # T21 and T28: pending, 21 and 28 days old
    path = f"/users/{user}/transactions"
    assert {"T21", "T28"} <= ids(await cached(p, path, **ALL))
    await purge_stale_pending(p.rt)
    assert not {"T21", "T28"} & ids(await fresh(p, path, **ALL))

    await cached(p, path, **ALL)
    async with p.rt.db.read() as s:
        m = await s.scalar(select(Member).where(Member.guid == member_guid))
    assert m is not None
    today = p.clock.now.date()
    account = AccountData(external_id="A1", name="Checking", type="CHECKING", balance=Decimal(1))
    new = TransactionData(
        external_id="T99",
        account_external_id="A1",
        amount=Decimal("9.99"),
        type="DEBIT",
        date=today,
        description="New",
    )
    async with p.rt.db.write() as s:
        await ingest.ingest_pull(
            s,
            ingest.Owner(m.client_id, m.user_id, m.id),
            ingest.Pull([account], {"A1": [new]}, {}, today),
            now=p.clock.now,
            pending_max_age=dt.timedelta(days=14),
        )
    assert "T99" in ids(await fresh(p, path, **ALL))


async def test_deleting_a_member_shows_at_once(platform: Platform) -> None:
    p = platform
    user, _ = await connect(p, "password")
    r = await create_member(p.http, user, "another password", expect=202)
    second = r.json()["member"]["guid"]
    await p.drain()
    path = f"/users/{user}/transactions"
    before = await cached(p, path, **ALL)
    members = {t["member_guid"] for t in before["transactions"]}
    assert second in members and len(members) == 2
    r = await p.http.delete(f"/users/{user}/members/{second}")
    assert r.status_code == 204
    after = await fresh(p, path, **ALL)
    assert {t["member_guid"] for t in after["transactions"]} == members - {second}


async def test_the_users_partner_id_and_a_members_use_cases_show_at_once(
    platform: Platform,
) -> None:
    p = platform
    user, guid = await connect(p, "password", use_cases=["PFM"])
    path = f"/users/{user}/transactions"
    await cached(p, path)
    r = await p.http.put(f"/users/{user}", json={"user": {"id": "partner-7"}})
    assert r.status_code == 200, r.text
    assert {t["user_id"] for t in (await fresh(p, path))["transactions"]} == {"partner-7"}

    assert (await cached(p, path, use_case="PFM"))["transactions"]
    r = await p.http.put(
        f"/users/{user}/members/{guid}", json={"member": {"use_cases": ["MONEY_MOVEMENT"]}}
    )
    assert r.status_code == 200, r.text
    assert (await fresh(p, path, use_case="PFM"))["transactions"] == []


async def test_another_client_never_gets_a_cached_list(platform: Platform) -> None:
    p = platform
    user, _ = await connect(p, "password")
    path = f"/users/{user}/transactions"
    await cached(p, path)
    other = await create_client(p.rt, "Other")
    token = base64.b64encode(f"{other.client.client_id}:{other.api_key}".encode()).decode()
    async with httpx.AsyncClient(
        transport=p.http._transport,
        base_url="http://openagg.test",
        headers={"Authorization": f"Basic {token}"},
    ) as them:
        assert (await them.get(path)).status_code == 404

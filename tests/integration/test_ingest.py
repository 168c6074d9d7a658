"""Ingest: re-aggregating never duplicates; pending transactions settle as at MX."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from openagg.db.models import Transaction
from openagg.engine.scheduler import purge_stale_pending
from openagg.services.institutions import InstitutionInput, add_institution
from openagg.testing import ScriptedConnector, transaction
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user
from tests.integration.test_connection_statuses import aggregate, connect


async def all_transactions(p: Platform, user: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        r = await p.http.get(
            f"/users/{user}/transactions",
            params={"page": page, "records_per_page": 1000, "from_date": "2020-01-01"},
        )
        body = r.json()
        out += body["transactions"]
        if page >= body["pagination"]["total_pages"]:
            return out
        page += 1


async def test_reaggregating_never_duplicates(platform: Platform) -> None:
    user, guid = await connect(platform, "password")
    first = await all_transactions(platform, user)
    for _ in range(3):
        await aggregate(platform, user, guid)
    again = await all_transactions(platform, user)
    assert len(first) > 100
    assert sorted(t["guid"] for t in again) == sorted(t["guid"] for t in first)
    assert all(t["amount"] > 0 and t["type"] in ("CREDIT", "DEBIT") for t in again)


async def test_pending_replaced_changed_and_removed(platform: Platform) -> None:
    user, guid = await connect(platform, "dynamic", code="sandbox_bank")
    before = {t["id"]: t for t in await all_transactions(platform, user)}
    pendings = {
        i: t for i, t in before.items() if i.endswith(("-pending-1", "-pending-2", "-pending-3"))
    }
    assert len(pendings) == 3 and all(t["status"] == "PENDING" for t in pendings.values())
    platform.clock.advance(hours=4)  # sandbox_bank is throttled for 3 hours
    await aggregate(platform, user, guid)
    after = {t["id"]: t for t in await all_transactions(platform, user)}
    assert not set(pendings) & set(after), "every pending was replaced or removed"
    new = [t for i, t in after.items() if i not in before]
    assert len(new) == 2 and all(t["status"] == "POSTED" for t in new)
    amounts = sorted(t["amount"] for t in new)
    old_amounts = sorted(t["amount"] for i, t in pendings.items() if not i.endswith("-3"))
    assert amounts != old_amounts and len(set(amounts) & set(old_amounts)) == 1


async def test_stale_pending_removed_after_14_days(platform: Platform) -> None:
    _user, _ = await connect(platform, "password")
    async with platform.rt.db.read() as s:
        pending = await s.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.status == "PENDING")
        )
    assert pending
    platform.clock.advance(days=15)
    await purge_stale_pending(platform.rt)
    async with platform.rt.db.read() as s:
        left = await s.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.status == "PENDING")
        )
    assert left == 0


async def test_a_transaction_the_bank_re_dates_forward_is_updated_not_inserted_again(
    platform: Platform,
) -> None:
    """Stored under a date before the next pull's window, then sent again dated inside
    it: the same row, its date changed, and the job connects."""
    today = platform.clock.now.date()
    connector = ScriptedConnector(
        transactions=[transaction("T1", day=today - dt.timedelta(days=60))]
    )
    platform.rt.connectors["scripted"] = connector
    await add_institution(
        platform.rt, InstitutionInput("scripted", "scripted_bank", "Scripted Bank")
    )
    user = await new_user(platform.http)
    made = await create_member(
        platform.http, user, "pw-1", code="scripted_bank", username="u", expect=202
    )
    guid = made.json()["member"]["guid"]
    await platform.drain()
    connector.transactions_ = [transaction("T1", day=today)]
    platform.clock.advance(hours=4)
    await aggregate(platform, user, guid)
    shown = (await platform.http.get(f"/users/{user}/members/{guid}/status")).json()["member"]
    assert shown["connection_status"] == "CONNECTED"
    (t,) = await all_transactions(platform, user)
    assert (t["id"], t["date"]) == ("T1", today.isoformat())

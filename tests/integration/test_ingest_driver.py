"""Ingest through the driver: what it stores is what SQLAlchemy would have stored,
it changes only what changed, and a group of jobs settled together never lets one
bad job take the others down."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from openagg.connectors.base import AccountData, HoldingData, TransactionData
from openagg.db import driver
from openagg.db.models import Account, Attempt, Holding, Job, Member, Transaction
from openagg.engine import ingest
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user
from tests.integration.test_connection_statuses import connect

NOW = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
EST = dt.timezone(dt.timedelta(hours=-5))


def account(balance: str = "100.25", **details: Any) -> AccountData:
    return AccountData(
        external_id="A1",
        name="Checking",
        type="CHECKING",
        balance=Decimal(balance),
        available_balance=Decimal("90.00"),
        account_number="000123456789",
        details={"apy": 0.01, "nested": {"a": [1, 2]}, **details},
    )


def txn(external_id: str, amount: str = "12.34", **fields: Any) -> TransactionData:
    values: dict[str, Any] = {
        "account_external_id": "A1",
        "type": "DEBIT",
        "date": TODAY - dt.timedelta(days=3),
        "description": "Coffee",
        "category": "Coffee Shops",
        "top_level_category": "Food & Dining",
        "merchant_name": "Starbucks",
        "merchant_category_code": 5814,
        "flags": {"is_expense": True, "is_fee": False},
    }
    values.update(fields)
    return TransactionData(external_id=external_id, amount=Decimal(amount), **values)


def holding(external_id: str, quantity: str = "1.5") -> HoldingData:
    return HoldingData(
        external_id=external_id,
        account_external_id="A1",
        symbol=external_id,
        description=f"{external_id} Inc.",
        holding_type="EQUITY",
        quantity=Decimal(quantity),
        current_price=Decimal("10.00"),
        cost_basis=Decimal("12.00"),
    )


async def owner_of(p: Platform) -> ingest.Owner:
    """A member of its own (created without aggregating)."""
    user = await new_user(p.http)
    r = await create_member(p.http, user, "password", skip_aggregation=True)
    guid = r.json()["member"]["guid"]
    async with p.rt.db.read() as s:
        m = await s.scalar(select(Member).where(Member.guid == guid))
    assert m is not None
    return ingest.Owner(m.client_id, m.user_id, m.id)


async def run(
    p: Platform,
    owner: ingest.Owner,
    pull: ingest.Pull,
    now: dt.datetime = NOW,
    prepared: bool = False,
) -> ingest.Ingested:
    data: ingest.Pull | ingest.Prepared = pull
    if prepared:
        data = ingest.prepare(ingest.backend(p.rt.db.sqlite), pull)
    async with p.rt.db.write() as s:
        return await ingest.ingest_pull(
            s, owner, data, now=now, pending_max_age=dt.timedelta(days=14)
        )


async def stored(p: Platform, owner: ingest.Owner) -> dict[str, Transaction]:
    async with p.rt.db.read() as s:
        rows = await s.scalars(select(Transaction).where(Transaction.member_id == owner.member_id))
        return {t.external_id: t for t in rows}


@pytest.mark.parametrize("prepared", [False, True])
async def test_rows_read_back_as_the_orm_wrote_them(platform: Platform, prepared: bool) -> None:
    p = platform
    owner = await owner_of(p)
    at = dt.datetime(2026, 2, 27, 9, 15, 30, 123456, tzinfo=EST)
    pull = ingest.Pull(
        accounts=[account()],
        transactions={
            "A1": [
                txn("T1", transacted_at=at, posted_at=at + dt.timedelta(hours=20)),
                txn("T2", status="PENDING", posted_at=at, memo="tip pending"),
                txn("T3", amount="1000000.01", type="CREDIT", flags={}),
            ]
        },
        holdings={"A1": [holding("AAPL"), holding("MSFT", "2")]},
        from_date=TODAY - dt.timedelta(days=90),
    )
    done = await run(p, owner, pull, prepared=prepared)
    assert (done.counts.created, done.counts.updated, done.counts.removed) == (3, 0, 0)

    rows = await stored(p, owner)
    t1, t2, t3 = rows["T1"], rows["T2"], rows["T3"]
    assert t1.amount_cents == 1234 and t3.amount_cents == 100000001
    assert t1.transacted_at == at and t1.transacted_at.tzinfo == dt.UTC
    assert t1.posted_at == at + dt.timedelta(hours=20)
    assert t2.status == "PENDING" and t2.posted_at is None and t2.memo == "tip pending"
    assert t3.transacted_at == dt.datetime.combine(t3.date, dt.time(12), dt.UTC)
    assert t1.flags == {"is_expense": True, "is_fee": False} and t3.flags == {}
    assert t1.original_description == "Coffee"  # the description when the feed has none
    assert t1.category_guid and t1.category_guid != t1.top_level_category_guid
    assert t1.merchant_guid and t1.guid.startswith("TRN-")
    assert t1.created_at == t1.updated_at == NOW
    assert {t.account_id for t in rows.values()} == {done.accounts["A1"].id}

    async with p.rt.db.read() as s:
        acct = await s.scalar(select(Account).where(Account.member_id == owner.member_id))
        holdings = list(await s.scalars(select(Holding).order_by(Holding.symbol)))
        assert acct is not None
        assert (acct.balance_cents, acct.available_balance_cents) == (10025, 9000)
        assert acct.details == {"apy": 0.01, "nested": {"a": [1, 2]}}
        assert acct.account_number_last4 == "6789" and acct.is_closed is False
        assert [(h.symbol, h.quantity, h.market_value) for h in holdings] == [
            ("AAPL", 1.5, 15.0),
            ("MSFT", 2.0, 20.0),
        ]
        if p.rt.db.sqlite:
            # Byte for byte what SQLAlchemy binds, so its comparisons and sorts agree.
            dialect = s.get_bind().dialect
            c = driver.codec(Transaction, dialect)
            raw = (
                await s.execute(
                    text(
                        "SELECT transacted_at, posted_at, date, flags, created_at "
                        "FROM transactions WHERE external_id = 'T1'"
                    )
                )
            ).one()
            assert raw == (
                c.bind("transacted_at", at),
                c.bind("posted_at", at + dt.timedelta(hours=20)),
                c.bind("date", t1.date),
                json.dumps(t1.flags),
                c.bind("created_at", NOW),
            )


async def test_only_what_changed_is_written(platform: Platform) -> None:
    p = platform
    owner = await owner_of(p)
    since = TODAY - dt.timedelta(days=90)

    def pull(
        txns: list[TransactionData], holdings: list[HoldingData], **details: Any
    ) -> ingest.Pull:
        return ingest.Pull([account(**details)], {"A1": txns}, {"A1": holdings}, since)

    first = [txn("T1"), txn("T2", status="PENDING"), txn("T3", status="PENDING")]
    await run(p, owner, pull(first, [holding("AAPL"), holding("MSFT")]))

    later = NOW + dt.timedelta(hours=1)
    again = await run(p, owner, pull(first, [holding("AAPL"), holding("MSFT")]), later)
    assert (again.counts.created, again.counts.updated, again.counts.removed) == (0, 0, 0)
    assert {t.updated_at for t in (await stored(p, owner)).values()} == {NOW}

    # T1's amount changes, T2 posts under a new id, T3 vanished, MSFT was sold,
    # the account's details changed.
    changed = [txn("T1", "13.00"), txn("T4", replaces_external_id="T2")]
    done = await run(p, owner, pull(changed, [holding("AAPL")], apy=0.02), later)
    assert (done.counts.created, done.counts.updated, done.counts.removed) == (1, 1, 2)
    rows = await stored(p, owner)
    assert sorted(rows) == ["T1", "T4"]
    assert rows["T1"].amount_cents == 1300 and rows["T1"].updated_at == later
    async with p.rt.db.read() as s:
        acct = await s.scalar(select(Account).where(Account.member_id == owner.member_id))
        symbols = list(await s.scalars(select(Holding.symbol)))
    assert acct is not None and acct.details["apy"] == 0.02 and acct.updated_at == later
    assert symbols == ["AAPL"]


async def test_many_rows_are_written_in_chunks(platform: Platform) -> None:
    p = platform
    owner = await owner_of(p)
    # More bound values than one SQLite statement takes (32766): several statements.
    txns = [
        txn(f"T{i}", f"{1 + i % 500}.{i % 100:02d}", date=TODAY - dt.timedelta(days=i % 80))
        for i in range(3000)
    ]
    done = await run(p, owner, ingest.Pull([account()], {"A1": txns}, {}, TODAY - dt.timedelta(90)))
    assert done.counts.created == 3000
    rows = await stored(p, owner)
    assert len(rows) == 3000 and rows["T2999"].amount_cents == cents_of(txns[2999])


def cents_of(t: TransactionData) -> int:
    return int(t.amount * 100)


async def test_one_bad_job_in_a_group_fails_alone(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs settled together share a transaction; when one job's rows break it (here a
    feed that repeats a transaction id), the others are written without it."""
    p = platform
    bad_user, bad = await connect(p, "password")
    good_user, good = await connect(p, "password")
    sandbox = p.rt.connectors["sandbox"]
    real = sandbox.transactions

    async def transactions(ctx: Any, state: Any, acct: Any, start: Any, end: Any) -> Any:
        found = await real(ctx, state, acct, start, end)
        if ctx.member_guid == bad and found:
            # A new transaction listed twice: its second insert breaks a unique key.
            found += [dataclasses.replace(found[0], external_id="DUP")] * 2
        return found

    monkeypatch.setattr(sandbox, "transactions", transactions)
    p.clock.advance(days=1)  # new transactions for both
    for user, guid in ((bad_user, bad), (good_user, good)):
        r = await p.http.post(f"/users/{user}/members/{guid}/aggregate")
        assert r.status_code == 202, r.text
    # Both jobs start together and finish together: one group.
    await p.drain()
    async with p.rt.db.read() as s:
        states = dict(
            (
                await s.execute(
                    select(Member.guid, Job.state)
                    .join(Job, Job.member_id == Member.id)
                    .where(Job.finished_at.is_not(None))
                    .order_by(Job.id)
                )
            ).all()
        )
        causes = dict(
            (
                await s.execute(
                    select(Member.guid, Attempt.cause)
                    .join(Attempt, Attempt.member_id == Member.id)
                    .order_by(Attempt.id)
                )
            ).all()
        )
    assert states == {bad: "failed", good: "succeeded"}
    assert causes == {bad: "INTERNAL_ERROR", good: "OK"}


async def test_jobs_finishing_together_share_one_transaction(platform: Platform) -> None:
    p = platform
    members = [await connect(p, "password") for _ in range(6)]
    runner = p.worker.runner
    groups: list[int] = []
    write_group = runner._write_group

    async def counting(s: Any, group: Any) -> None:
        groups.append(len(group))
        await write_group(s, group)

    runner._write_group = counting  # type: ignore[method-assign]
    p.clock.advance(days=1)
    await asyncio.gather(*(p.http.post(f"/users/{u}/members/{g}/aggregate") for u, g in members))
    await p.drain()
    assert sum(groups) == 6 and max(groups) > 1
    async with p.rt.db.read() as s:
        statuses = set(await s.scalars(select(Member.connection_status)))
    assert statuses == {"CONNECTED"}

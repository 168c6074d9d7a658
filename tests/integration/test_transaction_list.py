"""The transaction list reads rows straight from the driver and serializes them
without model objects; every item must be byte for byte what ``wire.transaction``
makes of the same row through the ORM, whatever the stored values and query."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite as sqlite_dialect

from openagg import wire
from openagg.connectors.base import AccountData, TransactionData
from openagg.db.driver import Backend, Fetch, Plan
from openagg.db.engine import Busy, _SqliteDirect
from openagg.db.models import Account, Member, Transaction, User
from openagg.domain.ids import stable_guid
from openagg.engine import ingest
from tests.conftest import Platform
from tests.integration.api_helpers import create_member, new_user

EST = dt.timezone(dt.timedelta(hours=-5))


def feed(today: dt.date) -> list[TransactionData]:
    """Transactions with every kind of value the serializer meets."""
    at = dt.datetime(2026, 2, 27, 23, 59, 59, 999999, tzinfo=EST)
    odd_flags: dict[str, Any] = {"is_recurring": "yes", "is_income": 1, "is_fee": None}
    out = []
    for i in range(40):
        out.append(
            TransactionData(
                external_id=f"T{i:02d}",
                account_external_id="A1",
                amount=Decimal(f"{i * 7 + 1}.{i % 100:02d}"),
                type="CREDIT" if i % 3 else "DEBIT",
                date=today - dt.timedelta(days=i % 30),
                description=None if i == 5 else f'Payee "{i}" \u00e9\u2603',  # type: ignore[arg-type]
                status="PENDING" if i % 7 == 0 else "POSTED",
                original_description=None if i % 4 else f"RAW {i}",
                transacted_at=at - dt.timedelta(days=i) if i % 2 else None,
                posted_at=at if i % 5 else None,
                category=None if i == 6 else ("Paycheck" if i % 2 else "Groceries"),
                top_level_category=("Income", "Transfer", "Fees & Charges", None)[i % 4],
                merchant_name=None if i % 3 == 0 else f"Merchant {i % 4}",
                merchant_category_code=None if i % 2 else 5411,
                memo="memo" if i % 6 == 0 else None,
                check_number_string="1001" if i == 9 else None,
                currency_code="USD" if i != 11 else "CAD",
                flags={} if i % 8 == 0 else odd_flags if i % 8 == 1 else {"is_recurring": True},
            )
        )
    return out


async def setup_member(p: Platform) -> tuple[str, str, str]:
    user = await new_user(p.http, id="partner-user-1")
    r = await create_member(p.http, user, "password", skip_aggregation=True)
    guid = r.json()["member"]["guid"]
    async with p.rt.db.read() as s:
        m = await s.scalar(select(Member).where(Member.guid == guid))
    assert m is not None
    account = AccountData(external_id="A1", name="Checking", type="CHECKING", balance=Decimal(1))
    today = p.clock.now.date()
    pull = ingest.Pull([account], {"A1": feed(today)}, {}, today - dt.timedelta(days=90))
    async with p.rt.db.write() as s:
        done = await ingest.ingest_pull(
            s,
            ingest.Owner(m.client_id, m.user_id, m.id),
            pull,
            now=p.clock.now,
            pending_max_age=dt.timedelta(days=14),
        )
    async with p.rt.db.write() as s:  # a later change for the updated_at filters
        await s.execute(
            update(Transaction)
            .where(Transaction.external_id.in_(["T01", "T02"]))
            .values(updated_at=p.clock.now + dt.timedelta(days=40))
        )
    async with p.rt.db.read() as s:
        account = await s.scalar(select(Account.guid).where(Account.id == done.accounts["A1"].id))
    assert account is not None
    return user, guid, account


async def reference(p: Platform, user_guid: str, includes: frozenset[str]) -> dict[str, bytes]:
    """Each transaction as ``wire.transaction`` serializes the ORM's row, by guid."""
    async with p.rt.db.read() as s:
        user = await s.scalar(select(User).where(User.guid == user_guid))
        assert user is not None
        rows = await s.execute(
            select(Transaction, Account.guid, Account.external_id, Member.guid)
            .join(Account, Account.id == Transaction.account_id)
            .join(Member, Member.id == Transaction.member_id)
            .where(Transaction.user_id == user.id)
        )
        return {
            t.guid: orjson.dumps(
                wire.transaction(
                    t,
                    user_guid=user.guid,
                    user_id=user.external_id,
                    account_guid=ag,
                    account_id=aid,
                    member_guid=mg,
                    includes=includes,
                )
            )
            for t, ag, aid, mg in rows
        }


INCLUDES = "repeating_transactions,merchants,classifications,geolocations"


@pytest.mark.parametrize("includes", ["", INCLUDES])
async def test_items_are_byte_for_byte_the_orm_serializer(
    platform: Platform, includes: str
) -> None:
    p = platform
    user, _member, _account = await setup_member(p)
    expected = await reference(p, user, wire.parse_includes(includes))
    r = await p.http.get(
        f"/users/{user}/transactions",
        params={"records_per_page": 1000, **({"includes": includes} if includes else {})},
    )
    assert r.status_code == 200, r.text
    items = r.json()["transactions"]
    assert len(items) == len(expected) == 40
    for item in items:
        assert orjson.dumps(item) == expected[item["guid"]]
    # The raw body holds the same bytes (no re-encoding in between).
    assert all(b in r.content for b in expected.values())


async def test_order_paging_scopes_and_filters(platform: Platform) -> None:
    p = platform
    user, member, account = await setup_member(p)
    today = p.clock.now.date()

    async def listed(path: str, **params: Any) -> tuple[list[str], int]:
        r = await p.http.get(path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        return [t["id"] for t in body["transactions"]], body["pagination"]["total_entries"]

    everything, total = await listed(f"/users/{user}/transactions", records_per_page=1000)
    assert total == 40
    async with p.rt.db.read() as s:
        ordered = [
            e
            for e in await s.scalars(
                select(Transaction.external_id).order_by(
                    Transaction.date.desc(), Transaction.id.desc()
                )
            )
        ]
    assert everything == ordered
    page2, _ = await listed(f"/users/{user}/transactions", records_per_page=10, page=2)
    assert page2 == ordered[10:20]
    for path in (
        f"/users/{user}/members/{member}/transactions",
        f"/users/{user}/accounts/{account}/transactions",
    ):
        assert await listed(path, records_per_page=1000) == (ordered, 40)
    window = await listed(
        f"/users/{user}/transactions",
        from_date=(today - dt.timedelta(days=9)).isoformat(),
        to_date=(today - dt.timedelta(days=5)).isoformat(),
    )
    in_window = [f"T{i:02d}" for i in range(40) if 5 <= i % 30 <= 9]
    assert window == ([e for e in ordered if e in in_window], len(in_window))
    later = (today + dt.timedelta(days=40)).isoformat()
    assert await listed(
        f"/users/{user}/transactions", from_updated_at=later, to_updated_at=later
    ) == (["T01", "T02"], 2)
    grocery = stable_guid("CAT", "Groceries")
    ids, n = await listed(f"/users/{user}/transactions", category_guid=grocery)
    assert n == len(ids) == 19 and all(int(i[1:]) % 2 == 0 for i in ids)
    # Another user's, or another client's, guids are not found.
    other = await new_user(p.http)
    r = await p.http.get(f"/users/{other}/members/{member}/transactions")
    assert r.status_code == 404
    r = await p.http.get("/users/USR-nope/transactions")
    assert r.status_code == 404
    r = await p.http.get(
        f"/users/{user}/transactions", params={"from_date": "2026-03-05", "to_date": "2026-03-01"}
    )
    assert r.status_code == 400


def test_a_locked_database_is_reported_at_once(tmp_path: Path) -> None:
    """Reads on the event loop's thread never wait for a lock: that would stop the
    loop. (WAL readers are locked out only by an exclusive-mode connection or a
    recovery; such a connection opened first stands in for both.)"""
    path = str(tmp_path / "locked.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("CREATE TABLE t (x INTEGER)")  # takes the exclusive lock
    reader = _SqliteDirect(path, sqlite_dialect())

    def plan(b: Backend, _d: Any) -> Plan[Any]:
        rows = yield Fetch(b.sql("SELECT count(*) FROM t"))
        return rows[0][0]

    started = time.monotonic()
    with pytest.raises(Busy):
        reader.run(plan)
    assert time.monotonic() - started < 1
    holder.close()
    assert reader.run(plan) == 0
    reader.close()


async def test_a_busy_direct_read_is_made_through_a_session(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = platform
    user, _member, _account = await setup_member(p)
    expected = (await p.http.get(f"/users/{user}/transactions")).json()
    direct = p.rt.db._direct
    if direct is None:
        pytest.skip("PostgreSQL always reads through a session")
    tried = []

    def busy(_make: Any) -> Any:
        tried.append(True)
        raise Busy()

    monkeypatch.setattr(direct, "run", busy)
    r = await p.http.get(f"/users/{user}/transactions")
    assert tried and r.status_code == 200, r.text
    assert r.json() == expected


async def test_a_failing_direct_read_answers_503(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A direct read that fails for another reason than a lock (the disk, a file
    that cannot be opened) answers as any read through a session would: 503."""
    p = platform
    user, _member, _account = await setup_member(p)
    direct = p.rt.db._direct
    if direct is None:
        pytest.skip("PostgreSQL always reads through a session")

    def failing(_make: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(direct, "run", failing)
    r = await p.http.get(f"/users/{user}/transactions")
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "5"
    assert "database" in r.json()["error"]["message"].lower()

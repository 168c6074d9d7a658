"""Idempotent upsert of what a connector returned.

Re-aggregating never duplicates: accounts, transactions and holdings are keyed by
the institution's own ids. A posted transaction replaces the pending one it names;
a pending transaction that vanished from the institution's feed is removed, and
any pending older than the failsafe age is removed too (as at MX).

This is the engine's hottest path, so it works with Core statements and plain
rows, not ORM objects: one select per table and member, then ``executemany``
inserts and updates of only the rows that changed (an unchanged row keeps its
``updated_at``).
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.connectors.base import AccountData, HoldingData, OwnerData, TransactionData
from openagg.db.models import Account, AccountNumber, AccountOwner, Holding, Member, Transaction
from openagg.domain.ids import new_guid, stable_guid

ACCOUNTS: Table = Account.__table__  # type: ignore[assignment]
HOLDINGS: Table = Holding.__table__  # type: ignore[assignment]
TRANSACTIONS: Table = Transaction.__table__  # type: ignore[assignment]


def cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int((amount * 100).to_integral_value())


def time_ordered_guid(prefix: str) -> str:
    """A guid whose uuid is time-ordered (UUIDv7 layout: 48-bit milliseconds, then 74
    random bits). New rows land at the right edge of the guid's unique index instead
    of at random pages, which keeps inserts into a big table cheap."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return f"{prefix}-{uuid.UUID(int=value)}"


@dataclass
class IngestCounts:
    created: int = 0
    updated: int = 0
    removed: int = 0


@dataclass(frozen=True)
class AccountRef:
    """What the rest of ingest needs to know about a stored account."""

    id: int
    client_id: int
    user_id: int
    member_id: int


def _midday(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.UTC)


async def _upsert_keyed(
    session: AsyncSession,
    table: Table,
    scope: ColumnElement[bool],
    desired: Mapping[str, dict[str, Any]],
    *,
    new_row: Mapping[str, Any],
    guid_prefix: str,
    now: dt.datetime,
    delete_missing: bool,
) -> dict[str, int]:
    """Make the rows in ``scope`` match ``desired`` (keyed by ``external_id``): insert
    the new ones (with ``new_row``'s fixed columns), update only those whose values
    changed, optionally delete those no longer there. Returns external_id -> id."""
    columns = sorted({c for values in desired.values() for c in values})
    stored = {
        r.external_id: r
        for r in await session.execute(
            select(table.c.id, table.c.external_id, *(table.c[c] for c in columns)).where(scope)
        )
    }
    ids = {key: row.id for key, row in stored.items()}
    inserts, updates = [], []
    for key, values in desired.items():
        old = stored.get(key)
        if old is None:
            inserts.append(
                {
                    **new_row,
                    **values,
                    "guid": new_guid(guid_prefix),
                    "external_id": key,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        elif any(getattr(old, c) != v for c, v in values.items()):
            updates.append({**values, "_id": old.id, "updated_at": now})
    if inserts:
        created = await session.execute(
            insert(table).returning(table.c.id, table.c.external_id), inserts
        )
        ids.update({r.external_id: r.id for r in created})
    if updates:
        await session.execute(
            update(table).where(table.c.id == bindparam("_id")),
            updates,
            execution_options={"synchronize_session": False},
        )
    gone = [row.id for key, row in stored.items() if key not in desired]
    if delete_missing and gone:
        await session.execute(delete(table).where(table.c.id.in_(gone)))
    return ids


def _account_values(data: AccountData) -> dict[str, Any]:
    return {
        "name": data.name,
        "type": data.type,
        "subtype": data.subtype,
        "currency_code": data.currency_code,
        "balance_cents": cents(data.balance),
        "available_balance_cents": cents(data.available_balance),
        "account_number_last4": data.account_number[-4:] if data.account_number else None,
        "is_closed": data.is_closed,
        "details": dict(data.details),
    }


async def upsert_accounts(
    session: AsyncSession, member: Member, accounts: list[AccountData], now: dt.datetime
) -> dict[str, AccountRef]:
    owner = {"client_id": member.client_id, "user_id": member.user_id, "member_id": member.id}
    ids = await _upsert_keyed(
        session,
        ACCOUNTS,
        ACCOUNTS.c.member_id == member.id,
        {a.external_id: _account_values(a) for a in accounts},
        new_row=owner,
        guid_prefix="ACT",
        now=now,
        delete_missing=False,  # an account the bank stops listing keeps its history
    )
    return {key: AccountRef(id=account_id, **owner) for key, account_id in ids.items()}


@lru_cache(maxsize=65536)
def _named_guid(prefix: str, name: str | None) -> str | None:
    """Stable guids for categories and merchants (names repeat across many rows)."""
    return stable_guid(prefix, name) if name else None


def _txn_row(t: TransactionData) -> dict[str, Any]:
    return {
        "amount_cents": cents(t.amount),
        "type": t.type,
        "status": t.status,
        "date": t.date,
        "transacted_at": t.transacted_at or _midday(t.date),
        "posted_at": t.posted_at if t.status == "POSTED" else None,
        "description": t.description,
        "original_description": t.original_description or t.description,
        "memo": t.memo,
        "category": t.category,
        "category_guid": _named_guid("CAT", t.category),
        "top_level_category": t.top_level_category,
        "top_level_category_guid": _named_guid("CAT", t.top_level_category),
        "merchant_guid": _named_guid("MCH", t.merchant_name),
        "merchant_category_code": t.merchant_category_code,
        "check_number_string": t.check_number_string,
        "currency_code": t.currency_code,
        "flags": dict(t.flags),
    }


_COMPARED = ("amount_cents", "type", "status", "date", "description", "category", "memo")


async def upsert_transactions(
    session: AsyncSession,
    pulled: Mapping[AccountRef, Iterable[TransactionData]],
    *,
    from_date: dt.date,
    now: dt.datetime,
    pending_max_age: dt.timedelta,
) -> IngestCounts:
    """Upsert the transactions pulled for some accounts (over ``from_date`` onwards)
    with one select and at most one insert, update and delete for all of them."""
    if not pulled:
        return IngestCounts()
    rows = await session.execute(
        select(
            Transaction.id,
            Transaction.account_id,
            Transaction.external_id,
            *(getattr(Transaction, c) for c in _COMPARED),
        ).where(
            Transaction.account_id.in_([a.id for a in pulled]),
            or_(Transaction.date >= from_date, Transaction.status == "PENDING"),
        )
    )
    known = {(r.account_id, r.external_id): r for r in rows}
    pulled_keys: set[tuple[int, str]] = set()
    replaced: set[tuple[int, str]] = set()
    inserts, updates = [], []
    for account, transactions in pulled.items():
        for t in transactions:
            key = (account.id, t.external_id)
            pulled_keys.add(key)
            if t.replaces_external_id:
                replaced.add((account.id, t.replaces_external_id))
            row = _txn_row(t)
            old = known.get(key)
            if old is None:
                row.update(
                    guid=time_ordered_guid("TRN"),
                    client_id=account.client_id,
                    user_id=account.user_id,
                    member_id=account.member_id,
                    account_id=account.id,
                    external_id=t.external_id,
                    created_at=now,
                    updated_at=now,
                )
                inserts.append(row)
            elif any(getattr(old, c) != row[c] for c in _COMPARED):
                row.update(_id=old.id, updated_at=now)
                updates.append(row)

    stale_before = (now - pending_max_age).date()
    gone = [
        r.id
        for key, r in known.items()
        if r.status == "PENDING"
        and (
            key in replaced
            or (key not in pulled_keys and r.date >= from_date)
            or r.date < stale_before
        )
    ]
    if inserts:
        await session.execute(insert(TRANSACTIONS), inserts)
    if updates:
        await session.execute(
            update(TRANSACTIONS).where(TRANSACTIONS.c.id == bindparam("_id")),
            updates,
            execution_options={"synchronize_session": False},
        )
    if gone:
        await session.execute(delete(TRANSACTIONS).where(TRANSACTIONS.c.id.in_(gone)))
    return IngestCounts(created=len(inserts), updated=len(updates), removed=len(gone))


def _holding_values(data: HoldingData) -> dict[str, Any]:
    return {
        "symbol": data.symbol,
        "description": data.description,
        "holding_type": data.holding_type,
        "currency_code": data.currency_code,
        "quantity": float(data.quantity),
        "current_price": float(data.current_price),
        "cost_basis": None if data.cost_basis is None else float(data.cost_basis),
        "market_value": float(data.market_value),
    }


async def upsert_holdings(
    session: AsyncSession, account: AccountRef, pulled: list[HoldingData], now: dt.datetime
) -> None:
    await _upsert_keyed(
        session,
        HOLDINGS,
        HOLDINGS.c.account_id == account.id,
        {h.external_id: _holding_values(h) for h in pulled},
        new_row={
            "client_id": account.client_id,
            "user_id": account.user_id,
            "member_id": account.member_id,
            "account_id": account.id,
        },
        guid_prefix="HOL",
        now=now,
        delete_missing=True,  # a position the institution no longer lists was sold
    )


async def upsert_account_number(
    session: AsyncSession, account: AccountRef, data: AccountData
) -> None:
    if not data.account_number:
        return
    row = await session.scalar(select(AccountNumber).where(AccountNumber.account_id == account.id))
    if row is None:
        row = AccountNumber(
            guid=new_guid("ACN"),
            client_id=account.client_id,
            account_id=account.id,
            member_id=account.member_id,
        )
        session.add(row)
    row.account_number = data.account_number
    row.routing_number = data.routing_number
    row.passed_validation = True


async def upsert_owner(session: AsyncSession, account: AccountRef, data: OwnerData) -> None:
    row = await session.scalar(select(AccountOwner).where(AccountOwner.account_id == account.id))
    if row is None:
        row = AccountOwner(
            guid=new_guid("ACO"),
            client_id=account.client_id,
            account_id=account.id,
            member_id=account.member_id,
        )
        session.add(row)
    row.owner = {k: v for k, v in vars(data).items() if k != "account_external_id"}

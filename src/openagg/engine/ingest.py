"""Idempotent upsert of what a connector returned.

Re-aggregating never duplicates: accounts, transactions and holdings are keyed by
the institution's own ids. A posted transaction replaces the pending one it names;
a pending transaction that vanished from the institution's feed is removed, and
any pending older than the failsafe age is removed too (as at MX).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.connectors.base import AccountData, HoldingData, OwnerData, TransactionData
from openagg.db.models import Account, AccountNumber, AccountOwner, Holding, Member, Transaction
from openagg.domain.ids import new_guid, stable_guid


def cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int((amount * 100).to_integral_value())


@dataclass
class IngestCounts:
    created: int = 0
    updated: int = 0
    removed: int = 0


def _midday(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.UTC)


async def upsert_accounts(
    session: AsyncSession, member: Member, accounts: list[AccountData], now: dt.datetime
) -> dict[str, Account]:
    existing = {
        a.external_id: a
        for a in await session.scalars(select(Account).where(Account.member_id == member.id))
    }
    for data in accounts:
        acct = existing.get(data.external_id)
        if acct is None:
            acct = Account(
                guid=new_guid("ACT"),
                client_id=member.client_id,
                user_id=member.user_id,
                member_id=member.id,
                external_id=data.external_id,
                created_at=now,
            )
            session.add(acct)
            existing[data.external_id] = acct
        acct.name = data.name
        acct.type = data.type
        acct.subtype = data.subtype
        acct.currency_code = data.currency_code
        acct.balance_cents = cents(data.balance)
        acct.available_balance_cents = cents(data.available_balance)
        acct.account_number_last4 = data.account_number[-4:] if data.account_number else None
        acct.is_closed = data.is_closed
        acct.details = dict(data.details)
        acct.updated_at = now
    await session.flush()
    return existing


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


TRANSACTIONS: Table = Transaction.__table__  # type: ignore[assignment]
_COMPARED = ("amount_cents", "type", "status", "date", "description", "category", "memo")


async def upsert_transactions(
    session: AsyncSession,
    account: Account,
    pulled: list[TransactionData],
    *,
    from_date: dt.date,
    now: dt.datetime,
    pending_max_age: dt.timedelta,
) -> IngestCounts:
    counts = IngestCounts()
    rows = await session.execute(
        select(
            Transaction.id,
            Transaction.external_id,
            Transaction.status,
            Transaction.date,
            *(getattr(Transaction, c) for c in _COMPARED if c not in ("status", "date")),
        ).where(
            Transaction.account_id == account.id,
            or_(Transaction.date >= from_date, Transaction.status == "PENDING"),
        )
    )
    known = {r.external_id: r for r in rows}
    pulled_ids = {t.external_id for t in pulled}
    replaced = {t.replaces_external_id for t in pulled if t.replaces_external_id}

    inserts, updates = [], []
    for t in pulled:
        row = _txn_row(t)
        old = known.get(t.external_id)
        if old is None:
            row.update(
                guid=new_guid("TRN"),
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
            row.update(id=old.id, updated_at=now)
            updates.append(row)

    stale_before = (now - pending_max_age).date()
    gone = [
        r.id
        for r in known.values()
        if r.status == "PENDING"
        and (
            r.external_id in replaced
            or (r.external_id not in pulled_ids and r.date >= from_date)
            or r.date < stale_before
        )
    ]
    # Core statements, not the ORM's bulk paths: this is the engine's hottest loop.
    if inserts:
        await session.execute(insert(TRANSACTIONS), inserts)
    if updates:
        await session.execute(
            update(TRANSACTIONS).where(TRANSACTIONS.c.id == bindparam("_id")),
            [{**row, "_id": row.pop("id")} for row in updates],
        )
    if gone:
        await session.execute(delete(Transaction).where(Transaction.id.in_(gone)))
    counts.created, counts.updated, counts.removed = len(inserts), len(updates), len(gone)
    return counts


async def upsert_holdings(
    session: AsyncSession, account: Account, pulled: list[HoldingData], now: dt.datetime
) -> None:
    existing = {
        h.external_id: h
        for h in await session.scalars(select(Holding).where(Holding.account_id == account.id))
    }
    for data in pulled:
        h = existing.pop(data.external_id, None)
        if h is None:
            h = Holding(
                guid=new_guid("HOL"),
                client_id=account.client_id,
                user_id=account.user_id,
                member_id=account.member_id,
                account_id=account.id,
                external_id=data.external_id,
                created_at=now,
            )
            session.add(h)
        h.symbol = data.symbol
        h.description = data.description
        h.holding_type = data.holding_type
        h.currency_code = data.currency_code
        h.quantity = float(data.quantity)
        h.current_price = float(data.current_price)
        h.cost_basis = None if data.cost_basis is None else float(data.cost_basis)
        h.market_value = float(data.market_value)
        h.updated_at = now
    for gone in existing.values():
        await session.delete(gone)


async def upsert_account_number(session: AsyncSession, account: Account, data: AccountData) -> None:
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


async def upsert_owner(session: AsyncSession, account: Account, data: OwnerData) -> None:
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

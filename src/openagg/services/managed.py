"""Managed data: MX's partner-managed members, accounts and transactions.

The partner (or a statement file, services/imports.py) writes them; no connector
ever aggregates a managed member, so it has no connection status and every job
request on it is a 422. They show in the ordinary lists like any other data.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Account, Client, Institution, Member, Transaction, User
from openagg.domain.ids import new_guid
from openagg.runtime import Runtime
from openagg.services import webhooks
from openagg.services.errors import BadRequest, Conflict, NotFound, Unprocessable
from openagg.services.inputs import (
    ManagedAccountFields,
    ManagedMemberCreateFields,
    ManagedMemberUpdateFields,
    ManagedTransactionFields,
)
from openagg.services.lookup import institution_by_code, member_by_guid, user_by_guid

NEVER_AGGREGATED = (
    "This member holds managed data (the partner or an imported statement file writes it): "
    "it is never aggregated."
)

# ManagedAccount fields kept in ``Account.details`` under their MX names.
_ACCOUNT_DETAILS = (
    "apr",
    "apy",
    "available_credit",
    "cash_surrender_value",
    "credit_limit",
    "day_payment_is_due",
    "death_benefit",
    "interest_rate",
    "is_hidden",
    "last_payment",
    "last_payment_at",
    "loan_amount",
    "matures_on",
    "metadata",
    "minimum_balance",
    "minimum_payment",
    "nickname",
    "original_balance",
    "payment_due_at",
    "payoff_balance",
    "routing_number",
    "started_on",
)


def refuse_jobs(member: Member) -> None:
    if member.is_managed:
        raise Unprocessable(NEVER_AGGREGATED)


def cents(value: float | int | str | Decimal, field: str) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise BadRequest(f"{field}: not a number") from None
    if not amount.is_finite() or abs(amount) >= Decimal(10) ** 15:
        raise BadRequest(f"{field}: not a usable amount")
    return int((amount * 100).to_integral_value())


def timestamp(text: str, field: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{field}: an ISO 8601 date-time, e.g. 2026-12-07T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


# --- members ------------------------------------------------------------------------


async def managed_member(s: AsyncSession, user: User, guid: str, *, lock: bool = False) -> Member:
    member = await member_by_guid(s, user, guid, lock=lock)
    if not member.is_managed:
        raise NotFound()
    return member


async def new_managed_member(
    rt: Runtime, s: AsyncSession, user: User, inst: Institution, name: str | None, **fields: Any
) -> Member:
    now = rt.now()
    member = Member(
        guid=new_guid("MBR"),
        client_id=user.client_id,
        user_id=user.id,
        institution_id=inst.id,
        name=name or inst.name,
        is_managed=True,
        consecutive_credential_failures=0,
        created_at=now,
        updated_at=now,
        **fields,
    )
    s.add(member)
    await s.flush()
    await webhooks.member_event(s, rt, member, "created")
    return member


async def create_member(
    rt: Runtime, client: Client, user_guid: str, f: ManagedMemberCreateFields
) -> tuple[Member, User, Institution]:
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid, lock=True)
        inst = await institution_by_code(s, f.institution_code)
        if inst is None or inst.is_retired:
            raise NotFound(f"No institution {f.institution_code}.")
        if f.id is not None:
            await _partner_id_free(s, user, f.id, None)
        member = await new_managed_member(
            rt, s, user, inst, f.name, external_id=f.id, metadata_=f.metadata
        )
    return member, user, inst


async def _partner_id_free(s: AsyncSession, user: User, external_id: str, guid: str | None) -> None:
    taken = await s.scalar(
        select(Member.guid).where(Member.user_id == user.id, Member.external_id == external_id)
    )
    if taken is not None and taken != guid:
        raise Conflict(f"A member with id {external_id!r} already exists for this user.")


async def update_member(
    rt: Runtime, client: Client, user_guid: str, member_guid: str, f: ManagedMemberUpdateFields
) -> tuple[Member, User, Institution]:
    given = f.model_dump(exclude_unset=True)
    if not given:
        raise BadRequest("The request body can't be empty: give at least one member field.")
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid, lock="id" in given)
        member = await managed_member(s, user, member_guid, lock=True)
        if "id" in given:
            if f.id is not None:
                await _partner_id_free(s, user, f.id, member.guid)
            member.external_id = f.id
        if "metadata" in given:
            member.metadata_ = f.metadata
        if "name" in given and f.name:
            member.name = f.name
        member.updated_at = rt.now()
        await webhooks.member_event(s, rt, member, "updated")
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
    return member, user, inst


async def delete_member(rt: Runtime, client: Client, user_guid: str, member_guid: str) -> None:
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        member = await managed_member(s, user, member_guid)
        await webhooks.member_event(s, rt, member, "deleted")
        await s.execute(delete(Member).where(Member.id == member.id))


# --- accounts -----------------------------------------------------------------------


async def managed_account(s: AsyncSession, member: Member, guid: str) -> Account:
    account = await s.scalar(
        select(Account).where(Account.guid == guid, Account.member_id == member.id)
    )
    if account is None:
        raise NotFound()
    return account


def _apply_account(account: Account, f: ManagedAccountFields) -> None:
    given = f.model_dump(exclude_unset=True)
    if "id" in given and f.id is not None:
        account.external_id = f.id
    if "name" in given and f.name is not None:
        account.name = f.name
    if "type" in given and f.type is not None:
        account.type = f.type.upper()
    if "subtype" in given:
        account.subtype = f.subtype.upper() if f.subtype else None
    if "currency_code" in given:
        account.currency_code = f.currency_code.upper() if f.currency_code else None
    if "balance" in given:
        account.balance_cents = None if f.balance is None else cents(f.balance, "balance")
    if "available_balance" in given:
        account.available_balance_cents = (
            None if f.available_balance is None else cents(f.available_balance, "available_balance")
        )
    if "account_number" in given:
        account.account_number_last4 = f.account_number[-4:] if f.account_number else None
    if "is_closed" in given:
        account.is_closed = bool(f.is_closed)
    details = dict(account.details or {})
    for key in _ACCOUNT_DETAILS:
        if key in given:
            details[key] = given[key]
    account.details = details


async def _flush_unique(s: AsyncSession, what: str, external_id: str) -> None:
    try:
        async with s.begin_nested():
            await s.flush()
    except IntegrityError:
        raise Conflict(f"This member already has {what} with id {external_id!r}.") from None


async def _locate(
    s: AsyncSession, client: Client, user_guid: str, member_guid: str, account_guid: str
) -> tuple[User, Member, Account]:
    """The managed account a request names, its member locked."""
    user = await user_by_guid(s, client, user_guid)
    member = await managed_member(s, user, member_guid, lock=True)
    return user, member, await managed_account(s, member, account_guid)


async def create_account(
    rt: Runtime, client: Client, user_guid: str, member_guid: str, f: ManagedAccountFields
) -> tuple[Account, Member, User, Institution]:
    now = rt.now()
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        member = await managed_member(s, user, member_guid, lock=True)
        assert f.id is not None
        account = Account(
            guid=new_guid("ACT"),
            client_id=member.client_id,
            user_id=user.id,
            member_id=member.id,
            external_id=f.id,
            details={},
            is_closed=False,
            currency_code="USD",
            created_at=now,
            updated_at=now,
        )
        _apply_account(account, f)
        s.add(account)
        await _flush_unique(s, "an account", f.id)
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
    return account, member, user, inst


async def update_account(
    rt: Runtime,
    client: Client,
    user_guid: str,
    member_guid: str,
    account_guid: str,
    f: ManagedAccountFields,
) -> tuple[Account, Member, User, Institution]:
    if not f.model_dump(exclude_unset=True):
        raise BadRequest("The request body can't be empty: give at least one account field.")
    async with rt.db.write() as s:
        user, member, account = await _locate(s, client, user_guid, member_guid, account_guid)
        _apply_account(account, f)
        account.updated_at = rt.now()
        await _flush_unique(s, "an account", account.external_id)
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
    return account, member, user, inst


async def delete_account(
    rt: Runtime, client: Client, user_guid: str, member_guid: str, account_guid: str
) -> None:
    async with rt.db.write() as s:
        _, member, account = await _locate(s, client, user_guid, member_guid, account_guid)
        await s.execute(delete(Transaction).where(Transaction.account_id == account.id))
        await s.execute(delete(Account).where(Account.id == account.id))
        await bump_transactions(s, member)


# --- transactions -------------------------------------------------------------------


async def bump_transactions(s: AsyncSession, member: Member) -> None:
    """Cached transaction lists of this member are stale now (api/list_cache.py)."""
    await s.execute(
        update(Member)
        .where(Member.id == member.id)
        .values(transactions_version=Member.transactions_version + 1)
    )


def _apply_transaction(t: Transaction, f: ManagedTransactionFields) -> None:
    given = f.model_dump(exclude_unset=True)
    if "amount" in given and f.amount is not None:
        amount = cents(f.amount, "amount")
        if amount < 0:
            raise BadRequest(
                "amount: a positive number; the direction is in type (CREDIT or DEBIT)"
            )
        t.amount_cents = amount
    if "id" in given and f.id is not None:
        t.external_id = f.id
    if "type" in given and f.type is not None:
        t.type = f.type
    if "status" in given and f.status is not None:
        t.status = f.status
    if "description" in given and f.description is not None:
        t.description = f.description
        t.original_description = f.description
    if "transacted_at" in given and f.transacted_at is not None:
        t.transacted_at = timestamp(f.transacted_at, "transacted_at")
        t.date = t.transacted_at.date()
    if "posted_at" in given and f.posted_at is not None:
        t.posted_at = timestamp(f.posted_at, "posted_at")
    for key in ("memo", "check_number_string", "merchant_category_code", "merchant_guid"):
        if key in given:
            setattr(t, key, given[key])
    if "category" in given:
        t.category = f.category
    if "currency_code" in given:
        t.currency_code = f.currency_code.upper() if f.currency_code else None


async def managed_transaction(s: AsyncSession, account: Account, guid: str) -> Transaction:
    t = await s.scalar(
        select(Transaction).where(Transaction.guid == guid, Transaction.account_id == account.id)
    )
    if t is None:
        raise NotFound()
    return t


async def create_transaction(
    rt: Runtime,
    client: Client,
    user_guid: str,
    member_guid: str,
    account_guid: str,
    f: ManagedTransactionFields,
) -> tuple[Transaction, User, Account]:
    now = rt.now()
    async with rt.db.write() as s:
        user, member, account = await _locate(s, client, user_guid, member_guid, account_guid)
        guid = new_guid("TRN")
        t = Transaction(
            guid=guid,
            client_id=member.client_id,
            user_id=user.id,
            member_id=member.id,
            account_id=account.id,
            external_id=f.id or guid,
            currency_code=account.currency_code,
            flags={},
            created_at=now,
            updated_at=now,
        )
        _apply_transaction(t, f)
        s.add(t)
        await _flush_unique(s, "a transaction", t.external_id)
        await bump_transactions(s, member)
    return t, user, account


async def update_transaction(
    rt: Runtime,
    client: Client,
    user_guid: str,
    member_guid: str,
    account_guid: str,
    transaction_guid: str,
    f: ManagedTransactionFields,
) -> tuple[Transaction, User, Account]:
    if not f.model_dump(exclude_unset=True):
        raise BadRequest("The request body can't be empty: give at least one transaction field.")
    async with rt.db.write() as s:
        user, member, account = await _locate(s, client, user_guid, member_guid, account_guid)
        t = await managed_transaction(s, account, transaction_guid)
        _apply_transaction(t, f)
        t.updated_at = rt.now()
        await _flush_unique(s, "a transaction", t.external_id)
        await bump_transactions(s, member)
    return t, user, account


async def delete_transaction(
    rt: Runtime,
    client: Client,
    user_guid: str,
    member_guid: str,
    account_guid: str,
    transaction_guid: str,
) -> None:
    async with rt.db.write() as s:
        _, member, account = await _locate(s, client, user_guid, member_guid, account_guid)
        t = await managed_transaction(s, account, transaction_guid)
        await s.execute(delete(Transaction).where(Transaction.id == t.id))
        await bump_transactions(s, member)

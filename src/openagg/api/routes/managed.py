"""MX's managed data: /managed_institutions and /users/{user_guid}/managed_members,
their accounts and transactions (16 operations)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg import wire
from openagg.api.http import (
    current_client,
    mx,
    mx_page,
    no_content,
    paging,
    parse_body,
    query_date,
    runtime,
)
from openagg.api.routes.institutions import list_all
from openagg.api.routes.members import member_body
from openagg.api.routing import Router
from openagg.db.models import Account, Client, Institution, Member, Transaction, User
from openagg.services import managed
from openagg.services.inputs import (
    ManagedAccountCreateBody,
    ManagedAccountUpdateBody,
    ManagedMemberCreateBody,
    ManagedMemberUpdateBody,
    ManagedTransactionCreateBody,
    ManagedTransactionUpdateBody,
)
from openagg.services.lookup import user_by_guid

router = Router()
MEMBERS = "/users/{user_guid}/managed_members"
MEMBER = MEMBERS + "/{member_guid}"
ACCOUNTS = MEMBER + "/accounts"
ACCOUNT = ACCOUNTS + "/{account_guid}"
TRANSACTIONS = ACCOUNT + "/transactions"
TRANSACTION = TRANSACTIONS + "/{transaction_guid}"


@router.get("/managed_institutions")
async def list_managed_institutions(
    request: Request, _c: Client = Depends(current_client)
) -> Response:
    """Every institution can hold managed data."""
    return await list_all(request, max_per_page=1000)


# --- members --------------------------------------------------------------------------


@router.get(MEMBERS)
async def list_managed_members(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, 1000)
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        where = (Member.user_id == user.id, Member.is_managed.is_(True))
        total = await s.scalar(select(func.count()).select_from(Member).where(*where)) or 0
        rows = list(
            await s.execute(
                select(Member, Institution)
                .join(Institution, Institution.id == Member.institution_id)
                .where(*where)
                .order_by(Member.id)
                .offset((page - 1) * per_page)
                .limit(per_page)
            )
        )
    items = [member_body(request, client, m, user, i, None)["member"] for m, i in rows]
    return mx_page("members", items, page, per_page, total)


@router.post(MEMBERS)
async def create_managed_member(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, ManagedMemberCreateBody)
    m, user, inst = await managed.create_member(runtime(request), client, user_guid, body.member)
    return mx(member_body(request, client, m, user, inst, None), status_code=202)


@router.get(MEMBER)
async def read_managed_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        m = await managed.managed_member(s, user, member_guid)
        inst = await s.get(Institution, m.institution_id)
        assert inst is not None
    return mx(member_body(request, client, m, user, inst, None))


@router.put(MEMBER)
async def update_managed_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, ManagedMemberUpdateBody)
    m, user, inst = await managed.update_member(
        runtime(request), client, user_guid, member_guid, body.member
    )
    return mx(member_body(request, client, m, user, inst, None))


@router.delete(MEMBER)
async def delete_managed_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    await managed.delete_member(runtime(request), client, user_guid, member_guid)
    return no_content()


# --- accounts -------------------------------------------------------------------------


async def _member(
    s: AsyncSession, client: Client, user_guid: str, member_guid: str
) -> tuple[User, Member, Institution]:
    user = await user_by_guid(s, client, user_guid)
    member = await managed.managed_member(s, user, member_guid)
    inst = await s.get(Institution, member.institution_id)
    assert inst is not None
    return user, member, inst


@router.get(ACCOUNTS)
async def list_managed_accounts(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, 1000)
    async with runtime(request).db.read() as s:
        user, member, inst = await _member(s, client, user_guid, member_guid)
        where = Account.member_id == member.id
        total = await s.scalar(select(func.count()).select_from(Account).where(where)) or 0
        rows = await s.scalars(
            select(Account)
            .where(where)
            .order_by(Account.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        items = [wire.account(a, user=user, member=member, institution=inst) for a in rows]
    return mx_page("accounts", items, page, per_page, total)


@router.post(ACCOUNTS)
async def create_managed_account(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, ManagedAccountCreateBody)
    a, m, user, inst = await managed.create_account(
        runtime(request), client, user_guid, member_guid, body.account
    )
    return mx({"account": wire.account(a, user=user, member=m, institution=inst)})


@router.get(ACCOUNT)
async def read_managed_account(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    async with runtime(request).db.read() as s:
        user, member, inst = await _member(s, client, user_guid, member_guid)
        a = await managed.managed_account(s, member, account_guid)
    return mx({"account": wire.account(a, user=user, member=member, institution=inst)})


@router.put(ACCOUNT)
async def update_managed_account(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    body = await parse_body(request, ManagedAccountUpdateBody)
    a, m, user, inst = await managed.update_account(
        runtime(request), client, user_guid, member_guid, account_guid, body.account
    )
    return mx({"account": wire.account(a, user=user, member=m, institution=inst)})


@router.delete(ACCOUNT)
async def delete_managed_account(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    await managed.delete_account(runtime(request), client, user_guid, member_guid, account_guid)
    return no_content()


# --- transactions ---------------------------------------------------------------------


def _transaction_body(
    t: Transaction, user: User, account: Account, member_guid: str
) -> dict[str, Any]:
    return wire.transaction(
        t,
        user_guid=user.guid,
        user_id=user.external_id,
        account_guid=account.guid,
        account_id=account.external_id,
        member_guid=member_guid,
    )


@router.get(TRANSACTIONS)
async def list_managed_transactions(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    page, per_page = paging(request, 1000)
    from_date, to_date = query_date(request, "from_date"), query_date(request, "to_date")
    async with runtime(request).db.read() as s:
        user, member, _ = await _member(s, client, user_guid, member_guid)
        account = await managed.managed_account(s, member, account_guid)
        q = select(Transaction).where(Transaction.account_id == account.id)
        if from_date is not None:
            q = q.where(Transaction.date >= from_date)
        if to_date is not None:
            q = q.where(Transaction.date <= to_date)
        total = await s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = await s.scalars(
            q.order_by(Transaction.date.desc(), Transaction.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        items = [_transaction_body(t, user, account, member.guid) for t in rows]
    return mx_page("transactions", items, page, per_page, total)


@router.post(TRANSACTIONS)
async def create_managed_transaction(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    body = await parse_body(request, ManagedTransactionCreateBody)
    t, user, account = await managed.create_transaction(
        runtime(request), client, user_guid, member_guid, account_guid, body.transaction
    )
    return mx({"transaction": _transaction_body(t, user, account, member_guid)})


@router.get(TRANSACTION)
async def read_managed_transaction(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    transaction_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    async with runtime(request).db.read() as s:
        user, member, _ = await _member(s, client, user_guid, member_guid)
        account = await managed.managed_account(s, member, account_guid)
        t = await managed.managed_transaction(s, account, transaction_guid)
    item = _transaction_body(t, user, account, member.guid)
    return mx({"transaction": item})


@router.put(TRANSACTION)
async def update_managed_transaction(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    transaction_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    body = await parse_body(request, ManagedTransactionUpdateBody)
    t, user, account = await managed.update_transaction(
        runtime(request),
        client,
        user_guid,
        member_guid,
        account_guid,
        transaction_guid,
        body.transaction,
    )
    return mx({"transaction": _transaction_body(t, user, account, member_guid)})


@router.delete(TRANSACTION)
async def delete_managed_transaction(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    transaction_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    await managed.delete_transaction(
        runtime(request), client, user_guid, member_guid, account_guid, transaction_guid
    )
    return no_content()

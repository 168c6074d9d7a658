"""Tenant-scoped lookups: another client's guid is simply not found."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Account, Client, Institution, Member, User
from openagg.services.errors import NotFound


async def user_by_guid(s: AsyncSession, client: Client, guid: str, *, lock: bool = False) -> User:
    q = select(User).where(User.guid == guid, User.client_id == client.id)
    if lock:
        q = q.with_for_update()
    user = await s.scalar(q)
    if user is None:
        raise NotFound()
    return user


async def member_by_guid(s: AsyncSession, user: User, guid: str, *, lock: bool = False) -> Member:
    q = select(Member).where(
        Member.guid == guid, Member.user_id == user.id, Member.client_id == user.client_id
    )
    if lock:
        q = q.with_for_update()
    member = await s.scalar(q)
    if member is None:
        raise NotFound()
    return member


async def account_by_guid(s: AsyncSession, user: User, guid: str) -> Account:
    acct = await s.scalar(
        select(Account).where(
            Account.guid == guid, Account.user_id == user.id, Account.client_id == user.client_id
        )
    )
    if acct is None:
        raise NotFound()
    return acct


async def institution_by_code(s: AsyncSession, code: str) -> Institution | None:
    result: Institution | None = await s.scalar(select(Institution).where(Institution.code == code))
    return result


async def institution_by_id(s: AsyncSession, institution_id: int) -> Institution:
    inst = await s.get(Institution, institution_id)
    assert inst is not None
    return inst

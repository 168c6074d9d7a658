"""Users (the client's end users)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Client, Member, User
from openagg.domain.ids import new_guid
from openagg.runtime import Runtime
from openagg.services import revocations, support, webhooks
from openagg.services.errors import Conflict
from openagg.services.inputs import UserFields
from openagg.services.lookup import user_by_guid


async def _check_unique_id(s: AsyncSession, client: Client, external_id: str, guid: str) -> None:
    clash = await s.scalar(
        select(User.guid).where(User.client_id == client.id, User.external_id == external_id)
    )
    if clash is not None and clash != guid:
        raise Conflict(f"A user with id '{external_id}' already exists.")


async def create_user(rt: Runtime, client: Client, fields: UserFields) -> User:
    now = rt.now()
    async with rt.db.write() as s:
        guid = new_guid("USR")
        if fields.id is not None:
            await _check_unique_id(s, client, fields.id, guid)
        user = User(
            guid=guid,
            client_id=client.id,
            external_id=fields.id,
            email=fields.email,
            is_disabled=bool(fields.is_disabled),
            metadata_=fields.metadata,
            created_at=now,
            updated_at=now,
        )
        s.add(user)
    return user


async def update_user(rt: Runtime, client: Client, guid: str, fields: UserFields) -> User:
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, guid)
        given = fields.model_dump(exclude_unset=True)
        if "id" in given:
            if fields.id is not None:
                await _check_unique_id(s, client, fields.id, guid)
            user.external_id = fields.id
        if "email" in given:
            user.email = fields.email
        if "is_disabled" in given:
            user.is_disabled = bool(fields.is_disabled)
        if "metadata" in given:
            user.metadata_ = fields.metadata
        user.updated_at = rt.now()
    return user


async def delete_user(rt: Runtime, client: Client, guid: str) -> None:
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, guid)
        # The cascade removes the members: tell the app about each, as a member delete does.
        members = list(await s.scalars(select(Member).where(Member.user_id == user.id)))
        for member in members:
            await webhooks.member_event(s, rt, member, "deleted")
        # Support tickets outlive them for statistics, without personal data.
        await support.forget_members(s, rt, [m.id for m in members])
        # Each member's access at its provider is ended later, by the worker.
        revoking = await revocations.schedule(s, rt, members)
        await s.execute(delete(User).where(User.id == user.id))
    if revoking:
        rt.job_enqueued.set()


async def list_users(
    rt: Runtime,
    client: Client,
    *,
    page: int,
    per_page: int,
    external_id: str | None,
    email: str | None,
    is_disabled: bool | None,
) -> tuple[list[User], int]:
    q = select(User).where(User.client_id == client.id)
    if external_id is not None:
        q = q.where(User.external_id == external_id)
    if email is not None:
        q = q.where(User.email == email)
    if is_disabled is not None:
        q = q.where(User.is_disabled == is_disabled)
    async with rt.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(q.subquery()))
        users = list(
            await s.scalars(q.order_by(User.id).offset((page - 1) * per_page).limit(per_page))
        )
    return users, total or 0

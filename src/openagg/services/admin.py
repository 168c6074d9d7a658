"""Operator actions that move members to the administrative statuses
(DISABLED, CLOSED, DISCONTINUED, RECONNECTED, IMPORTED) and back."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.connectors.registry import builtin_institutions
from openagg.db.models import Client, Institution, Job, Member
from openagg.domain.ids import new_guid
from openagg.domain.states import JobState
from openagg.domain.statuses import NOT_AGGREGATABLE, Status
from openagg.queue import finish
from openagg.runtime import Runtime
from openagg.services import vault, webhooks
from openagg.services.errors import BadRequest, NotFound
from openagg.services.lookup import institution_by_code, user_by_guid
from openagg.services.member_state import current_status, schedule_background, set_status


async def seed_institutions(rt: Runtime) -> None:
    """Insert or refresh the institutions the built-in connectors serve."""
    async with rt.db.write() as s:
        for spec in builtin_institutions(rt.connectors):
            inst = await institution_by_code(s, spec.code)
            if inst is None:
                inst = Institution(code=spec.code, guid=spec.guid, data_source="default")
                s.add(inst)
            inst.name = spec.name
            inst.connector = spec.connector
            inst.profile = dict(spec.profile)
            inst.credentials = list(spec.credentials)
            inst.throttle_exempt = spec.throttle_exempt
            if inst.is_retired is None:
                inst.is_retired = False


async def _member(s: AsyncSession, guid: str) -> Member:
    member = await s.scalar(select(Member).where(Member.guid == guid).with_for_update())
    if member is None:
        raise NotFound(f"No member {guid}.")
    return member


async def _cancel_active_job(
    s: AsyncSession, member: Member, reason: str, now: dt.datetime
) -> None:
    job = await s.scalar(select(Job).where(Job.active_member_id == member.id))
    if job is not None:
        finish(job, state=JobState.CANCELLED, now=now, error=reason)
    vault.clear_connector_state(member)


async def set_member_status(rt: Runtime, member_guid: str, status: Status) -> Member:
    """Disable (DISABLED) or close (CLOSED) a member; stops its jobs."""
    if status not in (Status.DISABLED, Status.CLOSED):
        raise BadRequest("Only DISABLED and CLOSED are set by hand.")
    async with rt.db.write() as s:
        member = await _member(s, member_guid)
        reason = f"member {status.value.lower()} by an operator"
        await _cancel_active_job(s, member, reason, rt.now())
        set_status(member, status, rt.now())
        await webhooks.member_event(s, rt, member, "updated")
    return member


async def enable_member(rt: Runtime, member_guid: str) -> Member:
    async with rt.db.write() as s:
        member = await _member(s, member_guid)
        if current_status(member) not in (Status.DISABLED, Status.CLOSED):
            raise BadRequest(f"Member is {member.connection_status}, not disabled or closed.")
        back = Status.CONNECTED if member.successfully_aggregated_at else Status.CREATED
        set_status(member, back, rt.now())
        schedule_background(rt, member, rt.now())
        await webhooks.member_event(s, rt, member, "updated")
    return member


async def retire_institution(rt: Runtime, code: str) -> int:
    """No longer support an institution: its members become DISCONTINUED."""
    async with rt.db.write() as s:
        inst = await institution_by_code(s, code)
        if inst is None:
            raise NotFound(f"No institution {code}.")
        inst.is_retired = True
        members = list(await s.scalars(select(Member).where(Member.institution_id == inst.id)))
        for member in members:
            await _cancel_active_job(s, member, "institution retired", rt.now())
            if set_status(member, Status.DISCONTINUED, rt.now()):
                await webhooks.member_event(s, rt, member, "updated")
    return len(members)


async def move_institution(rt: Runtime, code: str, data_source: str) -> int:
    """Switch an institution to a new data source: its connected members become
    RECONNECTED and wait for a foreground aggregation with the user present."""
    async with rt.db.write() as s:
        inst = await institution_by_code(s, code)
        if inst is None:
            raise NotFound(f"No institution {code}.")
        if inst.data_source == data_source:
            raise BadRequest(f"{code} already uses data source {data_source!r}.")
        inst.data_source = data_source
        moved = 0
        for member in await s.scalars(select(Member).where(Member.institution_id == inst.id)):
            if member.successfully_aggregated_at and current_status(member) not in NOT_AGGREGATABLE:
                member.data_source = data_source
                await _cancel_active_job(s, member, "institution moved", rt.now())
                set_status(member, Status.RECONNECTED, rt.now())
                await webhooks.member_event(s, rt, member, "updated")
                moved += 1
    return moved


async def import_member(
    rt: Runtime, client: Client, user_guid: str, institution_code: str, external_id: str | None
) -> Member:
    """A member brought over from another provider without credentials (IMPORTED)."""
    now = rt.now()
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        inst = await institution_by_code(s, institution_code)
        if inst is None:
            raise NotFound(f"No institution {institution_code}.")
        member = Member(
            guid=new_guid("MBR"),
            client_id=client.id,
            user_id=user.id,
            institution_id=inst.id,
            external_id=external_id,
            name=inst.name,
            is_oauth=False,
            consecutive_credential_failures=0,
            created_at=now,
            updated_at=now,
        )
        set_status(member, Status.IMPORTED, now)
        schedule_background(rt, member, now)
        s.add(member)
        await s.flush()
        await webhooks.member_event(s, rt, member, "created")
    return member

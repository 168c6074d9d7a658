"""Engineer use cases (console and CLI): the queue, taking a ticket, asking the end user
for more login info, escalating, marking invalid, resolving; then the verdict of the
member's next aggregation (``after_attempt``), and ending the tickets of deleted
members (``forget_members``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import (
    Member,
    Operator,
    SupportTicket,
    SupportTicketEvent,
)
from openagg.domain.causes import Cause
from openagg.domain.ids import stable_guid
from openagg.domain.policy import JobKind, Trigger
from openagg.domain.statuses import NEEDS_END_USER, Status
from openagg.domain.tickets import (
    IN_QUEUE,
    TicketStatus,
)
from openagg.queue import active_job, enqueue
from openagg.runtime import Runtime
from openagg.services.errors import BadRequest, NotFound, Unprocessable
from openagg.services.incidents import incident_members
from openagg.services.support.common import (
    ESCALATED,
    INFO_READ,
    INFO_REQUESTED,
    MARKED_INVALID,
    MEMBER_DELETED,
    RESOLVED,
    SYSTEM,
    TAKEN,
    VERIFICATION_FAILED,
    VERIFIED,
    TicketView,
    _aai_context,
    _change,
    _history,
    _is_open,
    _purge_login_info,
    _record,
    _view,
    _views_query,
    operator_actor,
)
from openagg.services.support.estimates import refresh_queue
from openagg.services.support.inputs import Prompt


async def _ticket_for_operator(s: AsyncSession, guid: str) -> SupportTicket:
    ticket = await s.scalar(
        select(SupportTicket).where(SupportTicket.guid == guid).with_for_update()
    )
    if ticket is None:
        raise NotFound(f"No ticket {guid}.")
    return ticket


def _require_open(ticket: SupportTicket, action: str) -> None:
    if not _is_open(ticket):
        raise Unprocessable(f"{ticket.guid} is {ticket.status}: it cannot be {action}.")


def _require_no_verdict_pending(ticket: SupportTicket, action: str) -> None:
    """After a resolve, the member's next aggregation decides; acting before muddles it."""
    if ticket.verifying_since is not None:
        raise Unprocessable(
            f"{ticket.guid} is being verified after a fix: it cannot be {action} until its "
            "member's aggregation closes or reopens it."
        )


async def queue(rt: Runtime, *, limit: int = 100) -> list[TicketView]:
    """The engineers' queue, oldest first (tickets waiting on the end user excluded)."""
    async with rt.db.read() as s:
        rows = await s.execute(
            _views_query()
            .where(
                SupportTicket.status.in_([st.value for st in IN_QUEUE]),
                SupportTicket.verifying_since.is_(None),
            )
            .order_by(SupportTicket.created_at, SupportTicket.id)
            .limit(limit)
        )
        return [TicketView(t, u, m, c) for t, u, m, c in rows]


async def read_for_operator(rt: Runtime, guid: str) -> tuple[TicketView, list[SupportTicketEvent]]:
    async with rt.db.read() as s:
        ticket = await s.scalar(select(SupportTicket).where(SupportTicket.guid == guid))
        if ticket is None:
            raise NotFound(f"No ticket {guid}.")
        events, _ = await _history(s, ticket, page=1, per_page=1000)
        return await _view(s, ticket), events


async def take(rt: Runtime, operator: Operator, guid: str) -> TicketView:
    async with rt.db.write() as s:
        ticket = await _ticket_for_operator(s, guid)
        _require_open(ticket, "taken")
        _require_no_verdict_pending(ticket, "taken")
        if ticket.status == TicketStatus.ADDITIONAL_LOGIN_INFO_REQUIRED:
            raise Unprocessable(f"{guid} waits for the end user's additional login info.")
        ticket.operator_id = operator.id
        await _change(s, rt, ticket, TicketStatus.IN_PROCESS, TAKEN, operator_actor(operator))
        await refresh_queue(s, rt)
        return await _view(s, ticket)


async def request_login_info(
    rt: Runtime, operator: Operator, guid: str, prompts: Sequence[Prompt], note: str | None = None
) -> TicketView:
    """Ask the end user for more (a one-time code, a security answer…), like MFA.
    The ticket's estimate is frozen until they answer."""
    if not prompts:
        raise BadRequest("Ask at least one question.")
    stored: list[dict[str, Any]] = []
    for i, prompt in enumerate(prompts):
        if not prompt.label.strip():
            raise BadRequest("A prompt needs a label.")
        if (prompt.type == "OPTIONS") != bool(prompt.options):
            raise BadRequest("OPTIONS prompts, and only they, list options.")
        prompt_guid = stable_guid("CRD", guid, "aai", str(i), prompt.label)
        stored.append(
            {
                "guid": prompt_guid,
                "label": prompt.label,
                "type": prompt.type,
                "field_name": None,
                "options": [
                    {"guid": stable_guid("CRD", prompt_guid, o), "label": o, "value": o}
                    for o in prompt.options
                ],
            }
        )
    async with rt.db.write() as s:
        ticket = await _ticket_for_operator(s, guid)
        _require_open(ticket, "asked for more login info")
        _require_no_verdict_pending(ticket, "asked for more login info")
        ticket.aai_prompts = stored
        ticket.aai_answers_enc = None
        ticket.operator_id = operator.id
        await _change(
            s,
            rt,
            ticket,
            TicketStatus.ADDITIONAL_LOGIN_INFO_REQUIRED,
            INFO_REQUESTED,
            operator_actor(operator),
            note=note,
        )
        await refresh_queue(s, rt)
        return await _view(s, ticket)


async def read_login_info(rt: Runtime, operator: Operator, guid: str) -> dict[str, str]:
    """The end user's answers, keyed by prompt label. Single use: they are erased as
    they are read."""
    async with rt.db.write() as s:
        ticket = await _ticket_for_operator(s, guid)
        if ticket.aai_answers_enc is None:
            raise Unprocessable(f"{guid} holds no unread additional login info.")
        answers: dict[str, str] = rt.keys.open_json(ticket.aai_answers_enc, _aai_context(ticket))
        labels = {p["guid"]: p["label"] for p in ticket.aai_prompts or []}
        ticket.aai_answers_enc = None
        ticket.aai_prompts = None
        _record(s, ticket, rt.now(), INFO_READ, operator_actor(operator), from_status=ticket.status)
    return {labels.get(k, k): v for k, v in answers.items()}


async def escalate_internally(
    rt: Runtime, operator: Operator, guid: str, note: str | None = None
) -> TicketView:
    """Hand the ticket up (a senior engineer, the institution): it keeps its place."""
    async with rt.db.write() as s:
        ticket = await _ticket_for_operator(s, guid)
        _require_open(ticket, "escalated")
        await _change(
            s, rt, ticket, TicketStatus.ESCALATED, ESCALATED, operator_actor(operator), note=note
        )
        await refresh_queue(s, rt)
        return await _view(s, ticket)


async def mark_invalid(
    rt: Runtime, operator: Operator, guid: str, note: str | None = None
) -> TicketView:
    async with rt.db.write() as s:
        ticket = await _ticket_for_operator(s, guid)
        _require_open(ticket, "marked invalid")
        await _change(
            s, rt, ticket, TicketStatus.INVALID, MARKED_INVALID, operator_actor(operator), note=note
        )
        await refresh_queue(s, rt)
        return await _view(s, ticket)


@dataclass
class Resolution:
    tickets: list[str]  # verifying now (closed or reopened by the members' next attempts)
    reopened: list[str]  # members that cannot be aggregated: reopened at once
    jobs_started: int


async def resolve(
    rt: Runtime, operator: Operator, guid: str, *, incident: bool = False, note: str | None = None
) -> Resolution:
    """The engineer fixed it: re-aggregate the affected members. Each ticket closes when
    its member's next aggregation succeeds and reopens when it fails.

    With ``incident``, the fix covers every member failing at the ticket's institution
    with the ticket's cause (their tickets, and members nobody reported)."""
    async with rt.db.write() as s:
        ticket = await _ticket_for_operator(s, guid)
        _require_open(ticket, "resolved")
        _require_no_verdict_pending(ticket, "resolved again")
        if ticket.member_id is None:
            raise Unprocessable(f"{guid} has no member any more.")
        member_ids = {ticket.member_id}
        if incident:
            member_ids |= set(await incident_members(s, ticket.institution_id, ticket.cause))
        tickets = [ticket]
        if len(member_ids) > 1:
            tickets += list(
                await s.scalars(
                    select(SupportTicket)
                    .where(
                        SupportTicket.open_member_id.in_(member_ids - {ticket.member_id}),
                        SupportTicket.verifying_since.is_(None),
                    )
                    .with_for_update()
                )
            )
        by_member = {t.member_id: t for t in tickets}
        actor = operator_actor(operator)
        now = rt.now()
        result = Resolution([], [], 0)
        members = await s.scalars(
            select(Member).where(Member.id.in_(member_ids)).order_by(Member.id).with_for_update()
        )
        for member in members:
            problem = _not_reaggregatable(member)
            t = by_member.get(member.id)
            if problem is None:
                if await active_job(s, member.id) is None:
                    enqueue(
                        s,
                        client_id=member.client_id,
                        member_id=member.id,
                        kind=JobKind.AGGREGATE,
                        trigger=Trigger.BACKGROUND,
                        now=now,
                    )
                    result.jobs_started += 1
                if t is not None:
                    t.verifying_since = now  # out of the queue until the verdict
                    t.queue_position = None
                    t.updated_at = now
                    t.operator_id = operator.id
                    _record(s, t, now, RESOLVED, actor, from_status=t.status, note=note)
                    result.tickets.append(t.guid)
            elif t is not None:
                _record(s, t, now, RESOLVED, actor, from_status=t.status, note=note)
                await _change(
                    s, rt, t, TicketStatus.REOPENED, VERIFICATION_FAILED, SYSTEM, note=problem
                )
                result.reopened.append(t.guid)
        await refresh_queue(s, rt)
    if result.jobs_started:
        rt.job_enqueued.set()
    return result


def _not_reaggregatable(member: Member) -> str | None:
    status = Status(member.connection_status) if member.connection_status else None
    if status in NEEDS_END_USER and status != Status.CHALLENGED:
        return f"The member is {status}: it cannot be re-aggregated without the end user."
    return None


async def after_attempt(s: AsyncSession, rt: Runtime, member: Member, cause: Cause) -> None:
    """A member's aggregation ended (``member_state.apply_outcome``): the verdict on a
    fix an engineer made. Success closes the ticket; failure puts it back in the queue
    at its original place. An MFA round is not a verdict yet."""
    if cause == Cause.MFA_REQUIRED:
        return
    ticket = await s.scalar(
        select(SupportTicket).where(
            SupportTicket.open_member_id == member.id, SupportTicket.verifying_since.is_not(None)
        )
    )
    if ticket is None:
        return
    ticket.verifying_since = None
    if cause == Cause.OK:
        await _change(
            s, rt, ticket, TicketStatus.CLOSED, VERIFIED, SYSTEM, note="the member aggregated"
        )
    else:
        await _change(
            s,
            rt,
            ticket,
            TicketStatus.REOPENED,
            VERIFICATION_FAILED,
            SYSTEM,
            note=f"the member still fails ({cause.value}, {member.connection_status})",
        )
    await refresh_queue(s, rt, wait=False)


async def forget_members(s: AsyncSession, rt: Runtime, member_ids: Sequence[int]) -> None:
    """Before members (or their user) are deleted: end their open tickets and erase
    the tickets' personal data. The anonymous rest (institution, cause, statuses,
    times, counts) stays for the platform's statistics."""
    if not member_ids:
        return
    tickets = list(
        await s.scalars(select(SupportTicket).where(SupportTicket.member_id.in_(member_ids)))
    )
    if not tickets:
        return
    now = rt.now()
    for ticket in tickets:
        if _is_open(ticket):
            await _change(
                s,
                rt,
                ticket,
                TicketStatus.INVALID,
                MEMBER_DELETED,
                SYSTEM,
                note="the member was deleted",
            )
        ticket.description = None
        ticket.special_instructions = None
        ticket.account_guids = None
        _purge_login_info(ticket)
        ticket.anonymized_at = now
    await s.flush()
    ids = [t.id for t in tickets]
    await s.execute(
        update(SupportTicketEvent)
        .where(SupportTicketEvent.ticket_id.in_(ids), SupportTicketEvent.actor_type != "SYSTEM")
        .values(note=None, client_address=None, request_id=None)
        .execution_options(synchronize_session=False)
    )
    await s.execute(
        update(SupportTicketEvent)
        .where(
            SupportTicketEvent.ticket_id.in_(ids),
            SupportTicketEvent.actor_type.in_(["END_USER", "AGENT"]),
        )
        .values(actor_id=None, actor_name=None)
        .execution_options(synchronize_session=False)
    )
    await refresh_queue(s, rt)

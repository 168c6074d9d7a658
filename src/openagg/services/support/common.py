"""What the support use cases share: the history's actions and actors, where a
client's request came from, a ticket with the guids it is shown with, and the helpers
that read tickets and change their status.

Every status change goes through ``_change``, which writes the history line and the
SUPPORT_TICKET webhook in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg import logs, wire
from openagg.db.models import (
    Institution,
    Member,
    Operator,
    SupportTicket,
    SupportTicketEvent,
    User,
)
from openagg.domain.tickets import (
    ENDED,
    OPEN,
    TicketStatus,
)
from openagg.runtime import Runtime
from openagg.services import webhooks

# History actions.
REPORTED, JOINED, REOPENED_BY_CLIENT = "reported", "joined", "reopened"
TAKEN, INFO_REQUESTED, INFO_SUBMITTED, INFO_READ = (
    "taken",
    "info_requested",
    "info_submitted",
    "info_read",
)
ESCALATED, MARKED_INVALID, RESOLVED = "escalated", "marked_invalid", "resolved"
VERIFIED, VERIFICATION_FAILED, MEMBER_DELETED = "verified", "verification_failed", "member_deleted"
# Actions that take a ticket out of the engineers' hands: the queue's pace.
QUEUE_EXITS = (RESOLVED, MARKED_INVALID)
# Actions by which a person asks for help (the burst policy counts them).
ASKING = (REPORTED, JOINED, REOPENED_BY_CLIENT)

ActorType = Literal["END_USER", "AGENT", "OPERATOR", "SYSTEM"]


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str | None = None
    name: str | None = None


SYSTEM = Actor("SYSTEM", None, "OpenAgg")


def operator_actor(operator: Operator) -> Actor:
    return Actor("OPERATOR", operator.guid, operator.name)


@dataclass(frozen=True)
class Origin:
    """Where a client's request came from, recorded on the report."""

    client_address: str | None
    request_id: str | None

    @classmethod
    def current(cls, client_address: str | None) -> Origin:
        return cls(client_address, logs.request_id.get())


@dataclass
class TicketView:
    ticket: SupportTicket
    user_guid: str | None
    member_guid: str | None
    institution_code: str

    def wire(self) -> dict[str, Any]:
        return wire.support_ticket(
            self.ticket,
            user_guid=self.user_guid,
            member_guid=self.member_guid,
            institution_code=self.institution_code,
        )


# ------------------------------------------------------------------------------ helpers


def _is_open(ticket: SupportTicket) -> bool:
    return TicketStatus(ticket.status) in OPEN


async def _view(s: AsyncSession, ticket: SupportTicket) -> TicketView:
    user_guid = member_guid = None
    if ticket.user_id is not None:
        user_guid = await s.scalar(select(User.guid).where(User.id == ticket.user_id))
    if ticket.member_id is not None:
        member_guid = await s.scalar(select(Member.guid).where(Member.id == ticket.member_id))
    code = await s.scalar(select(Institution.code).where(Institution.id == ticket.institution_id))
    assert code is not None
    return TicketView(ticket, user_guid, member_guid, code)


def _views_query() -> Select[Any]:
    """Tickets with their user's and member's guids (None once deleted) and institution."""
    q = (
        select(SupportTicket, User.guid, Member.guid, Institution.code)
        .outerjoin(User, User.id == SupportTicket.user_id)
        .outerjoin(Member, Member.id == SupportTicket.member_id)
        .join(Institution, Institution.id == SupportTicket.institution_id)
    )
    return cast("Select[Any]", q)


async def _page(
    s: AsyncSession,
    q: Select[Any],
    page: int,
    per_page: int,
    *,
    newest_first: bool = False,
) -> tuple[list[TicketView], int]:
    total = await s.scalar(select(func.count()).select_from(q.subquery()))
    order = (SupportTicket.created_at, SupportTicket.id)
    rows = await s.execute(
        q.order_by(*(c.desc() for c in order) if newest_first else order)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return [TicketView(t, u, m, c) for t, u, m, c in rows], total or 0


def _record(
    s: AsyncSession,
    ticket: SupportTicket,
    now: dt.datetime,
    action: str,
    actor: Actor,
    *,
    from_status: str | None,
    channel: str | None = None,
    origin: Origin | None = None,
    end_user_present: bool | None = None,
    note: str | None = None,
) -> None:
    s.add(
        SupportTicketEvent(
            ticket_id=ticket.id,
            client_id=ticket.client_id,
            at=now,
            action=action,
            actor_type=actor.type,
            actor_id=actor.id,
            actor_name=actor.name,
            from_status=from_status,
            to_status=ticket.status,
            channel=channel,
            client_address=origin.client_address if origin else None,
            request_id=origin.request_id if origin else None,
            end_user_present=end_user_present,
            note=note,
        )
    )


async def _emit(
    s: AsyncSession, rt: Runtime, ticket: SupportTicket, previous_status: str | None
) -> None:
    async def payload() -> dict[str, Any]:
        v = await _view(s, ticket)
        return wire.webhook_support_ticket(
            ticket,
            previous_status=previous_status,
            user_guid=v.user_guid,
            member_guid=v.member_guid,
            institution_code=v.institution_code,
        )

    member_guid = None
    if ticket.member_id is not None:
        member_guid = await s.scalar(select(Member.guid).where(Member.id == ticket.member_id))
    await webhooks.emit(
        s,
        rt,
        client_id=ticket.client_id,
        event_type=webhooks.EventType.SUPPORT_TICKET,
        payload=payload,
        member_guid=member_guid,
    )


def _purge_login_info(ticket: SupportTicket) -> None:
    ticket.aai_prompts = None
    ticket.aai_answers_enc = None


async def _change(
    s: AsyncSession,
    rt: Runtime,
    ticket: SupportTicket,
    to: TicketStatus,
    action: str,
    actor: Actor,
    *,
    note: str | None = None,
    origin: Origin | None = None,
    channel: str | None = None,
    end_user_present: bool | None = None,
) -> None:
    """The one place a ticket's status changes: history line and webhook included."""
    now = rt.now()
    previous = ticket.status
    ticket.status = to.value
    ticket.updated_at = now
    if to in ENDED:
        ticket.open_member_id = None
        ticket.queue_position = None
        ticket.verifying_since = None
        ticket.resolved_at = now
        _purge_login_info(ticket)  # single-use, and never kept past the ticket
    else:
        ticket.open_member_id = ticket.member_id
        ticket.resolved_at = None
    _record(
        s,
        ticket,
        now,
        action,
        actor,
        from_status=previous,
        channel=channel,
        origin=origin,
        end_user_present=end_user_present,
        note=note,
    )
    if previous != to.value:
        await _emit(s, rt, ticket, previous)


async def _history(
    s: AsyncSession, ticket: SupportTicket, *, page: int, per_page: int
) -> tuple[list[SupportTicketEvent], int]:
    q = select(SupportTicketEvent).where(SupportTicketEvent.ticket_id == ticket.id)
    total = await s.scalar(select(func.count()).select_from(q.subquery()))
    events = await s.scalars(
        q.order_by(SupportTicketEvent.id).offset((page - 1) * per_page).limit(per_page)
    )
    return list(events), total or 0


def _aai_context(ticket: SupportTicket) -> str:
    return f"{ticket.guid}:additional_login_info"

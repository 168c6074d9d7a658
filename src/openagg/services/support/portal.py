"""The developer portal (read-only): one ticket as its client sees it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from openagg.db.models import (
    Client,
    Member,
    SupportTicket,
    SupportTicketEvent,
)
from openagg.queue import active_job
from openagg.runtime import Runtime
from openagg.services.errors import NotFound
from openagg.services.support.common import TicketView, _history, _view


@dataclass
class ClientTicket:
    """One ticket as its client sees it in the portal."""

    view: TicketView
    events: list[SupportTicketEvent]  # the history, oldest first
    events_total: int
    member: Member | None  # its current state; None once deleted
    member_is_being_aggregated: bool


async def read_client_ticket(
    rt: Runtime, client: Client, ticket_guid: str, *, max_events: int = 1000
) -> ClientTicket:
    """A ticket of this client by its guid (another client's is not found), its
    history, and its member's current state."""
    async with rt.db.read() as s:
        ticket = await s.scalar(
            select(SupportTicket).where(
                SupportTicket.guid == ticket_guid,
                SupportTicket.client_id == client.id,
                SupportTicket.anonymized_at.is_(None),
            )
        )
        if ticket is None:
            raise NotFound()
        events, total = await _history(s, ticket, page=1, per_page=max_events)
        member = await s.get(Member, ticket.member_id) if ticket.member_id else None
        running = member is not None and await active_job(s, member.id) is not None
        return ClientTicket(await _view(s, ticket), events, total, member, running)

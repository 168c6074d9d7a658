"""Support tickets (OpenAgg extension): the ticket, its history, its webhook."""

from __future__ import annotations

from typing import Any

from openagg.db.models import SupportTicket, SupportTicketEvent
from openagg.wire.members import challenge
from openagg.wire.scalars import iso


def support_ticket(
    t: SupportTicket, *, user_guid: str | None, member_guid: str | None, institution_code: str
) -> dict[str, Any]:
    """A support ticket in MX's style. The prompts show only while the end user owes
    the answers; answers are never returned."""
    prompts = t.aai_prompts if t.status == "ADDITIONAL_LOGIN_INFO_REQUIRED" else None
    return {
        "account_guids": list(t.account_guids or []),
        "additional_login_info": [challenge(p) for p in prompts] if prompts else None,
        "cause": t.cause,
        "channel": t.channel,
        "connection_status": t.connection_status,
        "created_at": iso(t.created_at),
        "description": t.description,
        "estimated_resolution_at": iso(t.estimated_resolution_at),
        "guid": t.guid,
        "institution_code": institution_code,
        "member_guid": member_guid,
        "queue_position": t.queue_position,
        "report_count": int(t.report_count),
        "resolved_at": iso(t.resolved_at),
        "special_instructions": t.special_instructions,
        "status": t.status,
        "updated_at": iso(t.updated_at),
        "user_guid": user_guid,
    }


def support_ticket_event(e: SupportTicketEvent) -> dict[str, Any]:
    """One line of a ticket's history: who, when, what, from which status to which."""
    return {
        "action": e.action,
        "actor": {"id": e.actor_id, "name": e.actor_name, "type": e.actor_type},
        "channel": e.channel,
        "client_address": e.client_address,
        "created_at": iso(e.at),
        "from_status": e.from_status,
        "note": e.note,
        "request_id": e.request_id,
        "to_status": e.to_status,
    }


def webhook_support_ticket(
    t: SupportTicket,
    *,
    previous_status: str | None,
    user_guid: str | None,
    member_guid: str | None,
    institution_code: str,
) -> dict[str, Any]:
    """SUPPORT_TICKET: a ticket's status changed. Free text (description, special
    instructions) stays out of the outbox: the client wrote it and can read it."""
    return {
        "action": "CREATED" if previous_status is None else "STATUS_CHANGED",
        "type": "SUPPORT_TICKET",
        "estimated_resolution_at": iso(t.estimated_resolution_at),
        "institution_code": institution_code,
        "member_guid": member_guid,
        "previous_status": previous_status,
        "queue_position": t.queue_position,
        "report_count": int(t.report_count),
        "resolved_at": iso(t.resolved_at),
        "status": t.status,
        "support_ticket_guid": t.guid,
        "updated_at": iso(t.updated_at),
        "user_guid": user_guid,
    }

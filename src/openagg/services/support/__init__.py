"""Aggregation support tickets: escalation by people, the engineers' first-in-first-out
queue and its estimates, additional login info, and verification of a fix by
re-aggregating (docs/support.md).

The rules are in ``domain/tickets.py``; this package applies them in one transaction
per use case. Every status change goes through ``common._change``, which writes the
history line and the SUPPORT_TICKET webhook in the same transaction; every use case
ends with ``estimates.refresh_queue``, which recomputes the queue positions and
estimates.

The modules: ``common`` (history actions, actors, ticket views, the shared helpers),
``inputs`` (request bodies, prompts), ``estimates`` (the queue and its estimates),
``client`` (the client's use cases), ``engineer`` (the engineers' use cases and the
verdict after a fix), ``portal`` (the developer portal's read). Callers use the names
re-exported here: ``from openagg.services import support`` then ``support.take(...)``.
"""

from __future__ import annotations

from openagg.services.support.client import (
    Escalation,
    escalate,
    list_client_tickets,
    list_user_tickets,
    read_ticket,
    reopen,
    submit_login_info,
    ticket_history,
)
from openagg.services.support.common import (
    ASKING,
    ESCALATED,
    INFO_READ,
    INFO_REQUESTED,
    INFO_SUBMITTED,
    JOINED,
    MARKED_INVALID,
    MEMBER_DELETED,
    QUEUE_EXITS,
    REOPENED_BY_CLIENT,
    REPORTED,
    RESOLVED,
    SYSTEM,
    TAKEN,
    VERIFICATION_FAILED,
    VERIFIED,
    Actor,
    ActorType,
    Origin,
    TicketView,
    operator_actor,
)
from openagg.services.support.engineer import (
    Resolution,
    after_attempt,
    escalate_internally,
    forget_members,
    mark_invalid,
    queue,
    read_for_operator,
    read_login_info,
    request_login_info,
    resolve,
    take,
)
from openagg.services.support.estimates import refresh_queue, resolution_rate
from openagg.services.support.inputs import (
    AdditionalLoginInfoBody,
    AdditionalLoginInfoFields,
    Agent,
    Prompt,
    PromptType,
    TicketCreateBody,
    TicketCreateFields,
    TicketReopenBody,
    TicketReopenFields,
)
from openagg.services.support.portal import ClientTicket, read_client_ticket

__all__ = [
    "ASKING",
    "ESCALATED",
    "INFO_READ",
    "INFO_REQUESTED",
    "INFO_SUBMITTED",
    "JOINED",
    "MARKED_INVALID",
    "MEMBER_DELETED",
    "QUEUE_EXITS",
    "REOPENED_BY_CLIENT",
    "REPORTED",
    "RESOLVED",
    "SYSTEM",
    "TAKEN",
    "VERIFICATION_FAILED",
    "VERIFIED",
    "Actor",
    "ActorType",
    "AdditionalLoginInfoBody",
    "AdditionalLoginInfoFields",
    "Agent",
    "ClientTicket",
    "Escalation",
    "Origin",
    "Prompt",
    "PromptType",
    "Resolution",
    "TicketCreateBody",
    "TicketCreateFields",
    "TicketReopenBody",
    "TicketReopenFields",
    "TicketView",
    "after_attempt",
    "escalate",
    "escalate_internally",
    "forget_members",
    "list_client_tickets",
    "list_user_tickets",
    "mark_invalid",
    "operator_actor",
    "queue",
    "read_client_ticket",
    "read_for_operator",
    "read_login_info",
    "read_ticket",
    "refresh_queue",
    "reopen",
    "request_login_info",
    "resolution_rate",
    "resolve",
    "submit_login_info",
    "take",
    "ticket_history",
]

"""Support tickets: an OpenAgg extension in MX's style (docs/support.md).

End users escalate from the app (channel DIRECT) and support agents from a CRM
(INDIRECT); both read the ticket's status, queue position and estimate, and its
history; the end user answers the engineer's questions and reopens a ticket when the
problem comes back."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from openagg import wire
from openagg.api.http import (
    current_client,
    mx,
    mx_page,
    paging,
    parse_body,
    query_date,
    query_list,
    runtime,
)
from openagg.api.routing import Router
from openagg.db.models import Client
from openagg.services import support
from openagg.services.support import (
    AdditionalLoginInfoBody,
    Origin,
    TicketCreateBody,
    TicketReopenBody,
    TicketReopenFields,
    TicketView,
)

router = Router()
MAX_PER_PAGE = 1000


def _origin(request: Request) -> Origin:
    return Origin.current(request.client.host if request.client else None)


def _one(view: TicketView) -> Response:
    return mx({"support_ticket": view.wire()})


def _many(views: list[TicketView], page: int, per_page: int, total: int) -> Response:
    return mx_page("support_tickets", [v.wire() for v in views], page, per_page, total)


@router.post("/users/{user_guid}/members/{member_guid}/support_tickets")
async def escalate(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, TicketCreateBody)
    result = await support.escalate(
        runtime(request), client, user_guid, member_guid, body.support_ticket, _origin(request)
    )
    # 200 when the report joined the member's open ticket, 201 for a new one.
    return mx({"support_ticket": result.view.wire()}, status_code=200 if result.joined else 201)


@router.get("/users/{user_guid}/support_tickets")
async def list_user_tickets(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, MAX_PER_PAGE)
    views, total = await support.list_user_tickets(
        runtime(request),
        client,
        user_guid,
        statuses=query_list(request, "status"),
        page=page,
        per_page=per_page,
    )
    return _many(views, page, per_page, total)


@router.get("/users/{user_guid}/members/{member_guid}/support_tickets")
async def list_member_tickets(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, MAX_PER_PAGE)
    views, total = await support.list_user_tickets(
        runtime(request),
        client,
        user_guid,
        member_guid=member_guid,
        statuses=query_list(request, "status"),
        page=page,
        per_page=per_page,
    )
    return _many(views, page, per_page, total)


@router.get("/users/{user_guid}/support_tickets/{ticket_guid}")
async def read_ticket(
    user_guid: str, ticket_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return _one(await support.read_ticket(runtime(request), client, user_guid, ticket_guid))


@router.get("/users/{user_guid}/support_tickets/{ticket_guid}/history")
async def ticket_history(
    user_guid: str, ticket_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, MAX_PER_PAGE)
    events, total = await support.ticket_history(
        runtime(request), client, user_guid, ticket_guid, page=page, per_page=per_page
    )
    return mx_page(
        "support_ticket_events",
        [wire.support_ticket_event(e) for e in events],
        page,
        per_page,
        total,
    )


@router.put("/users/{user_guid}/support_tickets/{ticket_guid}/additional_login_info")
async def submit_login_info(
    user_guid: str, ticket_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    body = await parse_body(request, AdditionalLoginInfoBody)
    view = await support.submit_login_info(
        runtime(request),
        client,
        user_guid,
        ticket_guid,
        body.support_ticket.additional_login_info,
        _origin(request),
    )
    return _one(view)


@router.post("/users/{user_guid}/support_tickets/{ticket_guid}/reopen")
async def reopen(
    user_guid: str, ticket_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    # The body is optional: the ticket's own channel when none is given.
    fields = TicketReopenFields()
    if (await request.body()).strip():
        fields = (await parse_body(request, TicketReopenBody)).support_ticket
    view = await support.reopen(
        runtime(request), client, user_guid, ticket_guid, fields, _origin(request)
    )
    return _one(view)


@router.get("/support_tickets")
async def list_client_tickets(
    request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, MAX_PER_PAGE)
    q = request.query_params
    views, total = await support.list_client_tickets(
        runtime(request),
        client,
        statuses=query_list(request, "status"),
        institution_code=q.get("institution_code") or None,
        channel=q.get("channel") or None,
        from_date=query_date(request, "from_date"),
        to_date=query_date(request, "to_date"),
        user_guid=q.get("user_guid") or None,
        member_guid=q.get("member_guid") or None,
        page=page,
        per_page=per_page,
    )
    return _many(views, page, per_page, total)

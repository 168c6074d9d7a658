"""Client use cases: a person (the end user, or the client's agent) escalates a member,
reads and lists tickets, reopens a closed one, and answers an engineer's prompts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import (
    Account,
    Attempt,
    Client,
    Institution,
    Member,
    SupportTicket,
    SupportTicketEvent,
    User,
)
from openagg.domain.causes import Cause
from openagg.domain.ids import new_guid
from openagg.domain.statuses import Status
from openagg.domain.tickets import (
    Channel,
    EscalationView,
    Requester,
    TicketStatus,
    burst_refusal,
    escalation_refusal,
    presence_window_ok,
    requester_refusal,
)
from openagg.runtime import Runtime
from openagg.services.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unprocessable
from openagg.services.inputs import CredentialValue
from openagg.services.lookup import member_by_guid, user_by_guid
from openagg.services.support.common import (
    ASKING,
    INFO_SUBMITTED,
    JOINED,
    REOPENED_BY_CLIENT,
    REPORTED,
    Actor,
    Origin,
    TicketView,
    _aai_context,
    _change,
    _emit,
    _history,
    _page,
    _record,
    _view,
    _views_query,
)
from openagg.services.support.estimates import refresh_queue
from openagg.services.support.inputs import Agent, TicketCreateFields, TicketReopenFields


async def _last_attempt_cause(s: AsyncSession, member: Member) -> Cause | None:
    cause = await s.scalar(
        select(Attempt.cause)
        .where(Attempt.member_id == member.id, Attempt.finished_at.is_not(None))
        .order_by(Attempt.id.desc())
        .limit(1)
    )
    return Cause(cause) if cause else None


async def _check_account_guids(s: AsyncSession, member: Member, guids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(guids))
    if not unique:
        return []
    known = set(
        await s.scalars(
            select(Account.guid).where(Account.member_id == member.id, Account.guid.in_(unique))
        )
    )
    unknown = [g for g in unique if g not in known]
    if unknown:
        raise BadRequest(f"Account guid(s) not on this member: {', '.join(unknown)}.")
    return unique


def _requester(
    channel: Channel, agent: Agent | None, member: Member, user: User
) -> tuple[Requester, Actor]:
    if channel == Channel.DIRECT and agent is not None:
        raise BadRequest("agent is for INDIRECT tickets; a DIRECT ticket comes from the end user.")
    requester = Requester(
        channel=channel,
        end_user_present_at=member.end_user_present_at,
        agent_id=agent.id if agent else None,
        agent_name=agent.name if agent else None,
    )
    if channel == Channel.DIRECT:
        return requester, Actor("END_USER", user.guid, user.external_id)
    return requester, Actor("AGENT", requester.agent_id, requester.agent_name)


async def _check_people_ask(
    s: AsyncSession, rt: Runtime, client: Client, requester: Requester, now: dt.datetime
) -> bool:
    """No automatic submission: 422 without evidence of a person, 429 for a burst of
    escalations for members nobody is using. Returns whether the end user was present."""
    cfg = rt.settings
    presence = dt.timedelta(seconds=cfg.support_presence_window_seconds)
    refusal = requester_refusal(requester, now, presence)
    if refusal:
        raise Unprocessable(refusal)
    present = presence_window_ok(requester.end_user_present_at, now, presence)
    if not present:
        window = dt.timedelta(seconds=cfg.support_burst_window_seconds)
        recent = await s.scalar(
            select(func.count())
            .select_from(SupportTicketEvent)
            .where(
                SupportTicketEvent.client_id == client.id,
                SupportTicketEvent.at >= now - window,
                SupportTicketEvent.action.in_(ASKING),
                SupportTicketEvent.end_user_present.is_(False),
            )
        )
        refusal = burst_refusal(recent or 0, cfg.support_burst_max_tickets, window)
        if refusal:
            raise TooManyRequests(refusal)
    return present


async def _check_member(s: AsyncSession, member: Member, has_instructions: bool) -> Cause | None:
    cause = await _last_attempt_cause(s, member)
    view = EscalationView(
        status=Status(member.connection_status) if member.connection_status else None,
        last_attempt_cause=cause,
        has_special_instructions=has_instructions,
    )
    refusal = escalation_refusal(view)
    if refusal:
        raise Unprocessable(refusal)
    return cause


async def _open_ticket(s: AsyncSession, member_id: int) -> SupportTicket | None:
    return await s.scalar(select(SupportTicket).where(SupportTicket.open_member_id == member_id))


@dataclass
class Escalation:
    view: TicketView
    joined: bool  # an open ticket existed: this report joined it


async def escalate(
    rt: Runtime,
    client: Client,
    user_guid: str,
    member_guid: str,
    fields: TicketCreateFields,
    origin: Origin,
) -> Escalation:
    """Open a ticket for a member, or join its open one (``report_count`` grows)."""
    now = rt.now()
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        # The member's row lock serialises escalations of one member (PostgreSQL);
        # the unique open_member_id is the database's last word.
        member = await member_by_guid(s, user, member_guid, lock=True)
        accounts = await _check_account_guids(s, member, fields.account_guids or [])
        requester, actor = _requester(fields.channel, fields.agent, member, user)
        ticket = await _open_ticket(s, member.id)
        instructions = bool(fields.special_instructions and fields.special_instructions.strip())
        has_instructions = instructions or bool(ticket and ticket.special_instructions)
        cause = await _check_member(s, member, has_instructions)
        present = await _check_people_ask(s, rt, client, requester, now)
        if ticket is not None:
            ticket.report_count += 1
            ticket.updated_at = now
            if accounts:
                ticket.account_guids = list(
                    dict.fromkeys([*(ticket.account_guids or []), *accounts])
                )
            if instructions and not ticket.special_instructions:
                ticket.special_instructions = fields.special_instructions
            _record(
                s,
                ticket,
                now,
                JOINED,
                actor,
                from_status=ticket.status,
                channel=fields.channel.value,
                origin=origin,
                end_user_present=present,
                note=fields.description,
            )
        else:
            ticket = SupportTicket(
                guid=new_guid("TKT"),
                client_id=client.id,
                user_id=user.id,
                member_id=member.id,
                open_member_id=member.id,
                institution_id=member.institution_id,
                status=TicketStatus.NEW.value,
                channel=fields.channel.value,
                description=fields.description,
                special_instructions=fields.special_instructions if instructions else None,
                account_guids=accounts,
                connection_status=member.connection_status,
                cause=cause.value if cause else None,
                report_count=1,
                created_at=now,
                updated_at=now,
            )
            s.add(ticket)
            await s.flush()
            _record(
                s,
                ticket,
                now,
                REPORTED,
                actor,
                from_status=None,
                channel=fields.channel.value,
                origin=origin,
                end_user_present=present,
            )
            await refresh_queue(s, rt)
            await _emit(s, rt, ticket, None)
            return Escalation(
                TicketView(ticket, user.guid, member.guid, await _code(s, ticket)), False
            )
        await refresh_queue(s, rt)
        return Escalation(TicketView(ticket, user.guid, member.guid, await _code(s, ticket)), True)


async def _code(s: AsyncSession, ticket: SupportTicket) -> str:
    code = await s.scalar(select(Institution.code).where(Institution.id == ticket.institution_id))
    assert code is not None
    return code


async def _user_ticket(
    s: AsyncSession, client: Client, user_guid: str, ticket_guid: str
) -> tuple[User, SupportTicket]:
    user = await user_by_guid(s, client, user_guid)
    ticket = await s.scalar(
        select(SupportTicket).where(
            SupportTicket.guid == ticket_guid,
            SupportTicket.user_id == user.id,
            SupportTicket.client_id == client.id,
        )
    )
    if ticket is None:
        raise NotFound()
    return user, ticket


async def read_ticket(rt: Runtime, client: Client, user_guid: str, ticket_guid: str) -> TicketView:
    async with rt.db.read() as s:
        _, ticket = await _user_ticket(s, client, user_guid, ticket_guid)
        return await _view(s, ticket)


async def ticket_history(
    rt: Runtime, client: Client, user_guid: str, ticket_guid: str, *, page: int, per_page: int
) -> tuple[list[SupportTicketEvent], int]:
    async with rt.db.read() as s:
        _, ticket = await _user_ticket(s, client, user_guid, ticket_guid)
        return await _history(s, ticket, page=page, per_page=per_page)


def _status_filter(statuses: Sequence[str]) -> list[str]:
    valid = {st.value for st in TicketStatus}
    wanted = [v.upper() for v in statuses]
    unknown = [v for v in wanted if v not in valid]
    if unknown:
        raise BadRequest(
            f"Unknown ticket status(es): {', '.join(unknown)}; one of {', '.join(sorted(valid))}."
        )
    return wanted


async def list_user_tickets(
    rt: Runtime,
    client: Client,
    user_guid: str,
    *,
    member_guid: str | None = None,
    statuses: Sequence[str] = (),
    page: int,
    per_page: int,
) -> tuple[list[TicketView], int]:
    async with rt.db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        q = _views_query().where(
            SupportTicket.client_id == client.id, SupportTicket.user_id == user.id
        )
        if member_guid is not None:
            member = await member_by_guid(s, user, member_guid)
            q = q.where(SupportTicket.member_id == member.id)
        if statuses:
            q = q.where(SupportTicket.status.in_(_status_filter(statuses)))
        return await _page(s, q, page, per_page)


async def list_client_tickets(
    rt: Runtime,
    client: Client,
    *,
    statuses: Sequence[str] = (),
    institution_code: str | None = None,
    channel: str | None = None,
    from_date: dt.date | None = None,
    to_date: dt.date | None = None,
    user_guid: str | None = None,
    member_guid: str | None = None,
    newest_first: bool = False,
    page: int,
    per_page: int,
) -> tuple[list[TicketView], int]:
    """Every ticket of the client (a CRM's view, the portal's list); tickets of deleted
    members are gone from it (their personal data is, and they belong to nobody any
    more). An unknown user or member guid filters everything out: it is a search."""
    q = _views_query().where(
        SupportTicket.client_id == client.id, SupportTicket.anonymized_at.is_(None)
    )
    if statuses:
        q = q.where(SupportTicket.status.in_(_status_filter(statuses)))
    if institution_code:
        q = q.where(Institution.code == institution_code.strip())
    if channel:
        if channel.upper() not in {c.value for c in Channel}:
            raise BadRequest("Query parameter 'channel' must be DIRECT or INDIRECT.")
        q = q.where(SupportTicket.channel == channel.upper())
    if from_date and to_date and from_date > to_date:
        raise BadRequest("from_date must not be after to_date.")
    if from_date:
        q = q.where(SupportTicket.created_at >= _midnight(from_date))
    if to_date:
        q = q.where(SupportTicket.created_at < _midnight(to_date + dt.timedelta(days=1)))
    if user_guid:
        q = q.where(User.guid == user_guid.strip())
    if member_guid:
        q = q.where(Member.guid == member_guid.strip())
    async with rt.db.read() as s:
        return await _page(s, q, page, per_page, newest_first=newest_first)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


async def reopen(
    rt: Runtime,
    client: Client,
    user_guid: str,
    ticket_guid: str,
    fields: TicketReopenFields,
    origin: Origin,
) -> TicketView:
    """The problem came back after CLOSED: the ticket goes back to its original place."""
    now = rt.now()
    async with rt.db.write() as s:
        user, ticket = await _user_ticket(s, client, user_guid, ticket_guid)
        if ticket.status != TicketStatus.CLOSED or ticket.member_id is None:
            raise Unprocessable(
                f"This ticket is {ticket.status}: only a CLOSED ticket can be reopened."
            )
        member = await s.scalar(
            select(Member).where(Member.id == ticket.member_id).with_for_update()
        )
        assert member is not None
        other = await _open_ticket(s, member.id)
        if other is not None:
            raise Conflict(f"This member already has an open ticket ({other.guid}).")
        channel = fields.channel or Channel(ticket.channel)
        requester, actor = _requester(channel, fields.agent, member, user)
        if fields.special_instructions and fields.special_instructions.strip():
            ticket.special_instructions = fields.special_instructions
        await _check_member(s, member, bool(ticket.special_instructions))
        present = await _check_people_ask(s, rt, client, requester, now)
        ticket.report_count += 1
        await _change(
            s,
            rt,
            ticket,
            TicketStatus.REOPENED,
            REOPENED_BY_CLIENT,
            actor,
            note=fields.description,
            origin=origin,
            channel=channel.value,
            end_user_present=present,
        )
        await refresh_queue(s, rt)
        return TicketView(ticket, user.guid, member.guid, await _code(s, ticket))


async def submit_login_info(
    rt: Runtime,
    client: Client,
    user_guid: str,
    ticket_guid: str,
    answers: list[CredentialValue],
    origin: Origin,
) -> TicketView:
    """The end user's answers to the engineer's prompts, sealed until an engineer
    reads them (once) or the ticket ends."""
    async with rt.db.write() as s:
        user, ticket = await _user_ticket(s, client, user_guid, ticket_guid)
        if ticket.status != TicketStatus.ADDITIONAL_LOGIN_INFO_REQUIRED:
            raise Unprocessable(
                f"This ticket is {ticket.status}: no additional login info is requested."
            )
        prompts = {p["guid"]: p for p in ticket.aai_prompts or []}
        given: dict[str, str] = {}
        for answer in answers:
            if answer.guid in given:
                raise BadRequest(f"Prompt guid '{answer.guid}' is answered twice.")
            given[answer.guid] = answer.value
        unknown = sorted(set(given) - set(prompts))
        if unknown:
            raise BadRequest(f"Unknown prompt guid(s): {', '.join(unknown)}.")
        missing = sorted(set(prompts) - set(given))
        if missing:
            raise BadRequest(f"Missing answer(s) for prompt guid(s): {', '.join(missing)}.")
        for guid, value in given.items():
            options = prompts[guid].get("options") or []
            if options and value not in {o["value"] for o in options}:
                raise BadRequest(
                    f"The answer to prompt '{guid}' must be one of its options' values."
                )
            if not value.strip():
                raise BadRequest(f"The answer to prompt '{guid}' is empty.")
        ticket.aai_answers_enc = rt.keys.seal_json(given, _aai_context(ticket))
        await _change(
            s,
            rt,
            ticket,
            TicketStatus.ADDITIONAL_LOGIN_INFO_SUBMITTED,
            INFO_SUBMITTED,
            Actor("END_USER", user.guid, user.external_id),
            origin=origin,
        )
        await refresh_queue(s, rt)
        return await _view(s, ticket)

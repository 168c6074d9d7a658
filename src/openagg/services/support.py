"""Aggregation support tickets: escalation by people, the engineers' first-in-first-out
queue and its estimates, additional login info, and verification of a fix by
re-aggregating (docs/support.md).

The rules are in ``domain/tickets.py``; this module applies them in one transaction
per use case. Every status change goes through ``_change``, which writes the history
line and the SUPPORT_TICKET webhook in the same transaction; every use case ends with
``refresh_queue``, which recomputes the queue positions and estimates.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import Field, StrictStr
from sqlalchemy import Select, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from openagg import logs, wire
from openagg.db.models import (
    Account,
    Attempt,
    Client,
    Institution,
    Member,
    Operator,
    SupportTicket,
    SupportTicketEvent,
    User,
)
from openagg.domain.causes import Cause
from openagg.domain.ids import new_guid, stable_guid
from openagg.domain.policy import JobKind, Trigger
from openagg.domain.statuses import NEEDS_END_USER, Status
from openagg.domain.tickets import (
    ENDED,
    IN_QUEUE,
    OPEN,
    Channel,
    EscalationView,
    Requester,
    TicketStatus,
    burst_refusal,
    escalation_refusal,
    estimate,
    presence_window_ok,
    requester_refusal,
    trailing_rate,
)
from openagg.engine.queue import active_job, enqueue
from openagg.runtime import Runtime
from openagg.services import webhooks
from openagg.services.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unprocessable
from openagg.services.incidents import incident_members
from openagg.services.inputs import CredentialValue, Strict
from openagg.services.lookup import member_by_guid, user_by_guid

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


# ------------------------------------------------------------------------ request bodies


class Agent(Strict):
    id: StrictStr = Field(min_length=1, max_length=255)
    name: StrictStr = Field(min_length=1, max_length=255)


class TicketCreateFields(Strict):
    channel: Channel
    description: StrictStr = Field(min_length=1, max_length=4000)
    account_guids: list[StrictStr] | None = Field(default=None, max_length=100)
    special_instructions: StrictStr | None = Field(default=None, max_length=4000)
    agent: Agent | None = None


class TicketCreateBody(Strict):
    support_ticket: TicketCreateFields


class TicketReopenFields(Strict):
    channel: Channel | None = None  # the ticket's own channel when omitted
    description: StrictStr | None = Field(default=None, max_length=4000)
    special_instructions: StrictStr | None = Field(default=None, max_length=4000)
    agent: Agent | None = None


class TicketReopenBody(Strict):
    support_ticket: TicketReopenFields


class AdditionalLoginInfoFields(Strict):
    additional_login_info: list[CredentialValue] = Field(min_length=1, max_length=20)


class AdditionalLoginInfoBody(Strict):
    support_ticket: AdditionalLoginInfoFields


PromptType = Literal["TEXT", "TOKEN", "OPTIONS"]


@dataclass(frozen=True)
class Prompt:
    """One question an engineer asks the end user (shaped like an MFA challenge)."""

    label: str
    type: PromptType = "TEXT"
    options: tuple[str, ...] = ()


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


# ------------------------------------------------------------------ queue and estimates


async def _serialize_queue_updates(s: AsyncSession, rt: Runtime, *, wait: bool) -> bool:
    """PostgreSQL: one queue recomputation at a time, so two commits cannot leave
    positions computed from each other's stale view. (SQLite writers are serial.)
    Without ``wait``, returns False at once when another transaction holds it."""
    if rt.db.sqlite:
        return True
    key = {"key": zlib.crc32(b"openagg.support.queue")}
    if wait:
        await s.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)
        return True
    return bool(await s.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), key))


async def resolution_rate(s: AsyncSession, rt: Runtime, now: dt.datetime) -> float:
    """Tickets leaving the engineers' queue per second, over the trailing window."""
    cfg = rt.settings
    window = dt.timedelta(seconds=cfg.support_rate_window_seconds)
    resolved = await s.scalar(
        select(func.count())
        .select_from(SupportTicketEvent)
        .where(SupportTicketEvent.action.in_(QUEUE_EXITS), SupportTicketEvent.at >= now - window)
    )
    first = await s.scalar(select(SupportTicket.created_at).order_by(SupportTicket.id).limit(1))
    return trailing_rate(
        resolved or 0,
        window,
        now - first if first else dt.timedelta(0),
        min_resolutions=cfg.support_rate_min_resolutions,
        assumed_per_day=cfg.support_assumed_resolutions_per_day,
    )


def _queue_query() -> Select[Any]:
    """The engineers' queue: first in, first out. A reopened ticket keeps its place
    because its ``created_at`` never changes."""
    return (
        select(SupportTicket)
        .where(
            SupportTicket.status.in_([st.value for st in IN_QUEUE]),
            SupportTicket.verifying_since.is_(None),
        )
        .order_by(SupportTicket.created_at, SupportTicket.id)
    )


# An estimate that moved less than this is not rewritten (nor its row).
_ESTIMATE_TOLERANCE = dt.timedelta(minutes=1)


async def refresh_queue(s: AsyncSession, rt: Runtime, *, wait: bool = True) -> None:
    """Recompute every queued ticket's position and estimated resolution.

    Tickets waiting for additional login info keep theirs frozen; tickets being
    verified after a fix have left the queue. ``wait=False`` (inside an aggregation's
    transaction, which holds the member's row) skips the recomputation rather than
    wait for another one: the next change to any ticket brings the queue up to date."""
    await s.flush()
    if not await _serialize_queue_updates(s, rt, wait=wait):
        return
    now = rt.now()
    rate = await resolution_rate(s, rt, now)
    for position, ticket in enumerate(await s.scalars(_queue_query()), start=1):
        due = estimate(now, position, rate)
        if ticket.queue_position != position:
            ticket.queue_position = position
        current = ticket.estimated_resolution_at
        if current is None or abs(current - due) > _ESTIMATE_TOLERANCE:
            ticket.estimated_resolution_at = due


# -------------------------------------------------------------------- client use cases


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


async def _history(
    s: AsyncSession, ticket: SupportTicket, *, page: int, per_page: int
) -> tuple[list[SupportTicketEvent], int]:
    q = select(SupportTicketEvent).where(SupportTicketEvent.ticket_id == ticket.id)
    total = await s.scalar(select(func.count()).select_from(q.subquery()))
    events = await s.scalars(
        q.order_by(SupportTicketEvent.id).offset((page - 1) * per_page).limit(per_page)
    )
    return list(events), total or 0


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


def _aai_context(ticket: SupportTicket) -> str:
    return f"{ticket.guid}:additional_login_info"


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


# ------------------------------------------------------------------- engineer use cases


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


# ------------------------------------------------------- the developer portal (read-only)


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

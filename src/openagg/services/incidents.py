"""The platform watching itself: failing members and open tickets grouped into
incidents (institution and cause), ranked by their impact on end users, and the
long tail of institutions that serve few users.

These read the whole platform (every client): they are for the platform's own
engineers, never for a client. They return plain data for the CLI and the console.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from openagg.db.models import Attempt, Institution, Member, SupportTicket, User
from openagg.domain.causes import Cause
from openagg.domain.tickets import DATA_PROBLEM, ENGINEER_FIXABLE, OPEN, incident_impact
from openagg.runtime import Runtime

_FAILING = [s.value for s in ENGINEER_FIXABLE]
_OPEN = [s.value for s in OPEN]


def _last_cause() -> ScalarSelect[Any]:
    """The cause of the member's latest attempt (a correlated scalar subquery)."""
    last = aliased(Attempt)
    return (
        select(last.cause)
        .where(last.member_id == Member.id)
        .order_by(last.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _broken_since() -> ScalarSelect[Any]:
    """The first attempt that failed after the member's last success."""
    ok, failed = aliased(Attempt), aliased(Attempt)
    last_ok = (
        select(func.max(ok.id))
        .where(ok.member_id == Member.id, ok.cause == Cause.OK.value)
        .scalar_subquery()
    )
    return (
        select(func.min(failed.finished_at))
        .where(failed.member_id == Member.id, failed.id > func.coalesce(last_ok, 0))
        .scalar_subquery()
    )


async def incident_members(s: AsyncSession, institution_id: int, cause: str | None) -> list[int]:
    """The members an incident covers: failing at the institution with this cause."""
    if cause is None or cause == DATA_PROBLEM:
        return []
    rows = await s.scalars(
        select(Member.id).where(
            Member.institution_id == institution_id,
            Member.connection_status.in_(_FAILING),
            _last_cause() == cause,
        )
    )
    return list(rows)


@dataclass
class Incident:
    institution_code: str
    institution_name: str
    cause: str
    failing_members: int
    affected_users: int  # distinct active end users
    open_tickets: int
    ticket_guids: list[str]  # oldest first
    broken_since: dt.datetime | None
    impact: float


@dataclass
class _Group:
    members: set[int] = field(default_factory=set)
    # user -> how long their worst member in the group has been broken
    users: dict[int, dt.timedelta] = field(default_factory=dict)
    tickets: list[tuple[dt.datetime, str]] = field(default_factory=list)
    since: dt.datetime | None = None

    def affect(self, user_id: int, since: dt.datetime, now: dt.datetime) -> None:
        self.users[user_id] = max(self.users.get(user_id, dt.timedelta(0)), now - since)
        self.since = since if self.since is None else min(self.since, since)


async def _groups(s: AsyncSession, now: dt.datetime) -> dict[tuple[int, str], _Group]:
    groups: dict[tuple[int, str], _Group] = defaultdict(_Group)
    failing = await s.execute(
        select(
            Member.id,
            Member.user_id,
            Member.institution_id,
            _last_cause(),
            _broken_since(),
            Member.status_changed_at,
        )
        .join(User, User.id == Member.user_id)
        .where(Member.connection_status.in_(_FAILING), User.is_disabled.is_(False))
    )
    cause_of: dict[int, str] = {}
    for member_id, user_id, institution_id, cause, since, changed in failing:
        key = (institution_id, cause or "UNKNOWN")
        cause_of[member_id] = key[1]
        group = groups[key]
        group.members.add(member_id)
        group.affect(user_id, since or changed or now, now)
    tickets = await s.execute(
        select(
            SupportTicket.guid,
            SupportTicket.member_id,
            SupportTicket.user_id,
            SupportTicket.institution_id,
            SupportTicket.cause,
            SupportTicket.created_at,
        ).where(SupportTicket.status.in_(_OPEN))
    )
    for guid, member_id, user_id, institution_id, cause, created in tickets:
        # A ticket joins its member's incident; on a working member it is a data problem.
        if member_id in cause_of:
            key = (institution_id, cause_of[member_id])
        else:
            key = (institution_id, DATA_PROBLEM if cause in (None, Cause.OK.value) else cause)
        group = groups[key]
        group.tickets.append((created, guid))
        if user_id is not None and member_id not in group.members:
            group.affect(user_id, created, now)
    return groups


async def incidents(rt: Runtime, *, limit: int = 50) -> list[Incident]:
    """Incidents, largest impact first."""
    now = rt.now()
    async with rt.db.read() as s:
        groups = await _groups(s, now)
        names = await _institutions(s, {i for i, _ in groups})
    found = []
    for (institution_id, cause), g in groups.items():
        code, name = names[institution_id]
        g.tickets.sort()
        found.append(
            Incident(
                institution_code=code,
                institution_name=name,
                cause=cause,
                failing_members=len(g.members),
                affected_users=len(g.users),
                open_tickets=len(g.tickets),
                ticket_guids=[guid for _, guid in g.tickets],
                broken_since=g.since,
                impact=incident_impact(g.users.values(), len(g.tickets)),
            )
        )
    found.sort(key=lambda i: (-i.impact, i.institution_code, i.cause))
    return found[:limit]


async def _institutions(s: AsyncSession, ids: set[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    rows = await s.execute(
        select(Institution.id, Institution.code, Institution.name).where(Institution.id.in_(ids))
    )
    return {i: (code, name) for i, code, name in rows}


@dataclass
class LongTailInstitution:
    institution_code: str
    institution_name: str
    users: int  # distinct active end users with a member there
    failing_members: int
    open_tickets: int
    causes: list[str]
    ticket_guids: list[str]


async def long_tail(rt: Runtime, *, max_users: int | None = None) -> list[LongTailInstitution]:
    """Institutions with few users (``support_long_tail_max_users``) that have open
    problems, most open tickets first: the work no impact ranking would reach."""
    limit = rt.settings.support_long_tail_max_users if max_users is None else max_users
    now = rt.now()
    async with rt.db.read() as s:
        groups = await _groups(s, now)
        counted = await s.execute(
            select(Member.institution_id, func.count(func.distinct(Member.user_id)))
            .join(User, User.id == Member.user_id)
            .where(User.is_disabled.is_(False))
            .group_by(Member.institution_id)
        )
        users = {institution_id: count for institution_id, count in counted}
        names = await _institutions(s, {i for i, _ in groups})
    by_institution: dict[int, list[tuple[str, _Group]]] = defaultdict(list)
    for (institution_id, cause), g in groups.items():
        by_institution[institution_id].append((cause, g))
    found = []
    for institution_id, parts in by_institution.items():
        count = users.get(institution_id, 0)
        if count > limit:
            continue
        code, name = names[institution_id]
        tickets = sorted(t for _, g in parts for t in g.tickets)
        found.append(
            LongTailInstitution(
                institution_code=code,
                institution_name=name,
                users=count,
                failing_members=sum(len(g.members) for _, g in parts),
                open_tickets=len(tickets),
                causes=sorted(cause for cause, _ in parts),
                ticket_guids=[guid for _, guid in tickets],
            )
        )
    found.sort(key=lambda i: (-i.open_tickets, -i.failing_members, i.institution_code))
    return found

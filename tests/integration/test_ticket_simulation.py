"""A month of support work with a controllable clock: 500 tickets from end users at
50 institutions arrive over 30 simulated days; engineers take the head of the queue
and fix it at a fixed pace; each fix is verified by a real re-aggregation through the
worker. Tickets are worked first in, first out, and once the pace is steady the
estimate a ticket gets at creation is within 20% of when it was actually closed."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import insert, select, update

from openagg.connectors.base import AccountData, ConnectorContext, LoginResult
from openagg.db.models import Attempt, Client, Institution, Member, SupportTicket, User
from openagg.domain.causes import Cause
from openagg.domain.tickets import Channel
from openagg.services import operators, support
from openagg.services.support import Origin, TicketCreateFields
from tests.conftest import Platform

TICKETS = 500
INSTITUTIONS = 50
DAYS = 30
FIX_EVERY = dt.timedelta(hours=2)  # the engineers' pace: 12 a day, below the arrivals
STEADY_AFTER = dt.timedelta(days=5)  # the trailing window (3 days) has filled by then


class FixedConnector:
    """Every institution, once its engineer fixed it: logs in, has no accounts."""

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        return LoginResult(state={})

    async def accounts(self, ctx: ConnectorContext, state: dict[str, Any]) -> list[AccountData]:
        return []


async def _seed(p: Platform, client: Client) -> list[tuple[str, str]]:
    """50 institutions and 500 members that failed, each with its own end user."""
    now = p.clock.now
    async with p.rt.db.write() as s:
        institution_ids = list(
            await s.scalars(
                insert(Institution).returning(Institution.id),
                [
                    {
                        "code": f"sim_{i}",
                        "guid": f"INS-sim-{i}",
                        "name": f"Simulated Bank {i}",
                        "connector": "sim",
                        "data_source": "default",
                        "is_retired": False,
                        "throttle_exempt": True,
                        "profile": {},
                        "credentials": [],
                    }
                    for i in range(INSTITUTIONS)
                ],
            )
        )
        pairs = []
        for n in range(TICKETS):
            user = User(
                guid=f"USR-sim-{n}",
                client_id=client.id,
                is_disabled=False,
                created_at=now,
                updated_at=now,
            )
            s.add(user)
            await s.flush()
            member = Member(
                guid=f"MBR-sim-{n}",
                client_id=client.id,
                user_id=user.id,
                institution_id=institution_ids[n % INSTITUTIONS],
                connection_status="FAILED",
                status_changed_at=now,
                consecutive_credential_failures=0,
                created_at=now,
                updated_at=now,
            )
            s.add(member)
            await s.flush()
            s.add(
                Attempt(
                    client_id=client.id,
                    member_id=member.id,
                    institution_id=member.institution_id,
                    kind="aggregate",
                    trigger="background",
                    started_at=now,
                    finished_at=now,
                    cause=Cause.INSTITUTION_ERROR.value,
                    status_after="FAILED",
                )
            )
            pairs.append((user.guid, member.guid))
    return pairs


async def test_a_month_of_tickets_is_worked_fifo_and_estimated_within_20_percent(
    platform: Platform,
) -> None:
    p = platform
    rt = p.rt
    rt.settings.support_rate_window_seconds = 3 * 86400
    rt.connectors["sim"] = FixedConnector()  # type: ignore[assignment]
    async with rt.db.read() as s:
        client = await s.scalar(select(Client))
    assert client is not None
    members = await _seed(p, client)
    engineer = (await operators.create_operator(rt, "Sim Engineer", "sim@openagg.test")).operator

    start = p.clock.now
    rng = random.Random(20260302)
    arrivals = sorted(start + dt.timedelta(days=rng.uniform(0, DAYS)) for _ in range(TICKETS))
    fixes = [start + FIX_EVERY * (n + 1) for n in range(int(dt.timedelta(days=DAYS) / FIX_EVERY))]
    events = sorted([(t, "arrive") for t in arrivals] + [(t, "fix") for t in fixes])

    created: dict[str, tuple[dt.datetime, dt.datetime]] = {}  # guid -> (created, estimate)
    closed: dict[str, dt.datetime] = {}
    worked: list[str] = []
    origin = Origin("203.0.113.9", None)
    next_member = iter(members)
    for at, kind in events:
        p.clock.now = at
        if kind == "arrive":
            user_guid, member_guid = next(next_member)
            async with rt.db.write() as s:  # the end user is in the app, reporting it
                await s.execute(
                    update(Member).where(Member.guid == member_guid).values(end_user_present_at=at)
                )
            result = await support.escalate(
                rt,
                client,
                user_guid,
                member_guid,
                TicketCreateFields(channel=Channel.DIRECT, description="It stopped syncing"),
                origin,
            )
            t = result.view.ticket
            assert not result.joined and t.estimated_resolution_at is not None
            created[t.guid] = (at, t.estimated_resolution_at)
            continue
        head = await support.queue(rt, limit=1)
        if not head:
            continue
        guid = head[0].ticket.guid
        worked.append(guid)
        await support.take(rt, engineer, guid)
        resolution = await support.resolve(rt, engineer, guid)
        assert resolution.tickets == [guid]
        await p.drain()
        async with rt.db.read() as s:
            row = await s.scalar(select(SupportTicket).where(SupportTicket.guid == guid))
        assert row is not None and row.status == "CLOSED" and row.resolved_at is not None
        closed[guid] = row.resolved_at

    # First in, first out: tickets were worked in the order they were created.
    assert worked == sorted(worked, key=lambda g: created[g][0])
    assert len(worked) == len(fixes)  # the queue never ran dry: the pace held
    steady = [g for g in closed if created[g][0] >= start + STEADY_AFTER]
    assert len(steady) > 250
    errors = []
    for guid in steady:
        at, estimated = created[guid]
        actual = (closed[guid] - at).total_seconds()
        predicted = (estimated - at).total_seconds()
        errors.append(abs(predicted - actual) / actual)
    assert max(errors) <= 0.20, f"worst estimate off by {max(errors):.0%}"

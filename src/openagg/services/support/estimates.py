"""The engineers' queue and its estimates: every queued ticket's position and estimated
resolution, recomputed (``refresh_queue``) at the end of every use case.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import (
    SupportTicket,
    SupportTicketEvent,
)
from openagg.domain.tickets import (
    IN_QUEUE,
    estimate,
    trailing_rate,
)
from openagg.runtime import Runtime
from openagg.services.support.common import QUEUE_EXITS


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

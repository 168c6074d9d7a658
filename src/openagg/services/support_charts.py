"""Numbers behind the engineer console's charts: open tickets over time, time to
resolution, failure rate per institution and the age of the open tickets.

Everything is computed from the history (``support_ticket_events``: every event
carries the ticket's status after it) and the ``attempts`` table, at the runtime's
clock, with plain portable queries (SQLite and PostgreSQL); the arithmetic is done
here in Python over the few rows a window holds. Like ``incidents.py`` these read the
whole platform and are for the platform's own engineers only.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Attempt, Institution, SupportTicket, SupportTicketEvent
from openagg.domain.causes import TRANSIENT, Cause
from openagg.domain.tickets import ENDED, IN_QUEUE, OPEN, TicketStatus
from openagg.runtime import Runtime
from openagg.services.errors import BadRequest

_OPEN = {s.value for s in OPEN}
_ENDED = {s.value for s in ENDED}
# Failures an engineer (or the institution) fixes, not the end user.
_ENGINEER_SIDE = [c.value for c in TRANSIENT]
HOUR, DAY = 3600, 86400
# Upper bounds (seconds) of the duration buckets; the last one is open-ended.
BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("< 1 h", HOUR),
    ("1-4 h", 4 * HOUR),
    ("4-24 h", DAY),
    ("1-3 d", 3 * DAY),
    ("3-7 d", 7 * DAY),
    (">= 7 d", None),
)
MAX_DAYS = 366


@dataclass
class DayCount:
    day: dt.date
    open_tickets: int  # open at the end of the day (today: now)


@dataclass
class ResolutionWeek:
    start: dt.datetime
    end: dt.datetime
    closed: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass
class Bucket:
    label: str
    min_seconds: int
    max_seconds: int | None  # None: no upper bound
    count: int


@dataclass
class InstitutionFailures:
    institution_code: str
    institution_name: str
    attempts: int  # finished attempts (MFA rounds left out: not an outcome)
    failures: int  # engineer-side causes (domain.causes.TRANSIENT)
    end_user_failures: int  # credentials, locked, MFA answers…
    failure_rate: float  # failures / attempts


@dataclass
class QueueAge:
    open_tickets: int
    in_queue: int  # the engineers' queue (not waiting on the end user, not verifying)
    buckets: list[Bucket]
    oldest_guid: str | None
    oldest_status: str | None
    oldest_age_seconds: float | None


@dataclass
class Charts:
    generated_at: dt.datetime
    days: int
    open_tickets: list[DayCount]  # oldest day first
    resolution_weeks: list[ResolutionWeek]  # oldest week first
    resolution_histogram: list[Bucket]
    resolution_median_seconds: float | None
    resolution_p90_seconds: float | None
    failure_window_days: int
    failure_rates: list[InstitutionFailures]  # most failures first
    queue_age: QueueAge


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with ``fraction`` of them at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def bucketed(seconds: list[float]) -> list[Bucket]:
    buckets, low = [], 0
    for label, high in BUCKETS:
        count = sum(1 for v in seconds if v >= low and (high is None or v < high))
        buckets.append(Bucket(label, low, high, count))
        low = high or low
    return buckets


def _check_window(name: str, value: int) -> None:
    if not 1 <= value <= MAX_DAYS:
        raise BadRequest(f"{name} must be between 1 and {MAX_DAYS}, not {value}.")


async def charts(
    rt: Runtime, *, days: int = 30, failure_window_days: int = 7, top_institutions: int = 10
) -> Charts:
    _check_window("days", days)
    _check_window("failure_window_days", failure_window_days)
    now = rt.now()
    weeks = math.ceil(days / 7)
    async with rt.db.read() as s:
        per_day = await open_tickets_per_day(s, now, days)
        durations = await resolution_times(s, now - dt.timedelta(days=7 * weeks), now)
        rates = await failure_rates(
            s, now - dt.timedelta(days=failure_window_days), now, top_institutions
        )
        age = await queue_age(s, now)
    all_seconds = [seconds for _, seconds in durations]
    return Charts(
        generated_at=now,
        days=days,
        open_tickets=per_day,
        resolution_weeks=_weekly(durations, now, weeks),
        resolution_histogram=bucketed(all_seconds),
        resolution_median_seconds=median(all_seconds),
        resolution_p90_seconds=percentile(all_seconds, 0.9),
        failure_window_days=failure_window_days,
        failure_rates=rates,
        queue_age=age,
    )


# ------------------------------------------------------------------ open tickets per day


async def open_tickets_per_day(s: AsyncSession, now: dt.datetime, days: int) -> list[DayCount]:
    """How many tickets were open at the end of each of the last ``days`` UTC days
    (today: now), replaying each ticket's history, so a ticket closed and later
    reopened counts as closed in between."""
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    start = _midnight(first)
    # Tickets whose last ending came before the window were closed all along.
    rows = await s.execute(
        select(SupportTicketEvent.ticket_id, SupportTicketEvent.at, SupportTicketEvent.to_status)
        .join(SupportTicket, SupportTicket.id == SupportTicketEvent.ticket_id)
        .where(
            SupportTicket.created_at <= now,
            or_(SupportTicket.resolved_at.is_(None), SupportTicket.resolved_at >= start),
            SupportTicketEvent.at <= now,
        )
        .order_by(SupportTicketEvent.ticket_id, SupportTicketEvent.id)
    )
    timelines: dict[int, list[tuple[dt.datetime, str | None]]] = defaultdict(list)
    for ticket_id, at, to_status in rows:
        timelines[ticket_id].append((at, to_status))
    # The rows stop at now, so today's snapshot is now.
    ends = [_midnight(first + dt.timedelta(days=i + 1)) for i in range(days)]
    counts = [0] * days
    for events in timelines.values():
        for i, end in enumerate(ends):
            if _status_at(events, end) in _OPEN:
                counts[i] += 1
    return [DayCount(first + dt.timedelta(days=i), counts[i]) for i in range(days)]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _status_at(events: list[tuple[dt.datetime, str | None]], moment: dt.datetime) -> str | None:
    """The status after the last event strictly before ``moment`` (events in order)."""
    status = None
    for at, to_status in events:
        if at >= moment:
            break
        status = to_status
    return status


# -------------------------------------------------------------------- time to resolution


async def resolution_times(
    s: AsyncSession, since: dt.datetime, now: dt.datetime
) -> list[tuple[dt.datetime, float]]:
    """(closed at, seconds) for each time a ticket was CLOSED in the window, measured
    from the start of that episode: its creation, or a reopening after it had ended
    (a failed verification does not restart the clock: the ticket never closed)."""
    closing = (SupportTicketEvent.to_status == TicketStatus.CLOSED.value) & or_(
        SupportTicketEvent.from_status.is_(None),
        SupportTicketEvent.from_status != TicketStatus.CLOSED.value,
    )
    closed_ids = (
        select(SupportTicketEvent.ticket_id)
        .where(closing, SupportTicketEvent.at >= since, SupportTicketEvent.at <= now)
        .distinct()
    )
    rows = await s.execute(
        select(
            SupportTicketEvent.ticket_id,
            SupportTicketEvent.at,
            SupportTicketEvent.from_status,
            SupportTicketEvent.to_status,
        )
        .where(SupportTicketEvent.ticket_id.in_(closed_ids), SupportTicketEvent.at <= now)
        .order_by(SupportTicketEvent.ticket_id, SupportTicketEvent.id)
    )
    found: list[tuple[dt.datetime, float]] = []
    episode: dict[int, dt.datetime] = {}
    for ticket_id, at, from_status, to_status in rows:
        if from_status is None or (from_status in _ENDED and to_status in _OPEN):
            episode[ticket_id] = at
        elif (
            to_status == TicketStatus.CLOSED.value
            and from_status != to_status
            and ticket_id in episode
        ):
            if at >= since:
                found.append((at, (at - episode[ticket_id]).total_seconds()))
            del episode[ticket_id]
    return found


def _weekly(
    durations: list[tuple[dt.datetime, float]], now: dt.datetime, weeks: int
) -> list[ResolutionWeek]:
    """Seven-day buckets ending now, oldest first; a closing at a bucket's end belongs
    to that bucket."""
    result = []
    for k in reversed(range(weeks)):
        end = now - dt.timedelta(days=7 * k)
        start = end - dt.timedelta(days=7)
        inside = [v for at, v in durations if start < at <= end or (k == weeks - 1 and at == start)]
        result.append(
            ResolutionWeek(start, end, len(inside), median(inside), percentile(inside, 0.9))
        )
    return result


# ------------------------------------------------------------------ failure rate per bank


async def failure_rates(
    s: AsyncSession, since: dt.datetime, now: dt.datetime, top: int
) -> list[InstitutionFailures]:
    engineer_side = case((Attempt.cause.in_(_ENGINEER_SIDE), 1), else_=0)
    end_user_side = case(
        (
            and_(Attempt.cause.not_in(_ENGINEER_SIDE), Attempt.cause != Cause.OK.value),
            1,
        ),
        else_=0,
    )
    failures = func.sum(engineer_side)
    rows = await s.execute(
        select(
            Institution.code,
            Institution.name,
            func.count(),
            failures,
            func.sum(end_user_side),
        )
        .join(Institution, Institution.id == Attempt.institution_id)
        .where(
            Attempt.finished_at.is_not(None),
            Attempt.finished_at > since,
            Attempt.finished_at <= now,
            Attempt.cause.is_not(None),
            Attempt.cause != Cause.MFA_REQUIRED.value,
        )
        .group_by(Institution.code, Institution.name)
    )
    found = [
        InstitutionFailures(
            institution_code=code,
            institution_name=name,
            attempts=int(attempts),
            failures=int(failed or 0),
            end_user_failures=int(user_failed or 0),
            failure_rate=round(int(failed or 0) / int(attempts), 4),
        )
        for code, name, attempts, failed, user_failed in rows
    ]
    found.sort(key=lambda f: (-f.failures, -f.failure_rate, f.institution_code))
    return found[:top]


# -------------------------------------------------------------------------- queue age


async def queue_age(s: AsyncSession, now: dt.datetime) -> QueueAge:
    rows = list(
        await s.execute(
            select(
                SupportTicket.guid,
                SupportTicket.status,
                SupportTicket.created_at,
                SupportTicket.verifying_since,
            )
            .where(SupportTicket.status.in_(_OPEN))
            .order_by(SupportTicket.created_at, SupportTicket.id)
        )
    )
    queued = {st.value for st in IN_QUEUE}
    ages = [(now - created).total_seconds() for _, _, created, _ in rows]
    oldest = rows[0] if rows else None
    return QueueAge(
        open_tickets=len(rows),
        in_queue=sum(1 for _, status, _, verifying in rows if status in queued and not verifying),
        buckets=bucketed(ages),
        oldest_guid=oldest[0] if oldest else None,
        oldest_status=oldest[1] if oldest else None,
        oldest_age_seconds=ages[0] if ages else None,
    )

"""Aggregation support tickets: their statuses and rules, as plain functions.

Who may escalate what (the end user fixes what the end user can fix; an engineer
gets the rest), the evidence that a person asked (no automatic submission), the
first-in-first-out queue and its estimate, and how incidents are ranked. Nothing
here touches the database (services/support/ applies these rules).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from openagg.domain.causes import Cause
from openagg.domain.statuses import END_USER_ACTIONABLE, NOT_AGGREGATABLE, Status


class TicketStatus(StrEnum):
    NEW = "NEW"
    IN_PROCESS = "IN_PROCESS"
    ADDITIONAL_LOGIN_INFO_REQUIRED = "ADDITIONAL_LOGIN_INFO_REQUIRED"
    ADDITIONAL_LOGIN_INFO_SUBMITTED = "ADDITIONAL_LOGIN_INFO_SUBMITTED"
    ESCALATED = "ESCALATED"
    REOPENED = "REOPENED"
    CLOSED = "CLOSED"
    INVALID = "INVALID"


class Channel(StrEnum):
    DIRECT = "DIRECT"  # the end user, inside the app
    INDIRECT = "INDIRECT"  # the app's support staff, from their CRM


ENDED = frozenset({TicketStatus.CLOSED, TicketStatus.INVALID})
OPEN = frozenset(TicketStatus) - ENDED
# Open but not in the engineers' queue: the ball is with the end user.
WAITING_ON_END_USER = frozenset({TicketStatus.ADDITIONAL_LOGIN_INFO_REQUIRED})
IN_QUEUE = OPEN - WAITING_ON_END_USER

# What the end user does to fix each status an engineer cannot fix for them.
END_USER_FIXES: dict[Status, str] = {
    Status.DENIED: "update the member's credentials (PUT the member with new credentials)",
    Status.PREVENTED: "update the member's credentials (PUT the member with new credentials)",
    Status.IMPAIRED: "give the missing credentials (PUT the member with all credentials)",
    Status.CHALLENGED: "answer the MFA challenge (PUT …/members/{member_guid}/resume)",
    Status.REJECTED: "aggregate again and answer the MFA challenge correctly",
    Status.EXPIRED: "aggregate again and answer the MFA challenge in time",
    Status.IMPEDED: "log in at the institution's website and complete the step it asks for, "
    "then aggregate again",
    Status.LOCKED: "contact the institution to unlock the login, then aggregate again",
}
assert set(END_USER_FIXES) == END_USER_ACTIONABLE

# Statuses with nothing for an engineer to fix, and what to do instead.
NOT_ESCALATABLE: dict[Status, str] = {
    Status.CLOSED: "the member is closed and is not aggregated",
    Status.DISABLED: "aggregation is paused for this member; enable it first",
    Status.DISCONTINUED: "connections to this institution are no longer supported",
    Status.PENDING: "the end user has not finished the institution's OAuth step",
    Status.IMPORTED: "the member needs credentials before it can be aggregated",
    Status.RECONNECTED: "aggregate the member while the end user is present first",
}
assert set(NOT_ESCALATABLE) >= NOT_AGGREGATABLE


@dataclass(frozen=True)
class EscalationView:
    """What the escalation rules read about a member."""

    status: Status | None
    last_attempt_cause: Cause | None  # the last finished aggregation attempt
    has_special_instructions: bool


def escalation_refusal(view: EscalationView) -> str | None:
    """Why this member cannot be escalated (a 422 message), or None when it can."""
    if view.status in END_USER_FIXES:
        return (
            f"This member is {view.status}: the end user can fix it. To fix it, "
            f"{END_USER_FIXES[view.status]}. No support ticket was opened."
        )
    if view.status in NOT_ESCALATABLE:
        return f"This member is {view.status}: {NOT_ESCALATABLE[view.status]}."
    if view.last_attempt_cause is None:
        return (
            "This member has not finished an aggregation yet; escalate when its first "
            "aggregation has ended."
        )
    if view.last_attempt_cause == Cause.OK and not view.has_special_instructions:
        return (
            "This member's last aggregation succeeded: escalate it only with "
            "special_instructions describing the problem (missing or duplicate "
            "transactions, wrong balances)."
        )
    return None


@dataclass(frozen=True)
class Requester:
    """Who asks for a ticket, and the evidence that a person does."""

    channel: Channel
    end_user_present_at: dt.datetime | None
    agent_id: str | None
    agent_name: str | None


def presence_window_ok(
    present_at: dt.datetime | None, now: dt.datetime, window: dt.timedelta
) -> bool:
    return present_at is not None and now - present_at <= window


def requester_refusal(
    req: Requester, now: dt.datetime, presence_window: dt.timedelta
) -> str | None:
    """No automatic submission: a DIRECT ticket needs the end user to have been present
    for this member recently; an INDIRECT one needs the support agent's identity."""
    if req.channel == Channel.DIRECT:
        if not presence_window_ok(req.end_user_present_at, now, presence_window):
            hours = presence_window.total_seconds() / 3600
            return (
                "A DIRECT ticket must come from the end user: they must have used this member "
                f"(Connect widget, aggregation, credential update or MFA answer) within the last "
                f"{hours:g} hours. Support staff escalate with channel INDIRECT and an agent."
            )
        return None
    if not (req.agent_id and req.agent_id.strip() and req.agent_name and req.agent_name.strip()):
        return "An INDIRECT ticket needs the support agent who asks: agent.id and agent.name."
    return None


def burst_refusal(recent_unattended: int, max_tickets: int, window: dt.timedelta) -> str | None:
    """Escalations for members whose end user is not around, coming faster than people
    type them, look like a batch job: refused (429)."""
    if max_tickets > 0 and recent_unattended >= max_tickets:
        return (
            f"Too many support tickets: at most {max_tickets} escalations in "
            f"{window.total_seconds():g} seconds for members without a recent end-user "
            "session. Tickets must be asked for by people, not submitted automatically "
            "(support ticket policy)."
        )
    return None


# ------------------------------------------------------------------ queue and estimate


def trailing_rate(
    resolved_in_window: int,
    window: dt.timedelta,
    history_span: dt.timedelta,
    *,
    min_resolutions: int,
    assumed_per_day: float,
) -> float:
    """Tickets the engineers take out of the queue per second, from the recent past.

    The window is shortened to the time the platform has had tickets (a young
    platform would otherwise look slow). With too few resolutions to tell, the
    assumed rate stands in."""
    span = min(window, history_span).total_seconds()
    if resolved_in_window < min_resolutions or span <= 0:
        return assumed_per_day / 86400
    return resolved_in_window / span


def estimate(now: dt.datetime, queue_position: int, rate_per_second: float) -> dt.datetime:
    """When the ticket at ``queue_position`` (1 = next) should be resolved, tickets
    leaving the queue at ``rate_per_second`` in first-in-first-out order."""
    return now + dt.timedelta(seconds=queue_position / rate_per_second)


# ---------------------------------------------------------------------------- incidents

# Members in these statuses wait on an engineer, not on their end user.
ENGINEER_FIXABLE = frozenset({Status.FAILED, Status.DEGRADED, Status.DISCONNECTED})
# The cause an incident of tickets on working members is filed under (wrong data).
DATA_PROBLEM = "DATA_PROBLEM"

# Each user's weight grows by one per day broken, up to this many days.
MAX_BROKEN_DAYS_WEIGHT = 30
# An open ticket is a person who asked: it weighs like a user broken for this many days.
OPEN_TICKET_WEIGHT = 5.0


def incident_impact(broken_for: Iterable[dt.timedelta], open_tickets: int) -> float:
    """Rank of an incident: each distinct active end user affected counts 1 plus the
    days they have been broken (capped), and each open ticket adds a fixed weight."""
    users = sum(1 + min(d.total_seconds() / 86400, MAX_BROKEN_DAYS_WEIGHT) for d in broken_for)
    return round(users + OPEN_TICKET_WEIGHT * open_tickets, 2)

"""The support ticket rules as plain functions (domain/tickets.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from openagg.domain.causes import Cause
from openagg.domain.statuses import END_USER_ACTIONABLE, Status
from openagg.domain.tickets import (
    IN_QUEUE,
    OPEN,
    Channel,
    EscalationView,
    Requester,
    TicketStatus,
    burst_refusal,
    escalation_refusal,
    estimate,
    incident_impact,
    requester_refusal,
    trailing_rate,
)

NOW = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def view(status: Status | None, cause: Cause | None, instructions: bool = False) -> EscalationView:
    return EscalationView(status, cause, instructions)


def test_open_and_queued_statuses() -> None:
    assert TicketStatus.CLOSED not in OPEN and TicketStatus.INVALID not in OPEN
    assert TicketStatus.REOPENED in IN_QUEUE
    assert TicketStatus.ADDITIONAL_LOGIN_INFO_REQUIRED in OPEN - IN_QUEUE


@pytest.mark.parametrize("status", sorted(END_USER_ACTIONABLE))
def test_end_user_fixable_statuses_name_their_fix(status: Status) -> None:
    message = escalation_refusal(view(status, Cause.BAD_CREDENTIALS, instructions=True))
    assert message is not None and str(status) in message and "To fix it" in message


@pytest.mark.parametrize(
    ("v", "refused_with"),
    [
        (view(Status.CONNECTED, Cause.OK), "special_instructions"),
        (view(Status.CONNECTED, Cause.OK, instructions=True), None),
        (view(Status.FAILED, Cause.INSTITUTION_ERROR), None),
        (view(Status.DEGRADED, Cause.TIMEOUT), None),
        (view(Status.CREATED, None), "not finished an aggregation"),
        (view(Status.DISABLED, Cause.OK, instructions=True), "paused"),
        (view(Status.DISCONTINUED, Cause.INSTITUTION_ERROR), "no longer supported"),
    ],
)
def test_who_may_be_escalated(v: EscalationView, refused_with: str | None) -> None:
    message = escalation_refusal(v)
    if refused_with is None:
        assert message is None
    else:
        assert message is not None and refused_with in message


def test_direct_needs_presence_within_the_window_and_indirect_an_agent() -> None:
    def direct(present: dt.datetime | None) -> str | None:
        return requester_refusal(Requester(Channel.DIRECT, present, None, None), NOW, DAY)

    assert direct(NOW - DAY) is None
    assert direct(None) is not None
    assert "24 hours" in (direct(NOW - DAY - dt.timedelta(seconds=1)) or "")

    def indirect(agent_id: str | None, name: str | None) -> str | None:
        return requester_refusal(Requester(Channel.INDIRECT, None, agent_id, name), NOW, DAY)

    assert indirect("a1", "Sam") is None
    assert indirect(None, "Sam") and indirect("a1", " ") and indirect("", "")


def test_burst_policy() -> None:
    window = dt.timedelta(minutes=5)
    assert burst_refusal(19, 20, window) is None
    assert "policy" in (burst_refusal(20, 20, window) or "")
    assert burst_refusal(10_000, 0, window) is None  # 0: no limit


def test_trailing_rate_and_estimate() -> None:
    # 30 resolutions over a full 3-day window: 10 a day.
    rate = trailing_rate(30, 3 * DAY, 10 * DAY, min_resolutions=5, assumed_per_day=99)
    assert rate == pytest.approx(10 / 86400)
    # A young platform: the span it has existed, not the whole window.
    young = trailing_rate(10, 3 * DAY, DAY, min_resolutions=5, assumed_per_day=99)
    assert young == pytest.approx(10 / 86400)
    # Too little history: the assumed pace.
    assert trailing_rate(2, 3 * DAY, DAY, min_resolutions=5, assumed_per_day=24) == 24 / 86400
    assert estimate(NOW, 5, 10 / 86400) == NOW + dt.timedelta(hours=12)


def test_incident_impact_weighs_users_by_time_broken_and_tickets() -> None:
    assert incident_impact([], 0) == 0
    assert incident_impact([dt.timedelta(0)], 0) == 1
    assert incident_impact([2 * DAY, 0 * DAY], 1) == 3 + 1 + 5
    assert incident_impact([365 * DAY], 0) == 31  # capped at 30 days

"""The aggregation rules as pure functions, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from openagg.domain.causes import Cause
from openagg.domain.policy import (
    Decision,
    FailureHistory,
    FailureRules,
    JobKind,
    JobRequestView,
    background_disabled,
    background_eligible,
    decide_job_request,
    next_background_at,
    status_after,
)
from openagg.domain.statuses import Status

NOW = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)
THREE_HOURS = dt.timedelta(hours=3)


def view(status: Status | None = Status.CONNECTED, **kw: object) -> JobRequestView:
    base: dict[str, object] = {
        "running_kind": None,
        "last_success_at": None,
        "throttle_exempt": False,
    }
    base.update(kw)
    return JobRequestView(status=status, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.PREVENTED, Decision.NEEDS_CREDENTIALS),
        (Status.DENIED, Decision.NEEDS_CREDENTIALS),
        (Status.IMPAIRED, Decision.NEEDS_CREDENTIALS),
        (Status.IMPORTED, Decision.NEEDS_CREDENTIALS),
        (Status.CLOSED, Decision.NOT_POSSIBLE),
        (Status.DISABLED, Decision.NOT_POSSIBLE),
        (Status.DISCONTINUED, Decision.NOT_POSSIBLE),
        (Status.PENDING, Decision.NOT_POSSIBLE),
        (None, Decision.NOT_POSSIBLE),
        *[
            (s, Decision.START)
            for s in (
                Status.CREATED,
                Status.CONNECTED,
                Status.DEGRADED,
                Status.DISCONNECTED,
                Status.EXPIRED,
                Status.FAILED,
                Status.IMPEDED,
                Status.RECONNECTED,
                Status.UPDATED,
                Status.REJECTED,
                Status.LOCKED,
            )
        ],
    ],
)
def test_status_rules(status: Status | None, expected: Decision) -> None:
    assert decide_job_request(view(status), JobKind.AGGREGATE, NOW, THREE_HOURS) == expected


def test_running_jobs() -> None:
    running = view(running_kind=JobKind.AGGREGATE)
    assert decide_job_request(running, JobKind.AGGREGATE, NOW, THREE_HOURS) == (
        Decision.ALREADY_RUNNING
    )
    assert decide_job_request(running, JobKind.VERIFY, NOW, THREE_HOURS) == Decision.CONFLICT


def test_throttle_applies_to_standard_aggregation_only() -> None:
    recent = view(last_success_at=NOW - dt.timedelta(hours=2))
    assert decide_job_request(recent, JobKind.AGGREGATE, NOW, THREE_HOURS) == Decision.THROTTLED
    assert decide_job_request(recent, JobKind.VERIFY, NOW, THREE_HOURS) == Decision.START
    exempt = view(last_success_at=NOW, throttle_exempt=True)
    assert decide_job_request(exempt, JobKind.AGGREGATE, NOW, THREE_HOURS) == Decision.START
    old = view(last_success_at=NOW - THREE_HOURS)
    assert decide_job_request(old, JobKind.AGGREGATE, NOW, THREE_HOURS) == Decision.START


def history(**kw: object) -> FailureHistory:
    base: dict[str, object] = {
        "failures_in_window": 1,
        "consecutive_failures": 1,
        "consecutive_credential_failures": 1,
        "last_success_at": None,
        "member_created_at": NOW,
    }
    base.update(kw)
    return FailureHistory(**base)  # type: ignore[arg-type]


def test_status_after_causes() -> None:
    rules = FailureRules()
    assert status_after(Cause.OK, history(), NOW, rules) == Status.CONNECTED
    assert status_after(Cause.MFA_WRONG_ANSWER, history(), NOW, rules) == Status.REJECTED
    assert status_after(Cause.BAD_CREDENTIALS, history(), NOW, rules) == Status.DENIED
    assert (
        status_after(Cause.BAD_CREDENTIALS, history(consecutive_credential_failures=3), NOW, rules)
        == Status.PREVENTED
    )
    assert status_after(Cause.INSTITUTION_ERROR, history(), NOW, rules) == Status.FAILED
    assert (
        status_after(Cause.INSTITUTION_ERROR, history(failures_in_window=3), NOW, rules)
        == Status.DEGRADED
    )
    long_ago = NOW - dt.timedelta(days=15)
    assert (
        status_after(
            Cause.TIMEOUT,
            history(failures_in_window=3, consecutive_failures=3, last_success_at=long_ago),
            NOW,
            rules,
        )
        == Status.DISCONNECTED
    )
    assert (
        status_after(
            Cause.TIMEOUT, history(consecutive_failures=2, last_success_at=long_ago), NOW, rules
        )
        == Status.FAILED
    )


def test_background_eligibility() -> None:
    ok = {"member_disabled": None, "client_enabled": True, "user_disabled": False}
    assert background_eligible(Status.CONNECTED, **ok)  # type: ignore[arg-type]
    assert not background_eligible(Status.CONNECTED, **{**ok, "client_enabled": False})  # type: ignore[arg-type]
    assert background_eligible(
        Status.CONNECTED,
        **{
            **ok,
            "client_enabled": False,  # type: ignore[arg-type]
            "member_disabled": False,
        },
    )
    assert not background_eligible(Status.CONNECTED, **{**ok, "user_disabled": True})  # type: ignore[arg-type]
    for s in (
        Status.DENIED,
        Status.CHALLENGED,
        Status.LOCKED,
        Status.RECONNECTED,
        Status.IMPEDED,
        Status.EXPIRED,
        Status.CLOSED,
    ):
        assert not background_eligible(s, **ok)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("member_disabled", "client_enabled", "expected"),
    [
        (None, True, False),  # no setting on the member: the client's default
        (None, False, True),
        (True, True, True),  # the member's own setting wins either way
        (False, False, False),
    ],
)
def test_background_disabled_member_setting_else_client_default(
    member_disabled: bool | None, client_enabled: bool, expected: bool
) -> None:
    assert (
        background_disabled(member_disabled=member_disabled, client_enabled=client_enabled)
        is expected
    )


def test_next_background_is_spread_but_stable() -> None:
    day, jitter = dt.timedelta(hours=24), dt.timedelta(hours=2)
    times = [next_background_at(NOW, f"MBR-{i}", day, jitter) for i in range(200)]
    assert all(NOW + day - jitter <= t <= NOW + day + jitter for t in times)
    assert len(set(times)) == 200
    assert next_background_at(NOW, "MBR-1", day, jitter) == times[1]

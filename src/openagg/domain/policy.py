"""MX's aggregation rules as plain functions over plain data.

May this member aggregate now? Which status follows this cause? When is the next
background run? Nothing here touches the database or the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum

from openagg.domain.causes import TRANSIENT, Cause
from openagg.domain.statuses import (
    IN_PROGRESS,
    NEEDS_END_USER,
    NEEDS_NEW_CREDENTIALS,
    NOT_AGGREGATABLE,
    Status,
)


class JobKind(StrEnum):
    AGGREGATE = "aggregate"
    BALANCE = "balance"
    IDENTIFY = "identify"
    VERIFY = "verify"
    HISTORY = "history"


class Trigger(StrEnum):
    AUTOMATIC = "automatic"  # member create / credential update
    FOREGROUND = "foreground"  # POST .../aggregate and the other job endpoints
    BACKGROUND = "background"  # the scheduler
    OAUTH = "oauth"  # the end user finished the OAuth step


class Decision(StrEnum):
    START = "start"
    ALREADY_RUNNING = "already_running"  # 202, is_being_aggregated true
    CONFLICT = "conflict"  # 409: a different job type runs
    THROTTLED = "throttled"  # 202, member unchanged, is_being_aggregated false
    NEEDS_CREDENTIALS = "needs_credentials"  # 422
    NOT_POSSIBLE = "not_possible"  # 422


@dataclass(frozen=True)
class JobRequestView:
    status: Status | None
    running_kind: JobKind | None
    last_success_at: dt.datetime | None
    throttle_exempt: bool
    is_oauth_pending: bool = False


def decide_job_request(
    view: JobRequestView, kind: JobKind, now: dt.datetime, throttle: dt.timedelta
) -> Decision:
    """What a foreground request for a job of ``kind`` gets (MX's 202/409/422 rules)."""
    if view.running_kind is not None:
        return Decision.ALREADY_RUNNING if view.running_kind == kind else Decision.CONFLICT
    if view.status in NOT_AGGREGATABLE or view.status is None:
        return Decision.NOT_POSSIBLE
    if view.status in NEEDS_NEW_CREDENTIALS:
        return Decision.NEEDS_CREDENTIALS
    if view.status == Status.PENDING:
        return Decision.NOT_POSSIBLE
    if (
        kind == JobKind.AGGREGATE
        and not view.throttle_exempt
        and view.last_success_at is not None
        and now - view.last_success_at < throttle
    ):
        return Decision.THROTTLED
    return Decision.START


@dataclass(frozen=True)
class FailureHistory:
    """What the status after a failure depends on. Counts include this failure."""

    failures_in_window: int
    consecutive_failures: int
    consecutive_credential_failures: int
    last_success_at: dt.datetime | None
    member_created_at: dt.datetime


@dataclass(frozen=True)
class FailureRules:
    failures_before_degraded: int = 3
    credential_failures_before_prevented: int = 3
    disconnected_after: dt.timedelta = dt.timedelta(days=14)


_DIRECT = {
    Cause.MFA_REQUIRED: Status.CHALLENGED,
    Cause.MFA_WRONG_ANSWER: Status.REJECTED,
    Cause.MFA_EXPIRED: Status.EXPIRED,
    Cause.MISSING_CREDENTIALS: Status.IMPAIRED,
    Cause.LOCKED_OUT: Status.LOCKED,
    Cause.USER_ACTION_REQUIRED: Status.IMPEDED,
    Cause.ACCOUNT_CLOSED: Status.CLOSED,
}


def status_after(
    cause: Cause, history: FailureHistory, now: dt.datetime, rules: FailureRules
) -> Status:
    """The connection status that follows an attempt ending with ``cause``."""
    if cause == Cause.OK:
        return Status.CONNECTED
    if cause in _DIRECT:
        return _DIRECT[cause]
    if cause == Cause.BAD_CREDENTIALS:
        if history.consecutive_credential_failures >= rules.credential_failures_before_prevented:
            return Status.PREVENTED
        return Status.DENIED
    assert cause in TRANSIENT, cause
    broken_since = history.last_success_at or history.member_created_at
    if (
        history.consecutive_failures >= rules.failures_before_degraded
        and now - broken_since >= rules.disconnected_after
    ):
        return Status.DISCONNECTED
    if history.failures_in_window >= rules.failures_before_degraded:
        return Status.DEGRADED
    return Status.FAILED


def background_eligible(
    status: Status | None,
    *,
    member_disabled: bool | None,
    client_enabled: bool,
    user_disabled: bool,
) -> bool:
    """May the scheduler aggregate this member without the end user?"""
    if user_disabled or status is None or status in NEEDS_END_USER or status in IN_PROGRESS:
        return False
    if member_disabled is None:
        return client_enabled
    return not member_disabled


def background_disabled(*, member_disabled: bool | None, client_enabled: bool) -> bool:
    """``background_aggregation_is_disabled`` as MX reports it: the member's own
    setting, or the client's default when the member has none."""
    if member_disabled is None:
        return not client_enabled
    return member_disabled


def next_background_at(
    after: dt.datetime, member_guid: str, interval: dt.timedelta, jitter: dt.timedelta
) -> dt.datetime:
    """About ``interval`` after ``after``, spread by a per-member offset in
    [-jitter, +jitter] so that members created together do not run together."""
    if not jitter:
        return after + interval
    digest = hashlib.blake2b(member_guid.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64  # stable in [0, 1)
    offset = (2 * fraction - 1) * jitter.total_seconds()
    return after + interval + dt.timedelta(seconds=offset)

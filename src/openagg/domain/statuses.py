"""The 22 MX connection statuses, their numeric ids and what each one allows.

This module is the single place that knows what a status means; the member state
service (`openagg.services.member_state`) is the single place that assigns one.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    CREATED = "CREATED"
    PREVENTED = "PREVENTED"
    DENIED = "DENIED"
    CHALLENGED = "CHALLENGED"
    REJECTED = "REJECTED"
    LOCKED = "LOCKED"
    CONNECTED = "CONNECTED"
    IMPEDED = "IMPEDED"
    RECONNECTED = "RECONNECTED"
    DEGRADED = "DEGRADED"
    DISCONNECTED = "DISCONNECTED"
    DISCONTINUED = "DISCONTINUED"
    CLOSED = "CLOSED"
    DELAYED = "DELAYED"
    FAILED = "FAILED"
    UPDATED = "UPDATED"
    DISABLED = "DISABLED"
    IMPORTED = "IMPORTED"
    RESUMED = "RESUMED"
    EXPIRED = "EXPIRED"
    IMPAIRED = "IMPAIRED"
    PENDING = "PENDING"

    @property
    def id(self) -> int:
        return STATUS_IDS[self]


# Ids as used by MX's Connect widget and webhooks (declaration order above).
STATUS_IDS: dict[Status, int] = {s: i for i, s in enumerate(Status)}

# What the end user reads about each status (connection_status_message).
MESSAGES: dict[Status, str] = {
    Status.CREATED: "Connecting to the institution.",
    Status.PREVENTED: "Several attempts failed with these credentials. To protect your account at "
    "the institution, no more attempts will be made until the credentials are updated.",
    Status.DENIED: "The credentials entered are not correct. Please update them.",
    Status.CHALLENGED: "The institution needs more information to verify your identity.",
    Status.REJECTED: "The answer to the security question was not correct.",
    Status.LOCKED: "The institution has locked this login. Please contact the institution.",
    Status.CONNECTED: "Connected.",
    Status.IMPEDED: "The institution needs you to take an action on its website "
    "(for example accept new terms). Log in there, then try again.",
    Status.RECONNECTED: "This connection moved to a new data source. Please sync it while you "
    "are present, as a new verification step may be needed.",
    Status.DEGRADED: "The institution is having trouble. We will keep trying.",
    Status.DISCONNECTED: "We have not been able to reach the institution for some time.",
    Status.DISCONTINUED: "Connections to this institution are no longer supported.",
    Status.CLOSED: "This connection is closed.",
    Status.DELAYED: "This is taking longer than expected. We are still working on it.",
    Status.FAILED: "We could not connect to the institution. Please try again later.",
    Status.UPDATED: "Credentials updated.",
    Status.DISABLED: "Aggregation for this connection is paused.",
    Status.IMPORTED: "Please enter your credentials to start syncing this connection.",
    Status.RESUMED: "Checking your answer.",
    Status.EXPIRED: "The security question was not answered in time.",
    Status.IMPAIRED: "Some required credentials are missing. Please update them.",
    Status.PENDING: "Waiting for you to finish signing in at the institution.",
}

# Statuses that send the CONNECTION_STATUS webhook: the end user can act on them.
END_USER_ACTIONABLE = frozenset(
    {
        Status.CHALLENGED,
        Status.DENIED,
        Status.EXPIRED,
        Status.IMPAIRED,
        Status.IMPEDED,
        Status.LOCKED,
        Status.PREVENTED,
        Status.REJECTED,
    }
)

# MX: "you must update credentials before aggregating" these.
NEEDS_NEW_CREDENTIALS = frozenset(
    {Status.PREVENTED, Status.DENIED, Status.IMPAIRED, Status.IMPORTED}
)

# MX: "you should not attempt aggregation" on these.
NOT_AGGREGATABLE = frozenset({Status.CLOSED, Status.DISABLED, Status.DISCONTINUED})

# A job owns the member while in these (set only while one runs or waits).
IN_PROGRESS = frozenset({Status.CHALLENGED, Status.DELAYED, Status.RESUMED})

# Background aggregation skips these: they need the end user (or an operator).
NEEDS_END_USER = (
    NEEDS_NEW_CREDENTIALS
    | NOT_AGGREGATABLE
    | {
        Status.CHALLENGED,
        Status.REJECTED,
        Status.EXPIRED,
        Status.LOCKED,
        Status.IMPEDED,
        Status.RECONNECTED,
        Status.PENDING,
    }
)


def by_id(status_id: int) -> Status:
    return list(Status)[status_id]

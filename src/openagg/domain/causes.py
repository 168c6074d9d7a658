"""Why an aggregation step ended, as a connector reports it.

Connectors speak in causes; the policy maps causes to MX connection statuses.
"""

from __future__ import annotations

from enum import StrEnum


class Cause(StrEnum):
    OK = "OK"
    MFA_REQUIRED = "MFA_REQUIRED"
    MFA_WRONG_ANSWER = "MFA_WRONG_ANSWER"
    MFA_EXPIRED = "MFA_EXPIRED"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"
    MISSING_CREDENTIALS = "MISSING_CREDENTIALS"
    LOCKED_OUT = "LOCKED_OUT"
    USER_ACTION_REQUIRED = "USER_ACTION_REQUIRED"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    INSTITUTION_ERROR = "INSTITUTION_ERROR"
    INSTITUTION_UNAVAILABLE = "INSTITUTION_UNAVAILABLE"
    BAD_REQUEST = "BAD_REQUEST"
    DATA_ERROR = "DATA_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    WORKER_LOST = "WORKER_LOST"
    INTERNAL_ERROR = "INTERNAL_ERROR"


# Causes that retrying later may fix without the end user: they count toward
# DEGRADED / DISCONNECTED.
TRANSIENT = frozenset(
    {
        Cause.INSTITUTION_ERROR,
        Cause.INSTITUTION_UNAVAILABLE,
        Cause.BAD_REQUEST,
        Cause.DATA_ERROR,
        Cause.RATE_LIMITED,
        Cause.TIMEOUT,
        Cause.WORKER_LOST,
        Cause.INTERNAL_ERROR,
    }
)

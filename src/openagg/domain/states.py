"""Where a job and a webhook delivery are in their lives: the values of
``jobs.state`` and ``webhook_deliveries.state``.

Not a member's connection status (that is ``statuses.Status``). The database stores
the values as plain strings; raw SQL spells them out.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"  # due at run_after, no worker
    RUNNING = "running"  # claimed: a worker holds its lease
    WAITING = "waiting"  # parked for the end user's MFA answers: holds the member, no lease
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"  # credentials updated, or stopped by an operator (services/admin.py)


# A job in one of these holds its member (``jobs.active_member_id``).
ACTIVE_JOB_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING)


class DeliveryState(StrEnum):
    PENDING = "pending"  # to send (again) at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # retries ran out

"""The job queue's storage: the ``jobs`` table and the per-institution caps.

Enqueue, claim, lease renewal, hand back, finish, wait for the user, requeue, and
what operators see of it. No loops here (those are in ``openagg.engine``), so the
services can enqueue without importing the engine. ``caps`` holds the pure cap
allocation rules.
"""

from openagg.queue.caps import Caps
from openagg.queue.jobs import (
    ACTIVE_STATES,
    END_USER_IP,
    PRIORITY,
    REVOKE,
    InstitutionCapsView,
    JobAlreadyActive,
    MemberQueueView,
    active_job,
    claim,
    default_caps,
    enqueue,
    enqueue_revocation,
    enqueue_unless_active,
    finish,
    hand_back,
    institution_caps,
    member_queue_view,
    new_job_values,
    renew_leases,
    requeue,
    retry_later,
    wait_for_user,
)

__all__ = [
    "ACTIVE_STATES",
    "END_USER_IP",
    "PRIORITY",
    "REVOKE",
    "Caps",
    "InstitutionCapsView",
    "JobAlreadyActive",
    "MemberQueueView",
    "active_job",
    "claim",
    "default_caps",
    "enqueue",
    "enqueue_revocation",
    "enqueue_unless_active",
    "finish",
    "hand_back",
    "institution_caps",
    "member_queue_view",
    "new_job_values",
    "renew_leases",
    "requeue",
    "retry_later",
    "wait_for_user",
]

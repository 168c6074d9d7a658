"""Runs a revocation job: a deleted member's access ended at its provider.

The job (``queue.enqueue_revocation``) has no member: it carries the member's guid,
its institution and its sealed secrets. The connector's ``revoke`` runs under the
same rules as its other calls (the platform's HTTP client, a redacting log, and
``engine/guard.py``: the job deadline, the stall watch, exceptions turned into
causes). A transient cause is retried with backoff (``OPENAGG_REVOCATION_*``); any
other cause, or the last attempt, gives up with a log line naming the institution
and the member guid. However the job ends,
``queue.finish`` erases the secrets it carried. Nothing is written about the member:
no attempt, no status, no webhook, no ticket.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select

from openagg.db.models import Institution, Job
from openagg.domain.causes import TRANSIENT, Cause
from openagg.domain.states import JobState
from openagg.engine.guard import Ended, guarded
from openagg.queue import REVOKE, finish, retry_later
from openagg.runtime import Runtime
from openagg.services.connector_calls import ConnectorCall

log = logging.getLogger("openagg.revoker")


@dataclass
class Revocation:
    job: Job  # as claimed (detached)
    institution: Institution | None  # None: removed since

    @property
    def member_guid(self) -> str:
        return str(self.job.options.get("member_guid") or "?")

    @property
    def where(self) -> str:
        return str(self.job.options.get("institution_code") or "?")


@dataclass(frozen=True)
class _Failed:
    cause: Cause
    message: str
    final: bool = False  # no retry can help


async def load(rt: Runtime, job_ids: list[int], worker_id: str) -> dict[int, Revocation]:
    """The revocation jobs among ``job_ids`` that this worker runs."""
    async with rt.db.read() as s:
        jobs = list(
            await s.scalars(
                select(Job).where(
                    Job.id.in_(job_ids),
                    Job.kind == REVOKE,
                    Job.state == JobState.RUNNING,
                    Job.worker_id == worker_id,
                )
            )
        )
        ids = {int(j.options.get("institution_id") or 0) for j in jobs}
        institutions = {
            i.id: i for i in await s.scalars(select(Institution).where(Institution.id.in_(ids)))
        }
    return {
        j.id: Revocation(j, institutions.get(int(j.options.get("institution_id") or 0)))
        for j in jobs
    }


def backoff(rt: Runtime, attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: doubling, up to a maximum."""
    settings = rt.settings
    seconds = settings.revocation_retry_base_seconds * 2 ** max(0, attempts - 1)
    return dt.timedelta(seconds=min(seconds, settings.revocation_retry_max_seconds))


def give_up_revocation(job: Job, reason: str) -> None:
    """The log line of a revocation given up (the caller then finishes the job)."""
    log.warning(
        "revocation job %s: gave up ending member %s's access at institution %s after "
        "%d attempt(s): %s",
        job.guid,
        job.options.get("member_guid"),
        job.options.get("institution_code"),
        job.attempts,
        reason,
    )


async def run(rt: Runtime, rev: Revocation, worker_id: str) -> None:
    failed = await _attempt(rt, rev)
    async with rt.db.write() as s:
        job = await s.scalar(
            select(Job)
            .where(Job.id == rev.job.id, Job.state == JobState.RUNNING, Job.worker_id == worker_id)
            .with_for_update()
        )
        if job is None:  # the lease was lost: another worker has it now
            return
        now = rt.now()
        if failed is None:
            finish(job, state=JobState.SUCCEEDED, now=now)
            log.info(
                "revocation job %s: member %s's access ended at %s",
                job.guid,
                rev.member_guid,
                rev.where,
            )
            return
        error = f"{failed.cause.value}: {failed.message}"[:500]
        final = failed.final or failed.cause not in TRANSIENT
        if not final and job.attempts < rt.settings.revocation_max_attempts:
            retry_later(job, at=now + backoff(rt, job.attempts), error=error)
            log.info(
                "revocation job %s: member %s at %s failed (%s); retried later",
                job.guid,
                rev.member_guid,
                rev.where,
                error,
            )
            return
        give_up_revocation(job, error)
        finish(job, state=JobState.FAILED, now=now, error=error)


async def _attempt(rt: Runtime, rev: Revocation) -> _Failed | None:
    """One call of the connector's ``revoke``: None when it ended the access."""
    job, institution = rev.job, rev.institution
    if institution is None:
        return _Failed(Cause.INTERNAL_ERROR, "the institution was removed", final=True)
    try:
        call = ConnectorCall(rt, rev.member_guid, job.secrets_enc, institution, now=rt.now())
    except Exception:  # a secret that does not open (a key removed too soon)
        log.exception("revocation job %s: the connector's context could not be made", job.guid)
        return _Failed(Cause.INTERNAL_ERROR, "the secrets could not be opened", final=True)
    if call.connector is None:
        log.error("revocation job %s: connector %r is not installed here", job.guid, call.name)
        return _Failed(Cause.INTERNAL_ERROR, f"connector {call.name!r} is not installed here")
    revoke = getattr(call.connector, "revoke", None)
    if not callable(revoke):
        return None  # the connector no longer revokes: nothing to do
    deadline = rt.settings.job_deadline_seconds
    try:
        await guarded(call, revoke(call.ctx), deadline=deadline, label=f"revocation job {job.guid}")
    except Ended as ended:
        return _Failed(ended.cause, ended.message)
    return None

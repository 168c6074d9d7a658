"""A durable job queue in the platform's own database.

Jobs are enqueued inside the caller's transaction, so a state change and the work
it asks for commit together or not at all. Workers claim jobs with a lease that
they renew while running; a job whose lease ran out (its worker died) is put back.
``jobs.active_member_id`` is unique, so the database itself guarantees one job per
member at a time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.engine import Database
from openagg.db.models import Job, Member
from openagg.domain.ids import new_guid
from openagg.domain.policy import JobKind, Trigger

ACTIVE_STATES = ("queued", "running", "waiting")

# Lower runs first: an end user is waiting on foreground work.
PRIORITY = {
    Trigger.FOREGROUND: 0,
    Trigger.AUTOMATIC: 0,
    Trigger.OAUTH: 0,
    Trigger.BACKGROUND: 10,
}


class JobAlreadyActive(Exception):
    """The member already has a queued, running or waiting job."""


async def active_job(session: AsyncSession, member_id: int) -> Job | None:
    return await session.scalar(select(Job).where(Job.active_member_id == member_id))


def enqueue(
    session: AsyncSession,
    *,
    client_id: int,
    member_id: int,
    kind: JobKind,
    trigger: Trigger,
    now: dt.datetime,
    options: dict[str, Any] | None = None,
) -> Job:
    """Add a job to the session (committed with the caller's transaction)."""
    job = Job(
        guid=new_guid("JOB"),
        client_id=client_id,
        member_id=member_id,
        active_member_id=member_id,
        kind=kind.value,
        trigger=trigger.value,
        state="queued",
        priority=PRIORITY[trigger],
        run_after=now,
        attempts=0,
        options=options or {},
        created_at=now,
    )
    session.add(job)
    return job


async def claim(
    db: Database, *, worker_id: str, limit: int, now: dt.datetime, lease: dt.timedelta
) -> list[int]:
    """Take up to ``limit`` due jobs for this worker; returns their ids."""
    if limit <= 0:
        return []
    due = (
        select(Job.id)
        .where(Job.state == "queued", Job.run_after <= now)
        .order_by(Job.priority, Job.id)
        .limit(limit)
    )
    if not db.sqlite:
        due = due.with_for_update(skip_locked=True)
    async with db.write() as session:
        result = await session.execute(
            update(Job)
            .where(Job.id.in_(due.scalar_subquery()))
            .values(
                state="running",
                worker_id=worker_id,
                lease_until=now + lease,
                started_at=now,
                attempts=Job.attempts + 1,
            )
            .returning(Job.id, Job.member_id, Job.answers_enc)
            .execution_options(synchronize_session=False)
        )
        rows = list(result)
        # MX's aggregated_at is when the last job started; a resumed MFA job is not a new one.
        starting = [m for _, m, answers in rows if answers is None and m is not None]
        if starting:
            await session.execute(
                update(Member)
                .where(Member.id.in_(starting))
                .values(aggregated_at=now)
                .execution_options(synchronize_session=False)
            )
        return [row[0] for row in rows]


async def renew_leases(
    db: Database, *, worker_id: str, job_ids: list[int], now: dt.datetime, lease: dt.timedelta
) -> None:
    if not job_ids:
        return
    async with db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.state == "running")
            .values(lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )


def finish(job: Job, *, state: str, now: dt.datetime, error: str | None = None) -> None:
    """End a job (in the caller's transaction) and free its member for the next one."""
    job.state = state
    job.active_member_id = None
    job.lease_until = None
    job.finished_at = now
    job.answers_enc = None
    if error:
        job.last_error = error


def wait_for_user(job: Job) -> None:
    """Park a job while the end user answers MFA: it keeps the member, holds no lease."""
    job.state = "waiting"
    job.lease_until = None
    job.worker_id = None


def requeue(job: Job, *, now: dt.datetime) -> None:
    job.state = "queued"
    job.run_after = now
    job.lease_until = None
    job.worker_id = None

"""A durable job queue in the platform's own database.

Jobs are enqueued inside the caller's transaction, so a state change and the work
it asks for commit together or not at all. Workers claim jobs with a lease that
they renew while running; a job whose lease ran out (its worker died) is put back.
``jobs.active_member_id`` is unique, so the database itself guarantees one job per
member at a time.

A revocation job (kind ``revoke``, ``enqueue_revocation``) has no member: it is
enqueued in the transaction that deletes its member, and carries what the connector's
``revoke`` needs (the member's guid and institution, its sealed secrets), so the
member row goes at once and nothing ties the job to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.engine import Database
from openagg.db.models import Attempt, Institution, InstitutionLimit, Job, Member, UTCDateTime
from openagg.domain.ids import new_guid
from openagg.domain.policy import JobKind, Trigger
from openagg.domain.states import JobState
from openagg.queue import caps
from openagg.queue.caps import Candidate, Caps, effective_caps
from openagg.settings import Settings, get_settings

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING)
# A job's option: the end user's IP address when they started it (the Connect widget,
# the OAuth callback), for the connector (PSD2's PSU-IP-Address). Dropped when the
# job ends (``finish``): kept no longer than the job needs it.
END_USER_IP = "end_user_ip"

# Lower runs first: an end user is waiting on foreground work.
PRIORITY = {
    Trigger.FOREGROUND: 0,
    Trigger.AUTOMATIC: 0,
    Trigger.OAUTH: 0,
    Trigger.BACKGROUND: 10,
}


# The kind of a revocation job (not a ``JobKind``: no member, no aggregation).
REVOKE = "revoke"


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
    job = Job(**new_job_values(client_id, member_id, kind, trigger, now, options))
    session.add(job)
    return job


def new_job_values(
    client_id: int,
    member_id: int,
    kind: JobKind,
    trigger: Trigger,
    now: dt.datetime,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of a newly queued job."""
    return {
        "guid": new_guid("JOB"),
        "client_id": client_id,
        "member_id": member_id,
        "active_member_id": member_id,
        "kind": kind.value,
        "trigger": trigger.value,
        "state": JobState.QUEUED,
        "priority": PRIORITY[trigger],
        "run_after": now,
        "attempts": 0,
        "options": options or {},
        "is_delayed": False,
        "created_at": now,
    }


def enqueue_revocation(
    session: AsyncSession,
    *,
    client_id: int,
    member_guid: str,
    institution_id: int,
    institution_code: str,
    secrets_enc: bytes,
    now: dt.datetime,
) -> Job:
    """Add a revocation job for a member being deleted (committed with the delete).
    ``secrets_enc`` is the member's sealed secrets, copied as they are: they open
    only with the member's guid, which the job keeps."""
    job = Job(
        guid=new_guid("JOB"),
        client_id=client_id,
        member_id=None,
        active_member_id=None,
        kind=REVOKE,
        trigger=Trigger.BACKGROUND.value,
        state=JobState.QUEUED,
        priority=PRIORITY[Trigger.BACKGROUND],
        run_after=now,
        attempts=0,
        options={
            "member_guid": member_guid,
            "institution_id": institution_id,
            "institution_code": institution_code,
        },
        secrets_enc=secrets_enc,
        is_delayed=False,
        created_at=now,
    )
    session.add(job)
    return job


async def enqueue_unless_active(
    session: AsyncSession, db: Database, jobs: list[dict[str, Any]]
) -> int:
    """Insert jobs (``new_job_values``), skipping members that already have an active
    job, even one committed by a concurrent transaction a moment ago; returns how
    many were inserted. The unique ``active_member_id`` decides, without an error."""
    if not jobs:
        return 0
    insert = sqlite.insert if db.sqlite else postgresql.insert
    # Executemany form: one cached statement, sent in pages of many rows; a
    # ``.values(list)`` statement would be compiled afresh with one bind per cell.
    connection = await session.connection()
    result = await connection.execute(
        insert(Job).on_conflict_do_nothing(index_elements=["active_member_id"]).returning(Job.id),
        jobs,
    )
    return len(result.all())


def default_caps(settings: Settings | None = None) -> Caps:
    """The global per-institution caps (``OPENAGG_INSTITUTION_MAX_*``)."""
    s = settings or get_settings()
    return Caps(s.institution_max_concurrent, s.institution_max_per_day)


async def claim(
    db: Database,
    *,
    worker_id: str,
    limit: int,
    now: dt.datetime,
    lease: dt.timedelta,
    defaults: Caps | None = None,
    ahead: int = 0,
) -> list[int]:
    """Take up to ``limit`` due jobs for this worker, within the institutions' caps;
    returns their ids. When no institution has a cap, take up to ``ahead`` more
    (jobs the worker holds for its next free slots: under a cap, a held job would
    take a session at the institution that it does not use).

    Jobs are taken by priority (foreground first), then age. On PostgreSQL the
    candidates are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
    never wait on each other's jobs. Capped institutions are then locked by their
    ``institution_limits`` row, in id order (no deadlock), and their running count is
    read under that lock, so two claimers cannot both take an institution's last
    slot. ``defaults`` are the global caps (from the process's settings when None).
    """
    if limit + ahead <= 0:
        return []
    defaults = default_caps() if defaults is None else defaults
    async with db.write() as session:
        if not db.sqlite and not defaults.any:
            claimed = await _claim_uncapped(session, worker_id, limit + ahead, now, lease)
            if claimed is not None:
                return claimed
        limits = {
            row.institution_id: effective_caps(row.max_concurrent, row.max_per_day, defaults)
            for row in await session.scalars(select(InstitutionLimit))
        }
        if not defaults.any and not any(c.any for c in limits.values()):
            return await _start(session, _due(db, limit + ahead, now), worker_id, now, lease)
        if limit <= 0:
            return []
        return await _claim_within_caps(
            session, db, limits, defaults, worker_id=worker_id, limit=limit, now=now, lease=lease
        )


# PostgreSQL without global caps: one round trip takes the due jobs (foreground
# first), starts them and stamps their members' aggregated_at (MX: when the last job
# started; a resumed MFA job is not a new one). If any institution has a cap of its
# own, it takes nothing and answers a single NULL row: the caller then claims the
# capped way. Foreground-first order and SKIP LOCKED are those of ``_due``.
_CLAIM_UNCAPPED = text(
    """
    WITH capped AS (
        SELECT 1 FROM institution_limits
        WHERE max_concurrent > 0 OR max_per_day > 0
        LIMIT 1
    ), due AS (
        SELECT jobs.id, members.institution_id
        FROM jobs LEFT JOIN members ON members.id = jobs.member_id
        WHERE jobs.state = 'queued' AND jobs.run_after <= :now
          AND NOT EXISTS (SELECT 1 FROM capped)
        ORDER BY jobs.priority, jobs.id
        LIMIT :limit
        FOR UPDATE OF jobs SKIP LOCKED
    ), started AS (
        UPDATE jobs SET state = 'running', worker_id = :worker_id,
            lease_until = :lease_until, started_at = :now,
            attempts = jobs.attempts + 1, institution_id = due.institution_id
        FROM due WHERE jobs.id = due.id
        RETURNING jobs.id, jobs.member_id, jobs.answers_enc IS NULL AS starting
    ), stamped AS (
        UPDATE members SET aggregated_at = :now
        FROM started WHERE members.id = started.member_id AND started.starting
    )
    SELECT id FROM started
    UNION ALL
    SELECT NULL FROM capped
    """
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("lease_until", type_=UTCDateTime))


async def _claim_uncapped(
    session: AsyncSession, worker_id: str, limit: int, now: dt.datetime, lease: dt.timedelta
) -> list[int] | None:
    """The claimed ids; None when some institution has a cap of its own."""
    rows = await session.execute(
        _CLAIM_UNCAPPED,
        {"now": now, "lease_until": now + lease, "worker_id": worker_id, "limit": limit},
    )
    ids = [job_id for (job_id,) in rows]
    return None if None in ids else ids


def _due(db: Database, limit: int, now: dt.datetime) -> Select[Any]:
    due = (
        select(Job.id)
        .where(Job.state == JobState.QUEUED, Job.run_after <= now)
        .order_by(Job.priority, Job.id)
        .limit(limit)
    )
    return due if db.sqlite else due.with_for_update(skip_locked=True)


async def _start(
    session: AsyncSession,
    ids: Select[Any] | list[int],
    worker_id: str,
    now: dt.datetime,
    lease: dt.timedelta,
) -> list[int]:
    """Move the given queued jobs to running for this worker."""
    chosen = ids if isinstance(ids, list) else ids.scalar_subquery()
    if isinstance(chosen, list) and not chosen:
        return []
    result = await session.execute(
        update(Job)
        .where(Job.id.in_(chosen))
        .values(
            state=JobState.RUNNING,
            worker_id=worker_id,
            lease_until=now + lease,
            started_at=now,
            attempts=Job.attempts + 1,
            institution_id=select(Member.institution_id)
            .where(Member.id == Job.member_id)
            .scalar_subquery(),
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


async def _claim_within_caps(
    session: AsyncSession,
    db: Database,
    limits: dict[int, Caps],
    defaults: Caps,
    *,
    worker_id: str,
    limit: int,
    now: dt.datetime,
    lease: dt.timedelta,
) -> list[int]:
    def caps_of(institution_id: int) -> Caps:
        return limits.get(institution_id, defaults)

    # Skip institutions already at their concurrency cap, so their backlog does not
    # hide other institutions' jobs (an unlocked read; the locked check follows).
    concurrency_capped = None if defaults.max_concurrent else list(limits)
    full = [
        iid
        for iid, running in await _running_counts(session, concurrency_capped)
        if caps_of(iid).max_concurrent and running >= caps_of(iid).max_concurrent
    ]
    due = (
        select(Job.id, Job.trigger, Job.answers_enc.is_not(None), Member.institution_id)
        .outerjoin(Member, Member.id == Job.member_id)
        .where(Job.state == JobState.QUEUED, Job.run_after <= now)
        .order_by(Job.priority, Job.id)
        .limit(limit)
    )
    if full:
        # A job without a member (a revocation) has no institution to be full.
        due = due.where(or_(Member.institution_id.is_(None), Member.institution_id.not_in(full)))
    if not db.sqlite:
        due = due.with_for_update(of=Job, skip_locked=True)
    candidates = [
        Candidate(job_id, iid, trigger != Trigger.BACKGROUND.value, bool(resuming))
        for job_id, trigger, resuming, iid in await session.execute(due)
    ]
    capped = sorted(
        {
            c.institution_id
            for c in candidates
            if c.institution_id is not None and caps_of(c.institution_id).any
        }
    )
    rows = await _lock_limits(session, db, capped)
    today = now.astimezone(dt.UTC).date()
    usage = {iid: caps.Usage() for iid in capped}
    for iid, running in await _running_counts(session, capped):
        usage[iid].running = running
    for iid, row in rows.items():
        usage[iid].started_today = row.started_on_day if row.usage_day == today else 0

    plan = caps.allocate(candidates, {iid: caps_of(iid) for iid in capped}, usage, now)
    for iid in plan.started:
        rows[iid].started_on_day = usage[iid].started_today
        rows[iid].usage_day = today
    if plan.defer:
        await session.execute(
            update(Job),
            [
                {
                    "id": job_id,
                    "run_after": d.until,
                    "deferred_until": d.until,
                    "deferred_reason": d.reason,
                }
                for job_id, d in plan.defer.items()
            ],
        )
    return await _start(session, plan.claim, worker_id, now, lease)


async def _running_counts(
    session: AsyncSession, institution_ids: list[int] | None
) -> list[tuple[int, int]]:
    """Running jobs per institution (all institutions when ``institution_ids`` is None)."""
    q = (
        select(Job.institution_id, func.count())
        .where(Job.state == JobState.RUNNING, Job.institution_id.is_not(None))
        .group_by(Job.institution_id)
    )
    if institution_ids is not None:
        if not institution_ids:
            return []
        q = q.where(Job.institution_id.in_(institution_ids))
    return [(iid, n) for iid, n in await session.execute(q) if iid is not None]


async def _lock_limits(
    session: AsyncSession, db: Database, institution_ids: list[int]
) -> dict[int, InstitutionLimit]:
    """Lock the institutions' limit rows (created when missing), in id order."""
    if not institution_ids:
        return {}
    insert = sqlite.insert if db.sqlite else postgresql.insert
    await session.execute(
        insert(InstitutionLimit)
        .values([{"institution_id": iid, "started_on_day": 0} for iid in institution_ids])
        .on_conflict_do_nothing(index_elements=["institution_id"])
    )
    rows = await session.scalars(
        select(InstitutionLimit)
        .where(InstitutionLimit.institution_id.in_(institution_ids))
        .order_by(InstitutionLimit.institution_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.institution_id: row for row in rows}


async def renew_leases(
    db: Database, *, worker_id: str, job_ids: list[int], now: dt.datetime, lease: dt.timedelta
) -> None:
    if not job_ids:
        return
    async with db.write() as session:
        await session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.state == JobState.RUNNING)
            .values(lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )


async def hand_back(
    session: AsyncSession, job_ids: list[int], *, never_started: set[int], worker_id: str
) -> None:
    """A stopping worker's jobs back to the queue: a clean stop is not a failed
    attempt. A job in ``never_started`` never reached the institution, so its member
    gets back the ``aggregated_at`` its claim stamped over: when the member's last
    attempt started (None if it has none)."""
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.worker_id == worker_id, Job.state == JobState.RUNNING)
        .values(state=JobState.QUEUED, worker_id=None, lease_until=None, attempts=Job.attempts - 1)
        .returning(Job.id, Job.member_id, Job.answers_enc)
        .execution_options(synchronize_session=False)
    )
    # A resumed MFA job did not stamp its member (see ``_start``).
    unstamp = [
        m
        for job_id, m, answers in rows
        if job_id in never_started and answers is None and m is not None
    ]
    if unstamp:
        await session.execute(
            update(Member)
            .where(Member.id.in_(unstamp))
            .values(
                aggregated_at=select(func.max(Attempt.started_at))
                .where(Attempt.member_id == Member.id)
                .scalar_subquery()
            )
            .execution_options(synchronize_session=False)
        )


def finish(job: Job, *, state: JobState, now: dt.datetime, error: str | None = None) -> None:
    """End a job (in the caller's transaction) and free its member for the next one.
    What it carried sealed (MFA answers, a revocation's secrets) goes with it."""
    job.state = state
    job.active_member_id = None
    job.lease_until = None
    job.finished_at = now
    job.answers_enc = None
    job.secrets_enc = None
    if job.options and END_USER_IP in job.options:
        # The end user's address serves the job's requests only (PSD2's PSU-IP-Address).
        job.options = {k: v for k, v in job.options.items() if k != END_USER_IP}
    if error:
        job.last_error = error


def wait_for_user(job: Job) -> None:
    """Park a job while the end user answers MFA: it keeps the member, holds no lease."""
    job.state = JobState.WAITING
    job.lease_until = None
    job.worker_id = None


def requeue(job: Job, *, now: dt.datetime) -> None:
    job.state = JobState.QUEUED
    job.run_after = now
    job.lease_until = None
    job.worker_id = None


def retry_later(job: Job, *, at: dt.datetime, error: str) -> None:
    """Back to the queue until ``at`` after a failed attempt (a revocation's
    backoff); ``attempts`` keeps counting."""
    requeue(job, now=at)
    job.last_error = error


# --- What operators see and set (openagg institutions caps, openagg members show) ------


@dataclass
class InstitutionCapsView:
    code: str
    own: tuple[int | None, int | None]  # (max_concurrent, max_per_day); None: default
    effective: Caps
    running: int
    started_today: int


async def institution_caps(
    db: Database,
    code: str,
    *,
    now: dt.datetime,
    defaults: Caps,
    max_concurrent: int | None = None,
    max_per_day: int | None = None,
    use_defaults: bool = False,
) -> InstitutionCapsView | None:
    """Read an institution's caps and usage, after changing what is given
    (``use_defaults`` first clears both back to the global defaults)."""
    async with db.write() as s:
        inst = await s.scalar(select(Institution).where(Institution.code == code))
        if inst is None:
            return None
        rows = await _lock_limits(s, db, [inst.id])
        row = rows[inst.id]
        if use_defaults:
            row.max_concurrent = row.max_per_day = None
        if max_concurrent is not None:
            row.max_concurrent = max_concurrent
        if max_per_day is not None:
            row.max_per_day = max_per_day
        running = dict(await _running_counts(s, [inst.id])).get(inst.id, 0)
        today = now.astimezone(dt.UTC).date()
        return InstitutionCapsView(
            code=inst.code,
            own=(row.max_concurrent, row.max_per_day),
            effective=effective_caps(row.max_concurrent, row.max_per_day, defaults),
            running=running,
            started_today=row.started_on_day if row.usage_day == today else 0,
        )


@dataclass
class MemberQueueView:
    member: Member
    institution_code: str
    job: Job | None  # the active job
    attempts: list[Attempt]  # newest first


async def member_queue_view(db: Database, guid: str, attempts: int = 10) -> MemberQueueView | None:
    async with db.read() as s:
        member = await s.scalar(select(Member).where(Member.guid == guid))
        if member is None:
            return None
        code = await s.scalar(
            select(Institution.code).where(Institution.id == member.institution_id)
        )
        recent = await s.scalars(
            select(Attempt)
            .where(Attempt.member_id == member.id)
            .order_by(Attempt.id.desc())
            .limit(attempts)
        )
        return MemberQueueView(member, code or "?", await active_job(s, member.id), list(recent))

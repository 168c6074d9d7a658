"""Time-driven work: background aggregation, lost workers, unanswered challenges,
OAuth consents about to end.

`tick(rt)` does one pass and can be called with any clock, which is how tests
move time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, func, select, update

from openagg.db.models import Client, Job, Member, Transaction, User
from openagg.domain.causes import Cause
from openagg.domain.policy import JobKind, Trigger, background_eligible, next_background_at
from openagg.domain.states import JobState
from openagg.domain.statuses import Status
from openagg.engine.revoker import give_up_revocation
from openagg.queue import REVOKE, enqueue_unless_active, finish, new_job_values, requeue
from openagg.runtime import Runtime
from openagg.services import consent, vault
from openagg.services.member_state import Outcome, apply_outcome

log = logging.getLogger("openagg.scheduler")

BATCH = 1000
# At most this many batches per tick, so the tick's other steps are never held up
# for long by a huge backlog; the next tick carries on.
MAX_BATCHES = 100
# pg_try_advisory_xact_lock key: one scheduler at a time purges stale pending rows.
PURGE_LOCK = 0x6F61_7075  # "oapu"


@dataclass
class TickResult:
    background_enqueued: int = 0
    leases_recovered: int = 0
    challenges_expired: int = 0
    consents_announced: int = 0


async def tick(rt: Runtime) -> TickResult:
    """One pass. Any number of schedulers may run at once (one per serve or worker
    process): on PostgreSQL each step locks the rows it acts on with ``SKIP LOCKED``
    and re-checks them under the lock, so two passes never act on the same row."""
    result = TickResult()
    result.leases_recovered = await recover_lost_jobs(rt)
    result.challenges_expired = await expire_challenges(rt)
    result.background_enqueued = await enqueue_background(rt)
    result.consents_announced = await consent.notify_expiring(rt)
    await purge_stale_pending(rt)
    await wake_for_due_jobs(rt)
    return result


async def recover_lost_jobs(rt: Runtime) -> int:
    """Jobs whose worker stopped renewing the lease go back to the queue."""
    now = rt.now()
    async with rt.db.write() as s:
        lost = list(
            await s.scalars(
                select(Job)
                .where(Job.state == JobState.RUNNING, Job.lease_until < now)
                .with_for_update(skip_locked=True)
            )
        )
        for job in lost:
            revoking = job.kind == REVOKE
            most = rt.settings.revocation_max_attempts if revoking else rt.settings.max_job_attempts
            if job.attempts < most:
                requeue(job, now=now)
                continue
            member = None if job.member_id is None else await s.get(Member, job.member_id)
            if revoking:
                give_up_revocation(job, "its worker was lost too many times")
            if member is not None:
                await apply_outcome(
                    s,
                    rt,
                    member,
                    job,
                    Outcome(Cause.WORKER_LOST, "The job was interrupted."),
                    started_at=job.started_at or now,
                    institution_id=member.institution_id,
                )
            finish(job, state=JobState.FAILED, now=now, error="worker lost too many times")
    if lost:
        rt.job_enqueued.set()
    return len(lost)


async def expire_challenges(rt: Runtime) -> int:
    now = rt.now()
    async with rt.db.write() as s:
        rows = list(
            await s.execute(
                select(Job, Member)
                .join(Member, Member.id == Job.member_id)
                .where(Job.state == JobState.WAITING, Member.challenge_expires_at < now)
                .with_for_update(skip_locked=True)
            )
        )
        for job, member in rows:
            vault.clear_connector_state(member)
            await apply_outcome(
                s,
                rt,
                member,
                job,
                Outcome(Cause.MFA_EXPIRED, "The challenge was not answered."),
                started_at=member.status_changed_at or now,
                institution_id=member.institution_id,
            )
            finish(job, state=JobState.FAILED, now=now, error="challenge expired")
    return len(rows)


async def enqueue_background(rt: Runtime) -> int:
    """Enqueue members whose background run is due; push the others' dates out.

    Works through the due members in batches of ``BATCH``, each in a transaction of
    its own (short locks; a crash loses one batch at most), until none is left or
    ``MAX_BATCHES`` are done: the next tick goes on from there."""
    now = rt.now()
    total = 0
    for _ in range(MAX_BATCHES):
        seen, enqueued = await _enqueue_background_batch(rt, now)
        total += enqueued
        if enqueued:
            rt.job_enqueued.set()  # this process's worker may start on them already
        if seen < BATCH:
            break
    return total


async def _enqueue_background_batch(rt: Runtime, now: dt.datetime) -> tuple[int, int]:
    """One batch of due members, oldest first: returns (members looked at, enqueued).

    Only the columns the rules need are read, and each write is one statement sent
    for the whole batch: no member objects are loaded or flushed."""
    settings = rt.settings
    interval = dt.timedelta(seconds=settings.background_interval_seconds)
    jitter = dt.timedelta(seconds=settings.background_jitter_seconds)
    # The batch is chosen (and locked) from members alone, so only its own members
    # are joined to their users and clients, not every due member before the sort.
    # The member columns come from the locked rows: current, not the snapshot's.
    due = (
        select(
            Member.id,
            Member.client_id,
            Member.guid,
            Member.connection_status,
            Member.background_aggregation_is_disabled,
            Member.user_id,
        )
        .outerjoin(Job, Job.active_member_id == Member.id)
        .where(Member.next_background_at <= now, Job.id.is_(None))
        .order_by(Member.next_background_at)
        .limit(BATCH)
        # Another scheduler's pass (or a request) holding the member: skip it. Under
        # the lock PostgreSQL re-checks next_background_at, which a pass always
        # pushes out, so a member is never enqueued by two passes.
        .with_for_update(of=Member, skip_locked=True)
        .subquery("due")
    )
    async with rt.db.write() as s:
        rows = (
            await s.execute(
                select(
                    due.c.id,
                    due.c.client_id,
                    due.c.guid,
                    due.c.connection_status,
                    due.c.background_aggregation_is_disabled,
                    User.is_disabled,
                    Client.background_aggregation_enabled,
                )
                .join(User, User.id == due.c.user_id)
                .join(Client, Client.id == due.c.client_id)
            )
        ).all()
        if not rows:
            return 0, 0
        jobs = [
            new_job_values(client_id, member_id, JobKind.AGGREGATE, Trigger.BACKGROUND, now)
            for member_id, client_id, _, status, disabled, user_disabled, client_enabled in rows
            if background_eligible(
                Status(status) if status else None,
                member_disabled=disabled,
                client_enabled=client_enabled,
                user_disabled=user_disabled,
            )
        ]
        # Not eligible now: look again one interval later rather than every tick. The
        # date is the one member_state.schedule_background gives.
        connection = await s.connection()
        await connection.execute(
            update(Member)
            .where(Member.id == bindparam("member_id"))
            .values(next_background_at=bindparam("next_at")),
            [
                {"member_id": row[0], "next_at": next_background_at(now, row[2], interval, jitter)}
                for row in rows
            ],
        )
        # A request may have given a member a job since the read: that one wins.
        count = await enqueue_unless_active(s, rt.db, jobs)
    return len(rows), count


PURGE_BATCH = 1000  # members per transaction (bound parameters stay few)


async def purge_stale_pending(rt: Runtime) -> None:
    """MX's failsafe: pending transactions older than the limit are deleted, a batch
    of members at a time. Each member is locked first, as a job settling it would
    (members, then their transactions), and members being settled right now are
    skipped: their own ingest removes stale pendings, or the next tick does."""
    cutoff = (rt.now() - dt.timedelta(days=rt.settings.pending_transaction_max_age_days)).date()
    stale = and_(Transaction.status == "PENDING", Transaction.date < cutoff)
    while True:
        async with rt.db.write() as s:
            if not rt.db.sqlite and not await s.scalar(
                select(func.pg_try_advisory_xact_lock(PURGE_LOCK))
            ):
                return  # another scheduler is purging right now
            members = (
                await s.scalars(
                    select(Member.id)
                    .where(Member.id.in_(select(Transaction.member_id).where(stale)))
                    .order_by(Member.id)
                    .limit(PURGE_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not members:
                return
            await s.execute(delete(Transaction).where(stale, Transaction.member_id.in_(members)))
            await s.execute(
                update(Member)
                .where(Member.id.in_(members))
                .values(transactions_version=Member.transactions_version + 1)
            )
        if len(members) < PURGE_BATCH:
            return


async def wake_for_due_jobs(rt: Runtime) -> None:
    """Wake this process's worker when a deferred job has come due: only a new or
    requeued job sends a notification, so without this a deferred job would wait for
    the worker's next poll."""
    async with rt.db.read() as s:
        due = await s.scalar(
            select(Job.id).where(Job.state == JobState.QUEUED, Job.run_after <= rt.now()).limit(1)
        )
    if due is not None:
        rt.job_enqueued.set()


async def run_scheduler(rt: Runtime, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await tick(rt)
        except Exception:
            log.exception("scheduler tick failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rt.settings.scheduler_interval_seconds)

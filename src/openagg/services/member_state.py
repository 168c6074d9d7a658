"""The one module that assigns a member's connection status.

Every status change goes through `set_status` (direct changes: admin actions,
transient states) or `apply_outcome` (the end of a connector attempt, where MX's
rules pick the status from the cause and the member's history, and the attempt is
recorded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg import metrics
from openagg.db.models import Attempt, Job, Member
from openagg.domain.causes import TRANSIENT, Cause
from openagg.domain.policy import FailureHistory, next_background_at, status_after
from openagg.domain.statuses import END_USER_ACTIONABLE, Status
from openagg.runtime import Runtime
from openagg.services import support, webhooks

_TRANSIENT_VALUES = [c.value for c in TRANSIENT]


def current_status(member: Member) -> Status | None:
    return Status(member.connection_status) if member.connection_status else None


def set_status(member: Member, status: Status | None, now: dt.datetime) -> bool:
    """Assign ``status``; returns whether it changed.

    The end-user-actionable statuses come only from an attempt's outcome
    (``apply_outcome``), which also sends the CONNECTION_STATUS webhook."""
    if status in END_USER_ACTIONABLE:
        raise ValueError(f"{status} is set by apply_outcome, which sends its webhook")
    return _assign(member, status, now)


def _assign(member: Member, status: Status | None, now: dt.datetime) -> bool:
    value = status.value if status else None
    if member.connection_status == value:
        return False
    member.connection_status = value
    member.status_changed_at = now
    member.updated_at = now
    if status != Status.CHALLENGED:
        member.challenges = None
        member.challenge_expires_at = None
    return True


async def deny_consent(session: AsyncSession, rt: Runtime, member: Member, message: str) -> None:
    """DENIED without an attempt: the end user declined access at an OAuth institution
    (its consent page). Like an attempt's outcome, the status carries the words and
    sends the CONNECTION_STATUS webhook."""
    changed = _assign(member, Status.DENIED, rt.now())
    member.status_message = " ".join(message.split())[:STATUS_MESSAGE_CHARS]
    member.status_message_for = Status.DENIED.value
    member.updated_at = rt.now()
    if changed:
        await webhooks.status_changed_event(session, rt, member)


def schedule_background(rt: Runtime, member: Member, after: dt.datetime) -> None:
    s = rt.settings
    member.next_background_at = next_background_at(
        after,
        member.guid,
        dt.timedelta(seconds=s.background_interval_seconds),
        dt.timedelta(seconds=s.background_jitter_seconds),
    )


# How much of an institution's message a member shows (banks' texts are short).
STATUS_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class Outcome:
    cause: Cause
    institution_message: str = ""
    transactions_created: int = 0
    transactions_updated: int = 0
    # The login (and any MFA) succeeded before the attempt ended this way: MX's
    # is_authenticated is about the credentials in the most recent attempt.
    logged_in: bool = False


async def _history(
    session: AsyncSession, rt: Runtime, member: Member, now: dt.datetime
) -> FailureHistory:
    window_start = now - dt.timedelta(seconds=rt.settings.degraded_window_seconds)
    last_ok = await session.scalar(
        select(func.max(Attempt.id)).where(
            Attempt.member_id == member.id, Attempt.cause == Cause.OK.value
        )
    )
    in_window_q = (
        select(func.count())
        .select_from(Attempt)
        .where(
            Attempt.member_id == member.id,
            Attempt.finished_at >= window_start,
            Attempt.cause.in_(_TRANSIENT_VALUES),
        )
    )
    if last_ok is not None:  # a success in between starts the count again
        in_window_q = in_window_q.where(Attempt.id > last_ok)
    in_window = await session.scalar(in_window_q)
    since_ok = (
        select(func.count())
        .select_from(Attempt)
        .where(Attempt.member_id == member.id, Attempt.cause.in_(_TRANSIENT_VALUES))
    )
    if last_ok is not None:
        since_ok = since_ok.where(Attempt.id > last_ok)
    consecutive = await session.scalar(since_ok)
    return FailureHistory(
        failures_in_window=(in_window or 0) + 1,
        consecutive_failures=(consecutive or 0) + 1,
        consecutive_credential_failures=member.consecutive_credential_failures + 1,
        last_success_at=member.successfully_aggregated_at,
        member_created_at=member.created_at,
    )


@dataclass(frozen=True)
class Applied:
    """An outcome applied to a member by ``decide_outcome``: the status it now has,
    whether that changed, and the attempt row to store."""

    status: Status
    status_changed: bool
    attempt: Attempt


@dataclass(frozen=True)
class Listeners:
    """Whether the hooks that follow an outcome have anything to act on for a
    member: its client has a webhook endpoint; it has an open support ticket. The
    engine reads both in the settling transaction for many members at once and
    skips a hook that would find nothing (it would only have queried to learn so)."""

    webhooks: bool = True
    support: bool = True


async def apply_outcome(
    session: AsyncSession,
    rt: Runtime,
    member: Member,
    job: Job,
    outcome: Outcome,
    *,
    started_at: dt.datetime,
    institution_id: int,
) -> Status:
    """Record the attempt and move the member to the status MX's rules give."""
    applied = await decide_outcome(
        session, rt, member, job, outcome, started_at=started_at, institution_id=institution_id
    )
    session.add(applied.attempt)
    await after_outcome(session, rt, member, job, outcome, applied)
    return applied.status


async def decide_outcome(
    session: AsyncSession,
    rt: Runtime,
    member: Member,
    job: Job,
    outcome: Outcome,
    *,
    started_at: dt.datetime,
    institution_id: int,
) -> Applied:
    """The rules of ``apply_outcome``: change the member and build the attempt row,
    which the caller stores, then calls ``after_outcome`` (once the member's new
    state is written, so the hooks read it)."""
    now = rt.now()
    cause = outcome.cause
    if cause == Cause.OK:
        status = Status.CONNECTED
    else:
        history = await _history(session, rt, member, now)
        status = status_after(cause, history, now, rt.failure_rules)

    if cause == Cause.OK:
        member.is_authenticated = True
        if job.kind in ("aggregate", "history"):
            member.successfully_aggregated_at = now
        member.last_job_succeeded_at = now
        member.consecutive_credential_failures = 0
        member.data_source = None
    elif cause == Cause.BAD_CREDENTIALS:
        member.consecutive_credential_failures += 1
        member.is_authenticated = False
    elif cause in (Cause.MISSING_CREDENTIALS, Cause.LOCKED_OUT):
        member.is_authenticated = False
    elif outcome.logged_in:
        member.is_authenticated = True

    # Any finished attempt, foreground or background, pushes the next background run out.
    schedule_background(rt, member, now)
    attempt = Attempt(
        client_id=member.client_id,
        member_id=member.id,
        job_id=job.id,
        institution_id=institution_id,
        kind=job.kind,
        trigger=job.trigger,
        started_at=started_at,
        finished_at=now,
        cause=cause.value,
        status_after=status.value,
        institution_message=outcome.institution_message or None,
        transactions_created=outcome.transactions_created,
        transactions_updated=outcome.transactions_updated,
    )
    metrics.observe_job(job.kind, cause.value, (now - started_at).total_seconds())
    changed = _assign(member, status, now)
    words = " ".join(outcome.institution_message.split())[:STATUS_MESSAGE_CHARS]
    member.status_message = words if words and cause != Cause.OK else None
    member.status_message_for = status.value if member.status_message else None
    member.updated_at = now
    return Applied(status, changed, attempt)


async def after_outcome(
    session: AsyncSession,
    rt: Runtime,
    member: Member,
    job: Job,
    outcome: Outcome,
    applied: Applied,
    listeners: Listeners = Listeners(),
) -> None:
    """The hooks of an applied outcome: its webhooks, and the verdict on a support
    ticket."""
    if listeners.webhooks:
        await webhooks.attempt_finished(
            session,
            rt,
            member,
            job,
            succeeded=outcome.cause == Cause.OK,
            status_changed=applied.status_changed,
            transactions_created=outcome.transactions_created,
            transactions_updated=outcome.transactions_updated,
        )
    if listeners.support:
        # The verdict on an engineer's fix: close or reopen the member's support ticket.
        await support.after_attempt(session, rt, member, outcome.cause)

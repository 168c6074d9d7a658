"""Runs one job: log in (or answer MFA), pull data, ingest, and settle the member.

The runner holds no transaction while it talks to the institution. Every write
re-checks that this worker still owns the job, so a worker that lost its lease
(and whose job another worker took over) cannot write stale results.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg import logs
from openagg.connectors.base import (
    AccountData,
    Connector,
    ConnectorContext,
    ConnectorError,
    HoldingData,
    LoginResult,
    OwnerData,
    TransactionData,
)
from openagg.db.models import Attempt, Institution, Job, Member
from openagg.domain.causes import Cause
from openagg.domain.policy import JobKind
from openagg.domain.statuses import Status
from openagg.engine import ingest
from openagg.engine.batcher import WriteBatcher
from openagg.engine.queue import finish, wait_for_user
from openagg.runtime import Runtime
from openagg.services import vault
from openagg.services.member_state import Outcome, apply_outcome, set_status

log = logging.getLogger("openagg.runner")

HISTORY_DAYS = {JobKind.AGGREGATE: 90, JobKind.HISTORY: 730}
# On repeat aggregations, re-read this far back before the last success, to catch
# late postings and pending transactions that settled.
OVERLAP_DAYS = 14


@dataclass
class Pulled:
    accounts: list[AccountData] = field(default_factory=list)
    transactions: dict[str, list[TransactionData]] = field(default_factory=dict)
    holdings: dict[str, list[HoldingData]] = field(default_factory=dict)
    owners: dict[str, list[OwnerData]] = field(default_factory=dict)
    from_date: dt.date | None = None


@dataclass
class JobContext:
    job: Job
    member: Member
    institution: Institution
    previous_attempts: int


async def _load(rt: Runtime, job_id: int, worker_id: str) -> JobContext | None:
    previous_attempts = (
        select(func.count())
        .select_from(Attempt)
        .where(Attempt.member_id == Member.id)
        .scalar_subquery()
    )
    async with rt.db.read() as s:
        row = (
            await s.execute(
                select(Job, Member, Institution, previous_attempts)
                .join(Member, Member.id == Job.member_id)
                .join(Institution, Institution.id == Member.institution_id)
                .where(Job.id == job_id, Job.state == "running", Job.worker_id == worker_id)
            )
        ).first()
    return None if row is None else JobContext(*row)


async def _owned(s: AsyncSession, job_id: int, worker_id: str) -> tuple[Job, Member] | None:
    """The job and member, locked for this transaction, if this worker still owns the job."""
    row = (
        await s.execute(
            select(Job, Member)
            .join(Member, Member.id == Job.member_id)
            .where(Job.id == job_id, Job.state == "running", Job.worker_id == worker_id)
            .with_for_update()
        )
    ).first()
    return None if row is None else (row[0], row[1])


def _field_names(institution: Institution, by_guid: dict[str, str]) -> dict[str, str]:
    names = {c["guid"]: c["field_name"] for c in institution.credentials}
    return {names.get(guid, guid): value for guid, value in by_guid.items()}


async def _pull(
    connector: Connector,
    ctx: ConnectorContext,
    state: dict[str, Any],
    kind: JobKind,
    options: dict[str, Any],
    last_success: dt.datetime | None,
) -> Pulled:
    out = Pulled(accounts=await connector.accounts(ctx, state))
    if kind in (JobKind.AGGREGATE, JobKind.HISTORY) and options.get("include_transactions", True):
        start = ctx.today - dt.timedelta(days=HISTORY_DAYS[kind])
        if kind == JobKind.AGGREGATE and last_success is not None:
            start = max(start, last_success.date() - dt.timedelta(days=OVERLAP_DAYS))
        out.from_date = start
        end = ctx.today + dt.timedelta(days=5)
        for acct in out.accounts:
            out.transactions[acct.external_id] = await connector.transactions(
                ctx, state, acct, start, end
            )
    if kind == JobKind.AGGREGATE and options.get("include_holdings", True):
        for acct in out.accounts:
            if acct.type == "INVESTMENT":
                out.holdings[acct.external_id] = await connector.holdings(ctx, state, acct)
    if kind == JobKind.IDENTIFY:
        for acct in out.accounts:
            out.owners[acct.external_id] = await connector.owners(ctx, state, acct)
    return out


async def _ingest(
    rt: Runtime, s: AsyncSession, member: Member, kind: JobKind, pulled: Pulled
) -> ingest.IngestCounts:
    now = rt.now()
    accounts = await ingest.upsert_accounts(s, member, pulled.accounts, now)
    counts = ingest.IngestCounts()
    if pulled.from_date is not None:
        counts = await ingest.upsert_transactions(
            s,
            {
                accounts[external_id]: transactions
                for external_id, transactions in pulled.transactions.items()
            },
            from_date=pulled.from_date,
            now=now,
            pending_max_age=dt.timedelta(days=rt.settings.pending_transaction_max_age_days),
        )
    for data in pulled.accounts:
        acct = accounts[data.external_id]
        if data.external_id in pulled.holdings:
            await ingest.upsert_holdings(s, acct, pulled.holdings[data.external_id], now)
        if kind == JobKind.VERIFY:
            await ingest.upsert_account_number(s, acct, data)
        for owner in pulled.owners.get(data.external_id, []):
            await ingest.upsert_owner(s, acct, owner)
    member.has_processed_accounts = True
    if pulled.transactions:
        member.has_processed_transactions = True
    if kind == JobKind.VERIFY:
        member.has_processed_account_numbers = True
    return counts


class Runner:
    def __init__(self, rt: Runtime, worker_id: str):
        self.rt = rt
        self.worker_id = worker_id
        # Ends of jobs (success, failure, MFA park) are written in shared transactions.
        self.batcher = WriteBatcher(rt.db)

    async def run(self, job_id: int) -> None:
        jc = await _load(self.rt, job_id, self.worker_id)
        if jc is None:
            return
        # Each job runs in its own task, so this tags only this job's log lines.
        logs.job_id.set(jc.job.guid)
        started = self.rt.now()
        resuming = jc.job.answers_enc is not None
        delayed = asyncio.create_task(self._mark_delayed_later(job_id))
        try:
            await self._run(jc, started, resuming)
        except ConnectorError as exc:
            await self._fail(jc, started, exc.cause, exc.institution_message)
        except Exception:
            log.exception("job %s failed inside the platform", jc.job.guid)
            await self._fail(jc, started, Cause.INTERNAL_ERROR, "")
        finally:
            delayed.cancel()

    async def _run(self, jc: JobContext, started: dt.datetime, resuming: bool) -> None:
        rt, member, job = self.rt, jc.member, jc.job
        connector = rt.connector_for(jc.institution.connector)
        ctx = ConnectorContext(
            member_guid=member.guid,
            institution_code=jc.institution.code,
            today=started.date(),
            previous_attempts=jc.previous_attempts,
        )
        result: LoginResult
        if resuming:
            state = vault.open_connector_state(rt, member, started)
            answers = vault.open_answers(rt, member, job)
            if state is None or answers is None:
                raise ConnectorError(Cause.MFA_EXPIRED, "The security session expired.")
            result = await connector.answer(ctx, state, answers)
        else:
            creds = _field_names(jc.institution, vault.open_credentials(rt, member))
            result = await connector.login(ctx, creds)
        if result.challenges:
            await self._park_for_mfa(jc, started, result)
            return
        kind = JobKind(job.kind)
        pulled = await _pull(
            connector, ctx, result.state, kind, job.options, member.successfully_aggregated_at
        )
        await self._succeed(jc, started, kind, pulled)

    async def _mark_delayed_later(self, job_id: int) -> None:
        await asyncio.sleep(self.rt.settings.delayed_after_seconds)
        async with self.rt.db.write() as s:
            owned = await _owned(s, job_id, self.worker_id)
            if owned:
                job, member = owned
                job.is_delayed = True
                set_status(member, Status.DELAYED, self.rt.now())

    async def _park_for_mfa(
        self, jc: JobContext, started: dt.datetime, result: LoginResult
    ) -> None:
        rt = self.rt

        async def write(s: AsyncSession) -> None:
            owned = await _owned(s, jc.job.id, self.worker_id)
            if not owned:
                return
            job, member = owned
            now = rt.now()
            vault.seal_connector_state(rt, member, result.state, now)
            await apply_outcome(
                s,
                rt,
                member,
                job,
                Outcome(Cause.MFA_REQUIRED),
                started_at=started,
                institution_id=jc.institution.id,
            )
            member.challenges = [asdict(c) for c in result.challenges]
            member.challenge_expires_at = now + dt.timedelta(
                seconds=rt.settings.challenge_expiry_seconds
            )
            job.answers_enc = None
            wait_for_user(job)

        await self.batcher.run(write)

    async def _succeed(
        self, jc: JobContext, started: dt.datetime, kind: JobKind, pulled: Pulled
    ) -> None:
        rt = self.rt

        async def write(s: AsyncSession) -> None:
            owned = await _owned(s, jc.job.id, self.worker_id)
            if not owned:
                return
            job, member = owned
            counts = await _ingest(rt, s, member, kind, pulled)
            vault.clear_connector_state(member)
            await apply_outcome(
                s,
                rt,
                member,
                job,
                Outcome(
                    Cause.OK,
                    transactions_created=counts.created,
                    transactions_updated=counts.updated,
                ),
                started_at=started,
                institution_id=jc.institution.id,
            )
            finish(job, state="succeeded", now=rt.now())

        await self.batcher.run(write)

    async def _fail(self, jc: JobContext, started: dt.datetime, cause: Cause, message: str) -> None:
        rt = self.rt

        async def write(s: AsyncSession) -> None:
            owned = await _owned(s, jc.job.id, self.worker_id)
            if not owned:
                return
            job, member = owned
            vault.clear_connector_state(member)
            await apply_outcome(
                s,
                rt,
                member,
                job,
                Outcome(cause, message),
                started_at=started,
                institution_id=jc.institution.id,
            )
            finish(job, state="failed", now=rt.now(), error=f"{cause.value}: {message}"[:500])

        await self.batcher.run(write)

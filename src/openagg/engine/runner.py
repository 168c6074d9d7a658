"""Runs one job: log in (or answer MFA), pull data, ingest, and settle the member.

The runner holds no transaction while it talks to the institution. Every write
re-checks that this worker still owns the job, so a worker that lost its lease
(and whose job another worker took over) cannot write stale results.

Loading and settling jobs is the engine's hot path, so both go through the driver
(``db/driver.py: run_plan``) with plain rows. The jobs a claim starts are loaded with one
read. The final writes of many jobs share a transaction (the batcher); its first
write reads every job of this worker that is waiting to be settled, with its
member, at once (locked, and only if this worker still owns it). The member rules
(``member_state``) run on unattached model objects built from those rows, and
what they changed is written back with one statement per table.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_dict

from openagg import logs
from openagg.connectors.base import (
    AccountData,
    Connector,
    ConnectorContext,
    ConnectorError,
    HoldingData,
    LoginResult,
    OwnerData,
    PullResult,
    PullWindow,
    TransactionData,
)
from openagg.db.driver import Backend, Deferred, Fetch, Plan, codec, flush, run_plan
from openagg.db.models import Attempt, Institution, Job, Member
from openagg.domain.causes import Cause
from openagg.domain.policy import JobKind, Trigger
from openagg.domain.states import JobState
from openagg.domain.statuses import Status
from openagg.engine import ingest, revoker
from openagg.engine.batcher import MAX_BATCH, WriteBatcher
from openagg.engine.guard import Ended, guarded
from openagg.queue import END_USER_IP, finish, wait_for_user
from openagg.runtime import Runtime
from openagg.services import consent, revocations, vault
from openagg.services.connector_calls import ConnectorCall
from openagg.services.member_state import (
    Applied,
    Listeners,
    Outcome,
    after_outcome,
    decide_outcome,
    set_status,
)

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


def _load_plan(
    b: Backend, dialect: Any, job_ids: list[int], worker_id: str
) -> Plan[dict[int, JobContext]]:
    jobs, members, institutions = (
        codec(Job, dialect),
        codec(Member, dialect),
        codec(Institution, dialect),
    )
    condition, params = b.any_of("jobs.id", job_ids)
    rows = yield Fetch(
        b.sql(
            f"SELECT {jobs.select_list}, {members.select_list}, {institutions.select_list}, "
            "(SELECT count(*) FROM attempts WHERE attempts.member_id = members.id) "
            "FROM jobs JOIN members ON members.id = jobs.member_id "
            "JOIN institutions ON institutions.id = members.institution_id "
            f"WHERE {condition} AND jobs.state = 'running' AND jobs.worker_id = ?"
        ),
        [*params, worker_id],
    )
    at_member, at_institution = len(jobs.keys), len(jobs.keys) + len(members.keys)
    shared: dict[int, Institution] = {}
    found = {}
    for row in rows:
        institution_id = row[at_institution + institutions.keys.index("id")]
        institution = shared.get(institution_id)
        if institution is None:
            institution = shared[institution_id] = institutions.unattached(row, at_institution)
        job = jobs.unattached(row)
        found[job.id] = JobContext(
            job, members.unattached(row, at_member), institution, int(row[-1])
        )
    return found


async def _load(rt: Runtime, job_ids: list[int], worker_id: str) -> dict[int, JobContext]:
    """The contexts of those of the jobs this worker still runs, in one read."""
    return await rt.db.read_plan(lambda b, d: _load_plan(b, d, job_ids, worker_id))


async def _owned(s: AsyncSession, job_id: int, worker_id: str) -> tuple[Job, Member] | None:
    """The job and member (ORM, locked for this transaction), if this worker still
    owns the job. For the rare writes off the hot path."""
    row = (
        await s.execute(
            select(Job, Member)
            .join(Member, Member.id == Job.member_id)
            .where(Job.id == job_id, Job.state == JobState.RUNNING, Job.worker_id == worker_id)
            .with_for_update()
        )
    ).first()
    return None if row is None else (row[0], row[1])


@dataclass
class Owned:
    """A job this worker still owns and its member, as read in the settling
    transaction: unattached model objects, and their values as read (to find
    what the rules changed)."""

    job: Job
    member: Member
    listeners: Listeners
    read: dict[str, dict[str, Any]]  # "job", "member" -> attribute values as read
    accounts: list[Any]  # the member's stored accounts (``ingest.accounts_of``)


def _snapshot(obj: Any, keys: tuple[str, ...], json: frozenset[str]) -> dict[str, Any]:
    # Straight from the instance dict: an unattached object holds every column
    # there, and the ORM's attribute access costs far more than a dict lookup.
    values = instance_dict(obj)
    out = {k: values[k] for k in keys}
    for k in json:
        out[k] = copy.deepcopy(out[k])
    return out


def _owned_plan(
    b: Backend, dialect: Any, job_ids: list[int], worker_id: str
) -> Plan[dict[int, Owned]]:
    """The jobs this worker still owns among ``job_ids``, with their members (locked
    on PostgreSQL; SQLite's write transaction holds the whole database), and who
    listens to their outcomes."""
    jobs, members = codec(Job, dialect), codec(Member, dialect)
    condition, params = b.any_of("jobs.id", job_ids)
    rows = yield Fetch(
        b.sql(
            f"SELECT {jobs.select_list}, {members.select_list} "
            "FROM jobs JOIN members ON members.id = jobs.member_id "
            f"WHERE {condition} AND jobs.state = 'running' AND jobs.worker_id = ? "
            # One order for every group: two lockers of the same rows cannot deadlock.
            + ("ORDER BY jobs.id" if b.sqlite else "ORDER BY jobs.id FOR UPDATE OF jobs, members")
        ),
        [*params, worker_id],
    )
    pairs = [(jobs.unattached(row), members.unattached(row, len(jobs.keys))) for row in rows]
    if not pairs:
        return {}
    condition, params = b.any_of("client_id", sorted({m.client_id for _, m in pairs}))
    hooked = yield Fetch(
        b.sql(f"SELECT DISTINCT client_id FROM webhook_endpoints WHERE {condition}"), params
    )
    condition, params = b.any_of("open_member_id", [m.id for _, m in pairs])
    ticketed = yield Fetch(
        b.sql(f"SELECT open_member_id FROM support_tickets WHERE {condition}"), params
    )
    with_webhooks = {r[0] for r in hooked}
    with_tickets = {r[0] for r in ticketed}
    accounts = yield from ingest.accounts_of(b, [m.id for _, m in pairs])
    return {
        job.id: Owned(
            job,
            member,
            Listeners(
                webhooks=member.client_id in with_webhooks, support=member.id in with_tickets
            ),
            {
                "job": _snapshot(job, jobs.keys, jobs.json),
                "member": _snapshot(member, members.keys, members.json),
            },
            accounts[member.id],
        )
        for job, member in pairs
    }


def stage_changes(later: Deferred, dialect: Any, owned: Owned) -> None:
    """Add what changed on the job and the member since they were read to the
    transaction's writes."""
    for cls, obj, name in ((Member, owned.member, "member"), (Job, owned.job, "job")):
        c = codec(cls, dialect)
        before, now = owned.read[name], instance_dict(obj)
        changed = [k for k in c.keys if now[k] != before[k]]
        if changed:
            later.update(
                c.table,
                tuple(c.columns[k] for k in changed),
                [(obj.id, *(c.bind(k, now[k]) for k in changed))],
            )


def _save(later: Deferred, dialect: Any, owned: Owned, attempt: Attempt) -> None:
    """``stage_changes``, and the attempt's insert."""
    stage_changes(later, dialect, owned)
    c = codec(Attempt, dialect)
    keys = [k for k in c.keys if k != "id"]
    later.insert(
        c.table,
        tuple(c.columns[k] for k in keys),
        [[c.bind(k, getattr(attempt, k)) for k in keys]],
    )


Write = Callable[[AsyncSession, Owned, Deferred], Awaitable[None]]


@dataclass
class _Settling:
    """A job waiting for its final write."""

    job_id: int
    write: Write
    done: asyncio.Future[None]
    # The job and the secrets its connector earned (None: unchanged), kept for a
    # member deleted while the job ran: a token rotated meanwhile is revoked too.
    earned: tuple[JobContext, dict[str, Any]] | None = None


def _field_names(institution: Institution, by_guid: dict[str, str]) -> dict[str, str]:
    names = {c["guid"]: c["field_name"] for c in institution.credentials}
    return {names.get(guid, guid): value for guid, value in by_guid.items()}


def _window(
    ctx: ConnectorContext,
    kind: JobKind,
    options: dict[str, Any],
    last_success: dt.datetime | None,
) -> PullWindow:
    start = None
    if kind in (JobKind.AGGREGATE, JobKind.HISTORY) and options.get("include_transactions", True):
        start = ctx.today - dt.timedelta(days=HISTORY_DAYS[kind])
        if kind == JobKind.AGGREGATE and last_success is not None:
            start = max(start, last_success.date() - dt.timedelta(days=OVERLAP_DAYS))
    holdings = kind == JobKind.AGGREGATE and bool(options.get("include_holdings", True))
    return PullWindow(start, ctx.today + dt.timedelta(days=5), holdings)


def _text_option(options: dict[str, Any] | None, key: str) -> str | None:
    value = (options or {}).get(key)
    return value if isinstance(value, str) and value else None


def _by_account(items: list[Any], accounts: list[AccountData]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {a.external_id: [] for a in accounts}
    for item in items:
        if item.account_external_id not in grouped:
            raise ConnectorError(
                Cause.DATA_ERROR,
                f"The connector returned data for an unknown account {item.account_external_id!r}.",
            )
        grouped[item.account_external_id].append(item)
    return grouped


async def _pull(
    connector: Connector,
    ctx: ConnectorContext,
    state: dict[str, Any],
    kind: JobKind,
    window: PullWindow,
) -> Pulled:
    out = Pulled(from_date=window.from_date)
    whole = getattr(connector, "pull", None)
    if whole is not None:
        result: PullResult = await whole(ctx, state, window)
        out.accounts = list(result.accounts)
        if window.from_date is not None:
            out.transactions = _by_account(result.transactions, out.accounts)
            for unread in result.unread:
                # Not read, so nothing stored is compared with (or removed for) it.
                out.transactions.pop(unread, None)
        if window.holdings:
            investments = [a for a in out.accounts if a.type == "INVESTMENT"]
            out.holdings = _by_account(result.holdings, investments)
    else:
        out.accounts = await connector.accounts(ctx, state)
        if window.from_date is not None:
            for acct in out.accounts:
                out.transactions[acct.external_id] = await connector.transactions(
                    ctx, state, acct, window.from_date, window.to_date
                )
        if window.holdings:
            for acct in out.accounts:
                if acct.type == "INVESTMENT":
                    out.holdings[acct.external_id] = await connector.holdings(ctx, state, acct)
    if kind == JobKind.IDENTIFY:
        for acct in out.accounts:
            out.owners[acct.external_id] = await connector.owners(ctx, state, acct)
    return out


def _prepare(rt: Runtime, pulled: Pulled) -> ingest.Prepared:
    """The pull as rows, made before the write transaction (which then holds
    the database only for what depends on what is stored)."""
    return ingest.prepare(
        ingest.backend(rt.db.sqlite),
        ingest.Pull(pulled.accounts, pulled.transactions, pulled.holdings, pulled.from_date),
    )


async def _ingest(
    rt: Runtime,
    s: AsyncSession,
    member: Member,
    kind: JobKind,
    pulled: Pulled,
    prepared: ingest.Prepared,
    later: Deferred,
    stored_accounts: list[Any],
) -> ingest.IngestCounts:
    done = await ingest.ingest_pull(
        s,
        ingest.Owner(member.client_id, member.user_id, member.id),
        prepared,
        now=rt.now(),
        pending_max_age=dt.timedelta(days=rt.settings.pending_transaction_max_age_days),
        later=later,
        stored_accounts=stored_accounts,
    )
    counts = done.counts
    if counts.changed:
        member.transactions_version += 1  # cached lists of them are stale now
    if kind in (JobKind.VERIFY, JobKind.IDENTIFY):
        for data in pulled.accounts:
            acct = done.accounts[data.external_id]
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


# Secrets a connector holds at the end of a job, when they changed (None: unchanged).
Earned = dict[str, Any] | None


def _keep(rt: Runtime, member: Member, earned: Earned) -> None:
    if earned is not None:
        vault.seal_secrets(rt, member, earned)
        consent.note(member, earned)


class _Work:
    """One job's calls to its connector: log in or answer MFA, then pull."""

    def __init__(self, rt: Runtime, jc: JobContext, started: dt.datetime) -> None:
        self.rt, self.jc, self.started = rt, jc, started
        self.call: ConnectorCall | None = None
        self.logged_in = False  # the login (and MFA) went through before the pull

    def earned(self) -> Earned:
        return None if self.call is None else self.call.earned()

    async def run(self, deadline: float) -> LoginResult | Pulled:
        """The challenges to park for, or the data; raises ``Ended`` otherwise."""
        jc = self.jc
        if consent.has_ended(jc.member, self.started):
            # The platform knows the consent is over: the institution is not asked.
            raise Ended(
                Cause.BAD_CREDENTIALS, consent.expired_message(jc.member, jc.institution.name)
            )
        try:
            call = self.call = ConnectorCall(
                self.rt,
                jc.member.guid,
                jc.member.secrets_enc,
                jc.institution,
                now=self.started,
                previous_attempts=jc.previous_attempts,
                # Every trigger but the scheduler's comes from the end user (or the app
                # acting while they wait); only a job's own option names their address
                # (set by the Connect widget and the OAuth callback).
                end_user_present=jc.job.trigger != Trigger.BACKGROUND,
                end_user_ip=_text_option(jc.job.options, END_USER_IP),
            )
        except Exception:  # a secret that does not open (a key removed too soon)
            log.exception("job %s: the connector's context could not be made", jc.job.guid)
            raise Ended(Cause.INTERNAL_ERROR, "") from None
        if call.connector is None:
            log.error("job %s: connector %r is not installed here", jc.job.guid, call.name)
            raise Ended(Cause.INTERNAL_ERROR, "")
        work = self._calls(call, call.connector)
        return await guarded(call, work, deadline=deadline, label=f"job {jc.job.guid}")

    async def _calls(self, call: ConnectorCall, connector: Connector) -> LoginResult | Pulled:
        rt, jc, ctx = self.rt, self.jc, call.ctx
        member, job = jc.member, jc.job
        result: LoginResult
        if job.answers_enc is not None:  # resuming after MFA
            state = vault.open_connector_state(rt, member, self.started)
            answers = vault.open_answers(rt, member, job)
            if state is None or answers is None:
                raise ConnectorError(Cause.MFA_EXPIRED, "The security session expired.")
            call.hide(list(answers.values()))
            result = await connector.answer(ctx, state, answers)
        else:
            creds = _field_names(jc.institution, vault.open_credentials(rt, member))
            call.hide(list(creds.values()))
            result = await connector.login(ctx, creds)
        if result.challenges:
            return result
        self.logged_in = True
        kind = JobKind(job.kind)
        window = _window(ctx, kind, job.options, member.successfully_aggregated_at)
        return await _pull(connector, ctx, result.state, kind, window)


class Runner:
    def __init__(self, rt: Runtime, worker_id: str):
        self.rt = rt
        self.worker_id = worker_id
        # Contexts of claimed jobs, loaded together when claimed (``prepare``), and
        # claimed revocation jobs (no member: ``engine/revoker.py`` runs them).
        self._prepared: dict[int, JobContext] = {}
        self._revocations: dict[int, revoker.Revocation] = {}
        # Ends of jobs (success, failure, MFA park) are written in shared transactions.
        self.batcher = WriteBatcher(rt.db)
        # Jobs waiting to be settled, and the tasks settling them group by group.
        self._waiting: list[_Settling] = []
        self._settlers: set[asyncio.Task[None]] = set()
        # Told when a job's work at the institution is over and it waits for its final
        # write (the worker then gives its slot to another job).
        self.on_settling: Callable[[int], None] | None = None

    async def prepare(self, job_ids: list[int]) -> dict[int, int]:
        """Load the contexts of jobs just claimed, in one read, for ``run``; returns
        the priority of each job this worker still owns."""
        found = await _load(self.rt, job_ids, self.worker_id)
        self._prepared.update(found)
        priorities = {job_id: jc.job.priority for job_id, jc in found.items()}
        missing = [job_id for job_id in job_ids if job_id not in found]
        if missing:  # jobs without a member (revocations), or no longer this worker's
            revocations = await revoker.load(self.rt, missing, self.worker_id)
            self._revocations.update(revocations)
            priorities.update({job_id: r.job.priority for job_id, r in revocations.items()})
        return priorities

    def forget(self, job_ids: list[int]) -> None:
        """Drop the contexts of prepared jobs that will not run here."""
        for job_id in job_ids:
            self._prepared.pop(job_id, None)
            self._revocations.pop(job_id, None)

    async def run(self, job_id: int) -> None:
        revocation = self._revocations.pop(job_id, None)
        jc = self._prepared.pop(job_id, None)
        if jc is None and revocation is None:  # not prepared (its read failed): load it alone
            jc = (await _load(self.rt, [job_id], self.worker_id)).get(job_id)
            if jc is None:
                revocation = (await revoker.load(self.rt, [job_id], self.worker_id)).get(job_id)
        if revocation is not None:
            logs.job_id.set(revocation.job.guid)
            await revoker.run(self.rt, revocation, self.worker_id)
            return
        if jc is None:
            return
        # Each job runs in its own task, so this tags only this job's log lines.
        logs.job_id.set(jc.job.guid)
        started = self.rt.now()
        cancel_delayed = self._mark_delayed_later(job_id)
        work = _Work(self.rt, jc, started)
        try:
            done = await work.run(self.rt.settings.job_deadline_seconds)
        except Ended as ended:
            earned = work.earned()
            await self._fail(jc, started, ended.cause, ended.message, earned, work.logged_in)
            return
        finally:
            cancel_delayed()
        try:
            if isinstance(done, LoginResult):
                await self._park_for_mfa(jc, started, done, work.earned())
            else:
                await self._succeed(jc, started, JobKind(jc.job.kind), done, work.earned())
        except Exception:
            # The write of what was pulled failed (e.g. a feed repeating an id): the
            # job fails alone, without its rows.
            log.exception("job %s failed inside the platform", jc.job.guid)
            await self._fail(jc, started, Cause.INTERNAL_ERROR, "", work.earned())

    def _mark_delayed_later(self, job_id: int) -> Callable[[], None]:
        """Mark the job DELAYED if it still runs after ``delayed_after_seconds``;
        returns what cancels that. A timer, not a sleeping task: most jobs end long
        before it fires."""
        marking: list[asyncio.Task[None]] = []
        timer = asyncio.get_running_loop().call_later(
            self.rt.settings.delayed_after_seconds,
            lambda: marking.append(asyncio.create_task(self._mark_delayed(job_id))),
        )

        def cancel() -> None:
            timer.cancel()
            for task in marking:
                task.cancel()

        return cancel

    async def _mark_delayed(self, job_id: int) -> None:
        async with self.rt.db.write() as s:
            owned = await _owned(s, job_id, self.worker_id)
            if owned:
                job, member = owned
                job.is_delayed = True
                set_status(member, Status.DELAYED, self.rt.now())

    async def settle(
        self, job_id: int, write: Write, earned: tuple[JobContext, Earned] | None = None
    ) -> None:
        """Run ``write`` for the job, if this worker still owns it, in a write
        transaction shared with the other jobs settling meanwhile. ``earned``: the
        job and the secrets its connector earned (for ``revocations.schedule_earned``)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        kept = None if earned is None or earned[1] is None else (earned[0], earned[1])
        self._waiting.append(_Settling(job_id, write, done, kept))
        if self.on_settling is not None:
            self.on_settling(job_id)
        # As many groups in flight as the batcher commits at once (SQLite: one).
        if len(self._settlers) < self.batcher.flushers:
            settler = asyncio.create_task(self._settle_waiting())
            self._settlers.add(settler)
            settler.add_done_callback(self._settlers.discard)
        # The settler owns the write from here: a cancelled job must not cancel a
        # transaction that also carries other jobs' results.
        await asyncio.shield(done)

    async def _settle_waiting(self) -> None:
        # Jobs that finish while a group commits wait for the next group.
        group: list[_Settling] = []
        try:
            while self._waiting:
                group = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                await self._commit(group)
        except BaseException:  # cancelled (shutdown): nothing of this group committed
            for item in group + self._waiting:
                item.done.cancel()
            self._waiting.clear()
            raise

    async def _commit(self, group: list[_Settling]) -> None:
        try:
            await self.batcher.run(lambda s: self._write_group(s, group))
        except Exception as exc:
            if len(group) > 1:
                # One bad job must not lose the others' results: each alone.
                log.warning("settling %d jobs failed (%s); each is retried alone", len(group), exc)
                for item in group:
                    await self._commit([item])
                return
            if not group[0].done.done():
                group[0].done.set_exception(exc)
            return
        for item in group:
            if not item.done.done():
                item.done.set_result(None)

    async def _write_group(self, s: AsyncSession, group: list[_Settling]) -> None:
        """One transaction for a group of jobs: one read of the jobs and their
        members, each job's rules, then one statement per table and kind."""
        ids = [item.job_id for item in group]
        owned = await run_plan(s, lambda b, d: _owned_plan(b, d, ids, self.worker_id))
        later = Deferred()
        for item in group:
            if item.job_id in owned:
                await item.write(s, owned[item.job_id], later)
        await flush(s, later)
        orphaned = [i.earned for i in group if i.job_id not in owned and i.earned is not None]
        if orphaned:  # rare: a job that earned secrets and is no longer this worker's
            found = [(jc.member, jc.institution, secrets) for jc, secrets in orphaned]
            if await revocations.schedule_earned(s, self.rt, found):
                self.rt.job_enqueued.set()

    async def _save(
        self,
        s: AsyncSession,
        owned: Owned,
        outcome: Outcome,
        applied: Applied,
        later: Deferred,
    ) -> None:
        """Add the settled job and member and the attempt to the writes, then run
        the hooks that have something to act on (after writing: they read rows)."""
        _save(later, s.get_bind().dialect, owned, applied.attempt)
        if owned.listeners.webhooks or owned.listeners.support:
            await flush(s, later)
            await after_outcome(
                s, self.rt, owned.member, owned.job, outcome, applied, owned.listeners
            )

    async def _park_for_mfa(
        self, jc: JobContext, started: dt.datetime, result: LoginResult, earned: Earned
    ) -> None:
        rt = self.rt

        async def write(s: AsyncSession, owned: Owned, later: Deferred) -> None:
            job, member = owned.job, owned.member
            now = rt.now()
            _keep(rt, member, earned)
            vault.seal_connector_state(rt, member, result.state, now)
            outcome = Outcome(Cause.MFA_REQUIRED)
            applied = await decide_outcome(
                s, rt, member, job, outcome, started_at=started, institution_id=jc.institution.id
            )
            member.challenges = [asdict(c) for c in result.challenges]
            member.challenge_expires_at = now + dt.timedelta(
                seconds=rt.settings.challenge_expiry_seconds
            )
            job.answers_enc = None
            wait_for_user(job)
            await self._save(s, owned, outcome, applied, later)

        await self.settle(jc.job.id, write, (jc, earned))

    async def _succeed(
        self, jc: JobContext, started: dt.datetime, kind: JobKind, pulled: Pulled, earned: Earned
    ) -> None:
        rt = self.rt
        try:
            prepared = _prepare(rt, pulled)
        except Exception:
            # What the connector returned does not fit (types, values): its fault,
            # not the institution's, and nothing of it is written.
            log.exception("job %s: the connector's data could not be read", jc.job.guid)
            await self._fail(jc, started, Cause.INTERNAL_ERROR, "", earned)
            return

        async def write(s: AsyncSession, owned: Owned, later: Deferred) -> None:
            job, member = owned.job, owned.member
            _keep(rt, member, earned)
            counts = await _ingest(rt, s, member, kind, pulled, prepared, later, owned.accounts)
            vault.clear_connector_state(member)
            outcome = Outcome(
                Cause.OK,
                transactions_created=counts.created,
                transactions_updated=counts.updated,
            )
            applied = await decide_outcome(
                s, rt, member, job, outcome, started_at=started, institution_id=jc.institution.id
            )
            finish(job, state=JobState.SUCCEEDED, now=rt.now())
            await self._save(s, owned, outcome, applied, later)

        await self.settle(jc.job.id, write, (jc, earned))

    async def _fail(
        self,
        jc: JobContext,
        started: dt.datetime,
        cause: Cause,
        message: str,
        earned: Earned = None,
        logged_in: bool = False,
    ) -> None:
        rt = self.rt

        async def write(s: AsyncSession, owned: Owned, later: Deferred) -> None:
            job, member = owned.job, owned.member
            _keep(rt, member, earned)
            vault.clear_connector_state(member)
            outcome = Outcome(cause, message, logged_in=logged_in)
            applied = await decide_outcome(
                s, rt, member, job, outcome, started_at=started, institution_id=jc.institution.id
            )
            finish(
                job, state=JobState.FAILED, now=rt.now(), error=f"{cause.value}: {message}"[:500]
            )
            await self._save(s, owned, outcome, applied, later)

        await self.settle(jc.job.id, write, (jc, earned))

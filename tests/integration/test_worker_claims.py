"""How a worker claims: in batches, never past its concurrency, foreground first,
within the institutions' caps; how finished jobs commit in groups; and how one
scheduler tick works through a backlog of due members in batches. Runs on SQLite
and on PostgreSQL (``make test``).

The bank is a fake whose logins wait until the test opens their member's gate, so
the test decides exactly when each running job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.connectors.base import AccountData, ConnectorContext, LoginResult
from openagg.db.models import Attempt, Institution, Job, Member
from openagg.engine import scheduler
from openagg.engine.batcher import WriteBatcher
from openagg.engine.scheduler import enqueue_background
from openagg.engine.worker import Worker
from openagg.queue import claim, institution_caps
from openagg.queue.caps import Caps
from openagg.settings import Settings
from tests.conftest import Platform, settings_for
from tests.integration.api_helpers import create_member, new_user

LEASE = dt.timedelta(seconds=30)
NO_CAPS = Caps()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A poll far longer than any test: every claim here must come from the worker's
    # own triggers (freed slots, enqueued jobs), never from the poll.
    s = settings_for(tmp_path, poll_interval_seconds=60)
    s.ensure_data_dir()
    return s


class GatedBank:
    """A fake bank: each login waits until its member's gate opens; no accounts."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def open(self, *guids: str) -> None:
        for guid in guids:
            self.gates[guid].set()

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        await self.gates[ctx.member_guid].wait()
        return LoginResult(state={})

    async def answer(self, ctx: ConnectorContext, state: Any, answers: Any) -> LoginResult:
        return LoginResult(state={})

    async def accounts(self, ctx: ConnectorContext, state: Any) -> list[AccountData]:
        return []

    async def transactions(self, *_args: Any) -> list[Any]:
        return []

    async def holdings(self, *_args: Any) -> list[Any]:
        return []

    async def owners(self, *_args: Any) -> list[Any]:
        return []


def gated(p: Platform) -> GatedBank:
    bank = GatedBank()
    p.rt.connectors["sandbox"] = bank  # mxbank's connector
    return bank


def _member_id(guid: str) -> Any:
    return select(Member.id).where(Member.guid == guid).scalar_subquery()


async def members(p: Platform, count: int, **fields: Any) -> list[str]:
    user = await new_user(p.http)
    guids = []
    for i in range(count):
        r = await create_member(p.http, user, f"pw-{i}", **fields)
        assert r.status_code in (200, 202), r.text
        guids.append(r.json()["member"]["guid"])
    return guids


async def make_due(p: Platform, guids: list[str]) -> None:
    async with p.rt.db.write() as s:
        await s.execute(
            update(Member)
            .where(Member.guid.in_(guids))
            .values(next_background_at=p.clock.now - dt.timedelta(minutes=1))
        )


async def states(p: Platform) -> dict[str, str]:
    """Member guid -> state of its latest job."""
    async with p.rt.db.read() as s:
        rows = await s.execute(
            select(Member.guid, Job.state).join(Job, Job.member_id == Member.id).order_by(Job.id)
        )
        return dict(rows.all())


def count(of: dict[str, str], state: str) -> int:
    return sum(1 for v in of.values() if v == state)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def working(worker: Worker) -> AsyncIterator[list[int]]:
    """Run the worker's loop; yields a list whose only item is the most jobs it ever
    ran at once (sampled every millisecond)."""
    stop = asyncio.Event()
    peak = [0]

    async def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], len(worker.running))
            await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(watch())]
    try:
        yield peak
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def all_done_once(p: Platform, guids: list[str]) -> None:
    async with p.rt.db.read() as s:
        rows = (
            await s.execute(
                select(Member.guid, Job.state, Job.attempts).join(Job, Job.member_id == Member.id)
            )
        ).all()
    assert sorted(g for g, *_ in rows) == sorted(guids)
    assert {(state, attempts) for _, state, attempts in rows} == {("succeeded", 1)}


# --- the worker -------------------------------------------------------------------------


async def test_a_full_worker_starts_foreground_jobs_first_as_slots_free(
    platform: Platform,
) -> None:
    p = platform
    bank = gated(p)
    background = await members(p, 6, skip_aggregation=True)
    await make_due(p, background)
    assert await enqueue_background(p.rt) == 6
    worker = Worker(p.rt, concurrency=4, prefetch=0)  # claimed here means started
    async with working(worker) as peak:
        await until(lambda: _running(p, 4))
        foreground = await members(p, 2)  # automatic jobs, enqueued after the background ones
        now = await states(p)
        started = [g for g in background if now[g] == "running"]
        assert len(started) == 4

        bank.open(*started[:2])
        await until(lambda: _states_are(p, foreground, "running"))
        now = await states(p)
        assert count(now, "queued") == 2  # the two newest background jobs still wait
        assert all(now[g] == "queued" for g in background if g not in started)

        bank.open(*background, *foreground)
        await until(lambda: _none_active(p))
    assert peak[0] == 4
    await all_done_once(p, background + foreground)


@pytest.mark.parametrize("slow_loading", [False, True], ids=["as_is", "slow_loading"])
async def test_a_worker_claims_for_freed_slots_together(
    platform: Platform, slow_loading: bool
) -> None:
    p = platform
    bank = gated(p)
    worker = Worker(p.rt, concurrency=8, prefetch=0)
    if slow_loading:
        # A finished job's final write lands while the jobs just claimed are loading:
        # the slot it frees is already theirs, so it must leave no claim timer behind
        # (one made with the long delay below once outlived the claim).
        runner = worker.runner
        prepare, commit = runner.prepare, runner._commit

        async def slow_prepare(ids: list[int]) -> dict[int, int]:
            await asyncio.sleep(0.4)
            return await prepare(ids)

        async def late_commit(group: Any) -> None:
            await asyncio.sleep(0.2)
            await commit(group)

        runner.prepare = slow_prepare  # type: ignore[method-assign]
        runner._commit = late_commit  # type: ignore[method-assign]
    assert worker.claim_batch == 2  # a quarter of the slots
    worker.claim_delay = 60.0  # no timer inside this test: the batch alone decides
    guids = await members(p, 12)
    async with working(worker) as peak:
        await until(lambda: _running(p, 8))
        first = [g for g, state in (await states(p)).items() if state == "running"]

        bank.open(first[0])
        await until(lambda: _states_are(p, first[:1], "succeeded"))
        await asyncio.sleep(0.3)
        now = await states(p)
        assert (count(now, "running"), count(now, "queued")) == (7, 4)  # one slot: no claim

        bank.open(first[1])
        await until(lambda: _queued(p, 2))  # two slots: one claim fills both
        await until(lambda: _len_is(worker.running, 8))  # once their contexts are read

        worker.claim_delay = 0.02  # a slot left alone is filled after the short delay
        bank.open(first[2])
        await until(lambda: _queued(p, 1))
        await until(lambda: _len_is(worker.running, 8))

        bank.open(*guids)
        await until(lambda: _none_active(p))
    assert peak[0] == 8
    await all_done_once(p, guids)


async def test_a_job_waiting_for_its_final_write_gives_its_slot_to_the_next(
    platform: Platform,
) -> None:
    """A slot is for work with the institution: a job whose final write is queued
    lets the next start, stays running (leased) until it commits, and at most
    ``concurrency`` jobs wait for their write."""
    p = platform
    bank = gated(p)
    worker = Worker(p.rt, concurrency=1, prefetch=0)
    commit = worker.runner._commit
    writes_open = asyncio.Event()

    async def held_commit(group: Any) -> None:  # before its transaction begins
        await writes_open.wait()
        await commit(group)

    worker.runner._commit = held_commit  # type: ignore[method-assign]
    first, second, third = await members(p, 3)
    async with working(worker) as peak:
        await until(lambda: _states_are(p, [first], "running"))
        # Started, not only claimed: a job whose gate is open before it starts runs to
        # its final write in one step of the loop, never seen running.
        await until(lambda: _len_is(worker.running, 1))
        bank.open(first)
        await until(lambda: _states_are(p, [first, second], "running"))
        assert list(worker.settling) and list(worker.running) != list(worker.settling)

        p.clock.now += dt.timedelta(seconds=20)
        await worker.renew()
        async with p.rt.db.read() as s:
            leases = set(await s.scalars(select(Job.lease_until).where(Job.state == "running")))
        assert leases == {p.clock.now + worker.lease}  # the waiting job's lease too

        bank.open(second)  # two jobs wait for their write: the third must not start
        await until(lambda: _len_is(worker.settling, 2))
        await asyncio.sleep(0.2)
        assert (await states(p))[third] == "queued"

        writes_open.set()
        bank.open(third)
        await until(lambda: _none_active(p))
    assert peak[0] == 1
    await all_done_once(p, [first, second, third])


async def _len_is(of: dict[int, Any] | list[Any], n: int) -> bool:
    return len(of) == n


async def test_a_worker_holds_jobs_claimed_ahead_and_starts_one_as_a_slot_frees(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs claimed ahead (leased, ``running`` in the database) start the moment a
    slot frees, with no claim in between, foreground first; a clean stop hands
    back those that never started, and their members' aggregated_at with them."""
    p = platform
    bank = gated(p)
    background = await members(p, 4, skip_aggregation=True)
    await make_due(p, background)
    last_run = p.clock.now - dt.timedelta(days=1)
    async with p.rt.db.write() as s:  # each member was aggregated once, a day ago
        for m in await s.scalars(select(Member).where(Member.guid.in_(background))):
            s.add(
                Attempt(
                    client_id=m.client_id,
                    member_id=m.id,
                    institution_id=m.institution_id,
                    kind="aggregate",
                    trigger="background",
                    started_at=last_run,
                )
            )
            m.aggregated_at = last_run
    assert await enqueue_background(p.rt) == 4
    worker = Worker(p.rt, concurrency=2, prefetch=2)
    claims_open = asyncio.Event()
    claims_open.set()

    async def gated_claim(*args: Any, **kwargs: Any) -> list[int]:
        await claims_open.wait()
        return await claim(*args, **kwargs)

    monkeypatch.setattr("openagg.engine.worker.claim", gated_claim)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    await until(lambda: _running(p, 4))
    await until(lambda: _len_is(list(bank.gates), 2))
    assert len(worker.running) == 2 and len(worker.ready) == 2
    at_bank = [g for g in background if g in bank.gates]
    held = [g for g in background if g not in at_bank]
    assert len(at_bank) == 2 and len(held) == 2

    claims_open.clear()
    foreground = await members(p, 1)  # queued: claims are held
    bank.open(at_bank[0])
    await until(lambda: _len_is(list(bank.gates), 3))  # a held job went to the bank
    assert len(worker.running) == 2 and len(worker.ready) == 1

    claims_open.set()  # the foreground job is claimed and goes before the held one
    await until(lambda: _len_is(worker.ready, 2))
    bank.open(at_bank[1])
    await until(lambda: _len_is(list(bank.gates), 4))
    assert foreground[0] in bank.gates
    assert sum(g in bank.gates for g in held) == 1

    stop.set()
    await asyncio.sleep(0.05)
    bank.open(*bank.gates)  # the running jobs finish within the stop's grace
    await run
    now = await states(p)
    never_started = [g for g in held if g not in bank.gates]
    assert [now[g] for g in never_started] == ["queued"]
    async with p.rt.db.read() as s:
        attempts = await s.scalar(
            select(Job.attempts).where(Job.member_id == _member_id(never_started[0]))
        )
    assert attempts == 0  # handed back, not a failed attempt
    assert count(now, "succeeded") == 4
    async with p.rt.db.read() as s:
        stamped = dict((await s.execute(select(Member.guid, Member.aggregated_at))).all())
    assert stamped[never_started[0]] == last_run  # it never started
    assert all(stamped[g] == p.clock.now for g in background if g != never_started[0])


async def test_a_job_held_back_by_a_cap_starts_when_the_slot_frees(platform: Platform) -> None:
    p = platform
    bank = gated(p)
    await institution_caps(p.rt.db, "mxbank", now=p.clock.now, defaults=NO_CAPS, max_concurrent=1)
    worker = Worker(p.rt, concurrency=4)
    guids = await members(p, 3)
    async with working(worker) as peak:
        await until(lambda: _running(p, 1))
        await asyncio.sleep(0.2)
        assert count(await states(p), "queued") == 2  # the cap holds them back
        bank.open(*guids)
        # The poll is a minute away: only the freed slot can start the others.
        await until(lambda: _none_active(p), timeout=10)
    assert peak[0] == 1
    await all_done_once(p, guids)


async def test_the_workers_default_cap_comes_from_its_runtime(platform: Platform) -> None:
    """OPENAGG_INSTITUTION_MAX_CONCURRENT as this runtime has it, not the process's."""
    p = platform
    bank = gated(p)
    p.rt.settings.institution_max_concurrent = 1
    worker = Worker(p.rt, concurrency=4)
    guids = await members(p, 3)
    async with working(worker) as peak:
        await until(lambda: _running(p, 1))
        await asyncio.sleep(0.2)
        assert count(await states(p), "queued") == 2
        bank.open(*guids)
        await until(lambda: _none_active(p), timeout=10)
    assert peak[0] == 1
    await all_done_once(p, guids)


# --- claim ------------------------------------------------------------------------------


async def test_claim_takes_foreground_first_and_stamps_only_fresh_starts(
    platform: Platform,
) -> None:
    p = platform
    background = await members(p, 3, skip_aggregation=True)
    await make_due(p, background)
    assert await enqueue_background(p.rt) == 3
    foreground = await members(p, 2)
    async with p.rt.db.write() as s:
        # The second foreground job resumes an MFA session: not a new aggregation.
        await s.execute(
            update(Job)
            .where(Job.member_id == _member_id(foreground[1]))
            .values(answers_enc=b"sealed answers")
        )
        mxbank = await s.scalar(select(Institution.id).where(Institution.code == "mxbank"))

    ids = await claim(
        p.rt.db, worker_id="w", limit=3, now=p.clock.now, lease=LEASE, defaults=NO_CAPS
    )
    async with p.rt.db.read() as s:
        rows = {
            guid: (job, aggregated_at)
            for guid, job, aggregated_at in await s.execute(
                select(Member.guid, Job, Member.aggregated_at).join(Job, Job.member_id == Member.id)
            )
        }
    # Foreground first, then the oldest background job.
    oldest, *younger = sorted(background, key=lambda g: rows[g][0].id)
    taken = [*foreground, oldest]
    assert sorted(ids) == sorted(rows[g][0].id for g in taken)
    for guid in taken:
        job, _ = rows[guid]
        assert (job.state, job.worker_id, job.attempts) == ("running", "w", 1)
        assert job.institution_id == mxbank
        assert job.started_at == p.clock.now and job.lease_until == p.clock.now + LEASE
    assert rows[foreground[0]][1] == rows[oldest][1] == p.clock.now
    assert rows[foreground[1]][1] is None  # resumed: aggregated_at untouched
    assert {rows[g][0].state for g in younger} == {"queued"}


async def test_claim_with_an_institution_cap_of_its_own_takes_no_more(
    platform: Platform,
) -> None:
    p = platform
    await institution_caps(p.rt.db, "mxbank", now=p.clock.now, defaults=NO_CAPS, max_concurrent=2)
    guids = await members(p, 5)
    first = await claim(
        p.rt.db, worker_id="w", limit=10, now=p.clock.now, lease=LEASE, defaults=NO_CAPS
    )
    again = await claim(
        p.rt.db, worker_id="w", limit=10, now=p.clock.now, lease=LEASE, defaults=NO_CAPS
    )
    assert len(first) == 2 and again == []
    assert count(await states(p), "queued") == 3
    assert len(guids) == 5


async def test_claim_takes_jobs_ahead_only_while_no_institution_has_a_cap(
    platform: Platform,
) -> None:
    """A job held ahead does nothing at the institution: under a cap it would take
    a session another worker could use."""
    p = platform
    await members(p, 6)

    async def take(limit: int, ahead: int) -> list[int]:
        return await claim(
            p.rt.db,
            worker_id="w",
            limit=limit,
            ahead=ahead,
            now=p.clock.now,
            lease=LEASE,
            defaults=NO_CAPS,
        )

    assert len(await take(1, 2)) == 3
    await institution_caps(p.rt.db, "mxbank", now=p.clock.now, defaults=NO_CAPS, max_per_day=100)
    assert len(await take(1, 2)) == 1
    assert await take(0, 2) == []
    assert count(await states(p), "queued") == 2


# --- group commit -----------------------------------------------------------------------


async def test_two_batches_of_finished_jobs_commit_at_once_on_postgresql(
    platform: Platform,
) -> None:
    db = platform.rt.db
    batcher = WriteBatcher(db, max_batch=2)
    if db.sqlite:
        assert batcher.flushers == 1  # one writer at a time: a second would only wait
        return
    inside: list[int] = []
    both = asyncio.Event()

    def write(i: int) -> Callable[[AsyncSession], Awaitable[int]]:
        async def work(s: AsyncSession) -> int:
            inside.append(i)
            if len(inside) == 2:
                both.set()
            # Holds its batch's transaction open until the other batch is inside too.
            await asyncio.wait_for(both.wait(), 5)
            await s.execute(select(1))
            return i

        return work

    assert await asyncio.gather(*(batcher.run(write(i)) for i in range(4))) == [0, 1, 2, 3]
    assert inside[:2] == [0, 2]  # the first piece of each batch, at the same time


# --- the scheduler ----------------------------------------------------------------------


async def test_one_tick_enqueues_a_backlog_in_batches(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = platform
    monkeypatch.setattr(scheduler, "BATCH", 5)
    guids = await members(p, 13, skip_aggregation=True)
    await make_due(p, guids)
    async with p.rt.db.write() as s:  # one of them may not run in the background
        await s.execute(
            update(Member)
            .where(Member.guid == guids[0])
            .values(background_aggregation_is_disabled=True)
        )
    assert await enqueue_background(p.rt) == 12  # three batches in one tick
    now = await states(p)
    assert sorted(now) == sorted(guids[1:]) and set(now.values()) == {"queued"}
    async with p.rt.db.read() as s:
        triggers = set(await s.scalars(select(Job.trigger)))
        nexts = set(
            await s.scalars(select(Member.next_background_at).where(Member.guid.in_(guids)))
        )
    assert triggers == {"background"}
    assert nexts == {p.clock.now + dt.timedelta(seconds=p.rt.settings.background_interval_seconds)}
    assert await enqueue_background(p.rt) == 0


async def test_a_tick_stops_after_its_batches_and_the_next_carries_on(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = platform
    monkeypatch.setattr(scheduler, "BATCH", 3)
    monkeypatch.setattr(scheduler, "MAX_BATCHES", 2)
    guids = await members(p, 8, skip_aggregation=True)
    await make_due(p, guids)
    assert [await enqueue_background(p.rt) for _ in range(3)] == [6, 2, 0]
    async with p.rt.db.read() as s:
        per_member = await s.execute(select(Job.member_id, func.count()).group_by(Job.member_id))
        assert {n for _, n in per_member} == {1}


# --- helpers that read the database ------------------------------------------------------


async def _running(p: Platform, n: int) -> bool:
    return count(await states(p), "running") == n


async def _queued(p: Platform, n: int) -> bool:
    return count(await states(p), "queued") == n


async def _states_are(p: Platform, guids: list[str], state: str) -> bool:
    now = await states(p)
    return all(now.get(g) == state for g in guids)


async def _none_active(p: Platform) -> bool:
    async with p.rt.db.read() as s:
        active = await s.scalar(
            select(func.count()).select_from(Job).where(Job.active_member_id.is_not(None))
        )
    return active == 0

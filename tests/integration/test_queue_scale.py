"""The job queue at scale on PostgreSQL: wake-ups across processes, per-institution
caps with concurrent claimers, foreground first, and concurrent schedulers.

Every test here runs against a real PostgreSQL server (one fresh database for the
module; skipped on a laptop without one, a failure in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update

from openagg.db.models import Attempt, Institution, InstitutionLimit, Job, Member
from openagg.engine.scheduler import enqueue_background, recover_lost_jobs, tick
from openagg.queue import claim, institution_caps, member_queue_view
from openagg.queue.caps import Caps, day_start
from openagg.runtime import Runtime, build_runtime, utcnow
from openagg.settings import Settings
from tests.conftest import VENV_BIN, Platform, free_port, make_platform, settings_for
from tests.integration.api_helpers import create_member, new_user
from tests.pg_support import fresh_database
from tests.support import wait_healthy

LEASE = dt.timedelta(seconds=30)
NO_DEFAULT_CAPS = Caps()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_database("openagg_queue") as url:
        yield url


@pytest.fixture
def pg_settings(tmp_path: Path, pg_url: str) -> Settings:
    s = settings_for(tmp_path, database_url=pg_url)
    s.ensure_data_dir()
    return s


@pytest.fixture
async def pg_platform(pg_settings: Settings) -> AsyncIterator[Platform]:
    p, _ = await make_platform(pg_settings)
    yield p
    # The module shares one database: leave no jobs or caps behind for the next test.
    async with p.rt.db.write() as s:
        await s.execute(delete(Job))
        await s.execute(delete(InstitutionLimit))
    await p.http.aclose()
    await p.rt.db.dispose()


@contextlib.asynccontextmanager
async def other_runtimes(p: Platform, count: int) -> AsyncIterator[list[Runtime]]:
    """Other processes' view of the same database: each its own engine and connections."""
    runtimes = [build_runtime(p.rt.settings) for _ in range(count)]
    for rt in runtimes:
        rt.clock = p.rt.clock
    try:
        yield runtimes
    finally:
        for rt in runtimes:
            await rt.db.dispose()


async def members(p: Platform, count: int, **fields: Any) -> list[str]:
    """``count`` mxbank members of one new user (different passwords: no duplicates)."""
    user = await new_user(p.http)
    guids = []
    for i in range(count):
        r = await create_member(p.http, user, f"pw-{i}", **fields)
        assert r.status_code in (200, 202), r.text
        guids.append(r.json()["member"]["guid"])
    return guids


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        proc.terminate()
    for proc in processes:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


def wait_listening(log: Path, timeout: float = 30) -> None:
    """Until the worker process writing ``log`` listens for new jobs."""
    deadline = time.monotonic() + timeout
    while "listening for new jobs" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)


async def jobs_of(rt: Runtime, guids: list[str]) -> list[Job]:
    async with rt.db.read() as s:
        return list(
            await s.scalars(
                select(Job).join(Member, Member.id == Job.member_id).where(Member.guid.in_(guids))
            )
        )


async def mxbank_id(rt: Runtime) -> int:
    async with rt.db.read() as s:
        found = await s.scalar(select(Institution.id).where(Institution.code == "mxbank"))
    assert found is not None
    return found


# --- claiming -------------------------------------------------------------------------


async def test_foreground_jobs_are_claimed_before_background(pg_platform: Platform) -> None:
    p = pg_platform
    background = await members(p, 6, skip_aggregation=True)
    async with p.rt.db.write() as s:
        await s.execute(
            update(Member)
            .where(Member.guid.in_(background))
            .values(next_background_at=p.clock.now - dt.timedelta(minutes=1))
        )
    assert await enqueue_background(p.rt) == 6
    foreground = await members(p, 3)  # automatic jobs, enqueued after the background ones

    claimed = await claim(
        p.rt.db, worker_id="w", limit=3, now=p.clock.now, lease=LEASE, defaults=NO_DEFAULT_CAPS
    )
    started = {j.id for j in await jobs_of(p.rt, foreground)}
    assert set(claimed) == started


async def test_concurrent_claimers_never_take_the_same_job(pg_platform: Platform) -> None:
    p = pg_platform
    guids = await members(p, 40)
    async with other_runtimes(p, 4) as runtimes:
        batches = await asyncio.gather(
            *(
                claim(rt.db, worker_id=f"w{i}", limit=15, now=p.clock.now, lease=LEASE)
                for i, rt in enumerate(runtimes)
            )
        )
    taken = [job_id for batch in batches for job_id in batch]
    assert len(taken) == len(set(taken)) == 40
    assert {j.id for j in await jobs_of(p.rt, guids)} == set(taken)


# --- caps -----------------------------------------------------------------------------


async def test_daily_cap_defers_with_a_reason_and_a_time(pg_platform: Platform) -> None:
    p = pg_platform
    await institution_caps(
        p.rt.db, "mxbank", now=p.clock.now, defaults=NO_DEFAULT_CAPS, max_per_day=5
    )
    guids = await members(p, 8)
    async with other_runtimes(p, 2) as runtimes:
        batches = await asyncio.gather(
            *(
                claim(rt.db, worker_id=f"w{i}", limit=4, now=p.clock.now, lease=LEASE)
                for i, rt in enumerate(runtimes)
            )
        )
        # Once more: the deferred ones are not due, and the day's allowance is used up.
        again = await claim(runtimes[0].db, worker_id="w0", limit=10, now=p.clock.now, lease=LEASE)
    assert sum(len(b) for b in batches) == 5 and again == []

    tomorrow = day_start(p.clock.now) + dt.timedelta(days=1)
    deferred = [j for j in await jobs_of(p.rt, guids) if j.state == "queued"]
    assert len(deferred) == 3
    async with p.rt.db.read() as s:
        queued_members = set(
            await s.scalars(
                select(Member.guid).where(Member.id.in_([j.member_id for j in deferred]))
            )
        )
    for job in deferred:
        assert job.run_after == job.deferred_until == tomorrow
        assert job.deferred_reason is not None and "5 aggregations per day" in job.deferred_reason

    # Operators see it: `openagg members show` prints the deferral.
    waiting = await member_queue_view(p.rt.db, next(g for g in guids if g in queued_members))
    assert waiting is not None and waiting.job is not None
    assert waiting.job.deferred_until == tomorrow
    out = subprocess.run(
        [
            str(VENV_BIN / "openagg"),
            "members",
            "show",
            waiting.member.guid,
            "--database-url",
            p.rt.settings.database_url,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "OPENAGG_DATA_DIR": str(p.rt.settings.data_dir)},
    )
    assert "deferred until" in out.stdout and "5 aggregations per day" in out.stdout

    # The next day they run.
    p.clock.now = tomorrow + dt.timedelta(minutes=1)
    next_day = await claim(p.rt.db, worker_id="w", limit=10, now=p.clock.now, lease=LEASE)
    assert sorted(next_day) == sorted(j.id for j in deferred)


@pytest.mark.parametrize(
    ("concurrency", "cap", "count"),
    [
        # Two slots each under a cap of 3: reaching 3 takes both processes.
        (2, 3, 24),
        # Eight slots each, so each process claims for freed slots two at a time.
        (8, 5, 40),
    ],
)
async def test_concurrency_cap_holds_across_worker_processes(
    pg_platform: Platform, tmp_path: Path, concurrency: int, cap: int, count: int
) -> None:
    p = pg_platform
    p.rt.clock = utcnow  # real worker processes use the real clock
    settings = p.rt.settings
    institution = await mxbank_id(p.rt)
    cli = [str(VENV_BIN / "openagg"), "institutions", "caps", "mxbank"]
    env = {
        "PATH": "/usr/bin:/bin",
        "OPENAGG_DATABASE_URL": settings.database_url,
        "OPENAGG_DATA_DIR": str(settings.data_dir),
        "OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS": "30",
        "OPENAGG_SCHEDULER_INTERVAL_SECONDS": "30",
        "OPENAGG_POLL_INTERVAL_SECONDS": "0.2",
    }
    assert (
        f"max_concurrent={cap} (own)"
        in subprocess.run(
            [*cli, "--max-concurrent", str(cap)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(
            [str(VENV_BIN / "openagg"), "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    most = 0
    created = asyncio.Event()

    async def watch() -> None:  # from the first job on: the members are made one by one
        nonlocal most
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with p.rt.db.read() as s:
                running = await s.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.state == "running", Job.institution_id == institution)
                )
                left = await s.scalar(
                    select(func.count()).select_from(Job).where(Job.active_member_id.is_not(None))
                )
            most = max(most, running or 0)
            if created.is_set() and not left:
                return
            await asyncio.sleep(0.01)

    try:
        for log in logs:
            wait_listening(log)
        watching = asyncio.create_task(watch())
        guids = await members(p, count)
        created.set()
        await watching
    finally:
        stop_processes(workers)
    jobs = await jobs_of(p.rt, guids)
    assert [j.state for j in jobs] == ["succeeded"] * count
    assert [j.attempts for j in jobs] == [1] * count
    assert most == cap  # reached, never passed
    if concurrency * 2 > cap > concurrency:
        assert len({j.worker_id for j in jobs}) == 2  # both processes took part


# --- schedulers -----------------------------------------------------------------------


async def test_concurrent_schedulers_never_schedule_a_member_twice(
    pg_platform: Platform,
) -> None:
    p = pg_platform
    guids = await members(p, 120, skip_aggregation=True)
    async with p.rt.db.write() as s:
        await s.execute(
            update(Member)
            .where(Member.guid.in_(guids))
            .values(next_background_at=p.clock.now - dt.timedelta(minutes=1))
        )
    async with other_runtimes(p, 4) as runtimes:
        results = await asyncio.gather(*(tick(rt) for rt in runtimes))
    assert sum(r.background_enqueued for r in results) == 120
    jobs = await jobs_of(p.rt, guids)
    assert len(jobs) == 120 and len({j.member_id for j in jobs}) == 120


async def test_concurrent_schedulers_recover_a_lost_job_once(pg_platform: Platform) -> None:
    p = pg_platform
    guids = await members(p, 10)
    await claim(p.rt.db, worker_id="dead", limit=10, now=p.clock.now, lease=LEASE)
    async with p.rt.db.write() as s:
        await s.execute(update(Job).values(attempts=p.rt.settings.max_job_attempts))
    p.clock.advance(seconds=LEASE.total_seconds() + 1)

    async with other_runtimes(p, 3) as runtimes:
        recovered = await asyncio.gather(*(recover_lost_jobs(rt) for rt in runtimes))
    assert sum(recovered) == 10
    async with p.rt.db.read() as s:
        lost = await s.scalar(
            select(func.count()).select_from(Attempt).where(Attempt.cause == "WORKER_LOST")
        )
    assert lost == 10
    assert {j.state for j in await jobs_of(p.rt, guids)} == {"failed"}


# --- wake-up --------------------------------------------------------------------------


def test_a_worker_process_starts_a_job_enqueued_by_another_process(
    pg_settings: Settings, tmp_path: Path
) -> None:
    """The API process enqueues; a worker process with a 30 s poll (and a 30 s
    scheduler) starts the job at once: only the NOTIFY can explain it."""
    env = {
        "PATH": "/usr/bin:/bin",
        "OPENAGG_DATABASE_URL": pg_settings.database_url,
        "OPENAGG_DATA_DIR": str(pg_settings.data_dir),
        "OPENAGG_POLL_INTERVAL_SECONDS": "30",
        "OPENAGG_SCHEDULER_INTERVAL_SECONDS": "30",
    }
    openagg = str(VENV_BIN / "openagg")
    creds = subprocess.run(
        [openagg, "clients", "create", "--name", "wakeup", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    client = json.loads(creds)
    url = f"http://127.0.0.1:{free_port()}"
    api = subprocess.Popen(
        [openagg, "serve", "--no-worker", "--port", url.rsplit(":", 1)[1]],
        env=env,
        stdout=(tmp_path / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [openagg, "worker"], env=env, stdout=worker_log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        wait_healthy(url, api)
        wait_listening(worker_log)
        time.sleep(1)  # let the worker's first claim pass and settle into its 30 s wait
        http = httpx.Client(
            base_url=url,
            auth=(client["client_id"], client["api_key"]),
            headers={"Accept": "application/vnd.mx.api.v1+json"},
            timeout=10,
        )
        latencies = [_enqueue_and_time_start(http, pg_settings, i) for i in range(3)]
    finally:
        stop_processes([worker, api])
    assert max(latencies) < 1.0, latencies


def _enqueue_and_time_start(http: httpx.Client, settings: Settings, i: int) -> float:
    """Create a member (its automatic job is enqueued by the API process) and return
    the seconds between the job's creation and its start by the worker process."""
    user = http.post("/users", json={"user": {}}).json()["user"]["guid"]
    creds = http.get("/institutions/mxbank/credentials").json()["credentials"]
    values = {"LOGIN": "mxuser", "PASSWORD": f"wake-{i}"}
    body = {
        "member": {
            "institution_code": "mxbank",
            "credentials": [{"guid": c["guid"], "value": values[c["field_name"]]} for c in creds],
        }
    }
    r = http.post(f"/users/{user}/members", json=body)
    assert r.status_code == 202, r.text
    guid = r.json()["member"]["guid"]
    return asyncio.run(_start_latency(settings, guid))


async def _start_latency(settings: Settings, guid: str) -> float:
    rt = build_runtime(settings)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            async with rt.db.read() as s:
                job = await s.scalar(
                    select(Job).join(Member, Member.id == Job.member_id).where(Member.guid == guid)
                )
            if job is not None and job.started_at is not None:
                return (job.started_at - job.created_at).total_seconds()
            await asyncio.sleep(0.05)
        raise AssertionError(f"the job of {guid} did not start within 20 s")
    finally:
        await rt.db.dispose()

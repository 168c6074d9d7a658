"""Job queue on PostgreSQL: no-op jobs claimed and completed per second, with 1 and 2
worker processes.

The benchmark creates its own PostgreSQL database (``openagg_bench_jobq_<pid>``, on
``OPENAGG_TEST_PG``, default the local server) and drops it afterwards. For each
process count it starts real worker processes (``python -m bench.job_queue
--noop-worker``: the real ``Worker`` loop, claim, leases and LISTEN wake-up, with
each job finished by a no-op write instead of an aggregation), waits until they
listen, enqueues N foreground jobs in one transaction and measures from the first
claim to the last finish, read from the ``jobs`` table.

Targets (issue 3): >= 2,000 jobs/s with one process, and 2 processes >= 1.7x one.

    python -m bench.job_queue                 # 20,000 jobs
    python -m bench.job_queue --jobs 5000     # quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from tests.pg_support import admin, pg_url

from bench._common import (
    MXBANK_LOGIN,
    REPO,
    bench_settings,
    bulk_members,
    bulk_users,
    done,
    enqueue_aggregations,
    header,
    institution,
    ratio,
    show,
    spawn,
    step,
    stop,
    tail,
    temp_dir,
)
from openagg.db.models import Job
from openagg.runtime import Runtime, build_runtime
from openagg.services.admin import seed_institutions
from openagg.services.clients import create_client
from openagg.settings import Settings

CONCURRENCY = 100  # jobs in flight per worker process


@dataclass
class Pass:
    processes: int
    jobs: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else float("nan")


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    name = f"openagg_bench_jobq_{os.getpid()}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    try:
        yield pg_url(name)
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _prepare(settings: Settings, jobs: int) -> tuple[int, list[int]]:
    rt = build_runtime(settings)
    try:
        await seed_institutions(rt)
        client = (await create_client(rt, "Queue bench")).client
        users = await bulk_users(rt, client, jobs)
        members = await bulk_members(
            rt, client, users, await institution(rt, "mxbank"), MXBANK_LOGIN
        )
        return client.id, members
    finally:
        await rt.db.dispose()


async def _enqueue_and_wait(settings: Settings, client_id: int, members: list[int]) -> float:
    """Enqueue one job per member; wait for all to finish; seconds first claim to last finish."""
    rt = build_runtime(settings)
    try:
        async with rt.db.read() as s:
            before = await s.scalar(select(func.coalesce(func.max(Job.id), 0))) or 0
        await enqueue_aggregations(rt, client_id, members, batch=len(members))
        while True:
            async with rt.db.read() as s:
                left = await s.scalar(
                    select(func.count()).select_from(Job).where(Job.active_member_id.is_not(None))
                )
            if not left:
                break
            await asyncio.sleep(0.2)
        async with rt.db.read() as s:
            first, last = (
                await s.execute(
                    select(func.min(Job.started_at), func.max(Job.finished_at)).where(
                        Job.id > before
                    )
                )
            ).one()
        return (last - first).total_seconds()
    finally:
        await rt.db.dispose()


def _wait_listening(log: Path, processes: list[object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while log.exists() is False or tail(log, 1000).count("listening for new jobs") < len(processes):
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers did not start:\n{tail(log)}")
        time.sleep(0.1)


def run(jobs: int = 20_000) -> list[Pass]:
    header(f"job queue on PostgreSQL ({jobs:,} no-op jobs, concurrency {CONCURRENCY}/process)")
    passes: list[Pass] = []
    with temp_dir("jobq") as tmp, bench_database() as url:
        settings = bench_settings(tmp, database_url=url)
        t = step(f"{jobs:,} members")
        client_id, members = asyncio.run(_prepare(settings, jobs))
        done(t)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAGG_")}
        env.update(
            OPENAGG_DATABASE_URL=url,
            OPENAGG_DATA_DIR=str(settings.data_dir),
            OPENAGG_POLL_INTERVAL_SECONDS="5",
            OPENAGG_SCHEDULER_INTERVAL_SECONDS="60",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        for count in (1, 2):
            log = tmp / f"workers-{count}.log"
            workers = [
                spawn([sys.executable, "-m", "bench.job_queue", "--noop-worker"], env, log)
                for _ in range(count)
            ]
            try:
                _wait_listening(log, workers)
                t = step(f"{count} worker process(es)")
                seconds = asyncio.run(_enqueue_and_wait(settings, client_id, members))
                done(t)
            finally:
                for w in workers:
                    stop(w)
            passes.append(Pass(count, jobs, seconds))
    one, two = passes
    show(
        [
            ("1 process", f"{one.rate:,.0f} jobs/s (target >= 2,000)"),
            ("2 processes", f"{two.rate:,.0f} jobs/s"),
            ("2 vs 1", f"{ratio(two.rate, one.rate):.2f}x (target >= 1.7)"),
        ]
    )
    return passes


# --- the worker process -----------------------------------------------------------


def noop_worker() -> None:
    """A real worker process whose jobs each end with one no-op write."""
    import logging

    from openagg.engine.scheduler import run_scheduler
    from openagg.engine.wakeup import listen_for_jobs
    from openagg.engine.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def main() -> None:
        rt: Runtime = build_runtime(Settings())
        worker = Worker(rt, CONCURRENCY)

        async def finish_noop(job_id: int) -> None:
            # The job itself: one write, as queue.finish would make it (Core, no ORM).
            async with rt.db.engine.begin() as conn:
                await conn.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.worker_id == worker.id, Job.state == "running")
                    .values(
                        state="succeeded",
                        active_member_id=None,
                        lease_until=None,
                        finished_at=rt.now(),
                    )
                )

        worker.runner.run = finish_noop  # type: ignore[method-assign]
        halt = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, halt.set)
        try:
            await asyncio.gather(
                worker.run(halt), run_scheduler(rt, halt), listen_for_jobs(rt, halt)
            )
        finally:
            await rt.db.dispose()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--noop-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.noop_worker:
        noop_worker()
    else:
        run(jobs=a.jobs)


if __name__ == "__main__":
    main()

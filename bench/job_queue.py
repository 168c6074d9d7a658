"""Job queue on PostgreSQL: no-op jobs claimed and completed per second, with 1 and 2
worker processes, measured in the same run.

The benchmark creates its own PostgreSQL database (``openagg_bench_jobq_<pid>``, on
``OPENAGG_TEST_PG``, default the local server) and drops it afterwards. For each
pass it vacuums the tables (as autovacuum would between bursts), starts real
worker processes (``python -m bench.job_queue --noop-worker``: the real ``Worker``
loop, claim, leases, LISTEN wake-up and the runner's settling of finished jobs; a
job does no work and ends as a real one does, through ``Runner.settle``: its
group's one locked read of the jobs and members, ``queue.finish``, and one
UPDATE for the group), waits until they listen, enqueues N foreground jobs in one
transaction and measures from the first claim to the last finish, read from the
``jobs`` table. Afterwards it checks that every job ran exactly once: each job is
``succeeded`` after one claim, and the workers' own lists of the jobs they ran
hold every job once.

Also printed per pass: the CPU the worker processes and the PostgreSQL server used
per job, how much of the pass each worker spent on a core and waiting for one
(/proc/<pid>/schedstat), how busy the machine was, and the load average, since the
machine (2 cores here) is shared by the workers, the server and anything else. The
CPU ceiling is what all the cores could do at the measured CPU per job.

Targets (issue 3): >= 2,000 jobs/s with one process, and 2 processes >= 1.7x one.

    python -m bench.job_queue                      # 20,000 jobs
    python -m bench.job_queue --repeat 3           # 1, 2, 1, 2, 1, 2 processes: best and median
    python -m bench.job_queue --jobs 5000          # quick
    python -m bench.job_queue --finish own         # each job commits alone (no group commit)
    python -m bench.job_queue --profile /tmp/jq    # cProfile (CPU time) of each worker process
    python -m bench.job_queue --count-sql          # statements and checkouts per job
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bench._common import (
    MXBANK_LOGIN,
    REPO,
    bench_settings,
    bulk_members,
    bulk_users,
    cpu_seconds,
    cpu_used,
    done,
    enqueue_aggregations,
    header,
    institution,
    machine_cpu,
    pg_bench_database,
    postgres_cpu_in,
    prepare_nothing,
    ratio,
    run_queue_seconds,
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
    worker_cpu: float = 0.0  # CPU seconds of the worker processes
    worker_queued: float = 0.0  # seconds they were ready to run but had no core
    server_cpu: float = 0.0  # CPU seconds of PostgreSQL (this database's backends, helpers)
    busy_cores: float = 0.0  # machine-wide, during the pass
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # load average at the end
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else float("nan")

    @property
    def ok(self) -> bool:
        return not self.problems

    def per_job_ms(self, cpu: float) -> float:
        return 1000 * cpu / self.jobs if self.jobs else float("nan")


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


async def _enqueue_and_wait(
    settings: Settings, client_id: int, members: list[int], workers: list[int], result: Pass
) -> int:
    """Enqueue one job per member and wait for all to finish; fills ``result`` with
    the time from first claim to last finish and the CPU used. Returns the highest
    job id before this pass."""
    rt = build_runtime(settings)
    # The server's CPU per pid, sampled at every poll: a backend that exits during
    # the pass (a pool's overflow connection) keeps its last reading.
    server: dict[int, float] = {}

    async def poll() -> int:
        async with rt.db.read() as s:
            server.update(await postgres_cpu_in(s))
            return (
                await s.scalar(
                    select(func.count()).select_from(Job).where(Job.active_member_id.is_not(None))
                )
                or 0
            )

    try:
        async with rt.db.read() as s:
            before = await s.scalar(select(func.coalesce(func.max(Job.id), 0))) or 0
        await poll()
        server_before = dict(server)
        workers_before = sum(cpu_seconds(pid) or 0.0 for pid in workers)
        queued_before = sum(run_queue_seconds(pid) or 0.0 for pid in workers)
        machine_before = machine_cpu()
        await enqueue_aggregations(rt, client_id, members, batch=len(members))
        while await poll():
            await asyncio.sleep(0.1)
        busy, total = (a - b for a, b in zip(machine_cpu(), machine_before, strict=True))
        result.busy_cores = (os.cpu_count() or 1) * busy / total if total else 0.0
        result.worker_cpu = sum(cpu_seconds(pid) or 0.0 for pid in workers) - workers_before
        queued = sum(run_queue_seconds(pid) or 0.0 for pid in workers)
        result.worker_queued = queued - queued_before
        result.server_cpu = cpu_used(server_before, server)
        result.load = os.getloadavg()
        async with rt.db.read() as s:
            first, last = (
                await s.execute(
                    select(func.min(Job.started_at), func.max(Job.finished_at)).where(
                        Job.id > before
                    )
                )
            ).one()
        assert first is not None and last is not None, "no job ran"
        result.seconds = (last - first).total_seconds()
        return before
    finally:
        await rt.db.dispose()


async def _verify(
    settings: Settings, members: list[int], before: int, ran: Counter[int]
) -> list[str]:
    """Every job of the pass finished once, after one claim, and each member had one."""
    rt = build_runtime(settings)
    try:
        async with rt.db.read() as s:
            rows = (
                await s.execute(
                    select(Job.id, Job.member_id, Job.state, Job.attempts).where(Job.id > before)
                )
            ).all()
    finally:
        await rt.db.dispose()
    problems = []
    ids = {r.id for r in rows}
    if sorted(r.member_id for r in rows) != sorted(members):
        problems.append(f"{len(rows)} jobs for {len(members)} members")
    if bad := [r.id for r in rows if r.state != "succeeded" or r.attempts != 1]:
        problems.append(f"{len(bad)} jobs not succeeded after exactly one claim")
    if twice := [job_id for job_id, n in ran.items() if n != 1]:
        problems.append(f"{len(twice)} jobs ran more than once")
    if missing := ids - set(ran):
        problems.append(f"{len(missing)} jobs never ran")
    if stray := set(ran) - ids:
        problems.append(f"{len(stray)} runs of unknown jobs")
    return problems


def _wait_listening(log: Path, processes: Sequence[object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while log.exists() is False or tail(log, 1000).count("listening for new jobs") < len(processes):
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers did not start:\n{tail(log)}")
        time.sleep(0.1)


def _read_runs(paths: list[Path]) -> tuple[Counter[int], Counter[str]]:
    """The jobs each worker ran (and its statement counts, with --count-sql)."""
    ran: Counter[int] = Counter()
    sql: Counter[str] = Counter()
    for path in paths:
        data = json.loads(path.read_text())
        ran.update(data["ran"])
        sql.update(data.get("sql", {}))
    return ran, sql


def run(
    jobs: int = 20_000,
    *,
    concurrency: int = CONCURRENCY,
    finish: str = "batched",
    profile: Path | None = None,
    count_sql: bool = False,
    counts: tuple[int, ...] = (1, 2),
    repeat: int = 1,
) -> list[Pass]:
    """Measure each process count ``repeat`` times, alternating (1, 2, 1, 2...) so
    that a change in the machine's load hits both alike; returns the fastest pass
    of each count, in ``counts`` order."""
    header(
        f"job queue on PostgreSQL ({jobs:,} no-op jobs, concurrency {concurrency}/process, "
        f"finish {finish})"
    )
    print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    passes: list[Pass] = []
    with temp_dir("jobq") as tmp, pg_bench_database("openagg_bench_jobq") as url:
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
        for round_ in range(repeat):
            for count in counts:
                name = f"{count}-{round_}"
                t = step(f"{count} worker process{'es' if count > 1 else ''}")
                result = _pass(
                    tmp / name,
                    env,
                    settings,
                    client_id,
                    members,
                    count,
                    concurrency,
                    finish,
                    profile,
                    count_sql,
                )
                done(t)
                print(f"     {_describe(result)}", flush=True)
                passes.append(result)
    best = [max((p for p in passes if p.processes == c), key=lambda p: p.rate) for c in counts]
    _report(best, passes)
    return best


def _pass(
    base: Path,
    env: dict[str, str],
    settings: Settings,
    client_id: int,
    members: list[int],
    count: int,
    concurrency: int,
    finish: str,
    profile: Path | None,
    count_sql: bool,
) -> Pass:
    """Start ``count`` worker processes, run one job per member through them, stop
    them and check the outcome."""
    base.mkdir()
    log = base / "workers.log"
    outs = [base / f"ran-{i}.json" for i in range(count)]
    workers = []
    for i, out in enumerate(outs):
        args = [sys.executable, "-m", "bench.job_queue", "--noop-worker", str(out)]
        args += ["--concurrency", str(concurrency), "--finish", finish]
        if profile:
            profile.mkdir(parents=True, exist_ok=True)
            args += ["--profile", str(profile / f"worker-{base.name}-{i}.pstats")]
        if count_sql:
            args.append("--count-sql")
        workers.append(spawn(args, env, log))
    result = Pass(count, len(members), 0.0)
    try:
        asyncio.run(_vacuum(settings))
        _wait_listening(log, workers)
        pids = [w.pid for w in workers]
        before = asyncio.run(_enqueue_and_wait(settings, client_id, members, pids, result))
    finally:
        for w in workers:
            stop(w)
    ran, sql = _read_runs(outs)
    result.problems = asyncio.run(_verify(settings, members, before, ran))
    if count_sql:
        show([(k, f"{n / len(members):.3f} per job") for k, n in sorted(sql.items())])
    return result


async def _vacuum(settings: Settings) -> None:
    """Clear what earlier passes left behind (dead job and member row versions), as
    autovacuum does in a running system, so every pass starts alike."""
    rt = build_runtime(settings)
    try:
        async with rt.db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE jobs, members"))
    finally:
        await rt.db.dispose()


def _describe(p: Pass) -> str:
    # How much of the pass each worker process spent on its CPU: below 100% it
    # waited (on PostgreSQL, or for a core).
    busy = p.worker_cpu / p.seconds / p.processes if p.seconds else float("nan")
    queued = p.worker_queued / p.seconds / p.processes if p.seconds else float("nan")
    return (
        f"{p.rate:,.0f} jobs/s; CPU per job: workers {p.per_job_ms(p.worker_cpu):.3f} ms, "
        f"PostgreSQL {p.per_job_ms(p.server_cpu):.3f} ms; each worker busy {busy:.0%}, "
        f"waiting for a core {queued:.0%}; "
        f"machine {p.busy_cores:.2f} of {os.cpu_count()} cores busy; load {p.load[0]:.2f}; "
        f"verification {'OK' if p.ok else 'FAILED: ' + '; '.join(p.problems)}"
    )


def ceiling(p: Pass) -> float:
    """Jobs/s all the machine's cores could do at this pass's CPU per job (workers
    plus PostgreSQL), with nothing else running: no process count goes past it."""
    per_job = (p.worker_cpu + p.server_cpu) / p.jobs if p.jobs else 0.0
    return (os.cpu_count() or 1) / per_job if per_job else float("nan")


def _report(best: list[Pass], passes: list[Pass]) -> None:
    rounds = len(passes) // len(best)
    rows: list[tuple[str, object]] = []
    for p in best:
        rates = sorted(q.rate for q in passes if q.processes == p.processes)
        spread = f" (best of {rounds}; median {rates[len(rates) // 2]:,.0f})" if rounds > 1 else ""
        rows.append(
            (
                f"{p.processes} process{'es' if p.processes > 1 else ''}",
                f"{p.rate:,.0f} jobs/s{spread}",
            )
        )
    rows.append(("target", "1 process >= 2,000 jobs/s"))
    one = best[0]
    if len(best) > 1:
        two = best[1]
        rows.append(("2 vs 1", f"{ratio(two.rate, one.rate):.2f}x (target >= 1.7)"))
        top = ceiling(two)
        rows.append(
            (
                "CPU ceiling",
                f"{top:,.0f} jobs/s = {ratio(top, one.rate):.2f}x the 1-process rate: what "
                f"{os.cpu_count()} cores give at the 2-process CPU per job, nothing else running",
            )
        )
    failed = [p for p in passes if not p.ok]
    rows.append(("verification", "OK" if not failed else f"FAILED in {len(failed)} passes"))
    show(rows)


# --- the worker process -----------------------------------------------------------


def noop_worker(
    out: Path, *, concurrency: int, finish: str, profile: Path | None, count_sql: bool
) -> None:
    """A real worker process whose jobs do nothing and end through the runner's
    settling, as real jobs end (``batched``), or each with its own UPDATE in a
    transaction of its own (``own``). Writes the ids of the jobs it ran to ``out``."""
    import logging

    from openagg import queue
    from openagg.db.driver import Deferred
    from openagg.domain.states import JobState
    from openagg.engine.runner import Owned, stage_changes
    from openagg.engine.scheduler import run_scheduler
    from openagg.engine.wakeup import listen_for_jobs
    from openagg.engine.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ran: list[int] = []
    sql: Counter[str] = Counter()

    async def main() -> None:
        rt: Runtime = build_runtime(Settings())
        worker = Worker(rt, concurrency)
        if count_sql:
            _count_statements(rt, sql)

        # ``own``: one write, as queue.finish would make it, refused unless this worker
        # still owns the job. Built once: the no-op should cost the engine little.
        finished = (
            update(Job)
            .where(
                Job.id == bindparam("job_id"),
                Job.worker_id == worker.id,
                Job.state == JobState.RUNNING,
            )
            .values(
                state=JobState.SUCCEEDED,
                active_member_id=None,
                lease_until=None,
                finished_at=bindparam("now"),
            )
        )

        async def finish_batched(job_id: int) -> None:
            owned_here: list[bool] = []

            async def write(s: AsyncSession, owned: Owned, later: Deferred) -> None:
                queue.finish(owned.job, state=JobState.SUCCEEDED, now=rt.now())
                stage_changes(later, s.get_bind().dialect, owned)
                owned_here.append(True)

            await worker.runner.settle(job_id, write)
            if owned_here:
                ran.append(job_id)

        async def finish_own(job_id: int) -> None:
            async with rt.db.engine.begin() as conn:
                result = await conn.execute(finished, {"job_id": job_id, "now": rt.now()})
                if result.rowcount:
                    ran.append(job_id)

        noop = finish_batched if finish == "batched" else finish_own
        worker.runner.run = noop  # type: ignore[method-assign]
        worker.runner.prepare = prepare_nothing  # type: ignore[method-assign]
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

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not waits or preemption
        profiler.enable()
    try:
        asyncio.run(main())
    finally:
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        out.write_text(json.dumps({"ran": ran, "sql": sql}))


def _count_statements(rt: Runtime, counts: Counter[str]) -> None:
    """Count statements by their first words, and pool checkouts (each one is a
    ping when the pool pre-pings)."""
    from sqlalchemy import event

    engine = rt.db.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        key = " ".join(words[:3]) if words and words[0] != "WITH" else "WITH ..."
        counts[key] += 1

    @event.listens_for(engine, "begin")
    def _begin(_conn: Any) -> None:
        counts["(BEGIN)"] += 1

    @event.listens_for(engine.pool, "checkout")
    def _checkout(*_args: Any) -> None:
        counts["(pool checkout)"] += 1


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help="jobs in flight per process"
    )
    p.add_argument(
        "--finish",
        choices=("batched", "own"),
        default="batched",
        help="end each job through the runner's group commit (default) or alone",
    )
    p.add_argument("--processes", default="1,2", help="process counts to measure, e.g. 1,2")
    p.add_argument("--repeat", type=int, default=1, help="measure each count this many times")
    p.add_argument("--profile", type=Path, help="write each worker's cProfile stats here")
    p.add_argument("--count-sql", action="store_true", help="print statements per job")
    p.add_argument("--noop-worker", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.noop_worker:
        noop_worker(
            a.noop_worker,
            concurrency=a.concurrency,
            finish=a.finish,
            profile=a.profile,
            count_sql=a.count_sql,
        )
    else:
        run(
            jobs=a.jobs,
            concurrency=a.concurrency,
            finish=a.finish,
            profile=a.profile,
            count_sql=a.count_sql,
            counts=tuple(int(x) for x in a.processes.split(",")),
            repeat=a.repeat,
        )


if __name__ == "__main__":
    main()

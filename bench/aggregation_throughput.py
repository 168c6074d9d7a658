"""Aggregation throughput: workers draining a big queue of mxbank aggregations.

Set-up: a fresh platform with ``--members`` mxbank members (created as with
``skip_aggregation``, so no job runs), then one foreground aggregate job per member.
Real ``openagg worker`` subprocesses (``--workers``, 1 by default, sharing
``--concurrency`` jobs in flight), or with ``--in-process`` a ``Worker`` in this
process, drain them while the sandbox sleeps ``--latency-ms`` on every bank call.
The database is SQLite in a temp directory, or with ``--database-url`` a database
the benchmark creates on that PostgreSQL server and drops afterwards.

Baseline, measured in the same run: one aggregation alone, through a connector
wrapper that counts bank calls. Ideal rate = concurrency / (calls x latency): the
rate if the engine cost nothing. Target: measured / ideal >= 0.9.

    python -m bench.aggregation_throughput                       # issue sizes
    python -m bench.aggregation_throughput --members 1000        # quick
    python -m bench.aggregation_throughput --members 500 --in-process --profile
    python -m bench.aggregation_throughput --workers 2 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432   # issue 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import os
import pstats
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench._common import (
    MXBANK_LOGIN,
    OPENAGG,
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
    postgres_cpu,
    ratio,
    show,
    spawn,
    step,
    stop,
    subprocess_env,
    tail,
    temp_dir,
)
from openagg.connectors import sandbox_data
from openagg.connectors.base import Connector
from openagg.db.models import Attempt, Job, Member, Transaction
from openagg.domain.policy import JobKind
from openagg.engine.runner import HISTORY_DAYS
from openagg.engine.worker import Worker
from openagg.runtime import Runtime, build_runtime
from openagg.services.clients import create_client
from openagg.settings import Settings

ACTIVE = ("queued", "running")


class CountingConnector:
    """Wraps a connector and counts the bank calls one aggregation makes."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return await method(*args, **kwargs)

        return counted

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class Baseline:
    calls: dict[str, int]
    latency_s: float
    wall_s: float
    cpu_s: float
    transactions: int

    @property
    def bank_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def ideal_latency_s(self) -> float:
        return self.bank_calls * self.latency_s


@dataclass
class Result:
    members: int
    concurrency: int
    baseline: Baseline
    backend: str = "sqlite"
    workers: int = 1
    drain_s: float = 0.0
    worker_cpu_s: float | None = None
    loop_cpu_s: float | None = None  # the event loop's thread alone (in-process runs)
    server_cpu_s: float | None = None  # PostgreSQL's backends and helpers
    busy_cores: float | None = None  # the whole machine, while draining
    load: tuple[float, ...] = ()
    states: dict[str, int] = field(default_factory=dict)
    statuses: dict[str | None, int] = field(default_factory=dict)
    transactions: int = 0
    expected_transactions: int = 0
    attempts_created: int = 0

    @property
    def rate(self) -> float:
        return self.members / self.drain_s if self.drain_s else 0.0

    @property
    def ideal(self) -> float:
        return self.concurrency / self.baseline.ideal_latency_s

    @property
    def ok(self) -> bool:
        return (
            self.states.get("succeeded", 0) == self.members
            and self.statuses.get("CONNECTED", 0) == self.members
            and self.transactions == self.expected_transactions == self.attempts_created
        )


async def _run_alone(rt: Runtime, worker: Worker) -> None:
    while await worker.claim_and_start() or worker.running:
        if worker.running:
            await asyncio.wait(list(worker.running.values()))


async def setup(settings: Settings, members: int) -> tuple[Baseline, list[int]]:
    """Create the members, run the baseline aggregation, enqueue the real jobs."""
    rt = build_runtime(settings)
    try:
        from openagg.services.admin import seed_institutions

        await seed_institutions(rt)
        client = (await create_client(rt, "bench", background_enabled=False)).client
        mxbank = await institution(rt, "mxbank")

        t = step(f"creating {members:,} users and mxbank members")
        users = await bulk_users(rt, client, members + 1)
        ids = await bulk_members(rt, client, users, mxbank, MXBANK_LOGIN)
        done(t)
        baseline_id, member_ids = ids[0], ids[1:]

        t = step("baseline: one aggregation alone")
        counting = CountingConnector(rt.connectors["sandbox"])
        rt.connectors["sandbox"] = counting  # type: ignore[assignment]
        await enqueue_aggregations(rt, client.id, [baseline_id])
        worker = Worker(rt, concurrency=1)
        wall, cpu = time.perf_counter(), time.process_time()
        await _run_alone(rt, worker)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        done(t)
        async with rt.db.read() as s:
            txns = await s.scalar(select(func.count()).where(Transaction.member_id == baseline_id))
            status = await s.scalar(
                select(Member.connection_status).where(Member.id == baseline_id)
            )
        if status != "CONNECTED":
            raise RuntimeError(f"the baseline aggregation ended {status}")
        baseline = Baseline(
            dict(counting.calls), sandbox_latency_ms(settings) / 1000, wall, cpu, txns or 0
        )

        t = step(f"enqueueing {members:,} foreground aggregate jobs")
        await enqueue_aggregations(rt, client.id, member_ids)
        done(t)
        return baseline, member_ids
    finally:
        await rt.db.dispose()


async def _progress(rt: Runtime, first: int) -> tuple[int, int]:
    async with rt.db.read() as s:
        rows = await s.execute(
            select(Job.state, func.count()).where(Job.id >= first).group_by(Job.state)
        )
        by_state = {k: v for k, v in rows}
    active = sum(by_state.get(a, 0) for a in ACTIVE)
    return active, sum(by_state.values()) - active


async def wait_drained(
    rt: Runtime, first_job: int, total: int, timeout: float, alive: Any = None
) -> None:
    started = time.perf_counter()
    last_print = started
    while True:
        active, finished = await _progress(rt, first_job)
        now = time.perf_counter()
        if active == 0:
            return
        if now - last_print >= 5:
            elapsed = now - started
            print(f"     {finished:,}/{total:,} done after {elapsed:.0f}s", flush=True)
            last_print = now
        if alive is not None and not alive():
            raise RuntimeError("the worker exited early")
        if now - started > timeout:
            raise TimeoutError(f"{active:,} jobs still active after {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def _first_job(rt: Runtime, member_ids: list[int]) -> int:
    async with rt.db.read() as s:
        first = await s.scalar(select(func.min(Job.id)).where(Job.member_id == member_ids[0]))
    assert first is not None
    return first


async def drain_subprocess(
    settings: Settings,
    tmp: Path,
    concurrency: int,
    member_ids: list[int],
    timeout: float,
    result: Result,
    py_spy: str | None = None,
) -> None:
    """Run ``result.workers`` ``openagg worker`` processes, sharing ``concurrency``,
    until the queue is empty; fills in the CPU they (and PostgreSQL) used.

    With ``py_spy`` (an output path), ``py-spy record`` samples the first worker
    meanwhile (``.txt``: collapsed stacks, else a flame graph SVG)."""
    env = subprocess_env(
        tmp,
        OPENAGG_DATABASE_URL=settings.database_url,
        OPENAGG_CONNECTOR_SANDBOX_LATENCY_MS=str(sandbox_latency_ms(settings)),
        OPENAGG_BACKGROUND_JITTER_SECONDS="0",
    )
    n = result.workers
    shares = [concurrency // n + (1 if i < concurrency % n else 0) for i in range(n)]
    pg = not settings.database_url.startswith("sqlite")
    rt = build_runtime(settings)
    server_before = await postgres_cpu(settings.database_url) if pg else {}
    machine_before = machine_cpu()
    processes = [
        spawn([OPENAGG, "worker", "--concurrency", str(share)], env, tmp / f"worker-{i}.log")
        for i, share in enumerate(shares)
    ]
    spy = None
    if py_spy:
        fmt = "raw" if py_spy.endswith(".txt") else "flamegraph"
        spy = spawn(
            ["py-spy", "record", "--pid", str(processes[0].pid), "-o", py_spy, "--format", fmt],
            env,
            tmp / "py-spy.log",
        )
    try:
        first = await _first_job(rt, member_ids)
        await wait_drained(
            rt,
            first,
            len(member_ids),
            timeout,
            alive=lambda: all(p.poll() is None for p in processes),
        )
        cpus = [cpu_seconds(p.pid) for p in processes]
        result.worker_cpu_s = None if None in cpus else sum(c or 0.0 for c in cpus)
        busy, total = (
            after - before for after, before in zip(machine_cpu(), machine_before, strict=True)
        )
        result.busy_cores = busy / total * (os.cpu_count() or 1) if total else None
        result.load = os.getloadavg()
        if pg:
            result.server_cpu_s = cpu_used(server_before, await postgres_cpu(settings.database_url))
    except Exception:
        for i in range(n):
            print(tail(tmp / f"worker-{i}.log"))
        raise
    finally:
        if spy is not None:
            stop(spy, timeout=60)
            print(f"     py-spy profile written to {py_spy}")
        for process in processes:
            stop(process)
        await rt.db.dispose()


async def drain_in_process(
    settings: Settings, concurrency: int, member_ids: list[int], timeout: float, profile: bool
) -> tuple[float, float]:
    """Returns the process CPU seconds (aiosqlite's threads included) and the event
    loop thread's own: SQLite's C code runs in aiosqlite's threads, on the other core."""
    rt = build_runtime(settings)
    stop_event = asyncio.Event()
    profiler = cProfile.Profile() if profile else None
    try:
        first = await _first_job(rt, member_ids)
        cpu, loop_cpu = time.process_time(), time.thread_time()
        if profiler:
            profiler.enable()
        task = asyncio.create_task(Worker(rt, concurrency).run(stop_event))
        await wait_drained(rt, first, len(member_ids), timeout, alive=lambda: not task.done())
        if profiler:
            profiler.disable()
        cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
        stop_event.set()
        await task
    finally:
        await rt.db.dispose()
    if profiler:
        print("\n  cProfile of the in-process worker (top 30 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    return cpu, loop_cpu


def sandbox_latency_ms(settings: Settings) -> int:
    return int(settings.connector_options.get("sandbox", {}).get("latency_ms", "0"))


def _expected(member_guid: str, today: dt.date) -> int:
    """How many transactions the sandbox gives a first aggregation of this member."""
    profile = sandbox_data.member_profile(member_guid, "mxbank", today)
    start = today - dt.timedelta(days=HISTORY_DAYS[JobKind.AGGREGATE])
    end = today + dt.timedelta(days=5)
    return sum(
        len(sandbox_data.transactions_for(profile, a.external_id, today, start, end))
        for a in profile.accounts
    )


async def collect(settings: Settings, result: Result, member_ids: list[int]) -> None:
    rt = build_runtime(settings)
    try:
        first = await _first_job(rt, member_ids)
        lo, hi = member_ids[0], member_ids[-1]
        async with rt.db.read() as s:
            started, finished = (
                await s.execute(
                    select(func.min(Job.started_at), func.max(Job.finished_at)).where(
                        Job.id >= first
                    )
                )
            ).one()
            assert started is not None and finished is not None, "no job ran"
            result.drain_s = (finished - started).total_seconds()
            states = await s.execute(
                select(Job.state, func.count()).where(Job.id >= first).group_by(Job.state)
            )
            result.states = {k: v for k, v in states}
            in_range = Member.id.between(lo, hi)
            statuses = await s.execute(
                select(Member.connection_status, func.count())
                .where(in_range)
                .group_by(Member.connection_status)
            )
            result.statuses = {k: v for k, v in statuses}
            result.transactions = (
                await s.scalar(select(func.count()).where(Transaction.member_id.between(lo, hi)))
                or 0
            )
            result.attempts_created = (
                await s.scalar(
                    select(func.sum(Attempt.transactions_created)).where(
                        Attempt.member_id.between(lo, hi)
                    )
                )
                or 0
            )
            pulled = await s.execute(
                select(Member.guid, Job.started_at)
                .join(Job, Job.member_id == Member.id)
                .where(in_range, Job.id >= first)
            )
            result.expected_transactions = sum(
                _expected(guid, when.date()) for guid, when in pulled.tuples() if when is not None
            )
    finally:
        await rt.db.dispose()


@contextlib.contextmanager
def pg_database(server_url: str | None, keep: bool) -> Iterator[str | None]:
    """A database of this run's own on the PostgreSQL server of ``server_url`` (its
    database part is ignored), dropped afterwards; None when no server is given."""
    if not server_url:
        yield None
        return
    url = make_url(server_url)
    name = f"openagg_bench_agg_{os.getpid()}"
    admin_dsn = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"(kept database {name})")
        else:
            asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def run(
    members: int = 10_000,
    concurrency: int = 200,
    latency_ms: int = 100,
    *,
    in_process: bool = False,
    profile: bool = False,
    py_spy: str | None = None,
    keep: bool = False,
    database_url: str | None = None,
    workers: int = 1,
) -> Result:
    where = "PostgreSQL" if database_url else "SQLite"
    header(
        f"aggregation throughput: {members:,} mxbank members, concurrency {concurrency}, "
        f"{latency_ms} ms per bank call, {where}, {workers} worker process(es)"
    )
    with temp_dir("aggregation", keep) as tmp, pg_database(database_url, keep) as url:
        overrides: dict[str, Any] = {
            "connector_options": {"sandbox": {"latency_ms": str(latency_ms)}}
        }
        if url:
            overrides["database_url"] = url
        settings = bench_settings(tmp, **overrides)
        baseline, member_ids = asyncio.run(setup(settings, members))
        result = Result(members, concurrency, baseline, backend=where, workers=workers)
        ideal_s = members / result.ideal
        timeout = max(300.0, 30 * ideal_s)
        in_here = in_process or profile
        if in_here:
            result.workers = 1
        what = "in this process" if in_here else f"{result.workers} `openagg worker` process(es)"
        t = step(f"draining with {what} (ideal {ideal_s:.0f}s)\n")
        if in_here:
            result.worker_cpu_s, result.loop_cpu_s = asyncio.run(
                drain_in_process(settings, concurrency, member_ids, timeout, profile)
            )
        else:
            asyncio.run(
                drain_subprocess(settings, tmp, concurrency, member_ids, timeout, result, py_spy)
            )
        done(t)
        t = step("verifying members and transactions")
        asyncio.run(collect(settings, result, member_ids))
        done(t)
    report(result)
    return result


def report(r: Result) -> None:
    b = r.baseline
    calls = ", ".join(f"{k} {v}" for k, v in sorted(b.calls.items()))
    rows: list[tuple[str, object]] = [
        ("baseline: bank calls / aggregation", f"{b.bank_calls} ({calls})"),
        (
            "baseline: per-aggregation latency",
            f"{b.ideal_latency_s * 1000:.0f} ms ideal, {b.wall_s * 1000:.0f} ms measured alone "
            f"({b.cpu_s * 1000:.0f} ms CPU)",
        ),
        ("database, workers", f"{r.backend}, {r.workers} process(es)"),
        ("drain time", f"{r.drain_s:.1f} s (first claim to last finish)"),
        ("aggregations/s", f"{r.rate:.1f}"),
        ("ideal aggregations/s", f"{r.ideal:.1f}  (= {r.concurrency} / {b.ideal_latency_s:.2f} s)"),
        ("ratio measured/ideal", f"{ratio(r.rate, r.ideal):.2f}  (target >= 0.9)"),
    ]
    if r.worker_cpu_s is not None and r.drain_s:
        rows.append(
            (
                "worker CPU",
                f"{r.worker_cpu_s:.1f} s = {r.worker_cpu_s / r.members * 1000:.1f} ms per "
                f"aggregation, {r.worker_cpu_s / r.drain_s:.0%} of one core "
                f"(CPU-bound ceiling ~{r.members * r.workers / r.worker_cpu_s:.0f}/s)",
            )
        )
    if r.server_cpu_s is not None:
        rows.append(
            (
                "PostgreSQL CPU",
                f"{r.server_cpu_s / r.members * 1000:.1f} ms per aggregation "
                f"({r.server_cpu_s / r.drain_s:.0%} of one core)",
            )
        )
    if r.busy_cores is not None:
        load = ", ".join(f"{x:.1f}" for x in r.load)
        rows.append(
            ("machine", f"{r.busy_cores:.2f} of {os.cpu_count()} cores busy; load average {load}")
        )
    if r.loop_cpu_s is not None:
        rows.append(
            (
                "event loop thread CPU",
                f"{r.loop_cpu_s / r.members * 1000:.1f} ms per aggregation "
                f"(the rest ran in aiosqlite's threads)",
            )
        )
    rows += [
        ("jobs", ", ".join(f"{k} {v:,}" for k, v in sorted(r.states.items()))),
        ("members", ", ".join(f"{k} {v:,}" for k, v in sorted(r.statuses.items(), key=str))),
        (
            "transactions",
            f"{r.transactions:,} stored, {r.expected_transactions:,} expected from the sandbox, "
            f"{r.attempts_created:,} reported by attempts "
            f"(~{r.expected_transactions / max(r.members, 1):.0f} per member)",
        ),
        ("verification", "OK" if r.ok else "MISMATCH"),
    ]
    show(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--latency-ms", type=int, default=100)
    p.add_argument("--in-process", action="store_true", help="run the Worker in this process")
    p.add_argument("--profile", action="store_true", help="cProfile an in-process worker")
    p.add_argument(
        "--py-spy",
        metavar="OUT",
        help="sample the worker subprocess with py-spy (on PATH) into OUT (.svg or .txt)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp directory (and database)")
    p.add_argument(
        "--database-url",
        metavar="URL",
        help="a PostgreSQL server (postgresql+asyncpg://user@host:port) to run on, in a "
        "database of the run's own, instead of SQLite",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing --concurrency")
    a = p.parse_args(argv)
    run(
        a.members,
        a.concurrency,
        a.latency_ms,
        in_process=a.in_process,
        profile=a.profile,
        py_spy=a.py_spy,
        keep=a.keep,
        database_url=a.database_url,
        workers=a.workers,
    )


if __name__ == "__main__":
    main()

"""Scheduler tick: with 1,000,000 members of which 1% are due for their background
aggregation, the time one ``scheduler.tick`` takes to find and enqueue them.

The members are bulk-loaded by the database itself (``generate_series`` on
PostgreSQL, a recursive CTE on SQLite), CONNECTED, spread over 100,000 users of one
client, with sealed-credential-sized rows; every 100th member is due (some time in
the last hour), the others come due over the next day. Then, with the clock fixed:

- **idle tick**: one ``tick`` at a time when nothing is due (the fixed cost of a
  pass over a big table);
- **bare SELECT** (baseline): ``SELECT id FROM members WHERE next_background_at <=
  now``, the least any tick must do to find the due members;
- **tick**: one ``tick`` that finds and enqueues them all.

Afterwards it checks that exactly the due members got one queued background job
each, and that their next run moved a day on.

PostgreSQL by default (its own database ``openagg_bench_tick_<pid>`` on
``OPENAGG_TEST_PG``, dropped afterwards); ``--sqlite`` runs on a temp SQLite file.

    python -m bench.scheduler_tick                          # 1,000,000 members on PostgreSQL
    python -m bench.scheduler_tick --members 100000         # quick
    python -m bench.scheduler_tick --sqlite --members 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import bindparam, func, select, text

from bench._common import (
    bench_settings,
    cpu_used,
    done,
    header,
    pg_bench_database,
    postgres_cpu,
    ratio,
    show,
    step,
    temp_dir,
)
from openagg.db.models import Job, Member, UTCDateTime
from openagg.engine.scheduler import tick
from openagg.runtime import Runtime, build_runtime
from openagg.services.admin import seed_institutions
from openagg.services.clients import create_client
from openagg.settings import Settings

MEMBERS_PER_USER = 10
DUE_EVERY = 100  # 1% of members are due


@dataclass
class Timing:
    seconds: float
    process_cpu: float  # this process (SQLAlchemy, the scheduler's Python)
    server_cpu: float | None  # PostgreSQL's backends and helpers


@dataclass
class Result:
    backend: str
    members: int
    due: int
    enqueued: int = 0
    tick: Timing | None = None
    idle_tick: Timing | None = None
    select: Timing | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@contextlib.contextmanager
def _database(sqlite: bool, tmp: Path, keep: bool) -> Iterator[str]:
    if sqlite:
        yield f"sqlite+aiosqlite:///{tmp}/openagg.db"
    else:
        with pg_bench_database("openagg_bench_tick", keep) as url:
            yield url


def _sequence(rt: Runtime, count: str) -> str:
    """A ``seq(i)`` source of 1..count, in the database's own dialect."""
    if rt.db.sqlite:
        return (
            f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) "
            "SELECT i FROM s) AS seq"
        )
    return f"generate_series(1, {count}) AS seq(i)"


def _at(rt: Runtime, seconds: str) -> str:
    """The timestamp ``:base`` + ``seconds`` as the dialect stores UTCDateTime."""
    if rt.db.sqlite:
        # SQLAlchemy keeps SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
        return f"strftime('%Y-%m-%d %H:%M:%S', :base_text, ({seconds}) || ' seconds') || '.000000'"
    return f"(:base + ({seconds}) * interval '1 second')"


async def _load(rt: Runtime, members: int, now: dt.datetime) -> None:
    """Users and members, generated inside the database (no rows through Python)."""
    await seed_institutions(rt)
    client = (await create_client(rt, "Scheduler bench")).client
    users = -(-members // MEMBERS_PER_USER)
    base = now.replace(microsecond=0)
    params = {
        "client": client.id,
        "base": base,
        "base_text": base.strftime("%Y-%m-%d %H:%M:%S"),
        "users": users,
        "members": members,
    }
    false, true = ("0", "1") if rt.db.sqlite else ("false", "true")
    # Due members came due in the last hour; the others come due over the next day.
    next_run = (
        f"CASE WHEN i % {DUE_EVERY} = 0 THEN {_at(rt, '-1 - i % 3600')} "
        f"ELSE {_at(rt, '1 + i % 86399')} END"
    )
    credentials = "randomblob(200)" if rt.db.sqlite else "decode(repeat('5a', 200), 'hex')"
    statements = [
        f"""INSERT INTO users
            (id, guid, client_id, external_id, is_disabled, created_at, updated_at)
        SELECT i, 'USR-bench-' || i, :client, 'bench-' || i, {false}, {_at(rt, "0")}, {_at(rt, "0")}
        FROM {_sequence(rt, ":users")}""",
        f"""INSERT INTO members (id, guid, client_id, user_id, institution_id, name, is_oauth,
            connection_status, status_changed_at, aggregated_at, successfully_aggregated_at,
            is_authenticated, has_processed_accounts, has_processed_transactions,
            has_processed_account_numbers, credentials_enc, consecutive_credential_failures,
            next_background_at, created_at, updated_at)
        SELECT i, 'MBR-bench-' || i, :client, (i - 1) / {MEMBERS_PER_USER} + 1, inst.id,
            inst.name, {false}, 'CONNECTED', {_at(rt, "-86400")}, {_at(rt, "-86400")},
            {_at(rt, "-86400")}, {true}, {true}, {true}, {false}, {credentials}, 0,
            {next_run}, {_at(rt, "-864000")}, {_at(rt, "-86400")}
        FROM {_sequence(rt, ":members")}, institutions AS inst WHERE inst.code = 'mxbank'""",
    ]
    async with rt.db.write() as s:
        for sql in statements:
            stmt = text(sql)
            used = {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}
            if "base" in used:
                stmt = stmt.bindparams(bindparam("base", type_=UTCDateTime))
            await s.execute(stmt, used)
        if not rt.db.sqlite:
            for table in ("users", "members"):
                await s.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
    # Fresh statistics, as autovacuum would have gathered on a table this size, and
    # the load's dirty pages written out, as a checkpoint would have done by now.
    if rt.db.sqlite:
        async with rt.db.write() as s:
            await s.execute(text("ANALYZE"))
        return
    async with rt.db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
        await conn.execute(text("CHECKPOINT"))


async def _timed(rt: Runtime, work: object) -> tuple[object, Timing]:
    assert asyncio.iscoroutine(work)
    server_before = None if rt.db.sqlite else await postgres_cpu(rt.settings.database_url)
    cpu = time.process_time()
    started = time.perf_counter()
    value = await work
    seconds = time.perf_counter() - started
    process_cpu = time.process_time() - cpu
    server = (
        None
        if server_before is None
        else cpu_used(server_before, await postgres_cpu(rt.settings.database_url))
    )
    return value, Timing(seconds, process_cpu, server)


async def _due_ids(rt: Runtime, now: dt.datetime) -> list[int]:
    async with rt.db.read() as s:
        return list(await s.scalars(select(Member.id).where(Member.next_background_at <= now)))


async def _measure(settings: Settings, result: Result) -> None:
    rt = build_runtime(settings)
    try:
        now = rt.now()
        t = step(f"{result.members:,} members, {result.due:,} due")
        await _load(rt, result.members, now)
        done(t)
        await _due_ids(rt, now)  # warm the connection pool and the statement caches

        rt.clock = lambda: now - dt.timedelta(hours=2)  # before anyone is due
        idle, result.idle_tick = await _timed(rt, tick(rt))
        assert getattr(idle, "background_enqueued", None) == 0, idle

        rt.clock = lambda: now
        due, result.select = await _timed(rt, _due_ids(rt, now))
        assert isinstance(due, list)
        if len(due) != result.due:
            result.problems.append(f"{len(due)} due members found by SELECT, not {result.due}")

        ticked, result.tick = await _timed(rt, tick(rt))
        result.enqueued = getattr(ticked, "background_enqueued", -1)
        result.problems += await _verify(rt, result, set(due), now)
    finally:
        await rt.db.dispose()


async def _verify(rt: Runtime, result: Result, due: set[int], now: dt.datetime) -> list[str]:
    problems = []
    async with rt.db.read() as s:
        jobs = (await s.execute(select(Job.member_id, Job.trigger, Job.state, Job.kind))).all()
        still_due = await s.scalar(
            select(func.count()).select_from(Member).where(Member.next_background_at <= now)
        )
        pushed = await s.scalar(
            select(func.min(Member.next_background_at)).where(Member.id.in_(list(due)[:1000]))
        )
    per_member: dict[int | None, int] = {}
    for member_id, *_ in jobs:
        per_member[member_id] = per_member.get(member_id, 0) + 1
    if result.enqueued != result.due:
        problems.append(f"the tick reported {result.enqueued} enqueued, not {result.due}")
    if set(per_member) != due:
        problems.append(
            f"jobs for {len(set(per_member) - due)} members not due, "
            f"none for {len(due - set(per_member))} due members"
        )
    if twice := [m for m, n in per_member.items() if n != 1]:
        problems.append(f"{len(twice)} members got more than one job")
    if bad := [j for j in jobs if tuple(j[1:]) != ("background", "queued", "aggregate")]:
        problems.append(f"{len(bad)} jobs are not queued background aggregations")
    if still_due:
        problems.append(f"{still_due} members still due after the tick")
    cfg = rt.settings
    earliest = now + dt.timedelta(
        seconds=cfg.background_interval_seconds - cfg.background_jitter_seconds
    )
    if pushed is None or pushed < earliest:
        problems.append(f"due members' next run not pushed an interval on (earliest {pushed})")
    return problems


def run(members: int = 1_000_000, *, sqlite: bool = False, keep: bool = False) -> Result:
    backend = "SQLite" if sqlite else "PostgreSQL"
    header(f"scheduler tick on {backend} ({members:,} members, 1% due)")
    print(f"  load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    result = Result(backend, members, members // DUE_EVERY)
    with temp_dir("tick", keep) as tmp, _database(sqlite, tmp, keep) as url:
        # The default jitter: next runs spread as in production.
        jitter = Settings.model_fields["background_jitter_seconds"].default
        settings = bench_settings(tmp, database_url=url, background_jitter_seconds=jitter)
        asyncio.run(_measure(settings, result))
    _report(result)
    return result


def _timing(t: Timing | None) -> str:
    if t is None:
        return "-"
    server = "" if t.server_cpu is None else f", PostgreSQL CPU {t.server_cpu:.3f} s"
    return f"{t.seconds:.3f} s (this process's CPU {t.process_cpu:.3f} s{server})"


def _report(r: Result) -> None:
    tick_s = r.tick.seconds if r.tick else float("nan")
    select_s = r.select.seconds if r.select else float("nan")
    show(
        [
            ("tick", f"{_timing(r.tick)}: {r.due / tick_s:,.0f} due members/s enqueued"),
            ("bare SELECT of due ids", _timing(r.select)),
            ("tick vs bare SELECT", f"{ratio(tick_s, select_s):.1f}x the time"),
            ("idle tick (nothing due)", _timing(r.idle_tick)),
            ("load average after", " ".join(f"{x:.2f}" for x in os.getloadavg())),
            ("verification", "OK" if r.ok else "FAILED: " + "; ".join(r.problems)),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--sqlite", action="store_true", help="a temp SQLite file, not PostgreSQL")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    a = p.parse_args(argv)
    run(a.members, sqlite=a.sqlite, keep=a.keep)


if __name__ == "__main__":
    main()

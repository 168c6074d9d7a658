"""Engine CPU per aggregation: what the platform itself costs, with a free bank.

A tiny in-bench connector (registered as ``rt.connectors["bench"]``, with its own
``institutions`` row) answers at once with 3 accounts and 10 new transactions per
account. ``--aggregations`` members are aggregated through the real ``Worker`` and
``Runner``, twice: the first aggregation (accounts created) and a repeat (accounts
updated, 30 new transactions). Process CPU time (``time.process_time``, which counts
aiosqlite's threads too) is reported per aggregation.

Baseline, in the same run: the same worker loop claiming the same number of jobs
and finishing each with a no-op write, group-committed like the real ones: the
queue's own floor.

    python -m bench.engine_cpu                      # 500 aggregations
    python -m bench.engine_cpu --aggregations 100   # quick
    python -m bench.engine_cpu --profile            # cProfile the repeat pass
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import pstats
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bench._common import (
    MXBANK_LOGIN,
    bench_settings,
    bulk_members,
    bulk_users,
    enqueue_aggregations,
    header,
    institution,
    prepare_nothing,
    ratio,
    show,
    temp_dir,
)
from openagg.connectors.base import (
    AccountData,
    Connector,
    ConnectorContext,
    LoginResult,
    TransactionData,
)
from openagg.db.models import Client, Institution, Job, Member, Transaction
from openagg.domain.states import JobState
from openagg.engine.worker import Worker
from openagg.queue import finish
from openagg.runtime import Runtime, build_runtime
from openagg.services.admin import seed_institutions
from openagg.services.clients import create_client

ACCOUNTS = 3
TRANSACTIONS_PER_ACCOUNT = 10
_TYPES = ("CHECKING", "SAVINGS", "CREDIT_CARD")


class BenchConnector(Connector):
    """Answers at once: 3 accounts, 10 transactions each, new ones on every ``round``."""

    def __init__(self) -> None:
        self.round = 0  # no holdings, no owners: the base class's

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        return LoginResult(state={"authenticated": True})

    async def answer(
        self, ctx: ConnectorContext, state: dict[str, Any], answers: dict[str, str]
    ) -> LoginResult:
        return LoginResult(state={"authenticated": True})

    async def accounts(self, ctx: ConnectorContext, state: dict[str, Any]) -> list[AccountData]:
        return [
            AccountData(
                external_id=f"ACC-{i}",
                name=f"Bench {kind.title()}",
                type=kind,
                balance=Decimal("1234.56") + self.round,
                available_balance=Decimal("1200.00"),
                account_number=f"00012345{i}",
                routing_number="091000019",
            )
            for i, kind in enumerate(_TYPES[:ACCOUNTS])
        ]

    async def transactions(
        self,
        ctx: ConnectorContext,
        state: dict[str, Any],
        account: AccountData,
        from_date: dt.date,
        to_date: dt.date,
    ) -> list[TransactionData]:
        day = min(ctx.today, to_date)
        return [
            TransactionData(
                external_id=f"{account.external_id}-R{self.round}-T{i}",
                account_external_id=account.external_id,
                amount=Decimal(f"{12 + i}.{i:02d}"),
                type="DEBIT" if i % 4 else "CREDIT",
                date=day - dt.timedelta(days=i % 3),
                description=f"Bench Merchant {i}",
                original_description=f"POS BENCH MERCHANT {i} #{self.round}",
                category="Groceries",
                top_level_category="Food & Dining",
                merchant_name=f"Bench Merchant {i}",
                merchant_category_code=5411,
                flags={"is_expense": bool(i % 4), "is_income": not i % 4},
            )
            for i in range(TRANSACTIONS_PER_ACCOUNT)
        ]


@dataclass
class Pass:
    name: str
    jobs: int
    cpu_s: float
    wall_s: float

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s / self.jobs * 1000

    @property
    def wall_rate(self) -> float:
        return self.jobs / self.wall_s


async def _drain(worker: Worker) -> None:
    """What tests and ``Worker.run`` do: claim free slots, start, repeat until idle."""
    while True:
        started = await worker.claim_and_start()
        if not started and not worker.running:
            return
        if worker.running:
            await asyncio.wait(list(worker.running.values()), return_when=asyncio.FIRST_COMPLETED)


async def _timed(
    name: str, rt: Runtime, worker: Worker, n: int, profiler: cProfile.Profile | None = None
) -> Pass:
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    await _drain(worker)
    if profiler:
        profiler.disable()
    return Pass(name, n, time.process_time() - cpu, time.perf_counter() - wall)


async def _bench_institution(rt: Runtime) -> Institution:
    mxbank = await institution(rt, "mxbank")
    async with rt.db.write() as s:
        await s.execute(
            insert(Institution).values(
                code="bench",
                guid="INS-bench",
                name="Bench Bank",
                connector="bench",
                data_source="default",
                is_retired=False,
                throttle_exempt=True,
                profile=dict(mxbank.profile),
                credentials=list(mxbank.credentials),
            )
        )
    return await institution(rt, "bench")


async def measure(rt: Runtime, n: int, concurrency: int, profile: bool) -> tuple[list[Pass], int]:
    await seed_institutions(rt)
    client: Client = (await create_client(rt, "bench", background_enabled=False)).client
    connector = BenchConnector()
    rt.connectors["bench"] = connector
    inst = await _bench_institution(rt)
    users = await bulk_users(rt, client, n)
    members = await bulk_members(rt, client, users, inst, MXBANK_LOGIN)

    # Baseline: the same loop, each job finished by a no-op write that shares its
    # transaction with the others finishing meanwhile (the runner's group commit).
    idle = Worker(rt, concurrency)

    async def noop(job_id: int) -> None:
        async def write(s: AsyncSession) -> None:
            job = await s.get(Job, job_id)
            assert job is not None
            finish(job, state=JobState.SUCCEEDED, now=rt.now())

        await idle.runner.batcher.run(write)

    idle.runner.run = noop  # type: ignore[method-assign]
    idle.runner.prepare = prepare_nothing  # type: ignore[method-assign]
    await enqueue_aggregations(rt, client.id, members)
    passes = [await _timed("baseline: claim + finish no-op jobs", rt, idle, n)]

    worker = Worker(rt, concurrency)
    await enqueue_aggregations(rt, client.id, members)
    passes.append(await _timed("first aggregation (accounts created)", rt, worker, n))
    connector.round = 1
    await enqueue_aggregations(rt, client.id, members)
    profiler = cProfile.Profile() if profile else None
    passes.append(await _timed("repeat aggregation (30 new txns)", rt, worker, n, profiler))

    async with rt.db.read() as s:
        stored = await s.scalar(select(func.count()).select_from(Transaction)) or 0
        connected = await s.scalar(
            select(func.count()).where(Member.connection_status == "CONNECTED")
        )
    if connected != n:
        print(f"  !! only {connected} of {n} members are CONNECTED")
    if profiler:
        print("\n  cProfile of the repeat pass (top 35 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
    return passes, stored


def run(
    aggregations: int = 500, concurrency: int = 50, *, profile: bool = False, keep: bool = False
) -> list[Pass]:
    per = ACCOUNTS * TRANSACTIONS_PER_ACCOUNT
    header(
        f"engine CPU per aggregation: {aggregations:,} aggregations x {ACCOUNTS} accounts, "
        f"{per} new transactions, zero-latency connector, concurrency {concurrency}"
    )
    with temp_dir("engine-cpu", keep) as tmp:
        settings = bench_settings(tmp)

        async def main() -> tuple[list[Pass], int]:
            rt = build_runtime(settings)
            try:
                return await measure(rt, aggregations, concurrency, profile)
            finally:
                await rt.db.dispose()

        passes, stored = asyncio.run(main())
    base = passes[0]
    rows: list[tuple[str, object]] = []
    for p in passes:
        extra = "" if p is base else f"  = {ratio(p.cpu_ms, base.cpu_ms):.1f}x baseline, "
        extra += "" if p is base else f"engine net {p.cpu_ms - base.cpu_ms:.2f} ms"
        rows.append((p.name, f"{p.cpu_ms:6.2f} ms CPU/job, {p.wall_rate:6.0f} jobs/s wall{extra}"))
    expected = 2 * aggregations * per
    rows.append(("transactions stored", f"{stored:,} (expected {expected:,})"))
    show(rows)
    return passes


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--aggregations", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--profile", action="store_true", help="cProfile the repeat pass")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    a = p.parse_args(argv)
    run(a.aggregations, a.concurrency, profile=a.profile, keep=a.keep)


if __name__ == "__main__":
    main()

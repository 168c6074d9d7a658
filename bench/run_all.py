"""Run every benchmark at the issue's sizes (``make bench``) and print a summary.

    python -m bench.run_all            # issue sizes (takes a while: ~30 minutes)
    python -m bench.run_all --quick    # small sizes, about a minute

Benchmarks print figures and ratios to a baseline measured in the same run; they
never fail on a number.
"""

from __future__ import annotations

import argparse
import time

from tests.pg_support import pg_url

from bench import (
    aggregation_throughput,
    engine_cpu,
    imports,
    job_queue,
    ofx_parse,
    scheduler_tick,
    transactions_list,
)
from bench._common import header, ratio, show


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes for a quick check")
    a = p.parse_args(argv)
    started = time.perf_counter()
    summary: list[tuple[str, object]] = []

    members = 500 if a.quick else 10_000
    agg = aggregation_throughput.run(members=members, concurrency=200, latency_ms=100)
    summary.append(
        (
            f"aggregation throughput ({members:,} members, c=200, 100 ms)",
            f"{agg.rate:.1f}/s vs ideal {agg.ideal:.1f}/s = {ratio(agg.rate, agg.ideal):.2f} "
            f"(target >= 0.9); verification {'OK' if agg.ok else 'MISMATCH'}",
        )
    )

    # Issue 3: the same on PostgreSQL (the test server) with 2 worker processes.
    pg = aggregation_throughput.run(
        members=members, concurrency=200, latency_ms=100, database_url=pg_url("postgres"), workers=2
    )
    summary.append(
        (
            f"aggregation throughput on PostgreSQL, 2 workers ({members:,} members)",
            f"{pg.rate:.1f}/s vs ideal {pg.ideal:.1f}/s = {ratio(pg.rate, pg.ideal):.2f} "
            f"(target >= 0.9); verification {'OK' if pg.ok else 'MISMATCH'}",
        )
    )

    n = 100 if a.quick else 500
    passes = engine_cpu.run(aggregations=n)
    base, repeat = passes[0], passes[-1]
    summary.append(
        (
            f"engine CPU per aggregation ({n} x 3 accounts, 30 txns)",
            f"{repeat.cpu_ms:.2f} ms vs no-op job {base.cpu_ms:.2f} ms "
            f"= {ratio(repeat.cpu_ms, base.cpu_ms):.1f}x",
        )
    )

    size = (100_000, 100, 5.0) if a.quick else (1_000_000, 1_000, 10.0)
    bare, uncached, cached = transactions_list.run(
        transactions=size[0], users=size[1], seconds=size[2]
    )
    summary.append(
        (
            f"GET /users/{{guid}}/transactions ({size[0]:,} rows)",
            f"bare {bare.rps:.0f} req/s; no cache {uncached.rps:.0f} req/s = "
            f"{ratio(uncached.rps, bare.rps):.2f}; cached {cached.rps:.0f} req/s = "
            f"{ratio(cached.rps, bare.rps):.2f} (target >= 0.5)",
        )
    )

    jobs, rounds = (5_000, 1) if a.quick else (20_000, 3)
    one, two = job_queue.run(jobs=jobs, repeat=rounds)
    summary.append(
        (
            f"job queue on PostgreSQL ({jobs:,} no-op jobs, best of {rounds})",
            f"{one.rate:,.0f} jobs/s (target >= 2,000); 2 processes {two.rate:,.0f} jobs/s "
            f"= {ratio(two.rate, one.rate):.2f}x (target >= 1.7; CPU ceiling "
            f"{ratio(job_queue.ceiling(two), one.rate):.2f}x); verification "
            f"{'OK' if one.ok and two.ok else 'FAILED'}",
        )
    )

    members = 100_000 if a.quick else 1_000_000
    tick = scheduler_tick.run(members)
    assert tick.tick is not None and tick.select is not None
    summary.append(
        (
            f"scheduler tick on PostgreSQL ({members:,} members, {tick.due:,} due)",
            f"{tick.tick.seconds:.2f} s = {tick.due / tick.tick.seconds:,.0f} due members/s; "
            f"bare SELECT of the due ids {tick.select.seconds:.3f} s "
            f"({ratio(tick.tick.seconds, tick.select.seconds):.0f}x); "
            f"verification {'OK' if tick.ok else 'FAILED'}",
        )
    )

    # Issue 17: OpenAgg's OFX codec against ofxtools and ofxparse (their own venv).
    ofx_size, repeats = (1_000, (5, 2)) if a.quick else (10_000, (10, 3))
    ofx = ofx_parse.run(transactions=ofx_size, repeat=repeats[0], peer_repeat=repeats[1])
    summary.append((f"OFX parse ({ofx_size:,} transactions, v1 SGML / v2 XML)", ofx.summary()))

    # Issue 18: importing statement files over HTTP, against the codec alone.
    import_size = 5_000 if a.quick else 100_000
    imported = imports.run(transactions=import_size)
    summary.append(
        (f"statement import ({import_size:,} transactions, OFX / CSV)", imported.summary())
    )

    header(f"summary ({time.perf_counter() - started:.0f}s)")
    show(summary)


if __name__ == "__main__":
    main()

"""Serving SimpleFIN: ``GET /simplefin/accounts`` for a token with 5 accounts and
``--transactions`` transactions in the window.

Set-up: a SQLite database with one user, one mxbank member, 5 accounts and the
transactions spread over them in the last 100 days (bulk Core inserts), and a claimed
access. A real ``openagg serve --no-worker`` subprocess serves it (with a rate limit
high enough never to refuse). This process asks, over a minimal HTTP/1.1 client:

- repeated: the same request (``start-date`` 100 days back, ``pending=1``) from
  ``--in-flight`` keep-alive connections for ``--seconds``;
- cold: ``--cold`` requests one after the other, each with another ``start-date``
  (one second earlier each time), so nothing a cache could keep would answer them.

Baseline, in the same run: ``bench.bare_app`` (FastAPI + uvicorn) serving the captured
response from memory, loaded like the repeated pass. Printed: requests/s, p50/p99,
the server's CPU per request. Targets: repeated >= 0.5 x bare; cold p99 < 50 ms.

    python -m bench.simplefin_serve                        # 10,000 transactions
    python -m bench.simplefin_serve --transactions 2000 --seconds 3 --cold 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
from typing import cast

import httpx
from sqlalchemy import Table, insert

from bench._common import (
    bench_settings,
    bulk_members,
    bulk_users,
    cpu_seconds,
    done,
    free_port,
    header,
    institution,
    percentile,
    ratio,
    serve_api,
    show,
    spawn,
    step,
    stop,
    subprocess_env,
    tail,
    temp_dir,
    wait_healthy,
)
from bench.transactions_list import Load, _Connection, _transactions
from openagg.db.models import Account, User
from openagg.domain.ids import new_guid
from openagg.runtime import build_runtime
from openagg.services import simplefin
from openagg.services.admin import seed_institutions
from openagg.services.clients import create_client
from openagg.settings import Settings

ACCOUNT_TYPES = ("CHECKING", "SAVINGS", "CREDIT_CARD", "LOAN", "INVESTMENT")
WINDOW_DAYS = 100


async def _access(settings: Settings) -> tuple[int, str, str]:
    """One user with one member and 5 accounts, and a claimed access: (the client's
    key, the access's user name and password)."""
    rt = build_runtime(settings)
    try:
        await seed_institutions(rt)
        new = await create_client(rt, "bench", background_enabled=False)
        [user_id] = await bulk_users(rt, new.client, 1)
        [member_id] = await bulk_members(
            rt, new.client, [user_id], await institution(rt, "mxbank"), {"LOGIN": "mxuser"}
        )
        now = rt.now()
        rows = [
            {
                "guid": new_guid("ACT"),
                "client_id": new.client.id,
                "user_id": user_id,
                "member_id": member_id,
                "external_id": f"A{n}",
                "name": kind.title(),
                "type": kind,
                "currency_code": "USD",
                "balance_cents": 123_456,
                "details": {},
                "is_closed": False,
                "created_at": now,
                "updated_at": now,
            }
            for n, kind in enumerate(ACCOUNT_TYPES)
        ]
        async with rt.db.write() as s:
            await s.execute(insert(cast(Table, Account.__table__)), rows)
            user = await s.get(User, user_id)
        assert user is not None
        token = await simplefin.create_token(rt, new.client, user.guid, created_by="API")
        username, password = await simplefin.claim(rt, token.claim_code)
        return new.client.id, username, password
    finally:
        await rt.db.dispose()


async def _repeated(
    name: str,
    url: str,
    headers: dict[str, str],
    path: str,
    in_flight: int,
    seconds: float,
    pid: int,
) -> Load:
    """``in_flight`` connections, each asking ``path`` again as soon as it has the answer."""
    u = httpx.URL(url)
    connections = [_Connection(u.host, u.port or 80, headers) for _ in range(in_flight)]
    latencies: list[float] = []
    errors = 0

    async def loop(conn: _Connection, until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            status, _body = await conn.get(path)
            if status == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    try:
        await asyncio.gather(*(loop(c, time.perf_counter() + 1.0) for c in connections))
        latencies.clear()
        before, cpu, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
        await asyncio.gather(*(loop(c, t0 + seconds) for c in connections))
        elapsed, cpu, after = time.perf_counter() - t0, time.process_time() - cpu, cpu_seconds(pid)
    finally:
        for c in connections:
            c.close()
    server = after - before if after is not None and before is not None else None
    return Load(name, len(latencies), errors, elapsed, latencies, cpu, server)


async def _cold(url: str, headers: dict[str, str], start: int, count: int, pid: int) -> Load:
    u = httpx.URL(url)
    conn = _Connection(u.host, u.port or 80, headers)
    latencies: list[float] = []
    errors = 0
    try:
        await conn.get("/simplefin/info")
        before, cpu, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
        for i in range(count):
            t1 = time.perf_counter()
            # start - 0 is the repeated pass's window, which the list cache holds.
            status, _ = await conn.get(f"/simplefin/accounts?start-date={start - i - 1}&pending=1")
            latencies.append(time.perf_counter() - t1)
            errors += status != 200
        elapsed, cpu, after = time.perf_counter() - t0, time.process_time() - cpu, cpu_seconds(pid)
    finally:
        conn.close()
    server = after - before if after is not None and before is not None else None
    return Load(
        "openagg, cold (new start-date each)", count, errors, elapsed, latencies, cpu, server
    )


def run(
    transactions: int = 10_000,
    in_flight: int = 4,
    seconds: float = 10.0,
    cold: int = 100,
    *,
    keep: bool = False,
) -> tuple[Load, Load, Load]:
    header(
        f"SimpleFIN /accounts: 5 accounts, {transactions:,} transactions in the window, "
        f"{in_flight} in flight for {seconds:.0f}s, {cold} cold requests"
    )
    with temp_dir("simplefin", keep) as tmp:
        settings = bench_settings(tmp)
        t = step("dataset")
        client_pk, username, password = asyncio.run(_access(settings))
        _transactions(tmp / "openagg.db", client_pk, transactions)
        done(t)
        start = int(time.time()) - WINDOW_DAYS * 86400 - 86400
        path = f"/simplefin/accounts?start-date={start}&pending=1"
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
        url, server, log = serve_api(tmp, OPENAGG_SIMPLEFIN_REQUESTS_PER_DAY=str(10**9))
        bare = None
        try:
            r = httpx.get(url + path, headers=headers, timeout=60)
            r.raise_for_status()
            served = sum(len(a["transactions"]) for a in r.json()["accounts"])
            assert served == transactions, (served, transactions)
            body_path = tmp / "captured.json"
            body_path.write_bytes(r.content)

            bare_url = f"http://127.0.0.1:{(bare_port := free_port())}"
            bare_args = [sys.executable, "-m", "bench.bare_app", "--body", str(body_path)]
            bare = spawn(
                [*bare_args, "--port", str(bare_port)], subprocess_env(tmp), tmp / "bare.log"
            )
            wait_healthy(bare_url, bare)
            t = step("bare")
            base = asyncio.run(
                _repeated("bare FastAPI+uvicorn", bare_url, {}, path, in_flight, seconds, bare.pid)
            )
            done(t)
            stop(bare)
            bare = None
            t = step("openagg, repeated")
            repeated = asyncio.run(
                _repeated("openagg, repeated", url, headers, path, in_flight, seconds, server.pid)
            )
            done(t)
            t = step("openagg, cold")
            cold_load = asyncio.run(_cold(url, headers, start, cold, server.pid))
            done(t)
        except Exception:
            print(tail(log))
            raise
        finally:
            if bare is not None:
                stop(bare)
            stop(server)
    show(
        [
            ("response", f"{len(r.content):,} bytes, {transactions:,} transactions"),
            base.row(),
            repeated.row(),
            cold_load.row(),
            (
                "targets",
                f"repeated/bare {ratio(repeated.rps, base.rps):.2f} (>= 0.5); cold p99 "
                f"{percentile(cold_load.latencies, 99) * 1000:.1f} ms (< 50 ms)",
            ),
        ]
    )
    return base, repeated, cold_load


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--transactions", type=int, default=10_000)
    p.add_argument("--in-flight", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--cold", type=int, default=100, help="cold requests, one after the other")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    a = p.parse_args(argv)
    run(a.transactions, a.in_flight, a.seconds, a.cold, keep=a.keep)


if __name__ == "__main__":
    main()

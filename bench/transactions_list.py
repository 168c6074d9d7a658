"""Listing transactions over HTTP on a big database.

Set-up: a SQLite database holding ``--transactions`` transactions (bulk Core
inserts) spread over ``--users`` users x 1 member x 2 accounts, dated within the
last 100 days (inside MX's default 120-day window). A real ``openagg serve
--no-worker`` subprocess serves it; this process loads
``GET /users/{guid}/transactions?records_per_page=100`` over random users with
``--in-flight`` keep-alive connections for ``--seconds``, through a minimal
HTTP/1.1 client (``--client httpx`` to compare: httpx spends ~4 ms of CPU per
~125 KB response and stalls with many in flight, so it measures itself).

Baseline, in the same run: ``bench.bare_app`` (FastAPI + uvicorn, same response
class) serving a response captured from the OpenAgg server, from memory, loaded
identically. Target: OpenAgg requests/s >= 0.5 x bare.

    python -m bench.transactions_list                                   # 1,000,000 rows
    python -m bench.transactions_list --transactions 100000 --users 100 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import Table, create_engine, event, insert, text

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
from openagg.db.models import Account, Transaction
from openagg.domain.ids import new_guid, stable_guid
from openagg.runtime import build_runtime
from openagg.services.admin import seed_institutions
from openagg.services.clients import create_client
from openagg.settings import Settings

ACCEPT = "application/vnd.mx.api.v1+json"
PATH = "/users/{guid}/transactions?records_per_page=100"
_MERCHANTS = [
    ("Whole Foods Market", "Groceries", "Food & Dining", 5411),
    ("Shell", "Gas & Fuel", "Auto & Transport", 5541),
    ("Starbucks", "Coffee Shops", "Food & Dining", 5814),
    ("Amazon", "Shopping", "Shopping", 5942),
    ("Netflix", "Movies & DVDs", "Entertainment", 4899),
    ("Comcast", "Internet", "Bills & Utilities", 4899),
    ("Chipotle", "Fast Food", "Food & Dining", 5814),
    ("Delta Air Lines", "Air Travel", "Travel", 4511),
]


@dataclass
class Dataset:
    client_id: str
    api_key: str
    user_guids: list[str]
    load_s: float


@dataclass
class Load:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    client_cpu_s: float
    server_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def _server(self) -> str:
        if self.server_cpu_s is None:
            return "?"
        per = self.server_cpu_s / max(self.requests, 1) * 1000
        return f"{self.server_cpu_s / self.seconds:.0%} = {per:.1f} ms/request"

    def row(self) -> tuple[str, str]:
        p50 = percentile(self.latencies, 50) * 1000
        p99 = percentile(self.latencies, 99) * 1000
        return (
            self.name,
            f"{self.rps:7.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
            f"({self.requests:,} requests, {self.errors} errors, "
            f"server CPU {self._server()}, load-generator CPU "
            f"{self.client_cpu_s / self.seconds:.0%})",
        )


# --- the dataset -------------------------------------------------------------------


async def _people(settings: Settings, users: int) -> tuple[str, str, list[tuple[int, int]]]:
    """Client, users, one member each and two accounts per member (Core inserts)."""
    rt = build_runtime(settings)
    try:
        await seed_institutions(rt)
        new = await create_client(rt, "bench", background_enabled=False)
        mxbank = await institution(rt, "mxbank")
        user_ids = await bulk_users(rt, new.client, users)
        member_ids = await bulk_members(
            rt, new.client, user_ids, mxbank, {"LOGIN": "mxuser", "PASSWORD": "x"}
        )
        now = rt.now()
        rows: list[dict[str, Any]] = []
        for uid, mid in zip(user_ids, member_ids, strict=True):
            for n, kind in enumerate(("CHECKING", "CREDIT_CARD")):
                rows.append(
                    {
                        "guid": new_guid("ACT"),
                        "client_id": new.client.id,
                        "user_id": uid,
                        "member_id": mid,
                        "external_id": f"{mid}-{n}",
                        "name": kind.title(),
                        "type": kind,
                        "currency_code": "USD",
                        "balance_cents": 123_456,
                        "details": {},
                        "is_closed": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        async with rt.db.write() as s:
            await s.execute(insert(cast(Table, Account.__table__)), rows)
        return new.client.client_id, new.api_key, list(zip(user_ids, member_ids, strict=True))
    finally:
        await rt.db.dispose()


def _transactions(path: Path, client_pk: int, total: int, batch: int = 50_000) -> None:
    """Bulk-insert ``total`` transactions with Core on a plain (sync) engine, secondary
    indexes dropped during the load and recreated after, in one transaction."""
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=OFF")
        dbapi_conn.execute("PRAGMA cache_size=-262144")

    table = cast(Table, Transaction.__table__)
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    merchants = [
        (
            name,
            cat,
            stable_guid("CAT", cat),
            top,
            stable_guid("CAT", top),
            stable_guid("MCH", name),
            mcc,
        )
        for name, cat, top, mcc in _MERCHANTS
    ]
    with engine.begin() as conn:
        accounts = conn.execute(
            text("SELECT id, user_id, member_id FROM accounts ORDER BY id")
        ).all()
        indexes = conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'transactions' AND sql IS NOT NULL"
            )
        ).all()
        for name, _sql in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        rng = random.Random(42)
        rows: list[dict[str, Any]] = []
        for i in range(total):
            acct_id, user_id, member_id = accounts[i % len(accounts)]
            name, cat, cat_guid, top, top_guid, mch_guid, mcc = merchants[i % len(merchants)]
            day = today - dt.timedelta(days=(i // len(accounts)) % 100)
            at = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)
            rows.append(
                {
                    "guid": f"TRN-{uuid.uuid4()}",
                    "client_id": client_pk,
                    "user_id": user_id,
                    "member_id": member_id,
                    "account_id": acct_id,
                    "external_id": f"T{i}",
                    "amount_cents": rng.randint(100, 25_000),
                    "type": "DEBIT",
                    "status": "POSTED",
                    "date": day,
                    "transacted_at": at,
                    "posted_at": at,
                    "description": name,
                    "original_description": f"POS {name.upper()} #{i % 9999:04d}",
                    "memo": None,
                    "category": cat,
                    "category_guid": cat_guid,
                    "top_level_category": top,
                    "top_level_category_guid": top_guid,
                    "merchant_guid": mch_guid,
                    "merchant_category_code": mcc,
                    "check_number_string": None,
                    "currency_code": "USD",
                    "flags": {"is_expense": True},
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(rows) == batch:
                conn.execute(insert(table), rows)
                rows.clear()
        if rows:
            conn.execute(insert(table), rows)
        for _name, sql in indexes:
            conn.execute(text(sql))
        conn.execute(text("ANALYZE"))
    engine.dispose()


def build(settings: Settings, tmp: Path, users: int, transactions: int) -> Dataset:
    started = time.perf_counter()
    t = step(f"{users:,} users, members and {2 * users:,} accounts")
    client_id, api_key, _ids = asyncio.run(_people(settings, users))
    done(t)
    t = step(f"{transactions:,} transactions (bulk Core inserts)")
    with create_engine(f"sqlite:///{tmp}/openagg.db").connect() as conn:
        client_pk = conn.execute(text("SELECT id FROM clients")).scalar_one()
        guids = list(conn.execute(text("SELECT guid FROM users ORDER BY id")).scalars())
    _transactions(tmp / "openagg.db", client_pk, transactions)
    done(t)
    return Dataset(client_id, api_key, guids, time.perf_counter() - started)


# --- load ---------------------------------------------------------------------------


class _Connection:
    """A minimal HTTP/1.1 keep-alive client for the load: one request at a time,
    the body read by its Content-Length. A full client (httpx) spends ~4 ms of CPU
    reading each ~125 KB response and, with 32 of them in flight, stalls for
    hundreds of ms: it would measure itself, not the servers."""

    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": host, **headers}.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=1 << 20
            )
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(
            int(v)
            for k, _, v in (line.partition(":") for line in lines[1:])
            if k.strip().lower() == "content-length"
        )
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _Httpx:
    """The same load through httpx (``--client httpx``), to compare."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def get(self, path: str) -> tuple[int, bytes]:
        r = await self.client.get(path)
        return r.status_code, await r.aread()

    def close(self) -> None:
        pass


async def _load(
    name: str,
    base_url: str,
    headers: dict[str, str],
    user_guids: list[str],
    in_flight: int,
    seconds: float,
    warmup: float,
    pid: int,
    expect_bytes: int,
    client: str = "raw",
    *,
    prewarm: bool = False,
) -> Load:
    """``in_flight`` connections, each sending the next request as soon as the last
    answer is read, over random users. A 200 whose body is not about the size of
    the captured one counts as an error too. ``prewarm``: first ask for every user
    once, unmeasured."""
    url = httpx.URL(base_url)
    host, port = url.host, url.port or 80
    rng = random.Random(7)
    latencies: list[float] = []
    errors = 0
    shared = httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=60,
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
    )
    connections: list[_Connection | _Httpx] = [
        _Connection(host, port, headers) if client == "raw" else _Httpx(shared)
        for _ in range(in_flight)
    ]

    async def loop(conn: _Connection | _Httpx, until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            path = PATH.format(guid=rng.choice(user_guids))
            t0 = time.perf_counter()
            status, body = await conn.get(path)
            latency = time.perf_counter() - t0
            if status != 200 or abs(len(body) - expect_bytes) > expect_bytes // 5:
                errors += 1
            else:
                latencies.append(latency)

    async def each_once(conn: _Connection | _Httpx, guids: list[str]) -> None:
        for guid in guids:
            await conn.get(PATH.format(guid=guid))

    try:
        if prewarm:
            await asyncio.gather(
                *(each_once(c, user_guids[n::in_flight]) for n, c in enumerate(connections))
            )
        end = time.perf_counter() + warmup
        await asyncio.gather(*(loop(c, end) for c in connections))
        latencies.clear()
        errors = 0
        server_cpu = cpu_seconds(pid)
        cpu, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(loop(c, t0 + seconds) for c in connections))
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu
        after = cpu_seconds(pid)
    finally:
        for c in connections:
            c.close()
        await shared.aclose()
    server = after - server_cpu if after is not None and server_cpu is not None else None
    return Load(name, len(latencies), errors, elapsed, latencies, cpu, server)


def _capture(url: str, headers: dict[str, str], guid: str) -> tuple[bytes, dict[str, Any]]:
    r = httpx.get(url + PATH.format(guid=guid), headers=headers, timeout=60)
    r.raise_for_status()
    body = r.json()
    return r.content, body


def run(
    transactions: int = 1_000_000,
    users: int = 1_000,
    in_flight: int = 32,
    seconds: float = 10.0,
    *,
    keep: bool = False,
    client: str = "raw",
    list_cache_mb: int = 256,
) -> tuple[Load, Load, Load]:
    """The bare baseline, then OpenAgg with its list cache off (every request reads
    the database), then with a cache holding every user's first page (each user
    asked once before the load): the figures an app sees for a list it asks for the
    first time after a change, and again."""
    header(
        f"transactions list: {transactions:,} transactions, {users:,} users, "
        f"{in_flight} requests in flight for {seconds:.0f}s, records_per_page=100, "
        f"{client} client"
    )
    warm = min(2.0, seconds / 5)
    with temp_dir("transactions", keep) as tmp:
        settings = bench_settings(tmp)
        data = build(settings, tmp, users, transactions)
        token = base64.b64encode(f"{data.client_id}:{data.api_key}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Accept": ACCEPT}

        def load(name: str, url: str, pid: int, *, prewarm: bool = False) -> Load:
            t = step(f"loading {name}")
            out = asyncio.run(
                _load(
                    name,
                    url,
                    headers,
                    data.user_guids,
                    in_flight,
                    seconds,
                    warm,
                    pid,
                    len(raw),
                    client,
                    prewarm=prewarm,
                )
            )
            done(t)
            return out

        url, server, log = serve_api(tmp, "server-uncached", OPENAGG_LIST_CACHE_MB="0")
        bare = None
        try:
            raw, body = _capture(url, headers, data.user_guids[0])
            total = body["pagination"]["total_entries"]
            items = len(body["transactions"])
            body_path = tmp / "captured.json"
            body_path.write_bytes(raw)

            bare_port = free_port()
            bare_url = f"http://127.0.0.1:{bare_port}"
            bare_args = [sys.executable, "-m", "bench.bare_app", "--body", str(body_path)]
            bare = spawn(
                [*bare_args, "--port", str(bare_port)], subprocess_env(tmp), tmp / "bare.log"
            )
            wait_healthy(bare_url, bare)
            base = load("bare FastAPI+uvicorn", bare_url, bare.pid)
            stop(bare)
            bare = None
            uncached = load("openagg, no cache", url, server.pid)
        except Exception:
            print(tail(log))
            raise
        finally:
            if bare is not None:
                stop(bare)
            stop(server)
        url, server, log = serve_api(tmp, "server-cached", OPENAGG_LIST_CACHE_MB=str(list_cache_mb))
        try:
            cached = load(f"openagg, cache {list_cache_mb} MB", url, server.pid, prewarm=True)
        except Exception:
            print(tail(log))
            raise
        finally:
            stop(server)

    per_user = transactions // users
    show(
        [
            ("dataset", f"built in {data.load_s:.1f}s; {per_user:,} transactions per user"),
            (
                "response",
                f"{len(raw):,} bytes, {items} transactions, total_entries {total:,}",
            ),
            base.row(),
            uncached.row(),
            cached.row(),
            (
                "ratio openagg/bare",
                f"no cache {ratio(uncached.rps, base.rps):.2f}, cached "
                f"{ratio(cached.rps, base.rps):.2f}  (target >= 0.5)",
            ),
        ]
    )
    return base, uncached, cached


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--transactions", type=int, default=1_000_000)
    p.add_argument("--users", type=int, default=1_000)
    p.add_argument("--in-flight", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="the load generator: a minimal HTTP/1.1 client (default), or httpx",
    )
    p.add_argument(
        "--list-cache-mb",
        type=int,
        default=256,
        help="the cached pass's OPENAGG_LIST_CACHE_MB (256: every user's first page fits)",
    )
    a = p.parse_args(argv)
    run(
        a.transactions,
        a.users,
        a.in_flight,
        a.seconds,
        keep=a.keep,
        client=a.client,
        list_cache_mb=a.list_cache_mb,
    )


if __name__ == "__main__":
    main()

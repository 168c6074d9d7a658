"""Importing statement files over HTTP: ``POST /users/{guid}/imports`` into SQLite.

The benchmark writes one checking account's ``--transactions`` transactions over ten
years (synthetic, oldest 2016-01-01, newest 2025-12-31; the payees, memos and
amounts of ``bench.ofx_parse``: card purchases, bills, checks, payroll, transfers,
fees; about 2% of them a second identical purchase the same day, as two coffees)
twice, the same transactions in both:

- an OFX 1.02 file (SGML header, leaves unclosed, CRLF lines, a FITID each, times
  with ``[-5:EST]``, a ledger and an available balance), as a bank's "download to
  Quicken" gives it;
- a CSV file ``Date,Description,Amount,Balance`` (US dates, signed amounts, a
  running balance, newest first), as a bank's "download to Excel" gives it: the
  reader detects the delimiter, header, date format and columns itself.

A real ``openagg serve --no-worker`` subprocess on a temp SQLite database (with
``OPENAGG_IMPORT_MAX_BYTES`` raised above the files' size) takes each file as the raw
body of a request, twice, each into a user of its own: the first import adds every
transaction, the second finds every one unchanged. The times are the client's, from
sending the request to reading the answer (upload included, over loopback), on a
server warmed up by a 100-transaction import of each format (unmeasured).

Baseline, in the same run: the codec alone, ``read_statement`` on the same bytes in
this process (best of ``--repeat``; the heap frozen and the collector tuned as
``serve`` does): how much the import adds on top of parsing. **Targets: the whole
import >= 50,000 transactions/s; the re-import at least twice as fast as the first.**
Checked (and flagged loudly when wrong): the answers' counts (added == N the first
time, unchanged == N the second, the same member both times) and the database,
which must hold exactly N transactions for the member, summing to what was written.

    python -m bench.imports                          # 100,000 transactions per file
    python -m bench.imports --transactions 5000      # quick
    python -m bench.imports --transactions 5000 --profile       # + where the time goes
    python -m bench.imports --transactions 5000 --profile CSV   # ... on the CSV file

``--profile`` then runs the import service in this process on the OFX (or CSV) file,
for a fresh user, twice (first import, re-import): timed bare with the parse apart and
the SQL statements counted, then under cProfile (top ``--top`` 15 by cumulative time,
and by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import csv
import datetime as dt
import gc
import html
import io
import pstats
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar
from unittest import mock

import httpx
from sqlalchemy import event, select

from bench._common import (
    bench_settings,
    cpu_seconds,
    done,
    header,
    ratio,
    serve_api,
    show,
    step,
    stop,
    tail,
    temp_dir,
)
from bench.ofx_parse import _KINDS, V1_HEADER
from openagg.cli import GC_THRESHOLDS
from openagg.db.models import Client
from openagg.runtime import build_runtime
from openagg.services import imports as import_service
from openagg.services.admin import seed_institutions
from openagg.services.clients import create_client
from openagg.services.inputs import UserFields
from openagg.services.users import create_user
from openagg.settings import Settings
from openagg.statements.read import read_statement

ACCEPT = "application/vnd.mx.api.v1+json"
TARGET_RATE = 50_000.0  # transactions/s, the whole import
TARGET_SPEEDUP = 2.0  # the re-import against the first
T = TypeVar("T")

# --- the statements ------------------------------------------------------------------

EST = dt.timezone(dt.timedelta(hours=-5), "EST")
_FIRST = dt.datetime(2016, 1, 1, tzinfo=EST)
_LAST = dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=EST)
_OPENING = 842_137  # cents, the balance before the first transaction
_REPEAT = 0.02  # share of transactions that repeat the one before, the same day
_FLOOR = 1_500_00  # cents: below this balance, the next transaction is the payroll
_PAYROLL = next(k for k in _KINDS if k[0] == "DIRECTDEP")


@dataclass(frozen=True, slots=True)
class _Trn:
    posted: dt.datetime
    kind: str  # OFX TRNTYPE
    cents: int  # signed: negative is money out
    name: str  # as OFX writes it (&amp; escaped)
    memo: str
    fitid: str
    check: str | None


@dataclass
class Files:
    count: int
    total_cents: int  # sum of the signed amounts
    repeats: int  # transactions identical to the one before, the same day
    ofx: bytes
    csv: bytes


def _transactions(n: int, seed: int = 18) -> tuple[list[_Trn], int]:
    """``n`` transactions over ten years, oldest first; some repeat the one before."""
    rng = random.Random(seed)
    weights = [k[1] for k in _KINDS]
    span = int((_LAST - _FIRST).total_seconds())
    moments = sorted(rng.randrange(span) for _ in range(n))
    out: list[_Trn] = []
    check = 1041
    repeats = 0
    balance = _OPENING
    for i, offset in enumerate(moments):
        posted = _FIRST + dt.timedelta(seconds=offset)
        fitid = f"{posted:%Y%m%d}{i:07d}{rng.randrange(10**6):06d}"
        last = out[-1] if out else None
        if last is not None and last.check is None and rng.random() < _REPEAT:
            # A second identical purchase that day: its own FITID, nothing else differs.
            out.append(_Trn(last.posted, last.kind, last.cents, last.name, last.memo, fitid, None))
            repeats += 1
            balance += last.cents
            continue
        # Spending outweighs income in the mix: a low balance brings the payroll in.
        pick = _PAYROLL if balance < _FLOOR else rng.choices(_KINDS, weights)[0]
        kind, _, sign, (low, high), names, memos = pick
        number = None
        if kind == "CHECK":
            check += rng.randint(1, 3)
            number = str(check)
            name = f"CHECK {number}"
        else:
            name = rng.choice(names)
        cents = sign * rng.randint(low, high)
        balance += cents
        out.append(_Trn(posted, kind, cents, name, rng.choice(memos), fitid, number))
    return out, repeats


def _ofx_time(t: dt.datetime) -> str:
    return t.strftime("%Y%m%d%H%M%S") + ".000[-5:EST]"


def _money(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def ofx_file(trns: list[_Trn]) -> bytes:
    """An OFX 1.02 bank statement (SGML, leaves unclosed, CRLF) of one checking account."""
    total = sum(t.cents for t in trns)
    now = _ofx_time(_LAST + dt.timedelta(hours=9))
    head = [
        "<OFX>",
        "<SIGNONMSGSRSV1>",
        "<SONRS>",
        "<STATUS>",
        "<CODE>0",
        "<SEVERITY>INFO",
        "</STATUS>",
        f"<DTSERVER>{now}",
        "<LANGUAGE>ENG",
        "<FI>",
        "<ORG>OPENAGG BENCH BANK",
        "<FID>10898",
        "</FI>",
        "</SONRS>",
        "</SIGNONMSGSRSV1>",
        "<BANKMSGSRSV1>",
        "<STMTTRNRS>",
        "<TRNUID>1001",
        "<STATUS>",
        "<CODE>0",
        "<SEVERITY>INFO",
        "</STATUS>",
        "<STMTRS>",
        "<CURDEF>USD",
        "<BANKACCTFROM>",
        "<BANKID>123456780",
        "<ACCTID>000012345678",
        "<ACCTTYPE>CHECKING",
        "</BANKACCTFROM>",
        "<BANKTRANLIST>",
        f"<DTSTART>{_ofx_time(_FIRST)}",
        f"<DTEND>{_ofx_time(_LAST)}",
    ]
    body: list[str] = []
    for t in trns:
        body += ["<STMTTRN>", f"<TRNTYPE>{t.kind}", f"<DTPOSTED>{_ofx_time(t.posted)}"]
        body += [f"<TRNAMT>{_money(t.cents)}", f"<FITID>{t.fitid}"]
        if t.check:
            body.append(f"<CHECKNUM>{t.check}")
        body.append(f"<NAME>{t.name}")
        if t.memo:
            body.append(f"<MEMO>{t.memo}")
        body.append("</STMTTRN>")
    tail_ = [
        "</BANKTRANLIST>",
        "<LEDGERBAL>",
        f"<BALAMT>{_money(_OPENING + total)}",
        f"<DTASOF>{now}",
        "</LEDGERBAL>",
        "<AVAILBAL>",
        f"<BALAMT>{_money(_OPENING + total - 125_00)}",
        f"<DTASOF>{now}",
        "</AVAILBAL>",
        "</STMTRS>",
        "</STMTTRNRS>",
        "</BANKMSGSRSV1>",
        "</OFX>",
    ]
    return (V1_HEADER + "\r\n".join(head + body + tail_) + "\r\n").encode("ascii")


def csv_file(trns: list[_Trn]) -> bytes:
    """``Date,Description,Amount,Balance``, newest first, the balance after each row."""
    buf = io.StringIO(newline="")
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(["Date", "Description", "Amount", "Balance"])
    balance = _OPENING
    rows = []
    for t in trns:
        balance += t.cents
        rows.append(
            [f"{t.posted:%m/%d/%Y}", html.unescape(t.name), _money(t.cents), _money(balance)]
        )
    out.writerows(reversed(rows))
    return buf.getvalue().encode("utf-8")


def statement_files(n: int) -> Files:
    trns, repeats = _transactions(n)
    return Files(len(trns), sum(t.cents for t in trns), repeats, ofx_file(trns), csv_file(trns))


# --- measuring -----------------------------------------------------------------------


@dataclass
class Import:
    """One POST: the client's wall time, the server's CPU, and what it answered."""

    seconds: float
    server_cpu: float | None
    status: int
    body: dict[str, Any]

    def count(self, key: str) -> int | None:
        value = self.body.get(key)
        return value if isinstance(value, int) else None


@dataclass
class FileResult:
    name: str  # "OFX" or "CSV"
    size: int
    count: int
    total_cents: int
    parse: list[float] = field(default_factory=list)  # wall seconds of each parse
    parse_cpu: list[float] = field(default_factory=list)
    parsed: int | None = None  # entries the codec read
    first: Import | None = None
    again: Import | None = None
    stored: tuple[int, int] | None = None  # (transactions, signed cents) of the member
    problems: list[str] = field(default_factory=list)

    @property
    def parse_s(self) -> float:
        return min(self.parse) if self.parse else float("nan")

    def rate(self, imp: Import | None) -> float:
        return self.count / imp.seconds if imp and imp.seconds else 0.0

    @property
    def speedup(self) -> float:
        if self.first is None or self.again is None:
            return float("nan")
        return ratio(self.first.seconds, self.again.seconds)

    def verify(self) -> None:
        """What the answers and the database say against what was written."""
        n = self.count
        if self.parsed != n:
            self.problems.append(f"the codec read {self.parsed} transactions, the file holds {n:,}")
        for label, imp, want in (
            ("first import", self.first, {"added": n, "updated": 0, "unchanged": 0}),
            ("re-import", self.again, {"added": 0, "updated": 0, "unchanged": n}),
        ):
            if imp is None:
                continue
            if imp.status != 201:
                self.problems.append(f"{label} answered {imp.status}: {imp.body}")
                continue
            got = {k: imp.count(f"transactions_{k}") for k in want}
            if got != want:
                self.problems.append(f"{label} counted {got}, expected {want}")
        if self.first and self.again and self.first.status == self.again.status == 201:
            a, b = self.first.body.get("member_guid"), self.again.body.get("member_guid")
            if a != b:
                self.problems.append(f"the re-import went into member {b}, the first into {a}")
        if self.stored is not None and self.stored != (n, self.total_cents):
            self.problems.append(
                f"the database holds {self.stored[0]:,} transactions summing to "
                f"{_money(self.stored[1])} for the member; written: {n:,} summing to "
                f"{_money(self.total_cents)}"
            )

    def summary(self) -> str:
        if self.first is None or self.again is None:
            return f"{self.name} not measured"
        return (
            f"{self.name} {self.rate(self.first):,.0f} txn/s "
            f"({ratio(self.first.seconds, self.parse_s):.1f}x parse-only), "
            f"re-import {self.rate(self.again):,.0f} txn/s = {self.speedup:.2f}x faster"
        )


@dataclass
class Result:
    files: list[FileResult]

    @property
    def ok(self) -> bool:
        return all(f.first and f.again and not f.problems for f in self.files)

    def summary(self) -> str:
        parts = [f.summary() for f in self.files]
        return (
            "; ".join(parts)
            + f" (targets >= {TARGET_RATE:,.0f} txn/s, re-import >= {TARGET_SPEEDUP:.0f}x); "
            + f"verification {'OK' if self.ok else 'MISMATCH'}"
        )


def _tuned_gc() -> Callable[[], None]:
    """This process's heap frozen and the collector tuned as ``serve`` does; returns
    the undo."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

    def undo() -> None:
        gc.unfreeze()
        gc.set_threshold(*before)

    return undo


def time_parse(f: FileResult, data: bytes, filename: str, repeat: int) -> None:
    """``read_statement`` on the bytes, as the service calls it (format detected)."""
    undo = _tuned_gc()
    try:
        for _ in range(repeat):
            statement = None  # the last run's objects are freed outside the timing
            gc.collect()
            started, cpu = time.perf_counter(), time.process_time()
            statement = read_statement(data, filename=filename)
            f.parse.append(time.perf_counter() - started)
            f.parse_cpu.append(time.process_time() - cpu)
            f.parsed = len(statement.entries)
    finally:
        undo()


def _last_month(n: int) -> bytes:
    """The OFX file of the statements' last 31 days (the same transactions)."""
    trns, _ = _transactions(n)
    since = trns[-1].posted - dt.timedelta(days=31)
    return ofx_file([t for t in trns if t.posted >= since])


def _month_row(into_history: Import, into_new: Import, n: int) -> tuple[str, str]:
    """A month's statement imported again into ten years of history reads that month
    of the account, not its history: about as fast as into an empty account."""
    unchanged = into_history.body.get("transactions_unchanged")
    added = into_new.body.get("transactions_added")
    return (
        "a month again",
        f"{unchanged} transactions into the OFX user's {n:,}: "
        f"{into_history.seconds * 1000:.0f} ms (HTTP {into_history.status}); the same file "
        f"into a new user: {into_new.seconds * 1000:.0f} ms ({added} added, HTTP "
        f"{into_new.status}); ratio {ratio(into_history.seconds, into_new.seconds):.2f}",
    )


def post(http: httpx.Client, user: str, data: bytes, filename: str, pid: int) -> Import:
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    r = http.post(
        f"/users/{user}/imports",
        content=data,
        params={"filename": filename},
        headers={"Content-Type": "application/octet-stream"},
    )
    seconds = time.perf_counter() - started
    after = cpu_seconds(pid)
    try:
        body = r.json()
    except ValueError:
        body = {"text": r.text[:500]}
    body = body.get("import", body) if isinstance(body, dict) else {"body": body}
    used = after - cpu if after is not None and cpu is not None else None
    return Import(seconds, used, r.status_code, body)


def stored(db: Path, member_guid: str) -> tuple[int, int]:
    """(transactions, sum of signed cents) the database holds for the member."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(CASE WHEN t.type = 'CREDIT' THEN t.amount_cents "
            "ELSE -t.amount_cents END), 0) FROM transactions t "
            "JOIN members m ON m.id = t.member_id WHERE m.guid = ?",
            (member_guid,),
        ).fetchone()
    conn.close()
    return int(row[0]), int(row[1])


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- set-up ---------------------------------------------------------------------------


async def _client(settings: Settings) -> tuple[str, str]:
    rt = build_runtime(settings)
    try:
        await seed_institutions(rt)
        new = await create_client(rt, "bench", background_enabled=False)
        return new.client.client_id, new.api_key
    finally:
        await rt.db.dispose()


def _new_user(http: httpx.Client) -> str:
    r = http.post("/users", json={"user": {}})
    r.raise_for_status()
    return str(r.json()["user"]["guid"])


# --- where the time goes (--profile) ----------------------------------------------------


async def _inline(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread`` run on the calling thread, so cProfile sees the parse."""
    return func(*args, **kwargs)


# What the cumulative view keeps: OpenAgg's code and its database libraries, not the
# event loop's and the benchmark's frames (which wrap everything and say nothing).
_OURS = r"openagg/|site-packages/(sqlalchemy|aiosqlite)/"


async def _profile(settings: Settings, data: bytes, filename: str, top: int) -> None:
    """The import service in-process on ``data`` (a fresh user): the first import and
    the re-import, each timed bare (the parse apart, the SQL statements counted), then
    each under cProfile. ``asyncio.to_thread`` runs the parse on this thread here, so
    the profile sees it; the SQL itself runs in aiosqlite's thread, which cProfile
    does not see: this thread waits for it in ``epoll.poll``."""
    rt = build_runtime(settings)
    parse_s: list[float] = []
    statements: Counter[str] = Counter()
    rows: Counter[str] = Counter()

    def timed_read(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return read_statement(*args, **kwargs)
        finally:
            parse_s.append(time.perf_counter() - started)

    def count(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        words = sql.split()
        kind = " ".join(words[:3] if words[0] in ("INSERT", "DELETE") else words[:1])
        if words[0] == "UPDATE":
            kind = " ".join(words[:2])
        statements[kind] += 1
        rows[kind] += len(params) if many else 1

    options = import_service.ImportOptions(filename=filename)
    shim = SimpleNamespace(to_thread=_inline)
    engine = rt.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    undo = _tuned_gc()
    try:
        async with rt.db.read() as s:
            client = (await s.scalars(select(Client).where(Client.name == "bench"))).one()
        with (
            mock.patch.object(import_service, "asyncio", shim),
            mock.patch.object(import_service, "read_statement", timed_read),
        ):
            for profiled in (False, True):
                user = await create_user(rt, client, UserFields())
                for label in ("first import", "re-import"):
                    parse_s.clear()
                    statements.clear()
                    rows.clear()
                    prof = cProfile.Profile() if profiled else None
                    gc.collect()
                    started, cpu = time.perf_counter(), time.process_time()
                    if prof:
                        prof.enable()
                    await import_service.import_file(rt, client, user.guid, data, options)
                    if prof:
                        prof.disable()
                    wall = time.perf_counter() - started
                    cpu = time.process_time() - cpu
                    if prof is None:
                        sql = ", ".join(
                            f"{kind} x {n:,}"
                            + (f" ({rows[kind]:,} rows)" if rows[kind] > n else "")
                            for kind, n in statements.most_common(4)
                        )
                        print(
                            f"  in-process {label}: {wall:.2f} s (CPU {cpu:.2f} s, both "
                            f"threads) = parse {parse_s[0]:.2f} s + the rest "
                            f"{wall - parse_s[0]:.2f} s; SQL statements: {sql}",
                            flush=True,
                        )
                        continue
                    print(
                        f"  cProfile of the {label} ({wall:.2f} s under the profiler); "
                        f"top {top} by cumulative time, OpenAgg's and the database "
                        "libraries' functions:",
                        flush=True,
                    )
                    _print_stats(prof, "cumulative", _OURS, top)
                    print(f"  ... and top {top} by own time, everything:", flush=True)
                    _print_stats(prof, "tottime", None, top)
    finally:
        undo()
        event.remove(engine, "before_cursor_execute", count)
        await rt.db.dispose()


def _print_stats(prof: cProfile.Profile, order: str, only: str | None, top: int) -> None:
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats(order)
    stats.print_stats(*((only,) if only else ()), top)
    text = buf.getvalue()
    calls = next((line.strip() for line in text.splitlines() if "function calls" in line), "")
    table = text[text.find("   ncalls") :].rstrip().splitlines()
    print("\n".join("  " + line for line in [f"   {calls}", *table]), flush=True)


# --- the run -------------------------------------------------------------------------


def _import_row(label: str, f: FileResult, imp: Import | None) -> tuple[str, str]:
    if imp is None:
        return (label, "not measured")
    cpu = "?"
    if imp.server_cpu is not None:
        cpu = f"{imp.server_cpu:.2f} s = {imp.server_cpu / f.count * 1e6:.0f} us/txn"
    counts = ", ".join(
        f"{k} {imp.count(f'transactions_{k}')}" for k in ("added", "updated", "unchanged")
    )
    return (
        label,
        f"{imp.seconds:7.2f} s  {f.rate(imp):9,.0f} txn/s  "
        f"(server CPU {cpu}; HTTP {imp.status}: {counts})",
    )


def _over(f: FileResult, imp: Import | None) -> str:
    """How many times the parse alone an import took: wall, and CPU."""
    if imp is None:
        return "?"
    cpu = ""
    if imp.server_cpu is not None and f.parse_cpu:
        cpu = f", CPU {ratio(imp.server_cpu, min(f.parse_cpu)):.1f}x"
    return f"{ratio(imp.seconds, f.parse_s):.1f}x{cpu}"


def _report(
    files: Files, results: list[FileResult], peak: float | None, *, profiling: bool
) -> None:
    n = files.count
    rows: list[tuple[str, object]] = [
        (
            "files",
            f"{n:,} transactions, 2016-2025, {files.repeats:,} identical to the one before "
            f"the same day; total {_money(files.total_cents)}",
        )
    ]
    for f in results:
        rows.append((f"{f.name}", f"{f.size:,} bytes"))
        rows.append(
            (
                "  parse-only",
                f"{f.parse_s:7.2f} s  {ratio(n, f.parse_s):9,.0f} txn/s  "
                f"(read_statement in-process, best of {len(f.parse)}; "
                f"CPU {min(f.parse_cpu, default=float('nan')):.2f} s; read {f.parsed} entries)",
            )
        )
        rows.append(_import_row("  first import", f, f.first))
        rows.append(_import_row("  re-import", f, f.again))
        if f.stored is not None:
            rows.append(
                (
                    "  database",
                    f"{f.stored[0]:,} transactions for the member, summing to "
                    f"{_money(f.stored[1])}",
                )
            )
        rate = f.rate(f.first)
        rows.append(
            (
                "  ratio",
                f"first import {rate:,.0f} txn/s = {ratio(rate, TARGET_RATE):.2f} of the "
                f"target {TARGET_RATE:,.0f}; re-import {f.speedup:.2f}x faster than the "
                f"first (target >= {TARGET_SPEEDUP:.0f}x)",
            )
        )
        rows.append(
            (
                "  over parse-only",
                f"first import {_over(f, f.first)}; re-import {_over(f, f.again)} "
                "(wall; the server's CPU over this process's CPU for the parse)",
            )
        )
        rows.append(("  verification", "OK" if not f.problems else "!! MISMATCH"))
    if peak is not None:
        rows.append(("server peak RSS", f"{peak:,.0f} MB"))
    show(rows)
    for f in results:
        for p in f.problems:
            print(f"  !! MISMATCH in {f.name}: {p}", flush=True)
    missed = any(f.rate(f.first) < TARGET_RATE or not f.speedup >= TARGET_SPEEDUP for f in results)
    if missed and not profiling:
        print("  (a target is missed: --profile shows where the import's time goes)")


def run(
    transactions: int = 100_000,
    repeat: int = 3,
    *,
    profile: str | None = None,
    top: int = 15,
    keep: bool = False,
) -> Result:
    header(
        f"statement import: {transactions:,}-transaction OFX and CSV files over HTTP "
        f"into SQLite, twice each; parse-only best of {repeat}"
    )
    t = step("writing the statements")
    files = statement_files(transactions)
    done(t)
    n = files.count
    results = [
        FileResult("OFX", len(files.ofx), n, files.total_cents),
        FileResult("CSV", len(files.csv), n, files.total_cents),
    ]
    payloads = {"OFX": (files.ofx, "statement.ofx"), "CSV": (files.csv, "statement.csv")}
    peak = None
    with temp_dir("imports", keep) as tmp:
        settings = bench_settings(tmp)
        client_id, api_key = asyncio.run(_client(settings))
        for f in results:
            t = step(f"{f.name}: parse-only")
            time_parse(f, *payloads[f.name], repeat)
            done(t)
        max_bytes = 2 * max(len(files.ofx), len(files.csv)) + (1 << 20)
        url, server, log = serve_api(tmp, OPENAGG_IMPORT_MAX_BYTES=str(max_bytes))
        token = base64.b64encode(f"{client_id}:{api_key}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Accept": ACCEPT}
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=1800) as http:
                t = step("warming the server up (a 100-transaction import of each format)")
                small = statement_files(100)
                for data, filename in ((small.ofx, "warm.ofx"), (small.csv, "warm.csv")):
                    warm = post(http, _new_user(http), data, filename, server.pid)
                    if warm.status != 201:
                        raise RuntimeError(
                            f"the warm-up import answered {warm.status}: {warm.body}"
                        )
                done(t)
                users: dict[str, str] = {}
                for f in results:
                    data, filename = payloads[f.name]
                    user = users[f.name] = _new_user(http)
                    t = step(f"{f.name}: first import")
                    f.first = post(http, user, data, filename, server.pid)
                    done(t)
                    t = step(f"{f.name}: re-import")
                    f.again = post(http, user, data, filename, server.pid)
                    done(t)
                    if f.first.status == 201 and isinstance(f.first.body.get("member_guid"), str):
                        f.stored = stored(tmp / "openagg.db", f.first.body["member_guid"])
                    f.verify()
                t = step("a month's file: into the OFX history, into a new user")
                month = _last_month(transactions)
                into_history = post(http, users["OFX"], month, "month.ofx", server.pid)
                into_new = post(http, _new_user(http), month, "month.ofx", server.pid)
                done(t)
            peak = _peak_rss_mb(server.pid)
        except Exception:
            print(tail(log))
            raise
        finally:
            stop(server)
        _report(files, results, peak, profiling=bool(profile))
        show([_month_row(into_history, into_new, n)])
        if profile:
            name = profile.upper()
            print(f"  where the time goes: the import service on the {name} file ({n:,})")
            asyncio.run(_profile(settings, *payloads[name], top))

    return Result(results)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--transactions", type=int, default=100_000, help="per file")
    p.add_argument("--repeat", type=int, default=3, help="parse-only: best of this many")
    p.add_argument(
        "--profile",
        nargs="?",
        const="OFX",
        choices=("OFX", "CSV", "ofx", "csv"),
        help="cProfile the import service in-process on the OFX (default) or CSV file",
    )
    p.add_argument("--top", type=int, default=15, help="--profile: functions shown")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    a = p.parse_args(argv)
    run(a.transactions, a.repeat, profile=a.profile, top=a.top, keep=a.keep)


if __name__ == "__main__":
    main()

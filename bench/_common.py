"""Shared set-up for the benchmarks: temp platforms, bulk rows, subprocesses, output."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from tests.support import wait_healthy

from openagg.db.migrate import upgrade
from openagg.db.models import Client, Institution, Member, User
from openagg.domain.ids import new_guid
from openagg.domain.policy import JobKind, Trigger
from openagg.domain.statuses import Status
from openagg.queue import enqueue
from openagg.runtime import Runtime
from openagg.services import vault
from openagg.services.member_state import schedule_background, set_status
from openagg.settings import Settings

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
OPENAGG = str(VENV_BIN / "openagg")
BATCH = 5_000

# The credentials every benchmark member logs in with (mxbank connects any password).
MXBANK_LOGIN = {"LOGIN": "mxuser", "PASSWORD": "benchmark"}


# --- temp platforms -------------------------------------------------------------


async def prepare_nothing(job_ids: list[int]) -> dict[int, int]:
    """``Runner.prepare`` for the benchmarks' no-op jobs, which read nothing."""
    return dict.fromkeys(job_ids, 0)


@contextlib.contextmanager
def temp_dir(name: str, keep: bool = False) -> Iterator[Path]:
    """A scratch directory for one benchmark's database, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"openagg-bench-{name}-"))
    try:
        yield path
    finally:
        if keep:
            print(f"(kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


def db_url(tmp: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp}/openagg.db"


def bench_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for a platform in ``tmp``; migrates the database (call outside a loop)."""
    values: dict[str, Any] = {
        "database_url": db_url(tmp),
        "data_dir": tmp / "data",
        "background_jitter_seconds": 0,
    }
    values.update(overrides)
    settings = Settings(**values)
    settings.ensure_data_dir()
    upgrade(settings.database_url)
    return settings


def subprocess_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``openagg`` subprocess sharing ``tmp``'s database and key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAGG_")}
    env.update(OPENAGG_DATABASE_URL=db_url(tmp), OPENAGG_DATA_DIR=str(tmp / "data"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


# --- bulk rows --------------------------------------------------------------------


async def _next_id(s: AsyncSession, table: Table) -> int:
    return int(await s.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1


def _chunks(
    rows: Sequence[dict[str, Any]], size: int = BATCH
) -> Iterator[Sequence[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


async def bulk_users(rt: Runtime, client: Client, count: int) -> list[int]:
    """Insert ``count`` users with Core; returns their ids."""
    now = rt.now()
    table = cast(Table, User.__table__)
    async with rt.db.write() as s:
        first = await _next_id(s, table)
        ids = list(range(first, first + count))
        rows = [
            {
                "id": uid,
                "guid": new_guid("USR"),
                "client_id": client.id,
                "external_id": f"bench-user-{uid}",
                "is_disabled": False,
                "created_at": now,
                "updated_at": now,
            }
            for uid in ids
        ]
        for chunk in _chunks(rows):
            await s.execute(insert(table), chunk)
    return ids


def member_row(
    rt: Runtime,
    *,
    member_id: int,
    client: Client,
    user_id: int,
    institution: Institution,
    credentials: dict[str, str],
    now: dt.datetime,
) -> dict[str, Any]:
    """A CREATED member as ``services.members.create_member`` would store it.

    ``credentials`` maps credential field names (LOGIN, PASSWORD) to values; they
    are sealed with the runtime's keyring exactly as the vault does.
    """
    m = Member(
        id=member_id,
        guid=new_guid("MBR"),
        client_id=client.id,
        user_id=user_id,
        institution_id=institution.id,
        name=institution.name,
        is_oauth=False,
        consecutive_credential_failures=0,
        is_authenticated=False,
        has_processed_accounts=False,
        has_processed_transactions=False,
        has_processed_account_numbers=False,
        created_at=now,
        updated_at=now,
    )
    by_name = {c["field_name"]: c["guid"] for c in institution.credentials}
    values = {by_name[name]: value for name, value in credentials.items() if name in by_name}
    if values:
        vault.seal_credentials(rt, m, values)
    schedule_background(rt, m, now)
    set_status(m, Status.CREATED, now)
    columns = ((p.columns[0].name, getattr(m, p.key)) for p in Member.__mapper__.column_attrs)
    return {name: value for name, value in columns if value is not None}


async def bulk_members(
    rt: Runtime,
    client: Client,
    user_ids: Sequence[int],
    institution: Institution,
    credentials: dict[str, str],
) -> list[int]:
    """One member per user id (as with ``skip_aggregation``: no job); returns ids."""
    now = rt.now()
    table = cast(Table, Member.__table__)
    async with rt.db.write() as s:
        first = await _next_id(s, table)
        rows = [
            member_row(
                rt,
                member_id=first + i,
                client=client,
                user_id=uid,
                institution=institution,
                credentials=credentials,
                now=now,
            )
            for i, uid in enumerate(user_ids)
        ]
        for chunk in _chunks(rows):
            await s.execute(insert(table), chunk)
    return [r["id"] for r in rows]


async def institution(rt: Runtime, code: str) -> Institution:
    async with rt.db.read() as s:
        inst = await s.scalar(select(Institution).where(Institution.code == code))
    assert inst is not None, code
    return inst


# --- subprocesses -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    try:
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Ask for a clean stop (SIGINT, like Ctrl-C), then kill if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a (child) process has used so far, from /proc."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def reaped_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process's children that have exited (and been waited for)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def run_queue_seconds(pid: int) -> float | None:
    """Seconds a process's main thread has spent ready to run but waiting for a
    core (/proc/<pid>/schedstat): time lost to a machine with too few cores."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, all cores, from /proc/stat;
    the difference of two readings tells how busy the cores were in between."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- PostgreSQL ---------------------------------------------------------------------

# PostgreSQL's own processes that work for every client (WAL flushes, checkpoints).
SERVER_HELPERS = ("walwriter", "checkpointer", "background writer")


@contextlib.contextmanager
def pg_bench_database(prefix: str, keep: bool = False) -> Iterator[str]:
    """A database of its own on ``OPENAGG_TEST_PG`` (default: the local server),
    ``<prefix>_<pid>``, dropped afterwards unless ``keep``; yields its SQLAlchemy URL."""
    from tests.pg_support import admin, pg_url

    name = f"{prefix}_{os.getpid()}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    try:
        yield pg_url(name)
    finally:
        if keep:
            print(f"(kept database {name}; drop it with: dropdb {name})")
        else:
            admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# The server's processes working for this database (but not the asking connection).
_SERVER_PIDS = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE (datname = current_database() AND pid <> pg_backend_pid()) "
    "OR backend_type = ANY($1::text[])"
)


# The key under which ``postgres_cpu`` counts the backends that have exited.
EXITED_BACKENDS = -1


def _server_cpu(pids: Sequence[int]) -> dict[int, float]:
    """Each live process's CPU seconds, plus (under ``EXITED_BACKENDS``) those of the
    server's processes that have exited: a connection opened and closed between two
    readings is counted too. That part is the whole server's, whatever database the
    exited backend served."""
    out = {pid: c for pid in pids if (c := cpu_seconds(pid)) is not None}
    postmaster = next((p for pid in pids if (p := parent_pid(pid)) is not None), None)
    reaped = None if postmaster is None else reaped_cpu_seconds(postmaster)
    if reaped is not None:
        out[EXITED_BACKENDS] = reaped
    return out


async def postgres_cpu(database_url: str) -> dict[int, float]:
    """CPU seconds so far of each backend of this database and of the server's
    helpers, by pid (read from /proc: the server must run on this machine)."""
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(_SERVER_PIDS, list(SERVER_HELPERS))
    finally:
        await conn.close()
    return _server_cpu([r["pid"] for r in rows])


async def postgres_cpu_in(session: AsyncSession) -> dict[int, float]:
    """``postgres_cpu`` asked over a session's own connection (left out)."""
    pids = await session.scalars(
        text(_SERVER_PIDS.replace("$1::text[]", "CAST(:helpers AS text[])")),
        {"helpers": list(SERVER_HELPERS)},
    )
    return _server_cpu(list(pids))


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two ``postgres_cpu`` readings (a new backend started at 0)."""
    return sum(c - before.get(pid, 0.0) for pid, c in after.items())


# --- numbers and output ----------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else float("nan")


def header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)
    speed = reference_cpu_ms()
    print(f"  machine speed: {speed:.0f} ms of CPU for the reference workload", flush=True)


def reference_cpu_ms() -> float:
    """The best of 3 runs of a fixed pure-Python workload (dicts, strings, JSON), in
    ms of CPU. Absolute figures from different machines (or a noisy neighbour on
    the same one) differ by this factor; the ratios each benchmark prints do not."""
    import json

    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for i in range(20_000):
            row = {"id": i, "guid": f"TRN-{i:08d}", "amount": i * 0.01, "flags": [i % 2, i % 3]}
            json.dumps(row)
        best = min(best, time.process_time() - started)
    return best * 1000


def show(rows: Sequence[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}", flush=True)


def step(message: str) -> float:
    """Print what is being set up; returns a perf_counter start for ``done``."""
    print(f"  .. {message}", end="", flush=True)
    return time.perf_counter()


def done(started: float) -> None:
    print(f" ({time.perf_counter() - started:.1f}s)", flush=True)


async def enqueue_aggregations(
    rt: Runtime, client_id: int, member_ids: list[int], batch: int = 2000
) -> None:
    """One foreground aggregate job per member, flushed in batches."""
    async with rt.db.write() as s:
        for i in range(0, len(member_ids), batch):
            for mid in member_ids[i : i + batch]:
                enqueue(
                    s,
                    client_id=client_id,
                    member_id=mid,
                    kind=JobKind.AGGREGATE,
                    trigger=Trigger.FOREGROUND,
                    now=rt.now(),
                )
            await s.flush()


def serve_api(tmp: Path, log_name: str = "server", **env: str) -> tuple[str, Any, Path]:
    """An ``openagg serve --no-worker`` on a free port with ``env`` (OPENAGG_* settings)
    added; its URL, process and log. Its log's tail is printed if it never gets healthy."""
    url = f"http://127.0.0.1:{(port := free_port())}"
    log = tmp / f"{log_name}.log"
    server = spawn(
        [OPENAGG, "serve", "--no-worker", "--port", str(port)], subprocess_env(tmp, **env), log
    )
    try:
        wait_healthy(url, server)
    except Exception:
        print(tail(log))
        stop(server)
        raise
    return url, server, log

"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out).

On SQLite, writers start with ``BEGIN IMMEDIATE`` so that two writers queue on the
database lock instead of failing when a read snapshot would have to be upgraded;
readers use a second engine with plain deferred transactions so they never wait on
a writer (WAL).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from openagg.db.driver import SQLITE, Backend, Plan, run_plan, run_sync

T = TypeVar("T")

# sqlite3 binds None through its adaptation protocol (type lookups, attribute probes),
# about 0.5 us a value, 5x an int: rows with a few NULL columns paid more for them than
# for the rest. A registered adapter is found first; ``{}.get`` is a C call answering None.
_NULL: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NULL.get)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Readable by its owner only, like the key file beside it: it holds sealed
        # secrets and everyone's accounts. SQLite gives its -wal and -shm the same mode.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=120,
        connect_args={"timeout": 60},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below choose how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _drop_closed_connections(engine: AsyncEngine) -> None:
    """Never hand out a pooled PostgreSQL connection the server has closed (a restart,
    a terminated backend): asyncpg sees the socket close while the connection idles,
    so this costs no round trip, unlike ``pool_pre_ping`` (BEGIN, ping, ROLLBACK on
    every checkout). A connection lost without the socket closing still fails its
    first statement, and SQLAlchemy then drops the whole pool's older connections."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is None or driver.is_closed():
            raise exc.DisconnectionError("the server closed this connection")


class Busy(Exception):
    """The database is locked for now."""


_READER_CACHE_KIB = 32 * 1024
# The direct writer never checkpoints the WAL on commit (that writes and syncs the
# database file, on the event loop's thread); every this many commits, a thread does.
_CHECKPOINT_EVERY = 500


class _SqliteDirect:
    """One plain sqlite3 connection, used on the event loop's thread for short plans.
    It skips what a session costs through aiosqlite: a pool checkout and BEGIN and
    COMMIT each handed to aiosqlite's thread and back, about 1 ms of CPU where a
    repeated SimpleFIN answer's count of its request costs SQLite 0.05 ms. The whole
    plan runs without yielding, so one connection is never shared by two plans.

    A reader (``writes=False``) runs in WAL mode's snapshot, which never waits for a
    writer. A writer starts with ``BEGIN IMMEDIATE`` and never waits for the lock
    either: when another connection holds it, ``Busy`` at once (waiting here would
    stop the whole event loop), before anything ran."""

    def __init__(self, path: str, dialect: Dialect, *, writes: bool = False):
        self._path, self._dialect, self._writes = path, dialect, writes
        self._conn: sqlite3.Connection | None = None
        self._sized = False
        self._commits = 0
        self._checkpoints: set[asyncio.Future[Any]] = set()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=0")
            if self._writes:  # as the engine's connections (_sqlite_engine)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA wal_autocheckpoint=0")
            else:
                conn.execute("PRAGMA query_only=ON")  # a plan run here cannot write
            self._conn, self._sized = conn, False
        return self._conn

    def run(self, make: Callable[[Backend, Dialect], Plan[T]]) -> T:
        """The plan's result, its writes committed; ``Busy`` when the database is
        locked (rare in WAL mode for a reader), with nothing written."""
        conn = self._connect()
        try:
            # One snapshot for all the plan's statements.
            conn.execute("BEGIN IMMEDIATE" if self._writes else "BEGIN")
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                raise Busy() from exc
            raise
        done = False
        try:
            if not self._sized:
                # Room for the hot reads' pages, and for their sorts: an ORDER BY
                # whose rows outgrow the page cache (2 MB by default; a SimpleFIN
                # window of 10,000 transactions sorts ~5 MB) spills to a temporary
                # file, written and read back a page at a time. Pages are allocated
                # as used. (Set here: it reads the schema, so it may find a lock.)
                conn.execute(f"PRAGMA cache_size=-{_READER_CACHE_KIB}")
                self._sized = True
            result = run_sync(conn, make(SQLITE, self._dialect))
            if self._writes:
                conn.execute("COMMIT")
                done = True
                self._committed()
            return result
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                raise Busy() from exc
            raise
        finally:
            if not done:
                conn.execute("ROLLBACK")

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % _CHECKPOINT_EVERY == 0:
            task = asyncio.ensure_future(asyncio.to_thread(_checkpoint, self._path))
            self._checkpoints.add(task)
            task.add_done_callback(self._checkpoints.discard)

    async def checkpointed(self) -> None:
        """Once the checkpoints under way are done."""
        await asyncio.gather(*self._checkpoints)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _locked(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(path: str) -> None:
    """Copy what the WAL holds into the database where no reader still needs it
    (PASSIVE: it waits for no one), so that the WAL starts over."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.OperationalError:
        pass  # locked: the next one, or another connection's commit, will do it
    finally:
        conn.close()


class Database:
    """The single source of truth. ``write()`` and ``read()`` give a session inside
    one transaction that commits on success and rolls back on error; ``read_plan``
    runs a plan that only reads, the cheapest way each database allows."""

    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = url
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            self.engine = _sqlite_engine(url, immediate=True, pool_size=4)
            self.read_engine = _sqlite_engine(url, immediate=False, pool_size=pool_size)
        else:
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
            _drop_closed_connections(self.engine)
            self.read_engine = self.engine
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        path = make_url(url).database if self.sqlite else None
        file = path if path and path != ":memory:" else None
        self._direct = _SqliteDirect(file, self.read_engine.dialect) if file else None
        self._direct_writer = (
            _SqliteDirect(file, self.engine.dialect, writes=True) if file else None
        )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self._write_turn(), self._writer() as session, session.begin():
            yield session

    def _write_turn(self) -> AbstractAsyncContextManager[Any]:
        """On SQLite, this process's writers take turns in the order they asked.
        Racing for the database lock instead, a writer that loses sleeps in SQLite's
        busy handler (up to 100 ms at a time) and can lose again to one that came
        later: a worker's claims waited ~100 ms behind its own settling writes.
        Other processes still queue on the lock itself (``busy_timeout``)."""
        if not self.sqlite:
            return nullcontext()
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Lock())  # a lock serves one event loop
        return self._turns[1]

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    async def read_plan(self, make: Callable[[Backend, Dialect], Plan[T]]) -> T:
        """``make``'s plan run in a read-only transaction of its own."""
        if self._direct is not None:
            try:
                return self._direct.run(make)
            except Busy:
                pass  # wait for the lock in aiosqlite's thread, off the event loop
        async with self.read() as session:
            return await run_plan(session, make)

    async def write_plan(self, make: Callable[[Backend, Dialect], Plan[T]]) -> T:
        """``make``'s plan run in a write transaction of its own, committed when it
        returns. For short plans: on SQLite, while no writer of this process is in a
        transaction, it runs right here (``_SqliteDirect``); when another process
        holds the lock, through a session, which waits its turn off the event loop."""
        if self._direct_writer is not None and not self._writing():
            try:
                return self._direct_writer.run(make)
            except Busy:
                pass
        async with self.write() as session:
            return await run_plan(session, make)

    def _writing(self) -> bool:
        """Whether one of this process's writers holds its turn (is in a transaction)."""
        turns = self._turns
        return turns is not None and turns[0] is asyncio.get_running_loop() and turns[1].locked()

    async def dispose(self) -> None:
        if self._direct_writer is not None:
            await self._direct_writer.checkpointed()
            self._direct_writer.close()
        if self._direct is not None:
            self._direct.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()

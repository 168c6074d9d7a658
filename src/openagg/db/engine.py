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


class _SqliteReader:
    """One plain sqlite3 connection, used on the event loop's thread for plans that
    only read. A read in WAL mode never waits for a writer, and it skips what a
    session costs through aiosqlite (about 1 ms a request: a pool checkout and
    BEGIN and COMMIT each handed to aiosqlite's thread and back). The whole read
    runs without yielding, so one connection is never shared by two reads."""

    def __init__(self, path: str, dialect: Dialect):
        self._path, self._dialect = path, dialect
        self._conn: sqlite3.Connection | None = None
        self._sized = False

    def run(self, make: Callable[[Backend, Dialect], Plan[T]]) -> T:
        """The plan's result; ``Busy`` when the database is locked (rare in WAL
        mode), at once: waiting here would stop the whole event loop."""
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=ON")  # a plan run here cannot write
            conn.execute("PRAGMA busy_timeout=0")
            self._conn, self._sized = conn, False
        conn = self._conn
        conn.execute("BEGIN")  # one snapshot for all the plan's statements
        try:
            if not self._sized:
                # Room for the hot reads' pages, and for their sorts: an ORDER BY
                # whose rows outgrow the page cache (2 MB by default; a SimpleFIN
                # window of 10,000 transactions sorts ~5 MB) spills to a temporary
                # file, written and read back a page at a time. Pages are allocated
                # as used. (Set here: it reads the schema, so it may find a lock.)
                conn.execute(f"PRAGMA cache_size=-{_READER_CACHE_KIB}")
                self._sized = True
            return run_sync(conn, make(SQLITE, self._dialect))
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise Busy() from exc
            raise
        finally:
            conn.execute("ROLLBACK")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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
        self._direct = (
            _SqliteReader(path, self.read_engine.dialect) if path and path != ":memory:" else None
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

    async def dispose(self) -> None:
        if self._direct is not None:
            self._direct.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()

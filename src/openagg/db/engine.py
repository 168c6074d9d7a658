"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out).

On SQLite, writers start with ``BEGIN IMMEDIATE`` so that two writers queue on the
database lock instead of failing when a read snapshot would have to be upgraded;
readers use a second engine with plain deferred transactions so they never wait on
a writer (WAL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_engine(url: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
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


class Database:
    """The single source of truth. ``write()`` and ``read()`` give a session inside
    one transaction that commits on success and rolls back on error."""

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

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()

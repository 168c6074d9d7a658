"""Talking to the database driver directly, inside a session's transaction: the hot
paths (ingest, settling finished jobs, the transaction list) skip the ORM.

* ``Backend``: how values and statements look on SQLite and on PostgreSQL (values in
  the form SQLAlchemy would bind and store, so the ORM reads them back unchanged).
* ``run_plan`` runs a *plan*, a generator of ``Fetch`` statements, on the session's
  driver connection (SQLite: on the event loop's thread; PostgreSQL: asyncpg).
* ``Deferred`` collects bulk writes that ``flush`` makes at once at the end of a
  transaction (multi-row statements on SQLite, COPY and UPDATE ... FROM unnest on
  PostgreSQL).
* ``Codec``: a mapped class's rows converted with SQLAlchemy's own type processors.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from typing import Any, TypeVar

from sqlalchemy import JSON, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_dict

T = TypeVar("T")
_UTC = dt.UTC
# SQLite's unixepoch() (3.38): a seventh less time for SimpleFIN's 10,000-row window.
_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38, 0)


# --- the two backends ----------------------------------------------------------------


def _sqlite_timestamp(value: dt.datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME storage format, in UTC (as ``UTCDateTime`` binds)."""
    if value is None:
        return None
    if value.tzinfo is not _UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(_UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  (fastest formatting)
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _pg_timestamp(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime")
    return value


def _sqlite_date(value: dt.date) -> str:
    return value.isoformat()


def _same(value: Any) -> Any:
    return value


def _sqlite_stored_timestamp(value: str | None) -> dt.datetime | None:
    """A fetched DATETIME's text as ``UTCDateTime`` reads it: aware, in UTC."""
    return None if value is None else dt.datetime.fromisoformat(value).replace(tzinfo=_UTC)


def _pg_stored_timestamp(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(_UTC)


def _json_text(value: Any) -> Any:
    return value if value is None else json.loads(value)


@dataclass(frozen=True)
class Backend:
    """How values and statements look on one database. Values are what SQLAlchemy
    would bind for the column type: SQLite keeps timestamps and dates as text and
    JSON as text; asyncpg takes Python objects (JSON still as text, per the codec
    SQLAlchemy installs on each connection, which also decodes JSON on the way out)."""

    name: str
    timestamp: Callable[[dt.datetime | None], Any]
    date: Callable[[dt.date], Any]
    stored_json: Callable[[Any], Any]  # a fetched JSON column -> Python value
    stored_timestamp: Callable[[Any], dt.datetime | None]  # a fetched timestamp -> aware UTC
    # The same conversions for values that repeat over many rows (remembered).
    cached_timestamp: Callable[[dt.datetime | None], Any]
    cached_date: Callable[[dt.date], Any]

    @property
    def sqlite(self) -> bool:
        return self.name == "sqlite"

    def sql(self, text: str) -> str:
        """``text`` with its ``?`` placeholders in this backend's style."""
        return text if self.sqlite else _numbered(text)

    def epoch(self, column: str) -> str:
        """SQL for a timestamp (or date: its midnight) column's UNIX time in whole
        seconds, as ``int(value.timestamp())`` gives it (NULL stays NULL)."""
        if self.sqlite:
            # Whole seconds of the stored text (SQLite would round .9995 up to the next).
            seconds = f"substr({column}, 1, 19)"
            if _UNIXEPOCH:  # the same, without strftime's text and the cast
                return f"unixepoch({seconds})"
            return f"CAST(strftime('%s', {seconds}) AS INTEGER)"
        return f"CAST(trunc(extract(epoch FROM {column})) AS bigint)"

    def any_of(self, column: str, values: Sequence[int]) -> tuple[str, list[Any]]:
        """A ``column IN values`` condition and its parameters."""
        if self.sqlite:
            return f"{column} IN ({', '.join('?' * len(values))})", list(values)
        return f"{column} = ANY(?::bigint[])", [list(values)]


@lru_cache(maxsize=256)
def _numbered(text: str) -> str:
    parts = text.split("?")
    return "".join(f"{p}${i}" for i, p in enumerate(parts[:-1], 1)) + parts[-1]


def _remembered(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` with a memory of what it already converted (cleared when big)."""
    seen: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        if value is None:
            return None
        found = seen.get(value)
        if found is None:
            if len(seen) > 100_000:
                seen.clear()
            found = seen[value] = convert(value)
        return found

    return cached


SQLITE = Backend(
    "sqlite",
    _sqlite_timestamp,
    _sqlite_date,
    _json_text,
    _sqlite_stored_timestamp,
    _remembered(_sqlite_timestamp),
    _remembered(_sqlite_date),
)
POSTGRESQL = Backend(
    "postgresql", _pg_timestamp, _same, _same, _pg_stored_timestamp, _pg_timestamp, _same
)


def json_text(value: Any) -> str:
    """JSON as SQLAlchemy's JSON type serialises it (``json.dumps``)."""
    return json.dumps(value)


# --- running statements -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetch:
    """A statement a plan runs at once; the plan receives its rows. ``stream``: on
    SQLite the rows come as the cursor, to iterate at once (before the next step):
    rows the plan drops as it goes are freed one by one, never held all together
    (nor counted against the cycle collector's threshold). PostgreSQL gives a list."""

    sql: str
    params: Sequence[Any] = ()
    stream: bool = False


Plan = Generator[Fetch, Any, T]


def run_sync(conn: Any, plan: Plan[T]) -> T:
    """Drive a plan on a sqlite3 connection, in its current transaction."""
    try:
        step = next(plan)
        while True:
            cursor = conn.execute(step.sql, step.params)
            step = plan.send(cursor if step.stream else cursor.fetchall())
    except StopIteration as done:
        return done.value


async def _run_asyncpg(conn: Any, plan: Plan[T]) -> T:
    try:
        step = next(plan)
        while True:
            step = plan.send(await conn.fetch(step.sql, *step.params))
    except StopIteration as done:
        return done.value


async def _driver(session: AsyncSession) -> tuple[Any, Dialect]:
    """The driver connection of the session's transaction (begun if need be)."""
    conn = await session.connection()
    fairy = await conn.get_raw_connection()
    if conn.dialect.name != "sqlite":
        adapted: Any = fairy.dbapi_connection
        # SQLAlchemy's asyncpg adapter opens its transaction with the first statement
        # it runs; make sure it is open before talking to asyncpg directly.
        if adapted._transaction is None:
            await adapted._start_transaction()
    return fairy.driver_connection, conn.dialect


async def run_plan(session: AsyncSession, make: Callable[[Backend, Dialect], Plan[T]]) -> T:
    """Run ``make(backend, dialect)`` in the session's current transaction, on the
    driver.

    On SQLite the statements run right here, on the event loop's thread, on the
    sqlite3 connection aiosqlite owns (idle meanwhile: this transaction is ours).
    In aiosqlite's thread every row a statement steps through gives the GIL back,
    and winning it again from a busy event loop can take a whole switch interval
    (5 ms); here a statement costs only SQLite's own work. Plans run reads and
    small writes; bulk writes go to a ``Deferred``.
    """
    driver, dialect = await _driver(session)
    if dialect.name == "sqlite":
        return run_sync(driver._conn, make(SQLITE, dialect))
    return await _run_asyncpg(driver, make(POSTGRESQL, dialect))


@dataclass
class Deferred:
    """Writes collected over a transaction and made together at its end by
    ``flush``, with one statement per table and kind (per chunk of rows). Values
    are in their backend's stored form."""

    inserts: dict[tuple[str, tuple[str, ...]], list[Sequence[Any]]] = field(default_factory=dict)
    # (table, columns set) -> rows of (id, *values)
    updates: dict[tuple[str, tuple[str, ...]], list[Sequence[Any]]] = field(default_factory=dict)
    deletes: dict[str, list[int]] = field(default_factory=dict)

    def insert(self, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.inserts.setdefault((table, columns), []).extend(rows)

    def update(self, table: str, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.updates.setdefault((table, columns), []).extend(rows)

    def delete(self, table: str, ids: Sequence[int]) -> None:
        if ids:
            self.deletes.setdefault(table, []).extend(ids)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.deletes)

    def take(self) -> Deferred:
        """What is collected so far (and start over)."""
        taken = Deferred(self.inserts, self.updates, self.deletes)
        self.inserts, self.updates, self.deletes = {}, {}, {}
        return taken


# Rows per statement. A statement binding many rows is compiled anew for each new
# size (for thousands of rows that costs more than running it), so every chunk has
# one of these few sizes, and each size's statement is compiled once per connection.
_CHUNK_SIZES = (1024, 256, 64, 16, 4, 1)


def _chunks(rows: Sequence[Any], values_per_row: int, limit: int) -> Iterable[Sequence[Any]]:
    at = 0
    for size in _CHUNK_SIZES:
        if size * values_per_row > limit:
            continue
        while len(rows) - at >= size:
            yield rows[at : at + size]
            at += size


# A write of more rows than this gets a page cache of ``_CACHE_KIB_PER_ROW`` KiB a
# row (at most ``_MAX_CACHE_KIB``) while it runs: SQLite's default cache (2 MB) holds
# about 5,000 new transaction rows with their index entries; past that, the dirty pages
# spill to the WAL in the middle of the transaction, to be read and written again.
# (100,000 transactions of a statement import wrote 30% faster with room for them.)
_BIG_WRITE = 4096
_CACHE_KIB_PER_ROW = 1
_MAX_CACHE_KIB = 256 * 1024


def _flush_sqlite(conn: Any, writes: Deferred) -> None:
    """In aiosqlite's thread: every statement binds many rows and steps once, so
    the GIL is given back (and won back) once per statement, not once per row."""
    rows = sum(map(len, writes.inserts.values())) + sum(map(len, writes.updates.values()))
    if rows <= _BIG_WRITE:
        _write_sqlite(conn, writes)
        return
    (before,) = conn.execute("PRAGMA cache_size").fetchone()
    room = min(rows * _CACHE_KIB_PER_ROW, _MAX_CACHE_KIB)
    conn.execute(f"PRAGMA cache_size = -{room}")
    try:
        _write_sqlite(conn, writes)
    finally:
        # Back to the usual size: the pages this write dirtied stay until the commit
        # writes them, then the cache shrinks (it is the connection's, kept in a pool).
        conn.execute(f"PRAGMA cache_size = {int(before)}")


def _write_sqlite(conn: Any, writes: Deferred) -> None:
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    for table, ids in writes.deletes.items():
        for chunk in _chunks(ids, 1, limit):
            conn.execute(f"DELETE FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
    for (table, columns), rows in writes.updates.items():
        sets = ", ".join(f"{c} = v.column{i}" for i, c in enumerate(columns, 2))
        group = "(" + ", ".join("?" * (len(columns) + 1)) + ")"
        for chunk in _chunks(rows, len(columns) + 1, limit):
            conn.execute(
                f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([group] * len(chunk))}) AS v "
                f"WHERE {table}.id = v.column1",
                list(chain.from_iterable(chunk)),
            )
    for (table, columns), rows in writes.inserts.items():
        group = "(" + ", ".join("?" * len(columns)) + ")"
        for chunk in _chunks(rows, len(columns), limit):
            conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES {', '.join([group] * len(chunk))}",
                list(chain.from_iterable(chunk)),
            )


@lru_cache(maxsize=256)
def _pg_update(table: str, columns: tuple[str, ...]) -> str:
    """One UPDATE for many rows: their values come in as one array per column."""
    from sqlalchemy.dialects import postgresql

    from openagg.db.models import Base

    dialect = postgresql.dialect()
    c = Base.metadata.tables[table].c
    names = ("id", *columns)
    arrays = ", ".join(
        f"${i}::{c[n].type.compile(dialect=dialect)}[]" for i, n in enumerate(names, 1)
    )
    sets = ", ".join(f'"{n}" = v."{n}"' for n in columns)
    aliases = ", ".join(f'"{n}"' for n in names)
    return (
        f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v({aliases}) WHERE {table}.id = v.id"
    )


async def _flush_asyncpg(conn: Any, writes: Deferred) -> None:
    for table, ids in writes.deletes.items():
        await conn.execute(f"DELETE FROM {table} WHERE id = ANY($1::bigint[])", ids)
    for (table, columns), rows in writes.updates.items():
        await conn.execute(
            _pg_update(table, columns), *(list(col) for col in zip(*rows, strict=True))
        )
    for (table, columns), rows in writes.inserts.items():
        # COPY: the server inserts the rows in one pass, not one statement per row.
        await conn.copy_records_to_table(table, records=rows, columns=columns)


async def flush(session: AsyncSession, writes: Deferred) -> None:
    """Make the collected writes in the session's transaction (and forget them).

    On SQLite this is the one place that still hops to aiosqlite's thread, on
    purpose: inserting rows into the big tables is most of SQLite's work, and
    there it runs beside the event loop instead of on it."""
    if not writes:
        return
    taken = writes.take()
    driver, dialect = await _driver(session)
    if dialect.name == "sqlite":
        await driver._execute(_flush_sqlite, driver._conn, taken)
    else:
        await _flush_asyncpg(driver, taken)


class Codec:
    """A mapped class's rows as the backend stores them, converted with SQLAlchemy's
    own type processors: what the ORM would bind and read, without the ORM."""

    def __init__(self, cls: type[Any], dialect: Dialect):
        table: Table = cls.__table__
        props = [(p.key, p.columns[0]) for p in cls.__mapper__.column_attrs]
        self.cls = cls
        self.table = table.name
        self.keys = tuple(key for key, _ in props)
        self.columns = {key: column.name for key, column in props}
        impl = {key: column.type.dialect_impl(dialect) for key, column in props}
        self._bind = {key: t.bind_processor(dialect) for key, t in impl.items()}
        # Only the columns whose stored form differs from their Python value.
        self._read = [
            (key, process)
            for key, t in impl.items()
            if (process := t.result_processor(dialect, None)) is not None
        ]
        self.json = frozenset(key for key, column in props if isinstance(column.type, JSON))
        self.select_list = ", ".join(f"{table.name}.{self.columns[k]}" for k in self.keys)

    def bind(self, key: str, value: Any) -> Any:
        process = self._bind[key]
        return value if process is None or value is None else process(value)

    def read(self, row: Sequence[Any], offset: int = 0) -> dict[str, Any]:
        """Attribute values from ``row[offset:]`` (columns in ``select_list`` order)."""
        out = dict(zip(self.keys, row[offset : offset + len(self.keys)], strict=True))
        for key, process in self._read:
            value = out[key]
            if value is not None:
                out[key] = process(value)
        return out

    def unattached(self, row: Sequence[Any], offset: int = 0) -> Any:
        """A model object holding the row, in no session: changing it writes nothing.
        (Its values are set as loaded ones, without the constructor's per-attribute
        events.)"""
        obj = self.cls.__mapper__.class_manager.new_instance()
        instance_dict(obj).update(self.read(row, offset))
        return obj


_CODECS: dict[tuple[type[Any], str], Codec] = {}


def codec(cls: type[Any], dialect: Dialect) -> Codec:
    found = _CODECS.get((cls, dialect.name))
    if found is None:
        found = _CODECS[(cls, dialect.name)] = Codec(cls, dialect)
    return found

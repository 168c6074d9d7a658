"""Fresh PostgreSQL databases for tests that need the real server.

The server is ``OPENAGG_TEST_PG`` (default: the local one, trust auth). Each call to
``fresh_database`` creates a migrated database with a unique name and drops it
afterwards, even if other connections are still open.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import asyncpg

from openagg.db.migrate import upgrade
from tests.support import skip_or_fail

PG_SERVER = os.environ.get("OPENAGG_TEST_PG", "postgres@127.0.0.1:5432")
_names = itertools.count()


def pg_url(database: str, driver: str = "postgresql+asyncpg") -> str:
    return f"{driver}://{PG_SERVER}/{database}"


def _in_thread(fn: Any, *args: Any) -> Any:
    # Each of these runs its own event loop; a thread keeps it off the test's loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def admin(sql: str) -> None:
    """Run one statement on the server's ``postgres`` database."""

    async def run() -> None:
        conn = await asyncpg.connect(pg_url("postgres", "postgresql"), timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(asyncio.run, run())


def postgres_available() -> bool:
    try:
        admin("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


@contextmanager
def fresh_database(prefix: str = "openagg_test") -> Iterator[str]:
    """A migrated database on the test server; yields its SQLAlchemy URL."""
    if not postgres_available():
        skip_or_fail(f"PostgreSQL is not reachable at {PG_SERVER}")
    name = f"{prefix}_{os.getpid()}_{next(_names)}"
    admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(f"CREATE DATABASE {name}")
    try:
        url = pg_url(name)
        _in_thread(upgrade, url)
        yield url
    finally:
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

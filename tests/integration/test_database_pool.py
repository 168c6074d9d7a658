"""The PostgreSQL connection pool drops connections the server closed, without a
ping round trip on every checkout (``db/engine.py``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, text

from openagg.db.engine import Database
from tests.databases import ON_POSTGRES, database_url_for, psql

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="about PostgreSQL's pool; runs in the PostgreSQL pass"
)


async def test_a_connection_the_server_closed_is_replaced_at_checkout(tmp_path: Path) -> None:
    db = Database(database_url_for(tmp_path), pool_size=2)
    try:
        async with db.read() as s:
            before = await s.scalar(text("SELECT pg_backend_pid()"))
        # The server ends the pooled connection (as on a restart or an admin's kill).
        psql(f"SELECT pg_terminate_backend({before})", db.url)
        await asyncio.sleep(0.5)  # the event loop sees the socket close

        async with db.read() as s:
            after = await s.scalar(text("SELECT pg_backend_pid()"))
            assert await s.scalar(select(1)) == 1
        assert after != before
    finally:
        await db.dispose()

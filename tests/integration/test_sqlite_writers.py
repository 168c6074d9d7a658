"""On SQLite, the writers of one process take turns in the order they asked
(``Database.write``), instead of racing for the database lock in SQLite's busy
handler, where a loser sleeps and can lose again to a later writer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from openagg.db.engine import Database
from tests.databases import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="about SQLite's single writer")


async def test_writers_of_one_process_take_turns_in_the_order_they_asked(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    try:
        async with db.write() as s:
            await s.execute(text("CREATE TABLE log (n INTEGER)"))
        holding, release = asyncio.Event(), asyncio.Event()

        async def writer(n: int) -> None:
            async with db.write() as s:
                await s.execute(text("INSERT INTO log VALUES (:n)"), {"n": n})
                if n == 0:
                    holding.set()
                    await release.wait()

        first = asyncio.create_task(writer(0))
        await holding.wait()
        later = []
        for n in range(1, 7):  # more writers than the pool has connections
            later.append(asyncio.create_task(writer(n)))
            await asyncio.sleep(0.02)  # each asks after the one before
        release.set()
        await asyncio.gather(first, *later)
        async with db.read() as s:
            assert list(await s.scalars(text("SELECT n FROM log ORDER BY rowid"))) == list(range(7))
    finally:
        await db.dispose()

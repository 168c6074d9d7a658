"""On SQLite, the writers of one process take turns in the order they asked
(``Database.write``), instead of racing for the database lock in SQLite's busy
handler, where a loser sleeps and can lose again to a later writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from openagg.db import engine
from openagg.db.driver import Backend, Fetch, Plan
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


# --- short write plans on the event loop's thread (Database.write_plan) -------------


def _insert(n: int, fail: bool = False) -> Callable[[Backend, Any], Plan[int]]:
    def make(b: Backend, _d: Any) -> Plan[int]:
        rows = yield Fetch(b.sql("INSERT INTO log VALUES (?) RETURNING n"), [n])
        if fail:
            raise ValueError("the plan changed its mind")
        return int(rows[0][0])

    return make


async def _log_db(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'direct.db'}")
    async with db.write() as s:
        await s.execute(text("CREATE TABLE log (n INTEGER UNIQUE)"))
        await s.execute(text("CREATE TABLE child (parent INTEGER REFERENCES log (n))"))
    return db


def _logged(tmp_path: Path) -> list[int]:
    conn = sqlite3.connect(tmp_path / "direct.db")
    try:
        return [n for (n,) in conn.execute("SELECT n FROM log ORDER BY rowid")]
    finally:
        conn.close()


async def test_a_write_plan_commits_on_the_direct_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await _log_db(tmp_path)
    try:

        def no_session() -> Any:
            raise AssertionError("went through a session")

        monkeypatch.setattr(db, "write", no_session)
        assert await db.write_plan(_insert(1)) == 1
        assert _logged(tmp_path) == [1]  # committed: another connection sees it
    finally:
        await db.dispose()


async def test_a_failing_write_plan_writes_nothing(tmp_path: Path) -> None:
    db = await _log_db(tmp_path)
    try:
        with pytest.raises(ValueError, match="changed its mind"):
            await db.write_plan(_insert(1, fail=True))
        assert _logged(tmp_path) == []

        def orphan(b: Backend, _d: Any) -> Plan[None]:
            yield Fetch(b.sql("INSERT INTO child VALUES (?)"), [42])

        # The direct connection checks foreign keys, as the engine's connections do.
        with pytest.raises(sqlite3.IntegrityError):
            await db.write_plan(orphan)
        assert await db.write_plan(_insert(2)) == 2
        assert _logged(tmp_path) == [2]
    finally:
        await db.dispose()


async def test_a_write_plan_waits_for_another_process_off_the_event_loop(
    tmp_path: Path,
) -> None:
    """Another process's write lock: the plan neither fails nor stops the loop; it
    goes through a session, which waits in aiosqlite's thread."""
    db = await _log_db(tmp_path)
    holder = sqlite3.connect(tmp_path / "direct.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO log VALUES (0)")
        plan = asyncio.create_task(db.write_plan(_insert(1)))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(10):
            await asyncio.sleep(0.02)
        assert loop.time() - started < 1  # the loop kept turning
        assert not plan.done()
        holder.execute("COMMIT")
        assert await plan == 1
        assert _logged(tmp_path) == [0, 1]
    finally:
        holder.close()
        await db.dispose()


async def test_a_write_plan_waits_for_a_writer_of_its_own_process(tmp_path: Path) -> None:
    db = await _log_db(tmp_path)
    try:
        holding, release = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with db.write() as s:
                await s.execute(text("INSERT INTO log VALUES (0)"))
                holding.set()
                await release.wait()

        first = asyncio.create_task(writer())
        await holding.wait()
        plan = asyncio.create_task(db.write_plan(_insert(1)))
        await asyncio.sleep(0.05)
        assert not plan.done()
        release.set()
        await first
        assert await plan == 1
        assert _logged(tmp_path) == [0, 1]
    finally:
        await db.dispose()


async def test_the_direct_writer_has_the_wal_checkpointed_by_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It never checkpoints on commit (that syncs the file on the event loop's
    thread): every so many commits a thread does it."""
    monkeypatch.setattr(engine, "_CHECKPOINT_EVERY", 5)
    checkpoints: list[str] = []
    original = engine._checkpoint

    def recorded(path: str) -> None:
        checkpoints.append(threading.current_thread().name)
        original(path)

    monkeypatch.setattr(engine, "_checkpoint", recorded)
    db = await _log_db(tmp_path)
    try:
        for n in range(4):
            await db.write_plan(_insert(n))
        await db._direct_writer.checkpointed()  # type: ignore[union-attr]
        assert checkpoints == []
        await db.write_plan(_insert(4))
        await db._direct_writer.checkpointed()  # type: ignore[union-attr]
        assert len(checkpoints) == 1
        assert checkpoints[0] != threading.main_thread().name
        assert _logged(tmp_path) == list(range(5))
    finally:
        await db.dispose()

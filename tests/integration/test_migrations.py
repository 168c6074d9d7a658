"""The migrations make exactly the schema the models describe, from an empty database
(the other tests start from a migrated copy); and 0009 (transactions keep one foreign
key and one date index) keeps every row when applied and when undone, with deletes
still reaching them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from openagg.db.migrate import alembic_config, upgrade
from openagg.db.models import Base
from openagg.settings import Settings
from tests.conftest import Platform, settings_for
from tests.databases import database_url_for
from tests.integration.api_helpers import create_member, new_user


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An empty database, migrated here from the first revision."""
    s = settings_for(tmp_path, database_url=database_url_for(tmp_path, migrated=False))
    s.ensure_data_dir()
    upgrade(s.database_url)
    return s


async def _schema_differences(p: Platform) -> list[Any]:
    async with p.rt.db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )


async def _count(p: Platform, sql: str) -> int:
    async with p.rt.db.read() as s:
        return int((await s.execute(text(sql))).scalar_one())


async def _migrate_to(p: Platform, settings: Settings, revision: str) -> None:
    """Alembic runs its own event loop: in a thread, with the platform's pooled
    connections closed (SQLite's table copy needs the database to itself)."""
    await p.rt.db.dispose()
    if revision == "head":
        await asyncio.to_thread(upgrade, settings.database_url)
    else:
        config = alembic_config(settings.database_url)
        await asyncio.to_thread(command.downgrade, config, revision)


async def test_migrated_schema_is_what_the_models_describe(platform: Platform) -> None:
    assert await _schema_differences(platform) == []


async def test_0009_keeps_transactions_both_ways(platform: Platform, settings: Settings) -> None:
    p = platform
    user = await new_user(p.http)
    kept = (await create_member(p.http, user, "password", expect=202)).json()["member"]["guid"]
    gone = (await create_member(p.http, user, "another", expect=202)).json()["member"]["guid"]
    await p.drain()
    stored = await _count(p, "SELECT count(*) FROM transactions")
    assert stored > 0

    await _migrate_to(p, settings, "0008")
    assert await _count(p, "SELECT count(*) FROM transactions") == stored
    await _migrate_to(p, settings, "head")
    assert await _count(p, "SELECT count(*) FROM transactions") == stored
    assert await _schema_differences(p) == []

    # A member's list goes through the user's index, and holds only that member's.
    listed = await p.http.get(
        f"/users/{user}/members/{kept}/transactions", params={"records_per_page": 1000}
    )
    assert listed.status_code == 200, listed.text
    items = listed.json()["transactions"]
    assert items and {t["member_guid"] for t in items} == {kept}
    assert listed.json()["pagination"]["total_entries"] == len(items)

    # Deletes reach the transactions through the accounts' cascade.
    assert (await p.http.delete(f"/users/{user}/members/{gone}")).status_code == 204
    assert await _count(p, "SELECT count(*) FROM transactions") == len(items)
    assert (await p.http.delete(f"/users/{user}")).status_code == 204
    assert await _count(p, "SELECT count(*) FROM transactions") == 0

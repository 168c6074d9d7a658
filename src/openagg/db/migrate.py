"""Apply Alembic migrations programmatically (``openagg migrate`` and ``serve``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from openagg.db.engine import _sqlite_engine, is_sqlite

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the schema to the newest revision. Safe to call on every start."""
    if is_sqlite(url):
        asyncio.run(_enable_wal(url))
    command.upgrade(alembic_config(url), "head")


async def _enable_wal(url: str) -> None:
    engine = _sqlite_engine(url, immediate=False, pool_size=1)
    async with engine.connect():
        pass
    await engine.dispose()

"""Group commit: jobs' final writes share a transaction, and one failing write
never takes the others down with it."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.models import Client
from openagg.domain.ids import time_ordered_guid
from openagg.engine.batcher import WriteBatcher
from tests.conftest import Platform


def _add_client(name: str) -> Callable[[AsyncSession], Awaitable[str]]:
    async def write(s: AsyncSession) -> str:
        s.add(
            Client(
                client_id=name, name=name, api_key_hash="x" * 64, created_at=dt.datetime.now(dt.UTC)
            )
        )
        await s.flush()
        return name

    return write


async def _fail(s: AsyncSession) -> None:
    raise RuntimeError("this write is broken")


async def _count(p: Platform, prefix: str) -> int:
    async with p.rt.db.read() as s:
        n = await s.scalar(
            select(func.count()).select_from(Client).where(Client.client_id.like(f"{prefix}%"))
        )
    return n or 0


async def test_concurrent_writes_share_batches_and_all_commit(platform: Platform) -> None:
    batcher = WriteBatcher(platform.rt.db, max_batch=4)
    names = await asyncio.gather(*(batcher.run(_add_client(f"b-{i}")) for i in range(10)))
    assert names == [f"b-{i}" for i in range(10)]
    assert await _count(platform, "b-") == 10


async def test_a_failing_write_is_retried_alone_and_the_others_commit(
    platform: Platform,
) -> None:
    batcher = WriteBatcher(platform.rt.db)
    results = await asyncio.gather(
        batcher.run(_add_client("ok-1")),
        batcher.run(_fail),
        batcher.run(_add_client("ok-2")),
        return_exceptions=True,
    )
    assert results[0] == "ok-1" and results[2] == "ok-2"
    assert isinstance(results[1], RuntimeError)
    assert await _count(platform, "ok-") == 2


def test_transaction_guids_are_time_ordered_and_unique() -> None:
    guids = [time_ordered_guid("TRN") for _ in range(2000)]
    assert len(set(guids)) == len(guids)
    assert all(g.startswith("TRN-") and uuid.UUID(g[4:]).version == 7 for g in guids)
    # The millisecond prefix never goes back, so the guid index appends.
    prefixes = [g[4:17] for g in guids]
    assert prefixes == sorted(prefixes)


@pytest.mark.parametrize("size", [1, 3])
async def test_batch_size_one_still_reports_errors(platform: Platform, size: int) -> None:
    batcher = WriteBatcher(platform.rt.db, max_batch=size)
    with pytest.raises(RuntimeError):
        await batcher.run(_fail)

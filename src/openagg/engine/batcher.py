"""Group commit: the final writes of several jobs share one write transaction.

A worker finishes many jobs at nearly the same time. Writing each in its own
transaction costs a ``BEGIN IMMEDIATE``, a commit and a hand-off of SQLite's single
write lock per job; batching shares them. Each piece of work still runs its own
ownership re-check inside the shared transaction, so a worker that lost a job
cannot write it. If one piece fails, the batch is rolled back and every piece is
run again alone, so one bad job never loses the others' results.

On PostgreSQL two batches commit at once (each on its own connection): a batch's
pieces run one after another, each a round trip, so a single batch in flight
would leave the worker waiting on the network most of the time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from openagg.db.engine import Database

log = logging.getLogger("openagg.batcher")

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]

# Enough to share the write cost widely; small enough that the write lock is
# never held for long (other writers, like the API and claims, wait behind it).
MAX_BATCH = 50


class WriteBatcher:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH, flushers: int | None = None):
        self.db = db
        self.max_batch = max_batch
        # Batches in flight at once. SQLite has one writer at a time: a second batch
        # would only queue for its lock.
        self.flushers = flushers or (1 if db.sqlite else 2)
        self._queue: list[tuple[Work, asyncio.Future[Any]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work(session)`` in a write transaction shared with other callers;
        returns its result once that transaction has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if len(self._flushing) < self.flushers:
            flusher = asyncio.create_task(self._flush())
            self._flushing.add(flusher)
            flusher.add_done_callback(self._flushing.discard)
        # The flusher owns the work from here: a cancelled caller must not cancel
        # a transaction that also carries other jobs' results.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        # Work that arrives while every flusher is committing waits for the next batch.
        batch: list[tuple[Work, asyncio.Future[Any]]] = []
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._commit(batch)
        except BaseException:  # cancelled (shutdown): nothing of this batch committed
            for _, future in batch + self._queue:
                future.cancel()
            self._queue.clear()
            raise

    async def _commit(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        try:
            async with self.db.write() as session:
                results = [await work(session) for work, _ in batch]
        except Exception as exc:
            if len(batch) > 1:
                log.warning(
                    "a batched write failed (%s); retrying its %d parts alone", exc, len(batch)
                )
                for item in batch:
                    await self._commit([item])
                return
            _, future = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

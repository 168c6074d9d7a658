"""A worker: claims jobs and runs many of them concurrently on one event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import socket
import uuid

from sqlalchemy import update

from openagg.db.models import Job
from openagg.engine.queue import claim, renew_leases
from openagg.engine.runner import Runner
from openagg.runtime import Runtime

log = logging.getLogger("openagg.worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(self, rt: Runtime, concurrency: int | None = None):
        self.rt = rt
        self.concurrency = concurrency or rt.settings.worker_concurrency
        self.id = new_worker_id()
        self.runner = Runner(rt, self.id)
        self.running: dict[int, asyncio.Task[None]] = {}

    @property
    def lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.rt.settings.lease_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        try:
            while not stop.is_set():
                started = await self.claim_and_start()
                if not started:
                    await self._wait_for_work(stop)
        finally:
            heartbeat.cancel()
            await self._release(grace=5.0)

    async def claim_and_start(self) -> int:
        free = self.concurrency - len(self.running)
        try:
            ids = await claim(
                self.rt.db, worker_id=self.id, limit=free, now=self.rt.now(), lease=self.lease
            )
        except Exception:
            log.exception("claiming jobs failed; retrying")
            await asyncio.sleep(1)
            return 0
        for job_id in ids:
            task = asyncio.create_task(self.runner.run(job_id))
            self.running[job_id] = task
            task.add_done_callback(functools.partial(self._done, job_id))
        return len(ids)

    def _done(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self.running.pop(job_id, None)
        self.rt.job_enqueued.set()  # a slot is free: look for more work at once

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        """Until a job is enqueued, the poll interval passes, or a stop is asked for
        (a long poll interval must not delay shutdown)."""
        event = self.rt.job_enqueued
        waits = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
        await asyncio.wait(
            waits,
            timeout=self.rt.settings.poll_interval_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in waits:
            task.cancel()
        event.clear()

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        every = self.rt.settings.lease_seconds / 3
        while not stop.is_set():
            await asyncio.sleep(every)
            try:
                await renew_leases(
                    self.rt.db,
                    worker_id=self.id,
                    job_ids=list(self.running),
                    now=self.rt.now(),
                    lease=self.lease,
                )
            except Exception:
                log.exception("lease renewal failed")

    async def _release(self, grace: float) -> None:
        """On a clean stop, let running jobs finish briefly, then hand the rest back."""
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=grace)
        left = list(self.running)
        for task in self.running.values():
            task.cancel()
        if left:
            async with self.rt.db.write() as s:
                await s.execute(
                    update(Job)
                    .where(Job.id.in_(left), Job.worker_id == self.id, Job.state == "running")
                    .values(
                        state="queued",
                        worker_id=None,
                        lease_until=None,
                        attempts=Job.attempts - 1,  # a clean stop is not a failed attempt
                    )
                    .execution_options(synchronize_session=False)
                )

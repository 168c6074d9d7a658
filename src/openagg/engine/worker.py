"""A worker: claims jobs and runs many of them concurrently on one event loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import heapq
import logging
import os
import socket
import uuid

from openagg.engine.runner import Runner
from openagg.queue import claim, default_caps, hand_back, renew_leases
from openagg.runtime import Runtime

log = logging.getLogger("openagg.worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# A worker claims in batches of about a quarter of its slots: one claim transaction
# then starts many jobs instead of one per finished job. It holds that many jobs
# claimed ahead, so a slot that frees starts the next job at once instead of waiting
# for a claim (on SQLite, a claim waits for the write in progress). With no job held
# ahead, it claims this long after the first slot freed, so a long job still leaves
# no slot idle for long.
CLAIM_FRACTION = 4
CLAIM_DELAY_SECONDS = 0.01


class Worker:
    def __init__(self, rt: Runtime, concurrency: int | None = None, prefetch: int | None = None):
        self.rt = rt
        self.concurrency = concurrency or rt.settings.worker_concurrency
        self.id = new_worker_id()
        self.runner = Runner(rt, self.id)
        self.runner.on_settling = self._settling
        # Jobs at the institution (each holds one of the ``concurrency`` slots), and
        # jobs whose work there is over, waiting for their final write (at most
        # ``concurrency`` more: the slots must not outrun the writes).
        self.running: dict[int, asyncio.Task[None]] = {}
        self.settling: dict[int, asyncio.Task[None]] = {}
        self.claim_batch = max(1, self.concurrency // CLAIM_FRACTION)
        self.claim_delay = CLAIM_DELAY_SECONDS
        # Jobs claimed (running and leased in the database) that wait for a slot,
        # foreground first: (priority, job id).
        self.prefetch = self.claim_batch if prefetch is None else prefetch
        self.ready: list[tuple[int, int]] = []
        self._loading: list[int] = []  # claimed, their contexts being read
        # With jobs held ahead, claim once half of them have started.
        self.claim_at = max(1, self.prefetch // 2) if self.prefetch else self.claim_batch
        self._stopping = False
        # Set when enough slots are free (or have been for long enough) to claim.
        self._slots_free = asyncio.Event()
        self._claim_timer: asyncio.TimerHandle | None = None

    @property
    def lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.rt.settings.lease_seconds)

    @property
    def free(self) -> int:
        """How many jobs to claim now."""
        held = len(self.running) + len(self.ready) + len(self._loading)
        in_flight = held + len(self.settling)
        limit = self.concurrency + self.prefetch
        return max(0, min(limit - held, limit + self.concurrency - in_flight))

    def _slot_open(self) -> bool:
        running = len(self.running)
        return running < self.concurrency and running + len(self.settling) < 2 * self.concurrency

    async def run(self, stop: asyncio.Event) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        try:
            while not stop.is_set():
                await self.claim_and_start()
                await self._wait_for_claim(stop)
        finally:
            heartbeat.cancel()
            await self._release(grace=5.0)
            self._cancel_claim_timer()

    async def claim_and_start(self) -> int:
        self._slots_free.clear()
        self._cancel_claim_timer()
        free = self.free
        idle = self.concurrency - len(self.running) - len(self.ready) - len(self._loading)
        slots = max(0, min(free, idle))  # the rest would be held ahead
        try:
            ids = await claim(
                self.rt.db,
                worker_id=self.id,
                limit=slots,
                ahead=free - slots,
                now=self.rt.now(),
                lease=self.lease,
                defaults=default_caps(self.rt.settings),  # this runtime's, not the process's
            )
        except Exception:
            log.exception("claiming jobs failed; retrying")
            await asyncio.sleep(1)
            return 0
        if not ids:
            return 0
        self._loading = ids  # (left set if cancelled: ``_release`` hands them back)
        try:
            priorities = await self.runner.prepare(ids)
        except Exception:  # each job then loads its own when it starts
            log.exception("loading claimed jobs failed")
            priorities = dict.fromkeys(ids, 0)
        self._loading = []
        for job_id, priority in priorities.items():
            heapq.heappush(self.ready, (priority, job_id))
        self._start_ready()
        return len(ids)

    def _start_ready(self) -> None:
        while self.ready and self._slot_open() and not self._stopping:
            _, job_id = heapq.heappop(self.ready)
            task = asyncio.create_task(self.runner.run(job_id))
            self.running[job_id] = task
            task.add_done_callback(functools.partial(self._done, job_id))

    def _settling(self, job_id: int) -> None:
        task = self.running.pop(job_id, None)
        if task is not None:
            self.settling[job_id] = task
            self._slot_freed()

    def _done(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self.running.pop(job_id, None)
        self.settling.pop(job_id, None)
        self._slot_freed()

    def _slot_freed(self) -> None:
        # A free slot takes a job held ahead. Otherwise it may take a job held back (a
        # cap, a full batch) or one that came while all slots were busy: claim for it
        # soon, together with the next ones. Nothing to claim (the slot went to jobs
        # whose contexts are being read): no timer, or a stale one would outlive them.
        self._start_ready()
        free = self.free
        if free >= self.claim_at:
            self._slots_free.set()
        elif free and self._slot_open() and not (self._claim_timer or self._slots_free.is_set()):
            self._claim_timer = asyncio.get_running_loop().call_later(
                self.claim_delay, self._slots_free.set
            )

    def _cancel_claim_timer(self) -> None:
        if self._claim_timer is not None:
            self._claim_timer.cancel()
            self._claim_timer = None

    async def _wait_for_claim(self, stop: asyncio.Event) -> None:
        """Until it is time to claim again: slots freed (``_done``), a job was
        enqueued while a slot is free, the poll interval passed, or a stop is asked
        for (a long poll interval must not delay shutdown). A job enqueued while
        every slot is busy is claimed with the freed slots."""
        enqueued = self.rt.job_enqueued
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.rt.settings.poll_interval_seconds
        while not (stop.is_set() or self._slots_free.is_set()):
            timeout = deadline - loop.time()
            if timeout <= 0 or (enqueued.is_set() and self.free > 0):
                break
            events = [self._slots_free, stop] + ([enqueued] if self.free > 0 else [])
            waits = [asyncio.create_task(event.wait()) for event in events]
            try:
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()
        enqueued.clear()

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        every = self.rt.settings.lease_seconds / 3
        while not stop.is_set():
            await asyncio.sleep(every)
            await self.renew()

    async def renew(self) -> None:
        """Extend the leases of this worker's jobs, those waiting for a slot or for
        their write too."""
        try:
            await renew_leases(
                self.rt.db,
                worker_id=self.id,
                job_ids=[*self.running, *self.settling, *self._waiting_for_slot()],
                now=self.rt.now(),
                lease=self.lease,
            )
        except Exception:
            log.exception("lease renewal failed")

    def _waiting_for_slot(self) -> list[int]:
        return [*self._loading, *(job_id for _, job_id in self.ready)]

    async def _release(self, grace: float) -> None:
        """On a clean stop, let running jobs finish briefly, then hand the rest back,
        with those that never started."""
        self._stopping = True
        waiting = self._waiting_for_slot()
        self.ready.clear()
        self.runner.forget(waiting)
        tasks = {**self.running, **self.settling}
        if tasks:
            await asyncio.wait(list(tasks.values()), timeout=grace)
        left = waiting + [job_id for job_id, task in tasks.items() if not task.done()]
        for task in tasks.values():
            task.cancel()
        if left:
            async with self.rt.db.write() as s:
                await hand_back(s, left, never_started=set(waiting), worker_id=self.id)

"""Wake idle workers the moment any process enqueues a job (PostgreSQL).

A trigger on ``jobs`` (migration 0004) runs ``pg_notify('openagg_jobs')`` when a
job is inserted or put back to ``queued``. The notification belongs to the
enqueueing transaction: PostgreSQL delivers it on commit, never for a rollback.
This module holds one dedicated asyncpg connection per process that LISTENs on the
channel and sets ``Runtime.job_enqueued``, the event the worker already waits on,
so a job enqueued by another process starts within milliseconds instead of on the
worker's next poll. The poll stays as a safety net.

The connection is watched with a periodic ``SELECT 1``; when the database goes
away the listener reconnects with backoff, and wakes the worker once on every
(re)connect, since jobs may have been enqueued while nobody listened.

SQLite has no cross-process notification: there, the worker polls
(``OPENAGG_POLL_INTERVAL_SECONDS``) and in-process enqueues set the event directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from openagg.runtime import Runtime

log = logging.getLogger("openagg.wakeup")

CHANNEL = "openagg_jobs"  # the channel migration 0004's trigger notifies
KEEPALIVE_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0
RECONNECT_MIN_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from a ``postgresql+asyncpg://`` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_for_jobs(rt: Runtime, stop: asyncio.Event) -> None:
    """Until ``stop``: set ``rt.job_enqueued`` on every job notification."""
    if rt.db.sqlite or not rt.settings.listen_for_jobs:
        return
    dsn = asyncpg_dsn(rt.settings.database_url)

    def wake(*_args: Any) -> None:
        rt.job_enqueued.set()

    backoff = RECONNECT_MIN_SECONDS
    while not stop.is_set():
        try:
            conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            # The exception's type only: its text could carry the connection string.
            log.warning(
                "job listener cannot reach the database (%s); retrying in %.1fs",
                type(exc).__name__,
                backoff,
            )
            await _sleep_unless_stopped(stop, backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)
            continue
        backoff = RECONNECT_MIN_SECONDS
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await conn.add_listener(CHANNEL, wake)
            wake()  # jobs may have been enqueued while nobody listened
            log.info("listening for new jobs")
            await _watch(conn, stop, lost)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("job listener lost its connection (%s); reconnecting", type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT_SECONDS)
            if not conn.is_closed():
                conn.terminate()


async def _watch(conn: asyncpg.Connection, stop: asyncio.Event, lost: asyncio.Event) -> None:
    """Return when asked to stop; raise when the connection closes or stops answering."""
    while not stop.is_set():
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
        try:
            await asyncio.wait(waits, timeout=KEEPALIVE_SECONDS, return_when="FIRST_COMPLETED")
        finally:
            for waiting in waits:
                waiting.cancel()
        if stop.is_set():
            return
        if lost.is_set() or conn.is_closed():
            raise asyncpg.InterfaceError("connection closed")
        await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_SECONDS)


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

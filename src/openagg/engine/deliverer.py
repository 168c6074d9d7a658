"""The webhook deliverer: sends the outbox (``services/webhooks.py``) to the clients'
endpoints.

Deliveries are claimed with a lease, like jobs (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so any number of processes can deliver at
once. A delivery is claimable only when no older delivery with the same endpoint and
ordering key (the member) is still pending: each member's events reach each endpoint
one at a time, in order. A failed POST is retried with exponential backoff and jitter
until it succeeds or runs out of attempts or age (then ``failed``). A deliverer that
dies mid-POST loses its lease and another one sends again: delivery is at least once,
and the receiver de-duplicates with ``webhook-id``.

The deliverer runs in its own task with its own HTTP client and short transactions, so
a slow or dead receiver never holds up aggregation.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import aliased

from openagg import metrics
from openagg.db.engine import Database
from openagg.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from openagg.domain.states import DeliveryState
from openagg.netguard import address_allowed
from openagg.runtime import Runtime
from openagg.services.webhooks import (
    PRIVATE_ADDRESS_HINT,
    open_secret,
    retry_delay,
    sign,
)

log = logging.getLogger("openagg.webhooks")

USER_AGENT = "OpenAgg-Webhooks/1"


def new_deliverer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def claim(
    db: Database, *, deliverer_id: str, limit: int, now: dt.datetime, lease: dt.timedelta
) -> list[int]:
    """Lease up to ``limit`` due deliveries, each the oldest pending one of its member
    and endpoint; returns their ids."""
    if limit <= 0:
        return []
    d = WebhookDelivery
    older = aliased(WebhookDelivery)
    behind_older = exists().where(
        older.endpoint_id == d.endpoint_id,
        older.ordering_key == d.ordering_key,
        older.state == DeliveryState.PENDING,
        older.id < d.id,
    )
    enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
    due = (
        select(d.id)
        .where(
            d.state == DeliveryState.PENDING,
            d.next_attempt_at <= now,
            or_(d.lease_until.is_(None), d.lease_until < now),
            d.endpoint_id.in_(enabled),
            ~behind_older,
        )
        .order_by(d.id)
        .limit(limit)
    )
    if not db.sqlite:
        due = due.with_for_update(skip_locked=True)
    async with db.write() as session:
        result = await session.execute(
            update(d)
            .where(d.id.in_(due.scalar_subquery()))
            .values(lease_until=now + lease, deliverer_id=deliverer_id, attempts=d.attempts + 1)
            .returning(d.id)
            .execution_options(synchronize_session=False)
        )
        return sorted(result.scalars())


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Deliverer:
    def __init__(self, rt: Runtime, concurrency: int | None = None):
        self.rt = rt
        self.id = new_deliverer_id()
        self.concurrency = concurrency or rt.settings.webhook_concurrency
        self.timeout = rt.settings.webhook_timeout_seconds
        # Longer than one POST can take, so a live deliverer never loses its lease.
        self.lease = dt.timedelta(seconds=self.timeout + 30)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self._done = asyncio.Event()
        # Counts finished deliveries: one that ends while a claim runs may have unblocked
        # the next of its member after the claim's snapshot, so the caller claims again.
        self._finished_count = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; POSTs still in flight then get a short grace."""
        try:
            while not stop.is_set():
                finished_before = self._finished_count
                started = await self._fill()
                if started or self._finished_count != finished_before:
                    continue
                self._done.clear()
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._done.wait()),
                ]
                await asyncio.wait(
                    waiters,
                    timeout=self.rt.settings.webhook_poll_interval_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for w in waiters:
                    w.cancel()
        finally:
            if self.in_flight:
                await asyncio.wait(list(self.in_flight.values()), timeout=5)
            for task in self.in_flight.values():
                task.cancel()  # its lease runs out and another deliverer sends it again
            await self.http.aclose()

    async def drain(self, timeout: float = 60) -> None:
        """Deliver everything due now (and what becomes due as older events of the
        same member go out), then return. For tests and one-off runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finished_before = self._finished_count
            started = await self._fill()
            if started is None or self._finished_count != finished_before:
                continue  # the claim failed (it waited before answering): try again
            if not started and not self.in_flight:
                return
            if self.in_flight and not started:
                await asyncio.wait(
                    list(self.in_flight.values()), return_when=asyncio.FIRST_COMPLETED
                )
        raise TimeoutError("webhook deliveries still in flight")

    async def _fill(self) -> int | None:
        """Start deliveries in the free slots; how many, or None if the claim failed."""
        free = self.concurrency - len(self.in_flight)
        try:
            ids = await claim(
                self.rt.db,
                deliverer_id=self.id,
                limit=free,
                now=self.rt.now(),
                lease=self.lease,
            )
        except Exception:
            log.exception("claiming webhook deliveries failed; retrying")
            await asyncio.sleep(1)
            return None
        for delivery_id in ids:
            task = asyncio.create_task(self._deliver(delivery_id))
            self.in_flight[delivery_id] = task
            task.add_done_callback(functools.partial(self._finished, delivery_id))
        return len(ids)

    def _finished(self, delivery_id: int, _task: asyncio.Task[None]) -> None:
        self.in_flight.pop(delivery_id, None)
        self._finished_count += 1
        self._done.set()

    async def _deliver(self, delivery_id: int) -> None:
        try:
            async with self.rt.db.read() as s:
                row = (
                    await s.execute(
                        select(WebhookEvent, WebhookEndpoint)
                        .join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
                        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                        .where(WebhookDelivery.id == delivery_id)
                    )
                ).first()
            if row is None:  # the endpoint was deleted meanwhile
                return
            event, endpoint = row
            outcome = await self._post(event, endpoint)
            await self._record(delivery_id, outcome)
        except Exception:
            # The lease runs out and the delivery is tried again.
            log.exception("webhook delivery %s could not be processed", delivery_id)

    async def _post(self, event: WebhookEvent, endpoint: WebhookEndpoint) -> Outcome:
        body = orjson.dumps(event.payload)
        timestamp = int(time.time())  # wall time: the receiver checks it against its clock
        headers = {
            "content-type": "application/json",
            "webhook-id": event.guid,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(open_secret(self.rt, endpoint), event.guid, timestamp, body),
        }
        if event.callback_payload:
            headers["x-callback-payload"] = event.callback_payload
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = await self._refused_address(endpoint.url)
        if error is not None:
            return Outcome(None, error, 0)
        try:
            async with asyncio.timeout(self.timeout):  # a whole POST, not each read
                response = await self.http.post(endpoint.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except (TimeoutError, httpx.TimeoutException):
            error = f"no response within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            # The type and message only: never the request, whose headers hold a signature.
            error = f"{type(exc).__name__}: {exc}"[:500]
        return Outcome(status_code, error, int((time.monotonic() - started) * 1000))

    async def _refused_address(self, url: str) -> str | None:
        """Why this URL may not be posted to: its host resolves to a private address.

        Checked on every delivery, because a name can change what it points at; a name
        that re-resolves between this check and the POST is not caught (DNS rebinding).
        """
        if self.rt.settings.webhook_allow_private_addresses:
            return None
        parsed = httpx.URL(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
            )
        except OSError as exc:
            return f"cannot resolve {parsed.host}: {exc.strerror or exc}"[:500]
        for *_, sockaddr in infos:
            if not address_allowed(str(sockaddr[0])):
                return f"{parsed.host} resolves to a private address; {PRIVATE_ADDRESS_HINT}"
        return None

    async def _record(self, delivery_id: int, outcome: Outcome) -> None:
        s_ = self.rt.settings
        async with self.rt.db.write() as s:
            delivery = await s.scalar(
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.deliverer_id == self.id,
                    WebhookDelivery.state == DeliveryState.PENDING,
                )
                .with_for_update()
            )
            if delivery is None:  # our lease ran out and another deliverer took it
                return
            now = self.rt.now()
            metrics.observe_webhook_post(outcome.succeeded)
            s.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempted_at=now,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    succeeded=outcome.succeeded,
                )
            )
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            delivery.lease_until = None
            if outcome.succeeded:
                delivery.state = DeliveryState.DELIVERED
                delivery.delivered_at = now
                return
            retry_at = now + dt.timedelta(
                seconds=retry_delay(
                    delivery.attempts, s_.webhook_retry_base_seconds, s_.webhook_retry_max_seconds
                )
            )
            too_old = retry_at > delivery.retry_window_start + dt.timedelta(
                seconds=s_.webhook_max_age_seconds
            )
            if delivery.attempts >= s_.webhook_max_attempts or too_old:
                delivery.state = DeliveryState.FAILED
                delivery.failed_at = now
                log.warning(
                    "webhook delivery %s failed after %d attempts: %s",
                    delivery.guid,
                    delivery.attempts,
                    outcome.error,
                )
            else:
                delivery.next_attempt_at = retry_at


async def run_deliverer(rt: Runtime, stop: asyncio.Event) -> None:
    """The deliverer loop of a ``serve`` or ``worker`` process (``OPENAGG_WEBHOOKS_ENABLED``)."""
    if not rt.settings.webhooks_enabled:
        return
    with contextlib.suppress(asyncio.CancelledError):
        await Deliverer(rt).run(stop)

"""Webhooks end to end: events and their exact payloads, the transactional outbox,
signed at-least-once delivery in order per member to a real HTTP receiver, and the
management API (docs/webhooks.md)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from openagg.db.models import WebhookDelivery, WebhookEvent
from openagg.domain.statuses import END_USER_ACTIONABLE, STATUS_IDS, Status
from openagg.engine import deliverer as deliverer_module
from openagg.engine.deliverer import Deliverer
from openagg.engine.scheduler import tick
from openagg.services import admin, webhooks
from openagg.services.clients import create_client
from openagg.services.webhooks import address_allowed
from openagg.settings import Settings
from tests.conftest import Platform, free_port, make_platform, settings_for
from tests.integration.api_helpers import (
    create_member,
    institution_credentials,
    member,
    new_user,
)
from tests.support import credentials_for

# --------------------------------------------------------------------- the receiver


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (0: it never answered)

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """An HTTP/1.1 server on a real socket whose behaviour the test switches:
    ``ok`` (204), ``error`` (500), ``hang`` (never answers) or down (not listening)."""

    port: int
    mode: str = "ok"
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None
    hanging: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends every hang

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            record = Received(headers, body, 0)
            self.received.append(record)
            if self.mode == "hang":
                self.hanging += 1
                try:
                    await self.release.wait()
                finally:
                    self.hanging -= 1
                return  # the sender gave up long ago: close without an answer
            if self.delay:
                await asyncio.sleep(self.delay)
            record.status = 204 if self.mode == "ok" else 500
            reason = "No Content" if record.status == 204 else "Internal Server Error"
            writer.write(
                f"HTTP/1.1 {record.status} {reason}\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(free_port())
    await r.start()
    yield r
    await r.stop()


def verify(secret: str, r: Received, tolerance: int = 300) -> None:
    """A receiver's check, written from the Standard Webhooks specification."""
    msg_id = r.headers["webhook-id"]
    timestamp = r.headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= tolerance, "stale or future timestamp"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + r.body, hashlib.sha256).digest()
    ).decode()
    offered = [s.split(",", 1)[1] for s in r.headers["webhook-signature"].split() if "," in s]
    assert any(hmac.compare_digest(expected, sig) for sig in offered), "bad signature"


# ----------------------------------------------------------------------- helpers


async def add_endpoint(p: Platform, url: str, **fields: Any) -> dict[str, Any]:
    r = await p.http.post("/webhook_endpoints", json={"webhook_endpoint": {"url": url, **fields}})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["webhook_endpoint"]
    return body


async def connect(p: Platform, user: str, password: str = "anything", **headers: str) -> str:
    creds = credentials_for(await institution_credentials(p.http, "mxbank"), "mxuser", password)
    r = await p.http.post(
        f"/users/{user}/members",
        json={"member": {"institution_code": "mxbank", "credentials": creds}},
        headers=headers,
    )
    assert r.status_code in (200, 202), r.text
    await p.drain()
    return str(r.json()["member"]["guid"])


async def deliver_all(p: Platform) -> None:
    deliverer = Deliverer(p.rt)
    try:
        await deliverer.drain()
    finally:
        await deliverer.http.aclose()


def by_type(received: list[Received]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in received:
        out.setdefault(r.json["type"], []).append(r.json)
    return out


def assert_shape(body: dict[str, Any], shape: dict[str, type | tuple[type, ...]]) -> None:
    assert set(body) == set(shape), f"{body['type']}: {sorted(set(body) ^ set(shape))}"
    for key, types in shape.items():
        assert isinstance(body[key], types), f"{body['type']}.{key}={body[key]!r}"
        if types is int:  # bool is an int in Python; MX's integers never are bools
            assert not isinstance(body[key], bool), key


STR, INT, BOOL, NONE = str, int, bool, type(None)
COMPLETED = {
    "action": STR,
    "completed_at": INT,
    "completed_on": STR,
    "member_guid": STR,
    "type": STR,
    "user_guid": STR,
}
SHAPES: dict[str, dict[str, Any]] = {
    "AGGREGATION": {
        **COMPLETED,
        "is_background": BOOL,
        "job_guid": STR,
        "transactions_created_count": INT,
        "transactions_updated_count": INT,
        "user_id": (STR, NONE),
    },
    "BALANCE": COMPLETED,
    "HISTORY": COMPLETED,
    "VERIFICATION": {**COMPLETED, "accounts": list, "job_guid": STR, "user_id": (STR, NONE)},
    "IDENTIFICATION": {**COMPLETED, "accounts": list, "job_guid": STR, "user_id": (STR, NONE)},
    "CONNECTION_STATUS": {
        "action": STR,
        "connection_status": STR,
        "connection_status_id": INT,
        "connection_status_message": STR,
        "member_guid": STR,
        "type": STR,
        "user_guid": STR,
    },
    "MEMBER": {
        "action": STR,
        "aggregated_at": (INT, NONE),
        "background_aggregation_is_disabled": BOOL,
        "connection_status": STR,
        "connection_status_id": INT,
        "connection_status_message": STR,
        "created_at": INT,
        "guid": STR,
        "id": (STR, NONE),
        "institution_code": STR,
        "institution_guid": STR,
        "is_being_aggregated": BOOL,
        "is_managed_by_user": BOOL,
        "is_manual": BOOL,
        "is_oauth": BOOL,
        "metadata": (STR, NONE),
        "most_recent_job_detail_code": NONE,
        "most_recent_job_detail_text": NONE,
        "most_recent_job_guid": NONE,
        "name": STR,
        "needs_updated_credentials": BOOL,
        "oauth_window_uri": NONE,
        "successfully_aggregated_at": (INT, NONE),
        "type": STR,
        "use_cases": (list, NONE),
        "user_guid": STR,
        "user_id": (STR, NONE),
    },
}


# ------------------------------------------------------------------------- events


async def test_every_event_type_with_mx_payloads(platform: Platform, receiver: Receiver) -> None:
    p = platform
    endpoint = await add_endpoint(p, receiver.url)
    secret = endpoint["secret"]
    user = await new_user(p.http, id="partner-user-1")
    guid = await connect(p, user, **{"X-CALLBACK-PAYLOAD": "Y2FsbGJhY2s="})
    r = await p.http.put(f"/users/{user}/members/{guid}", json={"member": {"metadata": "m1"}})
    assert r.status_code == 200, r.text
    for job in ("check_balance", "extend_history", "verify", "identify"):
        p.clock.advance(hours=4)
        r = await p.http.post(f"/users/{user}/members/{guid}/{job}")
        assert r.status_code in (200, 202), (job, r.text)
        await p.drain()
    p.clock.advance(hours=30)  # past the background interval: the scheduler runs it
    await tick(p.rt)
    await p.drain()
    # The 8 actionable statuses send CONNECTION_STATUS; others (CREATED, CONNECTED) don't.
    denied = await connect(p, user, "UNAUTHORIZED")
    challenged = await connect(p, user, "challenge")
    await admin.set_member_status(p.rt, challenged, Status.CLOSED)
    r = await p.http.delete(f"/users/{user}/members/{denied}")
    assert r.status_code == 204
    await deliver_all(p)

    got = receiver.delivered()
    for r in got:
        verify(secret, r)
        assert r.headers["content-type"] == "application/json"
        assert_shape(r.json, SHAPES[r.json["type"]])
    events = by_type(got)
    assert set(events) == set(SHAPES)

    mine = [r for r in got if r.json.get("member_guid", r.json.get("guid")) == guid]
    assert all(r.headers.get("x-callback-payload") == "Y2FsbGJhY2s=" for r in mine)
    assert [(e["type"], e["action"]) for e in (r.json for r in mine)] == [
        ("MEMBER", "created"),
        ("AGGREGATION", "member_data_updated"),
        ("MEMBER", "updated"),
        ("BALANCE", "member_data_updated"),
        ("HISTORY", "member_data_updated"),
        ("VERIFICATION", "member_data_updated"),
        ("IDENTIFICATION", "member_data_updated"),
        ("AGGREGATION", "member_data_updated"),
    ]
    foreground, background = [e for e in events["AGGREGATION"] if e["member_guid"] == guid]
    assert foreground["is_background"] is False and background["is_background"] is True
    assert foreground["transactions_created_count"] > 0
    assert foreground["user_id"] == "partner-user-1"
    completed = dt.datetime.fromtimestamp(foreground["completed_at"], dt.UTC)
    assert foreground["completed_on"] == completed.date().isoformat() == "2026-03-02"
    accounts = await p.http.get(f"/users/{user}/members/{guid}/accounts")
    account_guids = sorted(a["guid"] for a in accounts.json()["accounts"])
    assert sorted(events["VERIFICATION"][0]["accounts"]) == account_guids
    created = next(e for e in events["MEMBER"] if e["action"] == "created" and e["guid"] == guid)
    assert created["connection_status"] == "CREATED" and created["is_being_aggregated"] is True
    updated = next(e for e in events["MEMBER"] if e["action"] == "updated" and e["guid"] == guid)
    assert updated["metadata"] == "m1" and updated["connection_status_id"] == 6
    assert isinstance(updated["aggregated_at"], int)

    statuses = [(e["member_guid"], e["connection_status"]) for e in events["CONNECTION_STATUS"]]
    assert sorted(statuses) == sorted([(denied, "DENIED"), (challenged, "CHALLENGED")])
    for e in events["CONNECTION_STATUS"]:
        assert e["action"] == "CHANGED"
        assert e["connection_status_id"] == STATUS_IDS[Status(e["connection_status"])]
        assert Status(e["connection_status"]) in END_USER_ACTIONABLE
    member_actions = {(e["guid"], e["action"]) for e in events["MEMBER"]}
    assert {(denied, "deleted"), (challenged, "updated")} <= member_actions
    closed = next(
        e for e in events["MEMBER"] if e["guid"] == challenged and e["action"] == "updated"
    )
    assert closed["connection_status"] == "CLOSED"


async def test_event_type_filter_and_other_clients(platform: Platform, receiver: Receiver) -> None:
    p = platform
    await add_endpoint(p, receiver.url, event_types=["CONNECTION_STATUS"])
    other = await create_client(p.rt, "Other client")
    async with p.rt.db.read() as s:
        before = await s.scalar(select(func.count()).select_from(WebhookEvent))
    user = await new_user(p.http)
    await connect(p, user)  # MEMBER and AGGREGATION: filtered out, so not even stored
    denied = await connect(p, user, "UNAUTHORIZED")
    await deliver_all(p)
    assert [r.json["member_guid"] for r in receiver.delivered()] == [denied]
    async with p.rt.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(WebhookEvent)) == before + 1
        other_events = await s.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.client_id == other.client.id)
        )
    assert other_events == 0


async def test_deleting_a_user_reports_each_of_its_members_deleted(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    await add_endpoint(p, receiver.url, event_types=["MEMBER"])
    user = await new_user(p.http)
    members = {await connect(p, user), await connect(p, user, "other-password")}
    assert (await p.http.delete(f"/users/{user}")).status_code == 204
    await deliver_all(p)
    deleted = {r.json["guid"] for r in receiver.delivered() if r.json["action"] == "deleted"}
    assert deleted == members


async def test_the_outbox_is_written_with_the_change_or_not_at_all(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    await add_endpoint(p, receiver.url)
    user = await new_user(p.http)
    guid = await connect(p, user)

    async def counts() -> tuple[int, int]:
        async with p.rt.db.read() as s:
            events = await s.scalar(select(func.count()).select_from(WebhookEvent))
            deliveries = await s.scalar(select(func.count()).select_from(WebhookDelivery))
        return events or 0, deliveries or 0

    before = await counts()
    # A change that fails after its event was emitted rolls the event back with it.
    from openagg.db.models import Member

    with pytest.raises(RuntimeError):
        async with p.rt.db.write() as s:
            m = await s.scalar(select(Member).where(Member.guid == guid))
            assert m is not None
            m.metadata_ = "never committed"
            await webhooks.member_event(s, p.rt, m, "updated")
            assert (await s.scalar(select(func.count()).select_from(WebhookEvent))) == before[0] + 1
            raise RuntimeError("the change fails")
    assert await counts() == before
    # Requests refused by the API emit nothing either.
    r = await p.http.put(
        f"/users/{user}/members/{guid}",
        json={"member": {"credentials": [{"guid": "CRD-nope", "value": "x"}]}},
    )
    assert r.status_code == 400
    r = await p.http.post(
        f"/users/{user}/members",
        json={"member": {"institution_code": "nope", "credentials": []}},
    )
    assert r.status_code == 400
    assert await counts() == before
    assert (await member(p.http, user, guid))["metadata"] is None


# ----------------------------------------------------------------------- delivery


def migrated(tmp_path: Path, **overrides: object) -> Settings:
    s = settings_for(tmp_path, webhook_timeout_seconds=0.5, **overrides)
    s.ensure_data_dir()
    return s


@pytest.fixture
def fast_retry_settings(tmp_path: Path) -> Settings:
    return migrated(
        tmp_path, webhook_retry_base_seconds=1, webhook_retry_max_seconds=4, webhook_max_attempts=50
    )


@pytest.fixture
def few_attempts_settings(tmp_path: Path) -> Settings:
    return migrated(
        tmp_path, webhook_retry_base_seconds=1, webhook_retry_max_seconds=1, webhook_max_attempts=3
    )


async def platform_with(settings: Settings) -> AsyncIterator[Platform]:
    p, _ = await make_platform(settings)
    yield p
    await p.http.aclose()
    await p.rt.db.dispose()


@pytest.fixture
async def fast_retry(fast_retry_settings: Settings) -> AsyncIterator[Platform]:
    async for p in platform_with(fast_retry_settings):
        yield p


@pytest.fixture
async def few_attempts(few_attempts_settings: Settings) -> AsyncIterator[Platform]:
    async for p in platform_with(few_attempts_settings):
        yield p


async def make_events(p: Platform, members: int, updates: int) -> list[str]:
    """Members with MEMBER created, AGGREGATION and ``updates`` MEMBER updated each."""
    user = await new_user(p.http)
    guids = [await connect(p, user, f"password-{i}") for i in range(members)]
    for i in range(updates):
        for g in guids:
            r = await p.http.put(
                f"/users/{user}/members/{g}", json={"member": {"metadata": str(i)}}
            )
            assert r.status_code == 200
    return guids


async def stored_events(p: Platform) -> dict[str, list[str]]:
    """Each member's event guids in the order they were written."""
    async with p.rt.db.read() as s:
        rows = await s.execute(
            select(WebhookEvent.member_guid, WebhookEvent.guid).order_by(WebhookEvent.id)
        )
        out: dict[str, list[str]] = {}
        for member_guid, guid in rows:
            out.setdefault(member_guid, []).append(guid)
    return out


def delivered_in_order(receiver: Receiver, expected: dict[str, list[str]]) -> None:
    """Every event delivered, each member's in order, nothing missing (duplicates
    are allowed by at-least-once delivery but must not reorder a member)."""
    seen: dict[str, list[str]] = {}
    for r in receiver.delivered():
        key = r.json.get("member_guid") or r.json["guid"]
        ids = seen.setdefault(key, [])
        if r.headers["webhook-id"] not in ids:
            ids.append(r.headers["webhook-id"])
    assert seen == expected


async def test_a_receiver_down_then_failing_then_slow_then_back_gets_everything_in_order(
    fast_retry: Platform,
) -> None:
    p = fast_retry
    receiver = Receiver(free_port())  # not listening yet: connection refused
    endpoint = await add_endpoint(p, receiver.url)
    await make_events(p, members=3, updates=2)
    expected = await stored_events(p)
    assert sum(map(len, expected.values())) == 3 * 4

    await deliver_all(p)  # refused: one attempt per member, the rest wait behind it
    assert receiver.received == []
    await receiver.start()
    receiver.mode = "error"
    p.clock.advance(seconds=5)
    await deliver_all(p)
    assert len(receiver.received) == 3 and not receiver.delivered()
    receiver.mode = "hang"
    p.clock.advance(seconds=5)
    started = time.monotonic()
    await deliver_all(p)
    assert time.monotonic() - started < 5  # 0.5 s timeouts, sent concurrently
    receiver.mode = "ok"
    for _ in range(10):
        p.clock.advance(seconds=5)
        await deliver_all(p)
    async with p.rt.db.read() as s:
        states = list(await s.scalars(select(WebhookDelivery.state)))
    assert states and set(states) == {"delivered"}
    delivered_in_order(receiver, expected)
    for r in receiver.delivered():
        verify(endpoint["secret"], r)

    # The first event of a member: refused, 500, timeout, then delivered.
    first_member = next(iter(expected))
    r = await p.http.get(
        "/webhook_deliveries",
        params={"member_guid": first_member, "event_type": "MEMBER", "records_per_page": 100},
    )
    assert r.status_code == 200, r.text
    oldest = r.json()["webhook_deliveries"][-1]
    assert oldest["status"] == "DELIVERED" and oldest["action"] == "created"
    outcomes = [(a["succeeded"], a["status_code"], a["error"]) for a in oldest["attempts"]]
    assert len(outcomes) == oldest["attempts_count"] == 4
    assert outcomes[0][0] is False and outcomes[0][1] is None and "Connect" in outcomes[0][2]
    assert outcomes[1] == (False, 500, "HTTP 500")
    assert outcomes[2][:2] == (False, None) and "no response" in outcomes[2][2]
    assert outcomes[3] == (True, 204, None)

    # Replay sends the same message again, with the same webhook-id.
    before = len(receiver.received)
    r = await p.http.post(f"/webhook_deliveries/{oldest['guid']}/replay")
    assert r.status_code == 202, r.text
    assert r.json()["webhook_delivery"]["status"] == "PENDING"
    r = await p.http.post(f"/webhook_deliveries/{oldest['guid']}/replay")
    assert r.status_code == 409  # already pending
    await deliver_all(p)
    assert len(receiver.received) == before + 1
    again = receiver.received[-1]
    assert again.headers["webhook-id"] == oldest["webhook_id"]
    assert again.json == oldest["payload"]
    verify(endpoint["secret"], again)
    r = await p.http.get(f"/webhook_deliveries/{oldest['guid']}")
    assert r.json()["webhook_delivery"]["status"] == "DELIVERED"
    assert len(r.json()["webhook_delivery"]["attempts"]) == 5
    await receiver.stop()


async def test_a_delivery_gives_up_after_its_attempts(few_attempts: Platform) -> None:
    p = few_attempts
    receiver = Receiver(free_port(), mode="error")
    await receiver.start()
    await add_endpoint(p, receiver.url, event_types=["MEMBER"])
    user = await new_user(p.http)
    r = await create_member(p.http, user, "x", skip_aggregation=True)
    assert r.status_code in (200, 202)
    for _ in range(5):
        await deliver_all(p)
        p.clock.advance(seconds=2)
    assert len(receiver.received) == 3
    r = await p.http.get("/webhook_deliveries", params={"status": "failed"})
    (failed,) = r.json()["webhook_deliveries"]
    assert failed["failed_at"] and failed["next_attempt_at"] is None
    assert failed["attempts_count"] == 3 and failed["last_status_code"] == 500
    await receiver.stop()


async def test_a_hanging_receiver_does_not_slow_aggregation(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    receiver.mode = "hang"
    await add_endpoint(p, receiver.url)
    # It polls for new events: at the default 1 s, its pickup could take as long as
    # the wait below allows (this test once failed so on a PostgreSQL run).
    p.rt.settings.webhook_poll_interval_seconds = 0.05
    stop = asyncio.Event()
    deliverer = Deliverer(p.rt)  # default 10 s timeout: it will be waiting all along
    task = asyncio.create_task(deliverer.run(stop))
    try:
        user = await new_user(p.http)
        started = time.monotonic()
        guids = []
        for _ in range(3):
            r = await create_member(p.http, user, f"password-{len(guids)}")
            guids.append(r.json()["member"]["guid"])
            await p.drain()
            for _ in range(150):  # the deliverer picks the MEMBER created event up
                if receiver.hanging:
                    break
                await asyncio.sleep(0.02)
            assert receiver.hanging
        assert time.monotonic() - started < 5
        for g in guids:
            assert (await member(p.http, user, g))["connection_status"] == "CONNECTED"
    finally:
        receiver.release.set()
        stop.set()
        await task


async def test_two_deliverers_never_send_twice_and_keep_each_members_order(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    receiver.delay = 0.01
    await add_endpoint(p, receiver.url)
    await make_events(p, members=6, updates=4)
    expected = await stored_events(p)
    first, second = Deliverer(p.rt, concurrency=4), Deliverer(p.rt, concurrency=4)
    try:
        await asyncio.gather(first.drain(), second.drain(), first.drain(), second.drain())
        for _ in range(3):  # a drain may end while the other still holds a member's head
            await asyncio.gather(first.drain(), second.drain())
    finally:
        await first.http.aclose()
        await second.http.aclose()
    ids = [r.headers["webhook-id"] for r in receiver.delivered()]
    assert len(ids) == len(set(ids)) == 6 * 6
    delivered_in_order(receiver, expected)


async def deliver_with_claim(
    p: Platform,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    claim: Callable[[Deliverer, Callable[..., Awaitable[list[int]]]], Any],
    *,
    members: int,
    updates: int,
) -> None:
    """``make_events``, then ``drain`` by a deliverer whose claims go through
    ``claim(deliverer, real_claim)``: every member's events must arrive, in order."""
    await add_endpoint(p, receiver.url)
    await make_events(p, members=members, updates=updates)
    expected = await stored_events(p)
    deliverer = Deliverer(p.rt)
    monkeypatch.setattr(deliverer_module, "claim", claim(deliverer, deliverer_module.claim))
    try:
        await deliverer.drain()
    finally:
        await deliverer.http.aclose()
    delivered_in_order(receiver, expected)


async def test_drain_goes_on_after_a_failed_claim(
    platform: Platform, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim that fails (the database away for a moment) is retried: ``drain`` must
    not take the failure for an empty queue and return with events undelivered."""
    failures = [ConnectionError("the database went away")]

    def failing_once(_d: Deliverer, real_claim: Callable[..., Awaitable[list[int]]]) -> Any:
        async def claim(*args: Any, **kwargs: Any) -> list[int]:
            if failures:
                raise failures.pop()
            return await real_claim(*args, **kwargs)

        return claim

    await deliver_with_claim(platform, receiver, monkeypatch, failing_once, members=2, updates=1)
    assert not failures


async def test_a_delivery_ending_during_a_claim_does_not_strand_the_next(
    platform: Platform, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a claim and a delivery's commit run side by side: a claim may see a
    member's head still pending, find nothing, and return after that head finished. The
    deliverer must claim again rather than believe the queue is empty."""

    def seeing_the_past(
        deliverer: Deliverer, real_claim: Callable[..., Awaitable[list[int]]]
    ) -> Any:
        async def claim(*args: Any, **kwargs: Any) -> list[int]:
            ids = await real_claim(*args, **kwargs)
            if not ids and deliverer.in_flight:  # what it saw predates these ending
                await asyncio.wait(list(deliverer.in_flight.values()))
            return ids

        return claim

    await deliver_with_claim(platform, receiver, monkeypatch, seeing_the_past, members=1, updates=2)


# ---------------------------------------------------------------------------- API


async def test_endpoint_api(platform: Platform, receiver: Receiver) -> None:
    p = platform
    created = await add_endpoint(p, receiver.url, event_types=["MEMBER", "AGGREGATION"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["enabled"] is True
    assert created["event_types"] == ["AGGREGATION", "MEMBER"]
    guid = created["guid"]
    own = await add_endpoint(p, receiver.url + "/2", secret="whsec_" + "A" * 32)
    assert own["secret"] == "whsec_" + "A" * 32

    responses = [
        await p.http.get("/webhook_endpoints"),
        await p.http.get(f"/webhook_endpoints/{guid}"),
        await p.http.put(
            f"/webhook_endpoints/{guid}",
            json={"webhook_endpoint": {"enabled": False, "event_types": None}},
        ),
        await p.http.put(
            f"/webhook_endpoints/{guid}", json={"webhook_endpoint": {"secret": new_secret()}}
        ),
    ]
    for r in responses:
        assert r.status_code == 200, r.text
        assert secret not in r.text and "whsec_" not in r.text and '"secret"' not in r.text
    listed = responses[0].json()
    assert listed["pagination"]["total_entries"] == 2
    assert responses[2].json()["webhook_endpoint"]["enabled"] is False
    assert responses[2].json()["webhook_endpoint"]["event_types"] is None

    # Another client sees none of it.
    other = await create_client(p.rt, "Other")
    token = base64.b64encode(f"{other.client.client_id}:{other.api_key}".encode()).decode()
    auth = {"Authorization": f"Basic {token}"}
    for method, path in [
        ("GET", f"/webhook_endpoints/{guid}"),
        ("PUT", f"/webhook_endpoints/{guid}"),
        ("DELETE", f"/webhook_endpoints/{guid}"),
        ("POST", "/webhook_deliveries/WHD-nope/replay"),
        ("GET", "/webhook_deliveries/WHD-nope"),
    ]:
        r = await p.http.request(
            method, path, headers=auth, json={"webhook_endpoint": {"enabled": True}}
        )
        assert r.status_code == 404, (method, path, r.text)
    r = await p.http.get("/webhook_endpoints", headers=auth)
    assert r.json()["webhook_endpoints"] == []
    r = await p.http.get("/webhook_endpoints", headers={"Authorization": "Basic eDp5"})
    assert r.status_code == 401

    r = await p.http.delete(f"/webhook_endpoints/{guid}")
    assert r.status_code == 204
    assert (await p.http.get(f"/webhook_endpoints/{guid}")).status_code == 404


def new_secret() -> str:
    return webhooks.new_secret()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"webhook_endpoint": {}}, "url"),
        ({"webhook_endpoint": {"url": "ftp://example.com/x"}}, "http"),
        ({"webhook_endpoint": {"url": "not a url"}}, "URL"),
        ({"webhook_endpoint": {"url": "https://e.example", "secret": "plain"}}, "whsec_"),
        ({"webhook_endpoint": {"url": "https://e.example", "secret": "whsec_c2hvcnQ="}}, "bytes"),
        (
            {"webhook_endpoint": {"url": "https://e.example", "event_types": ["NOPE"]}},
            "event_types",
        ),
        ({"webhook_endpoint": {"url": "https://e.example", "event_types": []}}, "event_types"),
        ({"webhook_endpoint": {"url": "https://e.example", "colour": "red"}}, "colour"),
        ({"webhook_endpoint": {"url": 5}}, "url"),
        ({"url": "https://e.example"}, "webhook_endpoint"),
    ],
)
async def test_bad_endpoint_input_is_a_clear_400(
    platform: Platform, body: dict[str, Any], message: str
) -> None:
    r = await platform.http.post("/webhook_endpoints", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    assert (await platform.http.get("/webhook_endpoints")).json()["webhook_endpoints"] == []


async def test_bad_update_and_list_input(platform: Platform, receiver: Receiver) -> None:
    p = platform
    guid = (await add_endpoint(p, receiver.url))["guid"]
    for body in [{"webhook_endpoint": {}}, {"webhook_endpoint": {"url": None}}, {}, []]:
        r = await p.http.put(f"/webhook_endpoints/{guid}", json=body)
        assert r.status_code == 400, (body, r.text)
    r = await p.http.put(f"/webhook_endpoints/{guid}", content=b"{nope")
    assert r.status_code == 400
    for params in [{"status": "lost"}, {"event_type": "NOPE"}, {"page": "0"}, {"page": "x"}]:
        r = await p.http.get("/webhook_deliveries", params=params)
        assert r.status_code == 400, (params, r.text)
    r = await p.http.get("/webhook_deliveries", params={"status": "delivered"})
    assert r.status_code == 200 and r.json()["pagination"]["total_entries"] == 0


# --------------------------------------------------------------------- SSRF guard


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_only_public_addresses_receive_webhooks(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


@pytest.fixture
def guarded_settings(tmp_path: Path) -> Settings:
    return migrated(tmp_path, webhook_allow_private_addresses=False)


@pytest.fixture
async def guarded(guarded_settings: Settings) -> AsyncIterator[Platform]:
    async for p in platform_with(guarded_settings):
        yield p


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.0.0.5/hook",
        # Legacy IPv4 literals the resolver reads as loopback or "this host".
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://0/hook",
    ],
)
async def test_private_receivers_are_refused_with_the_setting_to_change(
    guarded: Platform, url: str
) -> None:
    r = await guarded.http.post("/webhook_endpoints", json={"webhook_endpoint": {"url": url}})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "private or local address" in message
    assert "OPENAGG_WEBHOOK_ALLOW_PRIVATE_ADDRESSES" in message
    r = await guarded.http.post(
        "/webhook_endpoints", json={"webhook_endpoint": {"url": "https://hooks.example.com/x"}}
    )
    guid = r.json()["webhook_endpoint"]["guid"]
    r = await guarded.http.put(
        f"/webhook_endpoints/{guid}", json={"webhook_endpoint": {"url": url}}
    )
    assert r.status_code == 400, r.text


async def test_a_name_that_resolves_to_a_private_address_is_not_posted_to(
    guarded: Platform, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name checked at creation can point anywhere later: DNS (here a stand-in for
    it) turns hooks.example.com into loopback, and the delivery refuses it."""
    p = guarded
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo

    async def dns(host: str, *args: Any, **kwargs: Any) -> Any:
        return await resolve("127.0.0.1" if host == "hooks.example.com" else host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", dns)
    url = receiver.url.replace("127.0.0.1", "hooks.example.com")
    await add_endpoint(p, url, event_types=["MEMBER"])
    user = await new_user(p.http)
    r = await create_member(p.http, user, "x", skip_aggregation=True)
    assert r.status_code in (200, 202)
    await deliver_all(p)
    assert receiver.received == []
    (pending,) = (await p.http.get("/webhook_deliveries")).json()["webhook_deliveries"]
    assert pending["status"] == "PENDING" and pending["attempts_count"] == 1
    assert "resolves to a private address" in pending["last_error"]

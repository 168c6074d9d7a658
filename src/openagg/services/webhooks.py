"""Webhooks: the outbox, the events MX sends, and the client's endpoints.

``emit`` writes an event into the outbox inside the caller's transaction, with one
delivery row per endpoint subscribed to it, so an event exists exactly when the
change it reports was committed. ``engine/deliverer.py`` sends the deliveries later,
signed with the Standard Webhooks scheme (``sign``).

Adding an event type is one line in ``EventType``; then call ``emit`` with its payload
where the change happens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from pydantic import Field, StrictBool, StrictStr
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openagg import wire
from openagg.db.models import (
    Account,
    AccountNumber,
    AccountOwner,
    Client,
    Institution,
    Job,
    Member,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from openagg.domain.ids import new_guid
from openagg.domain.policy import JobKind, Trigger, background_disabled
from openagg.domain.states import DeliveryState
from openagg.domain.statuses import END_USER_ACTIONABLE, Status
from openagg.netguard import address_allowed, literal_address
from openagg.queue import active_job
from openagg.runtime import Runtime
from openagg.services.errors import BadRequest, Conflict, NotFound
from openagg.services.inputs import URL_MAX, Strict


class EventType(StrEnum):
    """The ``type`` of every webhook OpenAgg sends (MX's names)."""

    AGGREGATION = "AGGREGATION"
    BALANCE = "BALANCE"
    CONNECTION_STATUS = "CONNECTION_STATUS"
    HISTORY = "HISTORY"
    IDENTIFICATION = "IDENTIFICATION"
    MEMBER = "MEMBER"
    SUPPORT_TICKET = "SUPPORT_TICKET"  # OpenAgg extension: a ticket's status changed
    CONSENT = "CONSENT"  # OpenAgg extension: an OAuth member's consent ends soon
    VERIFICATION = "VERIFICATION"


# The event a job sends when it ends well.
JOB_EVENT = {
    JobKind.AGGREGATE: EventType.AGGREGATION,
    JobKind.BALANCE: EventType.BALANCE,
    JobKind.HISTORY: EventType.HISTORY,
    JobKind.VERIFY: EventType.VERIFICATION,
    JobKind.IDENTIFY: EventType.IDENTIFICATION,
}

# --------------------------------------------------------------------------- signing

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 random bytes")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _secret_context(endpoint: WebhookEndpoint) -> str:
    return f"{endpoint.guid}:webhook_secret"


def seal_secret(rt: Runtime, endpoint: WebhookEndpoint, secret: str) -> None:
    endpoint.secret_enc = rt.keys.seal(secret.encode(), _secret_context(endpoint).encode())


def open_secret(rt: Runtime, endpoint: WebhookEndpoint) -> str:
    return rt.keys.open(endpoint.secret_enc, _secret_context(endpoint).encode()).decode()


def retry_delay(attempt: int, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` (1 = the first retry): exponential,
    capped, with jitter over the upper half so many failures do not retry in step."""
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return delay / 2 + (rand or random).uniform(0, delay / 2)


# ---------------------------------------------------------------------------- outbox

Payload = dict[str, Any]


async def emit(
    session: AsyncSession,
    rt: Runtime,
    *,
    client_id: int,
    event_type: EventType,
    payload: Payload | Callable[[], Awaitable[Payload]],
    member_guid: str | None = None,
    callback_payload: str | None = None,
) -> WebhookEvent | None:
    """Write an event and its deliveries in the caller's transaction.

    ``payload`` may be a coroutine function, so that nothing is loaded when no
    endpoint listens (the common case for a client without webhooks). Returns the
    event, or None when no endpoint is subscribed.
    """
    endpoints = [
        e
        for e in await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.client_id == client_id, WebhookEndpoint.enabled.is_(True)
            )
        )
        if e.event_types is None or event_type.value in e.event_types
    ]
    if not endpoints:
        return None
    body = payload if isinstance(payload, dict) else await payload()
    now = rt.now()
    event = WebhookEvent(
        guid=new_guid("EVT"),
        client_id=client_id,
        member_guid=member_guid,
        event_type=event_type.value,
        action=str(body.get("action", "")),
        payload=body,
        callback_payload=callback_payload,
        created_at=now,
    )
    session.add(event)
    await session.flush()
    for endpoint in endpoints:
        session.add(
            WebhookDelivery(
                guid=new_guid("WHD"),
                client_id=client_id,
                event_id=event.id,
                endpoint_id=endpoint.id,
                ordering_key=member_guid or event.guid,
                state=DeliveryState.PENDING,
                attempts=0,
                next_attempt_at=now,
                retry_window_start=now,
                created_at=now,
            )
        )
    return event


async def member_event(session: AsyncSession, rt: Runtime, member: Member, action: str) -> None:
    """MEMBER created / updated / deleted (for deleted: call before the row goes)."""

    async def payload() -> Payload:
        user = await session.get(User, member.user_id)
        institution = await session.get(Institution, member.institution_id)
        client = await session.get(Client, member.client_id)
        assert user is not None and institution is not None and client is not None
        return wire.webhook_member(
            member,
            action=action,
            user=user,
            institution=institution,
            is_being_aggregated=action != "deleted"
            and await active_job(session, member.id) is not None,
            background_disabled=background_disabled(
                member_disabled=member.background_aggregation_is_disabled,
                client_enabled=client.background_aggregation_enabled,
            ),
        )

    await emit(
        session,
        rt,
        client_id=member.client_id,
        event_type=EventType.MEMBER,
        payload=payload,
        member_guid=member.guid,
        callback_payload=member.callback_payload,
    )


async def _about_member(
    session: AsyncSession,
    rt: Runtime,
    member: Member,
    event_type: EventType,
    body: Callable[[User], Payload],
) -> None:
    """An event about one member, its payload made from the member's user."""

    async def payload() -> Payload:
        user = await session.get(User, member.user_id)
        assert user is not None
        return body(user)

    await _emit_for(session, rt, member, event_type, payload)


async def _emit_for(
    session: AsyncSession,
    rt: Runtime,
    member: Member,
    event_type: EventType,
    payload: Callable[[], Awaitable[Payload]],
) -> None:
    await emit(
        session,
        rt,
        client_id=member.client_id,
        event_type=event_type,
        payload=payload,
        member_guid=member.guid,
        callback_payload=member.callback_payload,
    )


async def status_changed_event(session: AsyncSession, rt: Runtime, member: Member) -> None:
    """CONNECTION_STATUS, when the member's new status is one the end user acts on."""
    status = Status(member.connection_status) if member.connection_status else None
    if status in END_USER_ACTIONABLE:
        await _about_member(
            session,
            rt,
            member,
            EventType.CONNECTION_STATUS,
            lambda user: wire.webhook_connection_status(member, user=user),
        )


async def consent_expiring(session: AsyncSession, rt: Runtime, member: Member) -> None:
    """CONSENT / EXPIRING (OpenAgg extension): the member's OAuth consent ends soon."""
    await _about_member(
        session,
        rt,
        member,
        EventType.CONSENT,
        lambda user: wire.webhook_consent_expiring(member, user=user),
    )


async def attempt_finished(
    session: AsyncSession,
    rt: Runtime,
    member: Member,
    job: Job,
    *,
    succeeded: bool,
    status_changed: bool,
    transactions_created: int,
    transactions_updated: int,
) -> None:
    """The events of one finished connector attempt (``member_state.apply_outcome``):
    CONNECTION_STATUS on entering an end-user-actionable status, and the job's
    completion event when it succeeded."""
    now = rt.now()

    async def user() -> User:
        found = await session.get(User, member.user_id)
        assert found is not None
        return found

    if status_changed:
        await status_changed_event(session, rt, member)
    if not succeeded:
        return
    kind = JobKind(job.kind)
    event_type = JOB_EVENT[kind]

    async def job_payload() -> Payload:
        u = await user()
        if kind == JobKind.AGGREGATE:
            return wire.webhook_aggregation(
                member,
                user=u,
                job_guid=job.guid,
                completed_at=now,
                is_background=job.trigger == Trigger.BACKGROUND.value,
                created=transactions_created,
                updated=transactions_updated,
            )
        if kind in (JobKind.VERIFY, JobKind.IDENTIFY):
            detail = AccountNumber if kind == JobKind.VERIFY else AccountOwner
            guids = await session.scalars(
                select(Account.guid)
                .join(detail, detail.account_id == Account.id)
                .where(Account.member_id == member.id)
                .order_by(Account.id)
            )
            return wire.webhook_accounts_updated(
                event_type.value,
                member,
                user=u,
                job_guid=job.guid,
                completed_at=now,
                account_guids=list(guids),
            )
        return wire.webhook_data_updated(event_type.value, member, user=u, completed_at=now)

    await _emit_for(session, rt, member, event_type, job_payload)


# ------------------------------------------------------------------ endpoints (API)


class WebhookEndpointFields(Strict):
    url: StrictStr | None = Field(default=None, max_length=URL_MAX)
    secret: StrictStr | None = Field(default=None, max_length=200)
    event_types: list[EventType] | None = Field(default=None, min_length=1)
    enabled: StrictBool | None = None


class WebhookEndpointBody(Strict):
    webhook_endpoint: WebhookEndpointFields


PRIVATE_ADDRESS_HINT = (
    "set OPENAGG_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true to deliver inside your own network"
)


def _name_or_public(host: str) -> bool:
    address = literal_address(host)
    return address is None or address_allowed(address)


def _check_url(rt: Runtime, url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise BadRequest(f"'{url}' is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadRequest("The webhook url must be an absolute http:// or https:// URL.")
    if len(url) > 2048:
        raise BadRequest("The webhook url may be at most 2048 characters.")
    if not rt.settings.webhook_allow_private_addresses:
        host = parsed.host.lower().rstrip(".")
        # Names are checked again where they resolve, at every delivery.
        if host == "localhost" or host.endswith(".localhost") or not _name_or_public(host):
            raise BadRequest(
                f"The webhook url points at a private or local address ({host}); "
                f"{PRIVATE_ADDRESS_HINT}."
            )
    return url


def _check_secret(secret: str) -> str:
    try:
        secret_key(secret)
    except ValueError as exc:
        raise BadRequest(f"Invalid secret: {exc}.") from None
    return secret


@dataclass
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once, in the answer that creates the endpoint


async def create_endpoint(
    rt: Runtime, client: Client, fields: WebhookEndpointFields
) -> NewEndpoint:
    if fields.url is None:
        raise BadRequest("Invalid request body: missing field 'webhook_endpoint.url'.")
    url = _check_url(rt, fields.url)
    secret = _check_secret(fields.secret) if fields.secret is not None else new_secret()
    now = rt.now()
    endpoint = WebhookEndpoint(
        guid=new_guid("WHE"),
        client_id=client.id,
        url=url,
        event_types=None if fields.event_types is None else sorted(set(fields.event_types)),
        enabled=True if fields.enabled is None else fields.enabled,
        created_at=now,
        updated_at=now,
    )
    seal_secret(rt, endpoint, secret)
    async with rt.db.write() as s:
        s.add(endpoint)
    return NewEndpoint(endpoint, secret)


async def _endpoint(s: AsyncSession, client: Client, guid: str) -> WebhookEndpoint:
    found = await s.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.guid == guid, WebhookEndpoint.client_id == client.id
        )
    )
    if found is None:
        raise NotFound()
    return found


async def read_endpoint(rt: Runtime, client: Client, guid: str) -> WebhookEndpoint:
    async with rt.db.read() as s:
        return await _endpoint(s, client, guid)


async def list_endpoints(
    rt: Runtime, client: Client, *, page: int, per_page: int
) -> tuple[list[WebhookEndpoint], int]:
    where = WebhookEndpoint.client_id == client.id
    async with rt.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(WebhookEndpoint).where(where))
        rows = await s.scalars(
            select(WebhookEndpoint)
            .where(where)
            .order_by(WebhookEndpoint.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        return list(rows), total or 0


async def update_endpoint(
    rt: Runtime, client: Client, guid: str, fields: WebhookEndpointFields
) -> WebhookEndpoint:
    given = fields.model_dump(exclude_unset=True)
    if not given:
        raise BadRequest("The request body can't be empty: give at least one field to change.")
    async with rt.db.write() as s:
        endpoint = await _endpoint(s, client, guid)
        if "url" in given:
            if fields.url is None:
                raise BadRequest("'webhook_endpoint.url' can't be null.")
            endpoint.url = _check_url(rt, fields.url)
        if "secret" in given:
            if fields.secret is None:
                raise BadRequest("'webhook_endpoint.secret' can't be null.")
            seal_secret(rt, endpoint, _check_secret(fields.secret))
        if "event_types" in given:
            endpoint.event_types = (
                None if fields.event_types is None else sorted(set(fields.event_types))
            )
        if "enabled" in given:
            if fields.enabled is None:
                raise BadRequest("'webhook_endpoint.enabled' can't be null.")
            endpoint.enabled = fields.enabled
        endpoint.updated_at = rt.now()
    return endpoint


async def delete_endpoint(rt: Runtime, client: Client, guid: str) -> None:
    """Removes the endpoint and its deliveries (their history goes with it)."""
    async with rt.db.write() as s:
        endpoint = await _endpoint(s, client, guid)
        await s.delete(endpoint)


# ----------------------------------------------------------------- deliveries (API)


@dataclass
class DeliveryView:
    delivery: WebhookDelivery
    event: WebhookEvent
    endpoint_guid: str
    attempts: list[WebhookAttempt]


async def _views(
    s: AsyncSession, rows: list[tuple[WebhookDelivery, WebhookEvent, str]]
) -> list[DeliveryView]:
    ids = [d.id for d, _, _ in rows]
    by_delivery: dict[int, list[WebhookAttempt]] = {i: [] for i in ids}
    if ids:
        for a in await s.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.id)
        ):
            by_delivery[a.delivery_id].append(a)
    return [DeliveryView(d, e, g, by_delivery[d.id]) for d, e, g in rows]


def _delivery_query(client: Client) -> Any:
    return (
        select(WebhookDelivery, WebhookEvent, WebhookEndpoint.guid)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.client_id == client.id)
    )


async def list_deliveries(
    rt: Runtime,
    client: Client,
    *,
    page: int,
    per_page: int,
    status: str | None = None,
    member_guid: str | None = None,
    event_type: str | None = None,
    endpoint_guid: str | None = None,
) -> tuple[list[DeliveryView], int]:
    """Newest first."""
    q = _delivery_query(client)
    if status is not None:
        state = status.lower()
        if state not in tuple(DeliveryState):
            raise BadRequest("'status' must be one of PENDING, DELIVERED, FAILED.")
        q = q.where(WebhookDelivery.state == state)
    if member_guid is not None:
        q = q.where(WebhookEvent.member_guid == member_guid)
    if event_type is not None:
        if event_type.upper() not in EventType.__members__:
            raise BadRequest(f"'event_type' must be one of {', '.join(EventType)}.")
        q = q.where(WebhookEvent.event_type == event_type.upper())
    if endpoint_guid is not None:
        q = q.where(WebhookEndpoint.guid == endpoint_guid)
    async with rt.db.read() as s:
        total = await s.scalar(select(func.count()).select_from(q.subquery()))
        rows = await s.execute(
            q.order_by(WebhookDelivery.id.desc()).offset((page - 1) * per_page).limit(per_page)
        )
        return await _views(s, [tuple(r) for r in rows]), total or 0


async def read_delivery(rt: Runtime, client: Client, guid: str) -> DeliveryView:
    async with rt.db.read() as s:
        row = (await s.execute(_delivery_query(client).where(WebhookDelivery.guid == guid))).first()
        if row is None:
            raise NotFound()
        return (await _views(s, [tuple(row)]))[0]


async def replay_delivery(rt: Runtime, client: Client, guid: str) -> DeliveryView:
    """Send a delivery again, with the same webhook-id, a fresh retry budget, in its
    original place in the member's order."""
    now = rt.now()
    async with rt.db.write() as s:
        result = await s.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.guid == guid,
                WebhookDelivery.client_id == client.id,
                WebhookDelivery.state != DeliveryState.PENDING,
            )
            .values(
                state=DeliveryState.PENDING,
                attempts=0,
                next_attempt_at=now,
                retry_window_start=now,
                lease_until=None,
                deliverer_id=None,
                delivered_at=None,
                failed_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        replayed = getattr(result, "rowcount", 0)
    if not replayed:
        view = await read_delivery(rt, client, guid)  # 404 for an unknown guid
        raise Conflict(
            f"Delivery {view.delivery.guid} is still pending (next attempt at "
            f"{wire.iso(view.delivery.next_attempt_at)}); replay it once it is "
            "delivered or failed."
        )
    return await read_delivery(rt, client, guid)

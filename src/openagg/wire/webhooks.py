"""MX's webhook bodies (reference 2.10): flat objects, timestamps as integer unix
seconds, dates as YYYY-MM-DD. Then OpenAgg's own webhook management resources.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from openagg.db.models import (
    Institution,
    Member,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from openagg.domain.statuses import Status
from openagg.wire.members import member, status_message, status_str
from openagg.wire.scalars import iso, iso_date


def unix(ts: dt.datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp())


def webhook_member(
    m: Member,
    *,
    action: str,
    user: User,
    institution: Institution,
    is_being_aggregated: bool,
    background_disabled: bool,
) -> dict[str, Any]:
    """MEMBER created / updated / deleted: MemberResponse with integer timestamps."""
    body = member(
        m,
        user=user,
        institution=institution,
        is_being_aggregated=is_being_aggregated,
        background_disabled=background_disabled,
    )
    status = body["connection_status"]
    body.update(
        action=action,
        aggregated_at=unix(m.aggregated_at),
        connection_status_id=Status(status).id if status else None,
        created_at=unix(m.created_at),
        successfully_aggregated_at=unix(m.successfully_aggregated_at),
        type="MEMBER",
    )
    return body


def webhook_connection_status(m: Member, *, user: User) -> dict[str, Any]:
    value = status_str(m)
    if value is None:
        raise ValueError("a member without a status sends no CONNECTION_STATUS webhook")
    status = Status(value)
    return {
        "action": "CHANGED",
        "connection_status": status.value,
        "connection_status_id": status.id,
        "connection_status_message": status_message(m, status.value),
        "member_guid": m.guid,
        "type": "CONNECTION_STATUS",
        "user_guid": user.guid,
    }


def webhook_consent_expiring(m: Member, *, user: User) -> dict[str, Any]:
    """CONSENT / EXPIRING, an OpenAgg extension: the end user's consent at an OAuth
    institution ends soon; following the member's ``oauth_window_uri`` renews it."""
    status = status_str(m)
    return {
        "action": "EXPIRING",
        "connection_status": status,
        "connection_status_id": Status(status).id if status else None,
        "consent_expires_at": unix(m.consent_expires_at),
        "consent_expires_on": iso_date(m.consent_expires_at),
        "member_guid": m.guid,
        "type": "CONSENT",
        "user_guid": user.guid,
    }


def _completed(event_type: str, m: Member, user: User, at: dt.datetime) -> dict[str, Any]:
    return {
        "action": "member_data_updated",
        "completed_at": unix(at),
        "completed_on": iso_date(at),
        "member_guid": m.guid,
        "type": event_type,
        "user_guid": user.guid,
    }


def webhook_aggregation(
    m: Member,
    *,
    user: User,
    job_guid: str,
    completed_at: dt.datetime,
    is_background: bool,
    created: int,
    updated: int,
) -> dict[str, Any]:
    body = _completed("AGGREGATION", m, user, completed_at)
    body.update(
        is_background=bool(is_background),
        job_guid=job_guid,
        transactions_created_count=int(created),
        transactions_updated_count=int(updated),
        user_id=user.external_id,
    )
    return body


def webhook_data_updated(
    event_type: str, m: Member, *, user: User, completed_at: dt.datetime
) -> dict[str, Any]:
    """BALANCE and HISTORY: the base fields only, as MX sends them."""
    return _completed(event_type, m, user, completed_at)


def webhook_accounts_updated(
    event_type: str,
    m: Member,
    *,
    user: User,
    job_guid: str,
    completed_at: dt.datetime,
    account_guids: list[str],
) -> dict[str, Any]:
    """VERIFICATION (and IDENTIFICATION, shaped the same): the accounts concerned."""
    body = _completed(event_type, m, user, completed_at)
    body.update(accounts=list(account_guids), job_guid=job_guid, user_id=user.external_id)
    return body


def webhook_endpoint(e: WebhookEndpoint, *, secret: str | None = None) -> dict[str, Any]:
    """OpenAgg extension. ``secret`` is included only in the answer that creates it."""
    body: dict[str, Any] = {
        "created_at": iso(e.created_at),
        "enabled": bool(e.enabled),
        "event_types": None if e.event_types is None else list(e.event_types),
        "guid": e.guid,
        "updated_at": iso(e.updated_at),
        "url": e.url,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def webhook_attempt(a: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": iso(a.attempted_at),
        "duration_ms": int(a.duration_ms),
        "error": a.error,
        "status_code": a.status_code,
        "succeeded": bool(a.succeeded),
    }


def webhook_delivery(
    d: WebhookDelivery,
    *,
    event: WebhookEvent,
    endpoint_guid: str,
    attempts: list[WebhookAttempt],
) -> dict[str, Any]:
    """OpenAgg extension: one event to one endpoint, with every POST made so far."""
    return {
        "action": event.action,
        "attempts": [webhook_attempt(a) for a in attempts],
        "attempts_count": int(d.attempts),
        "created_at": iso(d.created_at),
        "delivered_at": iso(d.delivered_at),
        "event_type": event.event_type,
        "failed_at": iso(d.failed_at),
        "guid": d.guid,
        "last_error": d.last_error,
        "last_status_code": d.last_status_code,
        "member_guid": event.member_guid,
        "next_attempt_at": iso(d.next_attempt_at) if d.state == "pending" else None,
        "payload": event.payload,
        "status": d.state.upper(),
        "webhook_endpoint_guid": endpoint_guid,
        "webhook_id": event.guid,
    }

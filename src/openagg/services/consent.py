"""OAuth consents that end.

A connector that knows when the end user's consent ends (the provider says so in its
token answer, or the consent was asked for a fixed time) puts the moment in
``ctx.secrets["consent_expires_at"]`` as ISO 8601. Whenever the platform seals a
member's secrets (the OAuth callback, the end of a job) it copies that moment to the
member (``consent_expires_at``, shown on the member as an OpenAgg extension).

Then: a job of a member whose consent has ended ends DENIED before its connector is
called (``expired_message``); ``notify_expiring`` (a scheduler step) sends the
CONSENT webhook once when a consent ends within
``OPENAGG_CONSENT_RENEWAL_WINDOW_DAYS``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from openagg.connectors.base import CONSENT_EXPIRES_AT
from openagg.db.models import Member
from openagg.domain.statuses import Status
from openagg.runtime import Runtime
from openagg.services import webhooks

BATCH = 500
# Members whose consent no longer matters: the end user must act already, or the
# connection is over.
_QUIET = (Status.PENDING, Status.DENIED, Status.PREVENTED, Status.CLOSED, Status.DISCONTINUED)


def parse(value: Any) -> dt.datetime | None:
    """An ISO 8601 moment (a date alone is its midnight, UTC; no offset is UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def note(member: Member, secrets: dict[str, Any] | None) -> None:
    """Copy the consent's end from the connector's secrets to the member (None: the
    secrets did not change). A new end (a renewed consent) may be announced again."""
    if secrets is None:
        return
    ends = parse(secrets.get(CONSENT_EXPIRES_AT))
    if ends != member.consent_expires_at:
        member.consent_expires_at = ends
        member.consent_renewal_notified_at = None


def has_ended(member: Member, now: dt.datetime) -> bool:
    return bool(member.is_oauth and member.consent_expires_at and member.consent_expires_at <= now)


def expired_message(member: Member, institution_name: str) -> str:
    ends = member.consent_expires_at
    when = f" on {ends.date().isoformat()}" if ends else ""
    return (
        f"The access you gave at {institution_name} ended{when}. "
        "The user must reconnect to give it again."
    )


async def notify_expiring(rt: Runtime) -> int:
    """The CONSENT webhook (action EXPIRING) for members whose consent ends within the
    renewal window, once per consent."""
    now = rt.now()
    horizon = now + dt.timedelta(days=rt.settings.consent_renewal_window_days)
    sent = 0
    async with rt.db.write() as s:
        due = list(
            await s.scalars(
                select(Member)
                .where(
                    Member.is_oauth.is_(True),
                    Member.consent_expires_at.is_not(None),
                    Member.consent_expires_at <= horizon,
                    Member.consent_expires_at > now,
                    Member.consent_renewal_notified_at.is_(None),
                    Member.connection_status.not_in([q.value for q in _QUIET]),
                )
                .order_by(Member.id)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for member in due:
            member.consent_renewal_notified_at = now
            await webhooks.consent_expiring(s, rt, member)
            sent += 1
    return sent

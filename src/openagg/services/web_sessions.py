"""Browser logins: the engineer console (operators) and the developer portal (clients).

A login gives a random cookie token (stored hashed) and a CSRF token the page sends
back in a header on every change. Sessions expire after ``web_session_ttl_seconds``;
logging out deletes the row. Failed logins are counted per address and per account, in
the database (shared by all API processes), and refused with 429 past
``web_login_max_failures`` in the window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, func, select

from openagg.crypto import hash_api_key as hash_token
from openagg.db.models import Client, LoginFailure, Operator, WebSession
from openagg.runtime import Runtime
from openagg.services.errors import TooManyRequests, Unauthorized

Kind = Literal["operator", "client"]


@dataclass
class OpenedSession:
    token: str  # the cookie's value, shown once
    session: WebSession


@dataclass
class LoggedIn:
    session: WebSession
    operator: Operator | None
    client: Client | None


async def open_session(
    rt: Runtime, kind: Kind, subject_id: int, *, address: str | None
) -> OpenedSession:
    now = rt.now()
    token = secrets.token_urlsafe(32)
    async with rt.db.write() as s:
        # Expired sessions go whenever someone logs in; there are few of them.
        await s.execute(delete(WebSession).where(WebSession.expires_at <= now))
        session = WebSession(
            kind=kind,
            operator_id=subject_id if kind == "operator" else None,
            client_id=subject_id if kind == "client" else None,
            token_hash=hash_token(token),
            csrf_token=secrets.token_urlsafe(24),
            address=(address or "")[:100] or None,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=rt.settings.web_session_ttl_seconds),
        )
        s.add(session)
    return OpenedSession(token, session)


async def find_session(rt: Runtime, kind: Kind, token: str | None) -> LoggedIn:
    """The live session for this cookie, with its operator or client; 401 otherwise."""
    if not token:
        raise Unauthorized("Please log in.")
    async with rt.db.read() as s:
        session = await s.scalar(
            select(WebSession).where(
                WebSession.token_hash == hash_token(token), WebSession.kind == kind
            )
        )
        if session is None or session.expires_at <= rt.now():
            raise Unauthorized("Your session has ended. Please log in again.")
        operator = await s.get(Operator, session.operator_id) if session.operator_id else None
        client = await s.get(Client, session.client_id) if session.client_id else None
    if (kind == "operator" and (operator is None or operator.is_disabled)) or (
        kind == "client" and client is None
    ):
        raise Unauthorized("This account can no longer log in.")
    return LoggedIn(session, operator, client)


async def close_session(rt: Runtime, token: str | None) -> None:
    if token:
        async with rt.db.write() as s:
            await s.execute(delete(WebSession).where(WebSession.token_hash == hash_token(token)))


class LoginThrottle:
    """Failed logins per key (an address, an account) in a sliding window, counted in
    the database: every API process behind a load balancer sees the same count, and a
    restart forgets nothing."""

    def __init__(self, rt: Runtime):
        self.rt = rt

    async def check(self, *keys: str) -> None:
        settings = self.rt.settings
        since = self.rt.now() - dt.timedelta(seconds=settings.web_login_failure_window_seconds)
        async with self.rt.db.read() as s:
            counts = await s.execute(
                select(func.count())
                .select_from(LoginFailure)
                .where(LoginFailure.key_hash.in_([_key_hash(k) for k in keys]))
                .where(LoginFailure.failed_at > since)
                .group_by(LoginFailure.key_hash)
            )
            if any(n >= settings.web_login_max_failures for (n,) in counts):
                minutes = max(1, round(settings.web_login_failure_window_seconds / 60))
                raise TooManyRequests(
                    f"Too many failed logins. Try again in up to {minutes} minutes."
                )

    async def failed(self, *keys: str) -> None:
        now = self.rt.now()
        window = dt.timedelta(seconds=self.rt.settings.web_login_failure_window_seconds)
        async with self.rt.db.write() as s:
            # Failures past the window count for nothing: they go as new ones come.
            await s.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - window))
            s.add_all(LoginFailure(key_hash=_key_hash(k), failed_at=now) for k in keys)

    async def succeeded(self, *keys: str) -> None:
        async with self.rt.db.write() as s:
            await s.execute(
                delete(LoginFailure).where(LoginFailure.key_hash.in_([_key_hash(k) for k in keys]))
            )


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()

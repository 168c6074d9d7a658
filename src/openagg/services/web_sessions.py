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
import math
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.crypto import hash_api_key as hash_token
from openagg.db.models import Client, LoginCount, Operator, WebSession
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


FIRST_DELAY_SECONDS = 15
ACCOUNT_MAX_DELAY_SECONDS = 60


@dataclass(frozen=True)
class ThrottleKey:
    """One count a login attempt goes into: failures allowed before the delays begin,
    and the longest delay."""

    key: str
    free: int
    max_delay: int


def login_delay(failures: int, free: int, max_delay: int) -> int:
    """Seconds a key must wait after its last failure: none within its free failures,
    then growing (15 s, 30 s, 1 min, ... up to ``max_delay``), as OWASP advises rather
    than a long lockout at a fixed count."""
    if failures < free:
        return 0
    return min(max_delay, FIRST_DELAY_SECONDS * 2 ** min(failures - free, 20))


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt counted before its password was checked (see ``LoginThrottle``)."""

    address: str
    account: str


class LoginThrottle:
    """Browser logins counted per client address and per account, in the database:
    every API process behind a load balancer sees the same count, and a restart
    forgets nothing.

    An attempt is counted *before* its password is checked, in one transaction that
    locks the keys' rows, so concurrent attempts cannot all slip past the check. A
    login that succeeds takes its count back. Past its free failures a key waits a
    growing delay after each failure (429 with ``Retry-After`` meanwhile, the password
    unchecked). An address has ``web_login_max_failures`` free failures and delays up
    to the window; an account, tried from every address, many more
    (``web_login_account_max_failures``) and delays of at most a minute: one address
    cannot lock the owner out by knowing the account's name, and many addresses
    together still only slow it. A key is forgotten after a window without failures.
    """

    def __init__(self, rt: Runtime):
        self.rt = rt

    def _keys(self, attempt: LoginAttempt) -> list[ThrottleKey]:
        settings = self.rt.settings
        window = settings.web_login_failure_window_seconds
        return [
            ThrottleKey("ip:" + attempt.address, settings.web_login_max_failures, window),
            ThrottleKey(
                attempt.account,
                settings.web_login_account_max_failures,
                min(window, ACCOUNT_MAX_DELAY_SECONDS),
            ),
        ]

    async def begin(self, address: str | None, account: str) -> LoginAttempt:
        """Count an attempt from ``address`` at ``account``; 429 when either must wait."""
        attempt = LoginAttempt(address or "-", account)
        keys = self._keys(attempt)
        now = self.rt.now()
        window = dt.timedelta(seconds=self.rt.settings.web_login_failure_window_seconds)
        async with self.rt.db.write() as s:
            rows = await _lock_rows(s, self.rt, [k.key for k in keys], now)
            wait = 0.0
            for key in keys:
                row = rows[_key_hash(key.key)]
                if now - row.last_failed_at >= window:
                    row.failures = 0  # a window without failures: forgotten
                delay = login_delay(row.failures, key.free, key.max_delay)
                until = row.last_failed_at + dt.timedelta(seconds=delay)
                wait = max(wait, (until - now).total_seconds())
            if wait > 0:
                raise TooManyRequests(
                    f"Too many failed logins. Try again in {_duration(wait)}.",
                    retry_after=math.ceil(wait),
                )
            for key in keys:
                row = rows[_key_hash(key.key)]
                row.failures += 1
                row.last_failed_at = now
            # Keys idle for a window count for nothing: they go as new attempts come.
            await s.execute(delete(LoginCount).where(LoginCount.last_failed_at <= now - window))
        return attempt

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the account's failures are forgotten, and this
        attempt no longer counts against the address (whose other failures stay:
        logging in to one's own account does not reset guesses at others)."""
        async with self.rt.db.write() as s:
            await s.execute(
                delete(LoginCount).where(LoginCount.key_hash == _key_hash(attempt.account))
            )
            await s.execute(
                update(LoginCount)
                .where(LoginCount.key_hash == _key_hash("ip:" + attempt.address))
                .where(LoginCount.failures > 0)
                .values(failures=LoginCount.failures - 1)
            )


async def _lock_rows(
    s: AsyncSession, rt: Runtime, keys: list[str], now: dt.datetime
) -> dict[str, LoginCount]:
    """The keys' rows (made when missing), locked in key order until the commit."""
    hashes = sorted({_key_hash(k) for k in keys})
    insert = sqlite.insert if rt.db.sqlite else postgresql.insert
    await s.execute(
        insert(LoginCount)
        .values([{"key_hash": h, "failures": 0, "last_failed_at": now} for h in hashes])
        .on_conflict_do_nothing(index_elements=["key_hash"])
    )
    rows = await s.scalars(
        select(LoginCount)
        .where(LoginCount.key_hash.in_(hashes))
        .order_by(LoginCount.key_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.key_hash: row for row in rows}


def _duration(seconds: float) -> str:
    if seconds <= 90:
        return f"{math.ceil(seconds)} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()

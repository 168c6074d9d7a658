"""OpenAgg as a SimpleFIN server: setup tokens, their one claim, the access it gives,
the access's daily rate limit, and the account set it reads.

A client's backend asks for a setup token for one of its users; the end user pastes
it into a budget app, which claims it once for an access URL (``<guid>:<password>``).
The claim code and the access password are stored only as SHA-256 hashes. Each
member of the user is one SimpleFIN connection. Reads never start an aggregation:
they serve what the database has, and say which connections need their end user.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import secrets
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.crypto import hash_api_key as hash_secret
from openagg.db.models import (
    Account,
    Client,
    Institution,
    Member,
    SimplefinRequest,
    SimplefinToken,
    Transaction,
    User,
)
from openagg.domain.ids import new_guid
from openagg.domain.statuses import NEEDS_NEW_CREDENTIALS, Status
from openagg.runtime import Runtime
from openagg.services import widget
from openagg.services.errors import Forbidden, NotFound, TooManyRequests
from openagg.services.lookup import user_by_guid
from openagg.wire.simplefin import (
    NEEDS_ATTENTION,
    AccountRow,
    Connection,
    TransactionRow,
    transaction_time,
)

TOKEN_PREFIX = "SFT"
DEFAULT_WINDOW = dt.timedelta(days=90)
_DAY = dt.timedelta(days=1)
# A posted transaction's stored date is when it happened; it posts up to some days
# later. The read reaches this far before the window for those.
_POSTING_LAG = dt.timedelta(days=10)
_SIGNATURE_LENGTH = 40  # hex digits of an HMAC-SHA256: 160 bits
# One message for every refused claim: it does not tell a guesser which codes exist.
_CLAIM_REFUSED = (
    "This SimpleFIN token cannot be claimed: it was already used, has expired or was "
    "revoked. If you did not use it yourself, someone else may have: ask for a new one."
)
_ACCESS_REFUSED = "This SimpleFIN access is not valid (wrong credentials, or it was revoked)."


class RateLimited(TooManyRequests):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class NewToken:
    token: SimplefinToken
    user: User
    claim_code: str  # shown once, in the claim URL


@dataclass(frozen=True)
class Access:
    """A claimed, live access: whose data it reads."""

    token: SimplefinToken
    user: User


@dataclass(frozen=True)
class AccountsQuery:
    start: int | None = None  # epoch seconds, inclusive
    end: int | None = None  # epoch seconds, exclusive
    pending: bool = False
    balances_only: bool = False
    accounts: tuple[str, ...] = ()  # account guids in the order asked; empty: all


def with_default_window(query: AccountsQuery, now: dt.datetime) -> AccountsQuery:
    """Without ``start-date``: the last 90 days."""
    if query.start is not None:
        return query
    return replace(query, start=int((now - DEFAULT_WINDOW).timestamp()))


@dataclass
class AccountSet:
    connections: list[Connection]
    # (account, connection, its transactions) in the order they are answered.
    accounts: list[tuple[AccountRow, Connection, list[TransactionRow]]]
    missing_accounts: list[str] = field(default_factory=list)
    version: Any = None


# --- tokens (the client's backend) -------------------------------------------------


async def create_token(rt: Runtime, client: Client, user_guid: str) -> NewToken:
    now = rt.now()
    code = secrets.token_urlsafe(32)
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        if user.is_disabled:
            raise Forbidden("This user is disabled; enable it before sharing its data.")
        token = SimplefinToken(
            guid=new_guid(TOKEN_PREFIX),
            client_id=client.id,
            user_id=user.id,
            claim_code_hash=hash_secret(code),
            claim_expires_at=now + dt.timedelta(seconds=rt.settings.simplefin_claim_ttl_seconds),
            created_at=now,
        )
        s.add(token)
    return NewToken(token, user, code)


async def list_tokens(rt: Runtime, client: Client, user_guid: str) -> list[SimplefinToken]:
    async with rt.db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        rows = await s.scalars(
            select(SimplefinToken)
            .where(SimplefinToken.user_id == user.id, SimplefinToken.client_id == client.id)
            .order_by(SimplefinToken.id)
        )
        return list(rows)


async def revoke_token(rt: Runtime, client: Client, user_guid: str, guid: str) -> None:
    """At once: the next claim or read with it is a 403. Revoking twice is fine."""
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid)
        token = await s.scalar(
            select(SimplefinToken)
            .where(
                SimplefinToken.guid == guid,
                SimplefinToken.user_id == user.id,
                SimplefinToken.client_id == client.id,
            )
            .with_for_update()
        )
        if token is None:
            raise NotFound()
        if token.revoked_at is None:
            token.revoked_at = rt.now()


# --- the protocol (the budget app) -------------------------------------------------


async def claim(rt: Runtime, claim_code: str) -> tuple[str, str]:
    """Exchange a claim code, once, for the access's (user name, password)."""
    now = rt.now()
    password = secrets.token_urlsafe(32)
    async with rt.db.write() as s:
        token = await s.scalar(
            select(SimplefinToken)
            .where(SimplefinToken.claim_code_hash == hash_secret(claim_code))
            .with_for_update()
        )
        if (
            token is None
            or token.claimed_at is not None
            or token.revoked_at is not None
            or token.claim_expires_at <= now
        ):
            raise Forbidden(_CLAIM_REFUSED)
        token.claimed_at = now
        token.access_password_hash = hash_secret(password)
        return token.guid, password


async def open_access(rt: Runtime, username: str, password: str) -> Access:
    """Check the access's credentials and count the request against its rolling day,
    in one transaction that holds the token's row: every API process counts alike,
    and no two requests both take the last place."""
    now = rt.now()
    limit = rt.settings.simplefin_requests_per_day
    async with rt.db.write() as s:
        token = await s.scalar(
            select(SimplefinToken).where(SimplefinToken.guid == username).with_for_update()
        )
        if (
            token is None
            or token.access_password_hash is None
            or not hmac.compare_digest(token.access_password_hash, hash_secret(password))
            or token.revoked_at is not None
        ):
            raise Forbidden(_ACCESS_REFUSED)
        user = await s.get(User, token.user_id)
        if user is None or user.is_disabled:
            raise Forbidden("This user's data is not shared any more (the user is disabled).")
        await _count_request(s, token, now, limit)
    return Access(token, user)


async def _count_request(
    s: AsyncSession, token: SimplefinToken, now: dt.datetime, limit: int
) -> None:
    window_start = now - _DAY
    # Requests older than the rolling day count for nothing: they go as new ones come.
    await s.execute(
        delete(SimplefinRequest).where(
            SimplefinRequest.token_id == token.id, SimplefinRequest.requested_at <= window_start
        )
    )
    count, oldest = (
        await s.execute(
            select(func.count(), func.min(SimplefinRequest.requested_at)).where(
                SimplefinRequest.token_id == token.id
            )
        )
    ).one()
    if count >= limit:
        wait = max(1, math.ceil((oldest + _DAY - now).total_seconds()))
        raise RateLimited(
            f"Too many requests: this access may make {limit} requests a day. "
            f"Make fewer requests; try again in {wait} seconds.",
            wait,
        )
    s.add(SimplefinRequest(token_id=token.id, requested_at=now))


def _domain(url: str, fallback: str) -> str:
    host = urlsplit(url).hostname if url else None
    return host or fallback


async def _members_and_accounts(s: AsyncSession, user: User) -> tuple[list[Any], list[AccountRow]]:
    """Everything an account set shows but the transactions. With each member's
    ``transactions_version`` (bumped by every write to its transactions), it is also
    the account set's version: equal versions, equal answers (for one query)."""
    members = (
        await s.execute(
            select(
                Member.id,
                Member.transactions_version,
                Member.guid,
                Member.name,
                Member.connection_status,
                Member.successfully_aggregated_at,
                Institution.guid,
                Institution.name,
                Institution.code,
                Institution.profile,
            )
            .join(Institution, Institution.id == Member.institution_id)
            .where(Member.user_id == user.id, Member.client_id == user.client_id)
            .order_by(Member.id)
        )
    ).all()
    accounts = [
        AccountRow(*row)
        for row in await s.execute(
            select(*(getattr(Account, f) for f in AccountRow._fields))
            .where(Account.user_id == user.id, Account.client_id == user.client_id)
            .order_by(Account.member_id, Account.id)
        )
    ]
    return [tuple(m) for m in members], accounts


async def account_set_version(rt: Runtime, access: Access) -> Any:
    """The version ``read_account_set`` would answer at now (one small read)."""
    async with rt.db.read() as s:
        members, accounts = await _members_and_accounts(s, access.user)
    return (members, accounts)


async def read_account_set(
    rt: Runtime, access: Access, query: AccountsQuery, *, sfin_url: str
) -> AccountSet:
    """What the access's user has, as the database holds it now, with its version
    (read in the same transaction)."""
    user = access.user
    async with rt.db.read() as s:
        members, accounts = await _members_and_accounts(s, user)
        connections = {row[0]: _connection(rt, access, sfin_url, *row[2:]) for row in members}
        chosen, missing = _choose(accounts, query.accounts)
        transactions: dict[int, list[TransactionRow]] = {a.id: [] for a in chosen}
        if chosen and not query.balances_only:
            await _read_transactions(s, user, query, transactions)
    return AccountSet(
        list(connections.values()),
        [(a, connections[a.member_id], transactions[a.id]) for a in chosen],
        missing,
        version=(members, accounts),
    )


def _connection(
    rt: Runtime,
    access: Access,
    sfin_url: str,
    member_guid: str,
    member_name: str | None,
    status: str | None,
    last_success: dt.datetime | None,
    inst_guid: str,
    inst_name: str,
    inst_code: str,
    profile: dict[str, object] | None,
) -> Connection:
    org_url = str((profile or {}).get("url") or "")
    return Connection(
        conn_id=member_guid,
        name=member_name or inst_name,
        status=Status(status) if status else None,
        org_id=inst_guid,
        org_name=inst_name,
        org_domain=_domain(org_url, inst_code),
        org_url=org_url,
        sfin_url=sfin_url,
        fix_url=f"{sfin_url}/fix/{access.token.guid}/{member_guid}/"
        f"{fix_signature(rt, access.token.guid, member_guid)}",
        last_success=last_success,
    )


def _choose(
    accounts: list[AccountRow], wanted: tuple[str, ...]
) -> tuple[list[AccountRow], list[str]]:
    """The accounts asked for, in the order asked (each once), and the guids not found."""
    if not wanted:
        return accounts, []
    by_guid = {a.guid: a for a in accounts}
    chosen, missing, seen = [], [], set()
    for guid in wanted:
        if guid in seen:
            continue
        seen.add(guid)
        if guid in by_guid:
            chosen.append(by_guid[guid])
        else:
            missing.append(guid)
    return chosen, missing


async def _read_transactions(
    s: AsyncSession,
    user: User,
    query: AccountsQuery,
    into: dict[int, list[TransactionRow]],
) -> None:
    """The window's transactions of the chosen accounts, ordered by their time. The
    stored date narrows the read (with margins for the posting lag and the time of day);
    the exact bounds are checked on each transaction's SimpleFIN time."""
    start = query.start
    assert start is not None, "resolve the default window first (with_default_window)"
    q = select(*(getattr(Transaction, f) for f in TransactionRow._fields)).where(
        Transaction.user_id == user.id,
        Transaction.account_id.in_(list(into)),
        Transaction.date >= _day(start) - _POSTING_LAG,
    )
    if query.end is not None:
        q = q.where(Transaction.date <= _day(query.end) + _DAY)
    if not query.pending:
        q = q.where(Transaction.status != "PENDING")
    rows = [
        TransactionRow(*r) for r in await s.execute(q.order_by(Transaction.date, Transaction.id))
    ]
    rows.sort(key=transaction_time)
    for t in rows:
        when = transaction_time(t)
        if when >= start and (query.end is None or when < query.end):
            into[t.account_id].append(t)


def _day(epoch_seconds: int) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).date()


# --- the link that fixes a connection ----------------------------------------------


def fix_signature(rt: Runtime, token_guid: str, member_guid: str) -> str:
    """Keyed from the encryption keys, so only OpenAgg makes links that open."""
    return rt.keys.fingerprint(_fix_subject(token_guid, member_guid))[:_SIGNATURE_LENGTH]


def _fix_subject(token_guid: str, member_guid: str) -> str:
    return f"simplefin-fix:{token_guid}:{member_guid}"


async def open_fix_link(
    rt: Runtime, token_guid: str, member_guid: str, signature: str
) -> widget.NewWidgetUrl:
    """A fresh Connect widget URL on the member, for a link a budget app showed in its
    errors: it opens while the access is live and the member still needs its end user."""
    # Any key's signature opens: links made before a key rotation still work.
    expected = rt.keys.fingerprints(_fix_subject(token_guid, member_guid))
    if not any(hmac.compare_digest(signature, e[:_SIGNATURE_LENGTH]) for e in expected):
        raise NotFound("This link is not valid.")
    async with rt.db.read() as s:
        token = await s.scalar(select(SimplefinToken).where(SimplefinToken.guid == token_guid))
        if token is None or token.revoked_at is not None or token.claimed_at is None:
            raise Forbidden("This link's SimpleFIN access was revoked.")
        client = await s.get(Client, token.client_id)
        user = await s.get(User, token.user_id)
        member = await s.scalar(
            select(Member).where(Member.guid == member_guid, Member.user_id == token.user_id)
        )
    if client is None or user is None or member is None:
        raise NotFound("This connection no longer exists.")
    status = Status(member.connection_status) if member.connection_status else None
    if status not in NEEDS_ATTENTION:
        raise NotFound("This connection needs nothing from you any more.")
    fields = widget.WidgetUrlFields(
        widget_type=widget.CONNECT_WIDGET,
        current_member_guid=member.guid,
        disable_institution_search=True,
        update_credentials=status in NEEDS_NEW_CREDENTIALS or None,
    )
    return await widget.create_widget_url(rt, client, user.guid, fields)

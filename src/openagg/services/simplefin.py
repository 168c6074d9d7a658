"""OpenAgg as a SimpleFIN server: setup tokens, their one claim, the access it gives,
the access's daily rate limit, and the account set it reads.

A client's backend asks for a setup token for one of its users (or the Connect widget,
for its session's user, when the app allowed it); the end user pastes
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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.crypto import hash_api_key as hash_secret
from openagg.db.driver import Backend, Fetch, Plan
from openagg.db.models import (
    Client,
    Member,
    SimplefinToken,
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
    TRANSACTION_COLUMNS,
    TRANSACTION_JSON_SQLITE,
    AccountRow,
    Connection,
    sqlite_transactions_json,
    transactions_json,
)

TOKEN_PREFIX = "SFT"
# Who made a setup token: the client's backend (the API), its staff in the developer
# portal, or the end user in the Connect widget.
TokenOrigin = Literal["API", "PORTAL", "WIDGET"]
DEFAULT_WINDOW = dt.timedelta(days=90)
# The widget makes no new setup token while the user has this many waiting for
# their claim (whoever made them).
WIDGET_WAITING_TOKENS = 5
_DAY = dt.timedelta(days=1)
_PRUNE_EVERY = 32  # an access's requests older than its rolling day go every this many
_MIDDAY = 12 * 3600  # the time of a transaction known only by its date (as ingest stores it)
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

    token_id: int
    token_guid: str
    user_id: int
    client_id: int


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
    # (account, connection, its transactions: their JSON array, an orjson.Fragment)
    # in the order they are answered.
    accounts: list[tuple[AccountRow, Connection, Any]]
    missing_accounts: list[str] = field(default_factory=list)
    version: Any = None


# --- tokens (the client's backend) -------------------------------------------------


async def create_token(
    rt: Runtime,
    client: Client,
    user_guid: str,
    *,
    created_by: TokenOrigin,
    waiting_at_most: int | None = None,
) -> NewToken:
    """A new setup token for the user, made by ``created_by``. With ``waiting_at_most``,
    refused (429) while the user already has that many tokens waiting for their claim
    (the user's row is locked while they are counted, so two requests at once cannot
    both pass)."""
    now = rt.now()
    code = secrets.token_urlsafe(32)
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid, lock=waiting_at_most is not None)
        if user.is_disabled:
            raise Forbidden("This user is disabled; enable it before sharing its data.")
        if waiting_at_most is not None:
            await _check_waiting(s, user, now, waiting_at_most)
        token = SimplefinToken(
            guid=new_guid(TOKEN_PREFIX),
            client_id=client.id,
            user_id=user.id,
            claim_code_hash=hash_secret(code),
            claim_expires_at=now + dt.timedelta(seconds=rt.settings.simplefin_claim_ttl_seconds),
            created_at=now,
            created_by=created_by,
        )
        s.add(token)
    return NewToken(token, user, code)


async def _check_waiting(s: AsyncSession, user: User, now: dt.datetime, limit: int) -> None:
    waiting = list(
        await s.scalars(
            select(SimplefinToken.claim_expires_at)
            .where(
                SimplefinToken.user_id == user.id,
                SimplefinToken.claimed_at.is_(None),
                SimplefinToken.revoked_at.is_(None),
                SimplefinToken.claim_expires_at > now,
            )
            .order_by(SimplefinToken.claim_expires_at)
        )
    )
    if len(waiting) >= limit:
        # A place frees when the limit-th newest waiting token expires (or is claimed).
        frees = waiting[len(waiting) - limit]
        raise TooManyRequests(
            f"There are already {len(waiting)} setup tokens waiting to be used. Use one of "
            "them, or try again when one has expired.",
            max(1, math.ceil((frees - now).total_seconds())),
        )


async def create_widget_token(ctx: widget.WidgetContext) -> NewToken:
    """A setup token for the widget session's own user, when the app that opened the
    widget allowed it (``enable_simplefin_token``); a few at a time."""
    if not ctx.options.get("enable_simplefin_token"):
        raise Forbidden(
            "This widget does not make SimpleFIN setup tokens: the app that opened it did "
            "not ask for them (enable_simplefin_token)."
        )
    return await create_token(
        ctx.rt,
        ctx.client,
        ctx.user.guid,
        created_by="WIDGET",
        waiting_at_most=WIDGET_WAITING_TOKENS,
    )


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
    in one write transaction that holds the token's row: every API process counts
    alike, and no two requests both take the last place."""
    limit = rt.settings.simplefin_requests_per_day
    password_hash = hash_secret(password)
    found = await rt.db.write_plan(
        lambda b, _: _access_plan(b, username, password_hash, rt.now(), limit)
    )
    if isinstance(found, Access):
        return found
    raise RateLimited(
        f"Too many requests: this access may make {limit} requests a day. "
        f"Make fewer requests; try again in {found} seconds.",
        found,
    )


def _access_plan(
    b: Backend, username: str, password_hash: str, now: dt.datetime, limit: int
) -> Plan[Access | int]:
    """The access, its request counted; or, when the rolling day is full, the seconds
    until a place frees. On PostgreSQL the token's row is locked (the count and the
    insert are one access's at a time); SQLite's write transactions take turns."""
    token = yield Fetch(
        b.sql(
            "SELECT t.id, t.access_password_hash, t.revoked_at, t.user_id, t.client_id, "
            "u.is_disabled FROM simplefin_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE t.guid = ?" + ("" if b.sqlite else " FOR UPDATE OF t")
        ),
        [username],
    )
    if (
        not token
        or token[0][1] is None
        or not hmac.compare_digest(token[0][1], password_hash)
        or token[0][2] is not None
    ):
        raise Forbidden(_ACCESS_REFUSED)
    token_id, _, _, user_id, client_id, disabled = token[0]
    if disabled:
        raise Forbidden("This user's data is not shared any more (the user is disabled).")
    # The limit-th newest request of the rolling day: while it is in the day, the day
    # is full, and it is the one whose leaving frees a place.
    full = yield Fetch(
        b.sql(
            "SELECT requested_at FROM simplefin_requests "
            "WHERE token_id = ? AND requested_at > ? "
            "ORDER BY requested_at DESC LIMIT 1 OFFSET ?"
        ),
        [token_id, b.timestamp(now - _DAY), limit - 1],
    )
    if full:
        leaves = b.stored_timestamp(full[0][0])
        assert leaves is not None
        return max(1, math.ceil((leaves + _DAY - now).total_seconds()))
    added = yield Fetch(
        b.sql("INSERT INTO simplefin_requests (token_id, requested_at) VALUES (?, ?) RETURNING id"),
        [token_id, b.timestamp(now)],
    )
    # Requests older than the rolling day count for nothing; the access's own go now
    # and then (the counting above never reads them).
    if added[0][0] % _PRUNE_EVERY == 0:
        yield Fetch(
            b.sql("DELETE FROM simplefin_requests WHERE token_id = ? AND requested_at <= ?"),
            [token_id, b.timestamp(now - _DAY)],
        )
    return Access(token_id, username, user_id, client_id)


def _domain(url: str, fallback: str) -> str:
    host = urlsplit(url).hostname if url else None
    return host or fallback


def _account_set_plan(
    b: Backend,
    rt: Runtime,
    access: Access,
    query: AccountsQuery,
    sfin_url: str,
    cached: Callable[[Any], bytes | None],
) -> Plan[bytes | AccountSet]:
    """What the access's user has, as the database holds it now, read in one
    transaction straight from the driver; or the body ``cached`` holds for the account
    set's version, read first. The version is everything an account set shows but the
    transactions, with each member's ``transactions_version`` (bumped by every write
    to its transactions): equal versions, equal answers (for one query)."""
    user_id, client_id = access.user_id, access.client_id
    members = yield Fetch(
        b.sql(
            "SELECT m.id, m.transactions_version, m.guid, m.name, m.connection_status, "
            "m.successfully_aggregated_at, i.guid, i.name, i.code, i.profile "
            "FROM members m JOIN institutions i ON i.id = m.institution_id "
            "WHERE m.user_id = ? AND m.client_id = ? ORDER BY m.id"
        ),
        [user_id, client_id],
    )
    accounts = yield Fetch(
        b.sql(
            f"SELECT {', '.join(AccountRow._fields)} FROM accounts "
            "WHERE user_id = ? AND client_id = ? ORDER BY member_id, id"
        ),
        [user_id, client_id],
    )
    version = (tuple(map(tuple, members)), tuple(map(tuple, accounts)))
    body = cached(version)
    if body is not None:
        return body
    connections = {
        m[0]: _connection(
            rt,
            access,
            sfin_url,
            member_guid=m[2],
            member_name=m[3],
            status=m[4],
            last_success=b.stored_timestamp(m[5]),
            inst_guid=m[6],
            inst_name=m[7],
            inst_code=m[8],
            profile=b.stored_json(m[9]),
        )
        for m in members
    }
    rows = [AccountRow._make((*a[:8], b.stored_timestamp(a[8]))) for a in accounts]
    chosen, missing = _choose(rows, query.accounts)
    ids = [a.id for a in chosen]
    if not chosen or query.balances_only:
        transactions = transactions_json((), ids)
    elif b.sqlite:
        # SQLite renders each transaction's JSON: one text per row, not a dozen
        # Python objects, and each row is freed as soon as it is read.
        sql, params = _transactions_sql(b, user_id, query, ids, TRANSACTION_JSON_SQLITE)
        transactions = sqlite_transactions_json((yield Fetch(sql, params, stream=True)), ids)
    else:
        sql, params = _transactions_sql(b, user_id, query, ids)
        transactions = transactions_json((yield Fetch(sql, params)), ids)
    return AccountSet(
        list(connections.values()),
        [(a, connections[a.member_id], transactions[a.id]) for a in chosen],
        missing,
        version=version,
    )


async def read_account_set(
    rt: Runtime,
    access: Access,
    query: AccountsQuery,
    *,
    sfin_url: str,
    cached: Callable[[Any], bytes | None] = lambda _version: None,
) -> bytes | AccountSet:
    """The account set (see ``_account_set_plan``), or the body ``cached`` keeps for
    its version."""
    return await rt.db.read_plan(
        lambda b, _: _account_set_plan(b, rt, access, query, sfin_url, cached)
    )


def _connection(
    rt: Runtime,
    access: Access,
    sfin_url: str,
    *,
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
        fix_url=f"{sfin_url}/fix/{access.token_guid}/{member_guid}/"
        f"{fix_signature(rt, access.token_guid, member_guid)}",
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


def _transactions_sql(
    b: Backend,
    user_id: int,
    query: AccountsQuery,
    account_ids: list[int],
    rendered: str | None = None,
) -> tuple[str, list[Any]]:
    """The window's transactions of the accounts (``TRANSACTION_COLUMNS``; or the
    account id and ``rendered``, an expression of those columns), ordered by their
    SimpleFIN time: when it posted, or when it happened for a pending one (the stored
    date's midday without a time). The stored date narrows the read (with margins
    for the posting lag and the time of day); the exact bounds are checked on that
    time."""
    start = query.start
    assert start is not None, "resolve the default window first (with_default_window)"
    midday = f"{b.epoch('t.date')} + {_MIDDAY}"
    accounts, params = b.any_of("t.account_id", account_ids)
    where = f"t.user_id = ? AND {accounts} AND t.date >= ?"
    params = [user_id, *params, b.date(_day(start) - _POSTING_LAG)]
    if query.end is not None:
        where += " AND t.date <= ?"
        params.append(b.date(_day(query.end) + _DAY))
    if not query.pending:
        where += " AND t.status <> 'PENDING'"
    stored = ", ".join(f"t.{c}" for c in TRANSACTION_COLUMNS if c not in ("posted", "happened"))
    when = "CASE WHEN status = 'PENDING' THEN happened ELSE posted END"
    columns = f"account_id, {rendered}" if rendered else ", ".join(TRANSACTION_COLUMNS)
    sql = (
        f"SELECT {columns} FROM ("
        f"SELECT {stored}, t.date, t.id, "
        f"COALESCE({b.epoch('t.posted_at')}, {midday}) AS posted, "
        f"COALESCE({b.epoch('t.transacted_at')}, {midday}) AS happened "
        f"FROM transactions t WHERE {where}) AS w WHERE {when} >= ?"
    )
    params.append(start)
    if query.end is not None:
        sql += f" AND {when} < ?"
        params.append(query.end)
    sql += f" ORDER BY {when}, date, id"
    return b.sql(sql), params


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

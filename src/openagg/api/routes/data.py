"""Accounts, account numbers and owners, transactions and investment holdings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openagg import wire
from openagg.api.http import (
    MX_MEDIA_TYPE,
    current_client,
    mx,
    mx_page,
    paging,
    query_bool,
    query_date,
    query_list,
    query_use_case,
    runtime,
    use_case_pattern,
)
from openagg.api.list_cache import ListCache
from openagg.api.routing import Router
from openagg.db.driver import Backend, Fetch, Plan
from openagg.db.models import (
    Account,
    AccountNumber,
    AccountOwner,
    Client,
    Holding,
    Institution,
    Member,
    Transaction,
    User,
)
from openagg.services.errors import BadRequest, NotFound
from openagg.services.lookup import account_by_guid, member_by_guid, user_by_guid

router = Router()
USER = "/users/{user_guid}"
MEMBER = USER + "/members/{member_guid}"


async def _page(s: AsyncSession, q: Select, page: int, per_page: int) -> tuple[list[Any], int]:
    total = await s.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    rows = list(await s.execute(q.offset((page - 1) * per_page).limit(per_page)))
    return rows, total


# --- accounts -------------------------------------------------------------------


async def _accounts(
    request: Request, client: Client, user_guid: str, member_guid: str | None
) -> Response:
    page, per_page = paging(request, 1000)
    managed = query_bool(request, "member_is_managed_by_user")
    manual = query_bool(request, "is_manual")
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        q = (
            select(Account, Member, Institution)
            .join(Member, Member.id == Account.member_id)
            .join(Institution, Institution.id == Member.institution_id)
            .where(Account.user_id == user.id, Account.client_id == client.id)
            .order_by(Account.id)
        )
        if member_guid is not None:
            member = await member_by_guid(s, user, member_guid)
            q = q.where(Account.member_id == member.id)
        elif use_case := query_use_case(request):
            q = q.where(cast(Member.use_cases, Text).like(use_case_pattern(use_case)))
        if managed is True or manual is True:  # OpenAgg has no user-managed or manual accounts
            q = q.where(Account.id.is_(None))
        rows, total = await _page(s, q, page, per_page)
    items = [wire.account(a, user=user, member=m, institution=i) for a, m, i in rows]
    return mx_page("accounts", items, page, per_page, total)


@router.get(USER + "/accounts")
async def list_user_accounts(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _accounts(request, client, user_guid, None)


@router.get(MEMBER + "/accounts")
async def list_member_accounts(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _accounts(request, client, user_guid, member_guid)


async def _one_account(
    request: Request, client: Client, user_guid: str, account_guid: str, member_guid: str | None
) -> Response:
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        acct = await account_by_guid(s, user, account_guid)
        member = await s.get(Member, acct.member_id)
        assert member is not None
        if member_guid is not None and member.guid != member_guid:
            raise NotFound()
        inst = await s.get(Institution, member.institution_id)
        assert inst is not None
    return mx({"account": wire.account(acct, user=user, member=member, institution=inst)})


@router.get(USER + "/accounts/{account_guid}")
async def read_account(
    user_guid: str, account_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _one_account(request, client, user_guid, account_guid, None)


@router.get(MEMBER + "/accounts/{account_guid}")
async def read_account_by_member(
    user_guid: str,
    member_guid: str,
    account_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    return await _one_account(request, client, user_guid, account_guid, member_guid)


async def _numbers(
    request: Request,
    client: Client,
    user_guid: str,
    *,
    member_guid: str | None = None,
    account_guid: str | None = None,
) -> Response:
    page, per_page = paging(request, 1000)
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        q = (
            select(AccountNumber, Account.guid, Member.guid)
            .join(Account, Account.id == AccountNumber.account_id)
            .join(Member, Member.id == AccountNumber.member_id)
            .where(Account.user_id == user.id)
            .order_by(AccountNumber.id)
        )
        if member_guid is not None:
            q = q.where(AccountNumber.member_id == (await member_by_guid(s, user, member_guid)).id)
        if account_guid is not None:
            q = q.where(
                AccountNumber.account_id == (await account_by_guid(s, user, account_guid)).id
            )
        rows, total = await _page(s, q, page, per_page)
    items = [
        wire.account_number(n, account_guid=ag, member_guid=mg, user_guid=user.guid)
        for n, ag, mg in rows
    ]
    return mx_page("account_numbers", items, page, per_page, total)


@router.get(MEMBER + "/account_numbers")
async def numbers_by_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _numbers(request, client, user_guid, member_guid=member_guid)


@router.get(USER + "/accounts/{account_guid}/account_numbers")
async def numbers_by_account(
    user_guid: str, account_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _numbers(request, client, user_guid, account_guid=account_guid)


@router.get(MEMBER + "/account_owners")
async def owners_by_member(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    page, per_page = paging(request, 1000)
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        member = await member_by_guid(s, user, member_guid)
        q = (
            select(AccountOwner, Account.guid)
            .join(Account, Account.id == AccountOwner.account_id)
            .where(AccountOwner.member_id == member.id)
            .order_by(AccountOwner.id)
        )
        rows, total = await _page(s, q, page, per_page)
    items = [
        wire.account_owner(o, account_guid=ag, member_guid=member.guid, user_guid=user.guid)
        for o, ag in rows
    ]
    return mx_page("account_owners", items, page, per_page, total)


# --- transactions ---------------------------------------------------------------

# Plain rows, not ORM objects (the list is a hot path): every transaction column,
# plus the guids its wire form names. A row reads like a Transaction by attribute.
TRANSACTION_ROWS = (
    select(
        *Transaction.__table__.c,
        Account.guid.label("account_guid_"),
        Account.external_id.label("account_id_"),
        Member.guid.label("member_guid_"),
    )
    .join(Account, Account.id == Transaction.account_id)
    .join(Member, Member.id == Transaction.member_id)
)


def _transaction_json(row: Any, user: User, includes: frozenset[str]) -> dict[str, Any]:
    return wire.transaction(
        row,
        user_guid=user.guid,
        user_id=user.external_id,
        account_guid=row.account_guid_,
        account_id=row.account_id_,
        member_guid=row.member_guid_,
        includes=includes,
    )


HOLDING_ROWS = (
    select(Holding, Account.guid, Member.guid)
    .join(Account, Account.id == Holding.account_id)
    .join(Member, Member.id == Holding.member_id)
)

# MX's default window: 120 days back to 5 days ahead ("to capture pending").
DEFAULT_DAYS_BACK, DEFAULT_DAYS_AHEAD = 120, 5


def _transaction_filters(
    request: Request, today: dt.date, *, user_level: bool
) -> list[tuple[str, list[Any]]]:
    """The list's conditions on the transactions table (``t``), as SQL with ``?``
    placeholders and their values (dates, datetimes, strings)."""
    from_date = query_date(request, "from_date") or today - dt.timedelta(DEFAULT_DAYS_BACK)
    to_date = query_date(request, "to_date") or today + dt.timedelta(DEFAULT_DAYS_AHEAD)
    if from_date > to_date:
        raise BadRequest("from_date must not be after to_date.")
    out: list[tuple[str, list[Any]]] = [("t.date >= ? AND t.date <= ?", [from_date, to_date])]
    for kind in ("created", "updated"):
        start = query_date(request, f"from_{kind}_at")
        end = query_date(request, f"to_{kind}_at")
        if start and end and (end - start).days > 183:
            raise BadRequest(f"from_{kind}_at and to_{kind}_at may be at most 6 months apart.")
        if start:
            out.append((f"t.{kind}_at >= ?", [dt.datetime.combine(start, dt.time(), dt.UTC)]))
        if end:
            out.append(
                (
                    f"t.{kind}_at < ?",
                    [dt.datetime.combine(end + dt.timedelta(1), dt.time(), dt.UTC)],
                )
            )
    for column in ("category_guid", "top_level_category_guid"):
        guids = query_list(request, column)
        if guids:
            out.append((f"t.{column} IN ({', '.join('?' * len(guids))})", list(guids)))
    # Only the user-level list takes use_case (MX).
    if user_level and (use_case := query_use_case(request)):
        out.append(
            (
                "t.member_id IN (SELECT id FROM members WHERE user_id = t.user_id "
                "AND CAST(use_cases AS TEXT) LIKE ?)",
                [use_case_pattern(use_case)],
            )
        )
    return out


def _stored(b: Backend, value: Any) -> Any:
    """A filter value as the column stores it."""
    if isinstance(value, dt.datetime):
        return b.timestamp(value)
    if isinstance(value, dt.date):
        return b.date(value)
    return value


# The list's rows: the serializer's columns, then the account's guid and external id
# and the member's guid.
_LIST_COLUMNS = (
    ", ".join(f"t.{c}" for c in wire.TRANSACTION_ROW) + ", a.guid, a.external_id, m.guid"
)


@dataclass(frozen=True)
class _Listed:
    """One page of transactions as read, and the version it was read at."""

    user: Any
    total: int
    rows: list[Any]
    version: Any


def _list_plan(
    b: Backend,
    client_id: int,
    user_guid: str,
    scope: tuple[str, str] | None,
    filters: Callable[[], list[tuple[str, list[Any]]]],
    page: int,
    per_page: int,
    cached: Callable[[Any], bytes | None],
) -> Plan[bytes | _Listed]:
    """The user, the number of matching transactions and one page of them, read in
    one transaction straight from the driver (the list is a hot path); or the body
    ``cached`` holds for the version read first (see api/list_cache.py). ``filters``
    are read once the user and the scope are found (a 404 before a 400)."""
    # The user and the version of what the list shows, read before the page, so a
    # page is never older than the version kept with it.
    found = yield Fetch(
        b.sql(
            "SELECT u.id, u.guid, u.external_id, m.id, m.transactions_version, m.use_cases "
            "FROM users u LEFT JOIN members m ON m.user_id = u.id "
            "WHERE u.guid = ? AND u.client_id = ? ORDER BY m.id"
        ),
        [user_guid, client_id],
    )
    if not found:
        raise NotFound()
    user = tuple(found[0][:3])
    version = (user, tuple(tuple(r[3:]) for r in found if r[3] is not None))
    body = cached(version)
    if body is not None:
        return body
    where, params = "t.user_id = ?", [user[0]]
    if scope is not None:  # a member's or an account's transactions, within the user's
        table, guid = scope
        scoped = yield Fetch(
            b.sql(f"SELECT id FROM {table}s WHERE guid = ? AND user_id = ? AND client_id = ?"),
            [guid, user[0], client_id],
        )
        if not scoped:
            raise NotFound()
        # Within the user's rows: their index is the one ordered by date.
        where, params = f"t.user_id = ? AND t.{table}_id = ?", [user[0], scoped[0][0]]
    for condition, values in filters():
        where += f" AND {condition}"
        params += [_stored(b, v) for v in values]
    counted = yield Fetch(b.sql(f"SELECT count(*) FROM transactions t WHERE {where}"), params)
    rows = yield Fetch(
        b.sql(
            f"SELECT {_LIST_COLUMNS} FROM transactions t "
            "JOIN accounts a ON a.id = t.account_id JOIN members m ON m.id = t.member_id "
            f"WHERE {where} ORDER BY t.date DESC, t.id DESC LIMIT ? OFFSET ?"
        ),
        [*params, per_page, (page - 1) * per_page],
    )
    return _Listed(user, int(counted[0][0]), rows, version)


def _includes(request: Request) -> frozenset[str]:
    try:
        return wire.parse_includes(request.query_params.get("includes"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


async def _transactions(
    request: Request,
    client: Client,
    user_guid: str,
    *,
    member_guid: str | None = None,
    account_guid: str | None = None,
) -> Response:
    page, per_page = paging(request, 1000)
    includes = _includes(request)
    rt = runtime(request)
    today = rt.now().date()
    scope = (
        ("account", account_guid)
        if account_guid is not None
        else ("member", member_guid)
        if member_guid is not None
        else None
    )
    cache: ListCache = request.app.state.list_cache
    # The default window moves with the day; the rest of the answer is in the URL.
    key = (client.id, request.scope["path"], request.scope["query_string"], today)
    listed = await rt.db.read_plan(
        lambda b, _: _list_plan(
            b,
            client.id,
            user_guid,
            scope,
            lambda: _transaction_filters(request, today, user_level=scope is None),
            page,
            per_page,
            lambda version: cache.get(key, version),
        )
    )
    if isinstance(listed, bytes):
        return Response(listed, media_type=MX_MEDIA_TYPE)
    user = listed.user
    items = wire.transactions_from_rows(
        listed.rows, sqlite=rt.db.sqlite, user_guid=user[1], user_id=user[2], includes=includes
    )
    response = mx_page("transactions", items, page, per_page, listed.total)
    cache.put(key, listed.version, bytes(response.body))
    return response


@router.get(USER + "/transactions")
async def list_transactions(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _transactions(request, client, user_guid)


@router.get(MEMBER + "/transactions")
async def list_member_transactions(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _transactions(request, client, user_guid, member_guid=member_guid)


@router.get(USER + "/accounts/{account_guid}/transactions")
async def list_account_transactions(
    user_guid: str, account_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _transactions(request, client, user_guid, account_guid=account_guid)


@router.get(USER + "/transactions/{transaction_guid}")
async def read_transaction(
    user_guid: str,
    transaction_guid: str,
    request: Request,
    client: Client = Depends(current_client),
) -> Response:
    includes = _includes(request)
    rt = runtime(request)
    async with rt.db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        row = (
            await s.execute(
                TRANSACTION_ROWS.where(
                    Transaction.guid == transaction_guid, Transaction.user_id == user.id
                )
            )
        ).first()
    if row is None:
        raise NotFound()
    item = _transaction_json(row, user, includes)
    if rt.settings.read_transaction_shape == "spec":
        return mx_page("transactions", [item], 1, 25, 1)
    return mx({"transaction": item})


# --- holdings -------------------------------------------------------------------


async def _holdings(
    request: Request,
    client: Client,
    user_guid: str,
    *,
    member_guid: str | None = None,
    account_guid: str | None = None,
) -> Response:
    page, per_page = paging(request, 1000)
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        q = HOLDING_ROWS.where(Holding.user_id == user.id).order_by(Holding.id)
        if member_guid is not None:
            q = q.where(Holding.member_id == (await member_by_guid(s, user, member_guid)).id)
        if account_guid is not None:
            q = q.where(Holding.account_id == (await account_by_guid(s, user, account_guid)).id)
        rows, total = await _page(s, q, page, per_page)
    items = [
        wire.holding(h, user_guid=user.guid, account_guid=ag, member_guid=mg) for h, ag, mg in rows
    ]
    return mx_page("investment_holdings", items, page, per_page, total)


@router.get(USER + "/investment_holdings")
async def list_holdings(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _holdings(request, client, user_guid)


@router.get(MEMBER + "/investment_holdings")
async def list_member_holdings(
    user_guid: str, member_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _holdings(request, client, user_guid, member_guid=member_guid)


@router.get(USER + "/accounts/{account_guid}/investment_holdings")
async def list_account_holdings(
    user_guid: str, account_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    return await _holdings(request, client, user_guid, account_guid=account_guid)


@router.get(USER + "/investment_holdings/{holding_guid}")
async def read_holding(
    user_guid: str, holding_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    async with runtime(request).db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        row = (
            await s.execute(
                HOLDING_ROWS.where(Holding.guid == holding_guid, Holding.user_id == user.id)
            )
        ).first()
    if row is None:
        raise NotFound()
    h, ag, mg = row
    return mx(
        {
            "investment_holding": wire.holding(
                h, user_guid=user.guid, account_guid=ag, member_guid=mg
            )
        }
    )

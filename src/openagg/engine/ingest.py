"""Idempotent upsert of what a connector returned.

Re-aggregating never duplicates: accounts, transactions and holdings are keyed by
the institution's own ids. A posted transaction replaces the pending one it names;
a pending transaction that vanished from the institution's feed is removed, and
any pending older than the failsafe age is removed too (as at MX).

This is the engine's hottest path, so it talks to the database driver directly,
inside the caller's transaction, without the ORM (``db/driver.py``):

* ``prepare`` turns a pull into rows before any transaction: every value already in
  the form SQLAlchemy would bind and store (timestamps, dates, JSON), so the ORM
  reads the rows back as if it had written them.
* ``plan_pull`` is a *plan*, a generator of statements run by ``run_plan`` on the
  session's driver connection. It reads what is stored (one select per table, none
  for an account it just created) and writes the accounts at once (transactions need
  their ids). The rest, inserts, updates and deletes, waits in a ``Deferred`` that
  ``flush`` writes with one statement per table and kind (per chunk of rows), for
  all the jobs settled in the same transaction. A row whose values did not change
  is not written and keeps its ``updated_at``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.connectors.base import AccountData, HoldingData, OwnerData, TransactionData
from openagg.db.driver import (
    POSTGRESQL,
    SQLITE,
    Backend,
    Deferred,
    Fetch,
    Plan,
    flush,
    json_text,
    run_plan,
)
from openagg.db.models import AccountNumber, AccountOwner, Member
from openagg.domain.ids import new_guid, stable_guid, time_ordered_guids

_UTC = dt.UTC


def cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int((amount * 100).to_integral_value())


@dataclass
class IngestCounts:
    created: int = 0
    updated: int = 0
    removed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


@dataclass(frozen=True)
class AccountRef:
    """What the rest of ingest needs to know about a stored account."""

    id: int
    client_id: int
    user_id: int
    member_id: int


@dataclass(frozen=True)
class Owner:
    """The member whose data is ingested."""

    client_id: int
    user_id: int
    member_id: int


@dataclass
class Pull:
    """What one aggregation pulled. ``from_date`` is the transaction window's start,
    None when no transactions were asked for."""

    accounts: list[AccountData]
    transactions: Mapping[str, Sequence[TransactionData]] = field(default_factory=dict)
    holdings: Mapping[str, Sequence[HoldingData]] = field(default_factory=dict)
    from_date: dt.date | None = None


@dataclass
class Ingested:
    accounts: dict[str, AccountRef]
    counts: IngestCounts


# A pulled transaction ready to write: (guid if new, external_id, values in stored
# form in _TXN_VALUES order, external_id of the pending one it replaces). Tuples,
# not objects: a pull has hundreds.
_TxnIn = tuple[str, str, tuple[Any, ...], str | None]


@dataclass
class Prepared:
    """A pull turned into rows for one backend, before any transaction: all the
    per-row work that does not depend on what is stored."""

    accounts: dict[str, tuple[Any, ...]]
    transactions: dict[str, list[_TxnIn]]
    holdings: dict[str, dict[str, tuple[Any, ...]]]
    from_date: dt.date | None


def prepare(b: Backend, pull: Pull) -> Prepared:
    guids = time_ordered_guids("TRN", sum(len(t) for t in pull.transactions.values()))
    transactions: dict[str, list[_TxnIn]] = {}
    at = 0
    for key, txns in pull.transactions.items():
        transactions[key] = _txn_rows(b, txns, guids, at)
        at += len(txns)
    return Prepared(
        accounts={a.external_id: _account_values(a) for a in pull.accounts},
        transactions=transactions,
        holdings={
            key: {h.external_id: _holding_values(h) for h in holdings}
            for key, holdings in pull.holdings.items()
        },
        from_date=pull.from_date,
    )


# --- the plan of one aggregation ------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    name: str
    scope: str  # the column a plan's rows are selected by
    owner: tuple[str, ...]  # columns set once, when the row is created
    values: tuple[str, ...]  # columns compared and updated
    json: frozenset[str] = frozenset()

    @property
    def insert_columns(self) -> tuple[str, ...]:
        return (*self.owner, "guid", "external_id", *self.values, "created_at", "updated_at")

    def insert_sql(self, rows: int) -> str:
        columns = self.insert_columns
        group = "(" + ", ".join("?" * len(columns)) + ")"
        return (
            f"INSERT INTO {self.name} ({', '.join(columns)}) VALUES "
            + ", ".join([group] * rows)
            + " RETURNING id, external_id"
        )

    @property
    def select_sql(self) -> str:
        return f"SELECT id, external_id, {', '.join(self.values)} FROM {self.name} WHERE "


_ACCOUNTS = _Table(
    "accounts",
    scope="member_id",
    owner=("client_id", "user_id", "member_id"),
    values=(
        "name",
        "type",
        "subtype",
        "currency_code",
        "balance_cents",
        "available_balance_cents",
        "account_number_last4",
        "is_closed",
        "details",
    ),
    json=frozenset({"details"}),
)
_HOLDINGS = _Table(
    "holdings",
    scope="account_id",
    owner=("client_id", "user_id", "member_id", "account_id"),
    values=(
        "symbol",
        "description",
        "holding_type",
        "currency_code",
        "quantity",
        "current_price",
        "cost_basis",
        "market_value",
    ),
)


def _account_values(data: AccountData) -> tuple[Any, ...]:
    return (
        data.name,
        data.type,
        data.subtype,
        data.currency_code,
        cents(data.balance),
        cents(data.available_balance),
        data.account_number[-4:] if data.account_number else None,
        data.is_closed,
        # JSON numbers: a connector may well hand over Decimals, as for the balances.
        {k: float(v) if isinstance(v, Decimal) else v for k, v in data.details.items()},
    )


def _holding_values(data: HoldingData) -> tuple[Any, ...]:
    return (
        data.symbol,
        data.description,
        data.holding_type,
        data.currency_code,
        float(data.quantity),
        float(data.current_price),
        None if data.cost_basis is None else float(data.cost_basis),
        float(data.market_value),
    )


def _upsert_keyed(
    b: Backend,
    table: _Table,
    scope_id: int,
    desired: Mapping[str, tuple[Any, ...]],
    *,
    owner: tuple[Any, ...],
    guid_prefix: str,
    now: Any,
    delete_missing: bool,
    is_new_scope: bool,
    later: Deferred | None,
    stored_rows: Sequence[Any] | None = None,
) -> Plan[tuple[dict[str, int], set[str]]]:
    """Make the table's rows in one scope (a member's accounts, an account's
    holdings) match ``desired`` (external_id -> values in ``table.values`` order).
    Without ``later``, rows are inserted at once and their ids returned; with it,
    every write waits for the flush. Returns external_id -> id, and the external
    ids it created."""
    json_at = [i for i, c in enumerate(table.values) if c in table.json]
    stored: dict[str, Any] = {}
    if stored_rows is not None:  # read already, with other scopes'
        stored = {row[1]: row for row in stored_rows}
    elif not is_new_scope:
        rows = yield Fetch(b.sql(table.select_sql + f"{table.scope} = ?"), (scope_id,))
        stored = {row[1]: row for row in rows}
    ids = {key: row[0] for key, row in stored.items()}
    inserts: list[tuple[str, tuple[Any, ...]]] = []
    updates: list[Sequence[Any]] = []
    for key, values in desired.items():
        old = stored.get(key)
        if old is None:
            inserts.append((key, values))
            continue
        old_values = list(old[2:])
        for i in json_at:
            old_values[i] = b.stored_json(old_values[i])
        if tuple(old_values) != values:
            updates.append((old[0], *_bound(values, json_at), now))
    new_rows = [
        (*owner, guid, key, *_bound(values, json_at), now, now)
        for guid, (key, values) in zip(
            time_ordered_guids(guid_prefix, len(inserts)), inserts, strict=True
        )
    ]
    gone = [row[0] for key, row in stored.items() if key not in desired]
    if later is None:
        if new_rows:
            flat = [v for row in new_rows for v in row]
            created = yield Fetch(b.sql(table.insert_sql(len(new_rows))), flat)
            ids.update({external_id: row_id for row_id, external_id in created})
        for row in updates:
            sets = ", ".join(f"{c} = ?" for c in (*table.values, "updated_at"))
            yield Fetch(b.sql(f"UPDATE {table.name} SET {sets} WHERE id = ?"), [*row[1:], row[0]])
        if delete_missing and gone:
            condition, params = b.any_of("id", gone)
            yield Fetch(b.sql(f"DELETE FROM {table.name} WHERE {condition}"), params)
    else:
        later.insert(table.name, table.insert_columns, new_rows)
        later.update(table.name, (*table.values, "updated_at"), updates)
        if delete_missing:
            later.delete(table.name, gone)
    return ids, {key for key, _ in inserts}


def _bound(values: tuple[Any, ...], json_at: list[int]) -> tuple[Any, ...]:
    if not json_at:
        return values
    out = list(values)
    for i in json_at:
        out[i] = json_text(out[i])
    return tuple(out)


_NAMED: dict[str, dict[str, str]] = {"CAT": {}, "MCH": {}}


def _named_guid(prefix: str, name: str | None) -> str | None:
    """Stable guids for categories and merchants (names repeat across many rows)."""
    if not name:
        return None
    known = _NAMED[prefix]
    found = known.get(name)
    if found is None:
        if len(known) > 65536:
            known.clear()
        found = known[name] = stable_guid(prefix, name)
    return found


# Flags objects as JSON text, by their items: a feed uses few combinations.
_FLAG_TEXTS: dict[tuple[tuple[str, Any], ...], str] = {}


def _flags_text(flags: Mapping[str, Any]) -> str:
    if not flags:
        return "{}"
    try:
        key = tuple(flags.items())
        found = _FLAG_TEXTS.get(key)
    except TypeError:  # an unhashable value: not worth remembering
        return json_text(dict(flags))
    if found is None:
        if len(_FLAG_TEXTS) > 4096:
            _FLAG_TEXTS.clear()
        found = _FLAG_TEXTS[key] = json_text(dict(flags))
    return found


def _midday(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, 12, tzinfo=_UTC)


# Transaction columns after (guid, client_id, user_id, member_id, account_id,
# external_id) and before (created_at, updated_at), in the order _txn_values gives them.
_TXN_VALUES = (
    "amount_cents",
    "type",
    "status",
    "date",
    "transacted_at",
    "posted_at",
    "description",
    "original_description",
    "memo",
    "category",
    "category_guid",
    "top_level_category",
    "top_level_category_guid",
    "merchant_guid",
    "merchant_category_code",
    "check_number_string",
    "currency_code",
    "flags",
)
_TXN_INSERT = (
    "guid",
    "client_id",
    "user_id",
    "member_id",
    "account_id",
    "external_id",
    *_TXN_VALUES,
    "created_at",
    "updated_at",
)
_TXN_UPDATE = (*_TXN_VALUES, "updated_at")
# A stored row: id, account_id, external_id, then the compared columns.
_COMPARED = ("amount_cents", "type", "status", "date", "description", "category", "memo")
_TXN_SELECT = "SELECT id, account_id, external_id, " + ", ".join(_COMPARED) + " FROM transactions"
# External ids per statement when looking up re-dated transactions (under SQLite's and
# PostgreSQL's limits on bound values, with the account ids beside them).
_LOOKUP_CHUNK = 500
# Where each compared column sits in _txn_values' tuple.
_COMPARED_AT = tuple(_TXN_VALUES.index(c) for c in _COMPARED)
_DATE_AT = _TXN_VALUES.index("date")


def _txn_rows(
    b: Backend, txns: Sequence[TransactionData], guids: list[str], at: int
) -> list[_TxnIn]:
    """Each transaction's values in _TXN_VALUES order, in stored form; the guid it
    gets if new is ``guids[at + i]``. Hundreds per pull, so one tight loop, and the
    values that repeat (dates, times, names, flags) are converted once."""
    stored_date, stored_time = b.cached_date, b.cached_timestamp
    categories, merchants = _NAMED["CAT"], _NAMED["MCH"]
    flag_texts = _FLAG_TEXTS
    out: list[_TxnIn] = []
    for i, t in enumerate(txns):
        status, day, description = t.status, t.date, t.description
        category, top, merchant = t.category, t.top_level_category, t.merchant_name
        flags = t.flags
        try:
            flags_text = flag_texts[tuple(flags.items())] if flags else "{}"
        except (KeyError, TypeError):
            flags_text = _flags_text(flags)
        values = (
            int((t.amount * 100).to_integral_value()),
            t.type,
            status,
            stored_date(day),
            stored_time(t.transacted_at or _midday(day)),
            stored_time(t.posted_at) if status == "POSTED" else None,
            description,
            t.original_description or description,
            t.memo,
            category,
            categories.get(category) or _named_guid("CAT", category),  # type: ignore[arg-type]
            top,
            categories.get(top) or _named_guid("CAT", top),  # type: ignore[arg-type]
            merchants.get(merchant) or _named_guid("MCH", merchant),  # type: ignore[arg-type]
            t.merchant_category_code,
            t.check_number_string,
            t.currency_code,
            flags_text,
        )
        out.append((guids[at + i], t.external_id, values, t.replaces_external_id))
    return out


def _transactions(
    b: Backend,
    pulled: Mapping[AccountRef, Sequence[_TxnIn]],
    *,
    from_date: dt.date,
    now: dt.datetime,
    pending_max_age: dt.timedelta,
    new_accounts: set[int],
    later: Deferred,
) -> Plan[IngestCounts]:
    """Upsert the transactions pulled for some accounts (over ``from_date`` onwards):
    one select now, then at most one insert, update and delete for all of them."""
    stamp = b.timestamp(now)
    known: dict[tuple[int, str], Any] = {}
    old_ids = [a.id for a in pulled if a.id not in new_accounts]
    if old_ids:
        condition, params = b.any_of("account_id", old_ids)
        # An institution may answer transactions dated before the window (one that
        # filters on the posting date, a window the connector widened): those are
        # looked up too, or one stored already would be inserted again.
        since = b.date(from_date)
        for a, transactions in pulled.items():
            if a.id not in new_accounts:
                for _, _, values, _ in transactions:
                    if values[_DATE_AT] < since:
                        since = values[_DATE_AT]
        rows = yield Fetch(
            b.sql(f"{_TXN_SELECT} WHERE {condition} AND (date >= ? OR status = 'PENDING')"),
            [*params, since],
        )
        known = {(r[1], r[2]): r for r in rows}
        # A transaction the institution re-dated forward from before that date is
        # stored under its old date: found by its id, or it would be inserted again.
        unseen = sorted(
            {
                external_id
                for a, transactions in pulled.items()
                if a.id not in new_accounts
                for _, external_id, _, _ in transactions
                if (a.id, external_id) not in known
            }
        )
        for at in range(0, len(unseen), _LOOKUP_CHUNK):
            chunk = unseen[at : at + _LOOKUP_CHUNK]
            rows = yield Fetch(
                b.sql(
                    f"{_TXN_SELECT} WHERE {condition} AND date < ? AND external_id IN "
                    f"({', '.join('?' * len(chunk))})"
                ),
                [*params, since, *chunk],
            )
            known.update(((r[1], r[2]), r) for r in rows)
    pulled_keys: set[tuple[int, str]] = set()
    replaced: set[tuple[int, str]] = set()
    fresh: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for a, transactions in pulled.items():
        owner = (a.client_id, a.user_id, a.member_id, a.id)
        if a.id in new_accounts:  # the common case: nothing to compare with
            fresh.extend(
                (guid, *owner, external_id, *values, stamp, stamp)
                for guid, external_id, values, _ in transactions
            )
            continue
        for guid, external_id, values, replaces in transactions:
            key = (a.id, external_id)
            pulled_keys.add(key)
            if replaces:
                replaced.add((a.id, replaces))
            old = known.get(key)
            if old is None:
                fresh.append((guid, *owner, external_id, *values, stamp, stamp))
            elif any(old[3 + n] != values[i] for n, i in enumerate(_COMPARED_AT)):
                updates.append((old[0], *values, stamp))
    later.insert("transactions", _TXN_INSERT, fresh)
    later.update("transactions", _TXN_UPDATE, updates)
    from_stored = b.date(from_date)
    stale_before = b.date((now - pending_max_age).date())
    gone = [
        r[0]
        for key, r in known.items()
        if r[5] == "PENDING"
        and (
            key in replaced
            or (key not in pulled_keys and r[6] >= from_stored)
            or r[6] < stale_before
        )
    ]
    later.delete("transactions", gone)
    return IngestCounts(created=len(fresh), updated=len(updates), removed=len(gone))


def accounts_of(b: Backend, member_ids: Sequence[int]) -> Plan[dict[int, list[Any]]]:
    """The stored accounts of several members at once, by member, as ``plan_pull``
    takes them (``stored_accounts``)."""
    condition, params = b.any_of("member_id", member_ids)
    rows = yield Fetch(
        b.sql(
            f"SELECT id, external_id, {', '.join(_ACCOUNTS.values)}, member_id FROM accounts "
            f"WHERE {condition}"
        ),
        params,
    )
    found: dict[int, list[Any]] = {m: [] for m in member_ids}
    for row in rows:
        found[row[-1]].append(row[:-1])
    return found


def plan_pull(
    b: Backend,
    owner: Owner,
    pull: Prepared,
    *,
    now: dt.datetime,
    pending_max_age: dt.timedelta,
    later: Deferred,
    stored_accounts: Sequence[Any] | None = None,
) -> Plan[Ingested]:
    """The upsert of one aggregation's accounts, transactions and holdings. Accounts
    are written at once (transactions need their ids); the rest goes to ``later``.
    ``stored_accounts``: the member's account rows, when read already
    (``accounts_of``)."""
    stamp = b.timestamp(now)
    owner_values = (owner.client_id, owner.user_id, owner.member_id)
    ids, created = yield from _upsert_keyed(
        b,
        _ACCOUNTS,
        owner.member_id,
        pull.accounts,
        owner=owner_values,
        guid_prefix="ACT",
        now=stamp,
        delete_missing=False,  # an account the bank stops listing keeps its history
        is_new_scope=False,
        later=None,
        stored_rows=stored_accounts,
    )
    refs = {key: AccountRef(account_id, *owner_values) for key, account_id in ids.items()}
    # Accounts this plan created have nothing stored under them yet: no lookups.
    new_accounts = {ids[key] for key in created}
    counts = IngestCounts()
    if pull.from_date is not None:
        counts = yield from _transactions(
            b,
            {refs[key]: txns for key, txns in pull.transactions.items()},
            from_date=pull.from_date,
            now=now,
            pending_max_age=pending_max_age,
            new_accounts=new_accounts,
            later=later,
        )
    for key, holdings in pull.holdings.items():
        account = refs[key]
        yield from _upsert_keyed(
            b,
            _HOLDINGS,
            account.id,
            holdings,
            owner=(*owner_values, account.id),
            guid_prefix="HOL",
            now=stamp,
            delete_missing=True,  # a position the institution no longer lists was sold
            is_new_scope=account.id in new_accounts,
            later=later,
        )
    return Ingested(refs, counts)


async def ingest_pull(
    session: AsyncSession,
    owner: Owner,
    pull: Pull | Prepared,
    *,
    now: dt.datetime,
    pending_max_age: dt.timedelta,
    later: Deferred | None = None,
    stored_accounts: Sequence[Any] | None = None,
) -> Ingested:
    """Upsert one aggregation's pull (best ``prepare``d before the transaction) in
    the session's transaction. With ``later``, the bulk writes wait in it for the
    caller's ``flush``, and the caller, which settles the member row, counts a change
    to its transactions (``transactions_version``); without, both are done before
    this returns."""
    writes = Deferred() if later is None else later

    def make(b: Backend, _: Dialect) -> Plan[Ingested]:
        ready = prepare(b, pull) if isinstance(pull, Pull) else pull
        return plan_pull(
            b,
            owner,
            ready,
            now=now,
            pending_max_age=pending_max_age,
            later=writes,
            stored_accounts=stored_accounts,
        )

    done = await run_plan(session, make)
    if later is None:
        await flush(session, writes)
        if done.counts.changed:
            await session.execute(
                update(Member)
                .where(Member.id == owner.member_id)
                .values(transactions_version=Member.transactions_version + 1)
            )
    return done


def backend(sqlite: bool) -> Backend:
    return SQLITE if sqlite else POSTGRESQL


# --- rare kinds of job: verification and identification (ORM, one row per account) -------


async def upsert_account_number(
    session: AsyncSession, account: AccountRef, data: AccountData
) -> None:
    if not data.account_number:
        return
    row = await session.scalar(select(AccountNumber).where(AccountNumber.account_id == account.id))
    if row is None:
        row = AccountNumber(
            guid=new_guid("ACN"),
            client_id=account.client_id,
            account_id=account.id,
            member_id=account.member_id,
        )
        session.add(row)
    row.account_number = data.account_number
    row.routing_number = data.routing_number
    row.passed_validation = True


async def upsert_owner(session: AsyncSession, account: AccountRef, data: OwnerData) -> None:
    row = await session.scalar(select(AccountOwner).where(AccountOwner.account_id == account.id))
    if row is None:
        row = AccountOwner(
            guid=new_guid("ACO"),
            client_id=account.client_id,
            account_id=account.id,
            member_id=account.member_id,
        )
        session.add(row)
    row.owner = {k: v for k, v in vars(data).items() if k != "account_external_id"}

"""Statement files into managed members: read, match, and write without duplicates.

One import is one transaction: all of it is written, or nothing. Transactions are
keyed by the bank's id (OFX FITID, CAMT AcctSvcrRef) or, for rows without one (CSV,
QIF), by a stable id from the account, date, amount, description and the row's
place among identical rows of that day, so two real coffees stay two and a file
imported again adds nothing. A bank id seen for the first time whose date, amount
and description match a stored transaction that this file does not name is the
same transaction under a new id (banks that change FITIDs between downloads).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from openagg.connectors.files import STATEMENT_FILE_CODE
from openagg.db.driver import Backend, Deferred, Fetch, Plan, flush, json_text, run_plan
from openagg.db.models import (
    Account,
    Client,
    Holding,
    Import,
    Institution,
    Member,
    User,
)
from openagg.domain.ids import new_guid, time_ordered_guids
from openagg.runtime import Runtime
from openagg.services.errors import BadRequest, Conflict
from openagg.services.lookup import institution_by_code, user_by_guid
from openagg.services.managed import bump_transactions, managed_member, new_managed_member
from openagg.statements.csv_reader import CsvOptions
from openagg.statements.model import StatementAccount, StatementEntry, StatementFile, UnreadableFile
from openagg.statements.read import read_statement

MAX_WARNINGS = 50
T = TypeVar("T")
_CENT = Decimal("0.01")
# Columns compared to decide "unchanged" or "updated".
_COMPARED = ("amount_cents", "type", "status", "date", "description", "memo", "check_number_string")


# A file over this many bytes is parsed, and a plan of over this many entries made,
# with the cyclic garbage collector paused (``_uncollected``).
_BIG_FILE = 1 << 20
_BIG_PLAN = 10_000
_KEYS_PER_READ = 500  # keys per statement (SQLite binds at most 32,766 values)
_collector_lock = threading.Lock()
_collector_holds = 0
_collector_was_on = True


def _call(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return func(*args, **kwargs)


def _uncollected(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` with the cyclic garbage collector paused (in the
    worker thread that runs it; the pause is the process's). A big file's parse and
    plan make hundreds of thousands of objects without cycles (entries, Decimals,
    tuples), which reference counting frees; the collector's passes over them cost
    a fifth of a 100,000-row CSV file's parse and plan. Imports running at once keep
    it paused until the last ends; it is left as it was found."""
    global _collector_holds, _collector_was_on
    with _collector_lock:
        if _collector_holds == 0:
            _collector_was_on = gc.isenabled()
            gc.disable()
        _collector_holds += 1
    try:
        return func(*args, **kwargs)
    finally:
        with _collector_lock:
            _collector_holds -= 1
            if _collector_holds == 0 and _collector_was_on:
                gc.enable()


@dataclass
class ImportOptions:
    format: str | None = None
    filename: str | None = None
    member_guid: str | None = None
    csv: CsvOptions | None = None


@dataclass
class _Counts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    matched_by_content: int = 0  # a new bank id for a stored transaction
    repeated_bank_ids: int = 0  # two entries of one file with one bank id, both kept


@dataclass
class _Done:
    accounts: list[dict[str, Any]] = field(default_factory=list)
    counts: _Counts = field(default_factory=_Counts)


async def import_file(
    rt: Runtime, client: Client, user_guid: str, data: bytes, options: ImportOptions
) -> tuple[Import, Member]:
    try:
        # Parsing is CPU work: off the event loop, so other requests keep being served.
        statement = await asyncio.to_thread(
            _uncollected if len(data) > _BIG_FILE else _call,
            read_statement,
            data,
            format=options.format,
            filename=options.filename,
            csv=options.csv,
        )
    except UnreadableFile as exc:
        raise BadRequest(f"The file cannot be imported: {exc}") from None
    if not statement.accounts and not statement.entries:
        raise BadRequest("The file cannot be imported: it holds no accounts and no transactions.")
    now = rt.now()
    async with rt.db.write() as s:
        user = await user_by_guid(s, client, user_guid, lock=True)
        inst = await _institution(s, statement)
        member = await _member(rt, s, user, inst, statement, options)
        done = await _write(s, user, member, statement)
        await bump_transactions(s, member)
        c = done.counts
        warnings = statement.warnings[:MAX_WARNINGS]
        if len(statement.warnings) > MAX_WARNINGS:
            warnings.append(f"... and {len(statement.warnings) - MAX_WARNINGS} more warnings")
        if c.matched_by_content:
            warnings.append(
                f"{c.matched_by_content} transaction(s) came with new bank ids but match stored "
                "ones by date, amount and description: kept once"
            )
        if c.repeated_bank_ids:
            warnings.append(
                f"{c.repeated_bank_ids} transaction(s) repeat another's bank id in this file: "
                "both kept"
            )
        dates = [e.date for e in statement.entries]
        record = Import(
            guid=new_guid("IMP"),
            client_id=client.id,
            user_id=user.id,
            member_id=member.id,
            format=statement.format,
            filename=(options.filename or None) and options.filename[:255],
            summary={
                "accounts": done.accounts,
                "transactions_added": c.added,
                "transactions_updated": c.updated,
                "transactions_unchanged": c.unchanged,
                # The file's span, as a person checks which statement they just read.
                "from_date": min(dates).isoformat() if dates else None,
                "to_date": max(dates).isoformat() if dates else None,
                "warnings": warnings,
            },
            created_at=now,
        )
        s.add(record)
        member.updated_at = now
        member.aggregated_at = now
        member.successfully_aggregated_at = now
    return record, member


async def _institution(s: AsyncSession, statement: StatementFile) -> Institution:
    """The institution the file names, when OpenAgg knows it by that name or code."""
    if statement.institution:
        named = statement.institution.strip()
        found = await s.scalar(
            select(Institution).where(
                Institution.is_retired.is_(False),
                (func.lower(Institution.name) == named.lower())
                | (Institution.code == named.lower()),
            )
        )
        if found is not None:
            return found
    inst = await institution_by_code(s, STATEMENT_FILE_CODE)
    if inst is None:
        raise Conflict("The statement_file institution is missing: restart the server to seed it.")
    return inst


async def _member(
    rt: Runtime,
    s: AsyncSession,
    user: User,
    inst: Institution,
    statement: StatementFile,
    options: ImportOptions,
) -> Member:
    if options.member_guid:
        return await managed_member(s, user, options.member_guid, lock=True)
    numbers = {_account_key(a) for a in statement.accounts}
    if numbers:
        same = await s.scalar(
            select(Member)
            .join(Account, Account.member_id == Member.id)
            .where(
                Member.user_id == user.id,
                Member.is_managed.is_(True),
                Member.institution_id == inst.id,
                Account.external_id.in_(numbers),
            )
            .order_by(Member.id)
            .limit(1)
        )
        if same is not None:
            return same
    name = statement.institution or options.filename or inst.name
    return await new_managed_member(rt, s, user, inst, name[:255])


def _account_key(a: StatementAccount) -> str:
    return a.account_id or "statement"


def _cents(amount: Decimal) -> int:
    return int((amount.quantize(_CENT, rounding=ROUND_HALF_EVEN) * 100).to_integral_value())


async def _write(s: AsyncSession, user: User, member: Member, statement: StatementFile) -> _Done:
    done = _Done()
    now = dt.datetime.now(dt.UTC)
    by_account: dict[str, list[StatementEntry]] = defaultdict(list)
    for e in statement.entries:
        by_account[e.account_id or ""].append(e)
    accounts = {a.account_id: a for a in statement.accounts}
    for account_id in by_account:
        accounts.setdefault(account_id, StatementAccount(account_id=account_id))
    for given in accounts.values():
        account = await _account(s, user, member, given, now)
        await _transactions(
            s, member, account, by_account.get(given.account_id, []), now, done.counts
        )
        holdings = [h for h in statement.holdings if h.account_id == given.account_id]
        if holdings:
            await _holdings(s, member, account, holdings, now)
        done.accounts.append(
            {
                "guid": account.guid,
                "name": account.name,
                "type": account.type,
                "balance": None if account.balance_cents is None else account.balance_cents / 100,
                "currency_code": account.currency_code,
            }
        )
    return done


async def _account(
    s: AsyncSession, user: User, member: Member, given: StatementAccount, now: dt.datetime
) -> Account:
    key = _account_key(given)
    account = await s.scalar(
        select(Account).where(Account.member_id == member.id, Account.external_id == key)
    )
    if account is None:
        kind = given.type or "CHECKING"
        last4 = given.account_id[-4:] if given.account_id else ""
        account = Account(
            guid=new_guid("ACT"),
            client_id=member.client_id,
            user_id=user.id,
            member_id=member.id,
            external_id=key,
            name=(
                given.name or f"{kind.replace('_', ' ').title()} {'...' + last4 if last4 else ''}"
            )[:255].strip(),
            type=kind,
            account_number_last4=last4 or None,
            currency_code=(given.currency or "USD")[:3].upper(),
            details={},
            is_closed=False,
            created_at=now,
            updated_at=now,
        )
        s.add(account)
    if given.balance is not None:
        balance = given.balance
        if account.type in ("CREDIT_CARD", "LOAN", "MORTGAGE", "LINE_OF_CREDIT"):
            balance = abs(balance)  # owed, as a positive amount as at MX
        account.balance_cents = _cents(balance)
    if given.available_balance is not None:
        account.available_balance_cents = _cents(given.available_balance)
    if given.bank_id and given.type not in ("INVESTMENT",):
        account.details = {**(account.details or {}), "routing_number": given.bank_id}
    account.updated_at = now
    await s.flush()
    return account


def _stand_in_id(account_key: str, e: StatementEntry, nth: int) -> str:
    text = f"{account_key}|{e.date.isoformat()}|{e.amount}|{e.description}|{nth}"
    return "S-" + hashlib.sha256(text.encode()).hexdigest()[:32]


# The columns a new transaction row is written with, in order (``_plan`` builds the rows).
_INSERTED = (
    "guid",
    "client_id",
    "user_id",
    "member_id",
    "account_id",
    "external_id",
    "amount_cents",
    "type",
    "status",
    "date",
    "description",
    "original_description",
    "memo",
    "check_number_string",
    "currency_code",
    "flags",
    "created_at",
    "updated_at",
)
_EMPTY_FLAGS = json_text({})
_STORED_COLUMNS = f"id, external_id, {', '.join(_COMPARED)}"
# The account's stored rows dated within the file's span: the only ones an entry can
# match by content (its date is part of it), and, but for a date changed since, by key.
# Through the (user_id, date, id) index: a month's file into ten years of history
# reads that month. On SQLite in table order (``id IN``): through an index whose order
# is not the table's, a 100,000-row read walks the table's pages at random (a CSV
# re-import's rows read in 0.87 s, in table order 0.40).
_STORED_IN_SPAN = (
    f"SELECT {_STORED_COLUMNS} FROM transactions WHERE id IN ("
    "SELECT id FROM transactions WHERE user_id = ? AND date >= ? AND date <= ? "
    "AND +account_id = ?)"
)
# Whether the account holds rows outside the span (then a key may be stored there).
# ``+account_id``: not through the (account_id, external_id) index, which SQLite would
# choose and then read every row of the account for its date.
_STORED_OUTSIDE_SPAN = (
    "SELECT 1 FROM transactions WHERE user_id = ? AND date < ? AND +account_id = ? "
    "UNION ALL SELECT 1 FROM transactions WHERE user_id = ? AND date > ? AND +account_id = ? "
    "LIMIT 1"
)


@dataclass
class _Plan:
    fresh: list[tuple[Any, ...]] = field(default_factory=list)
    changed: list[tuple[Any, ...]] = field(default_factory=list)  # (id, *_COMPARED, updated_at)


async def _transactions(
    s: AsyncSession,
    member: Member,
    account: Account,
    entries: list[StatementEntry],
    now: dt.datetime,
    counts: _Counts,
) -> None:
    if not entries:
        return

    first, last = min(e.date for e in entries), max(e.date for e in entries)

    def read(b: Backend, _: Dialect) -> Plan[tuple[Backend, list[Any], bool]]:
        rows = yield Fetch(
            b.sql(_STORED_IN_SPAN), (member.user_id, b.date(first), b.date(last), account.id)
        )
        outside = yield Fetch(
            b.sql(_STORED_OUTSIDE_SPAN),
            (member.user_id, b.date(first), account.id, member.user_id, b.date(last), account.id),
        )
        return b, rows, bool(outside)

    # The stored rows as the driver gives them (dates in the backend's stored form):
    # a re-import reads every row of the file's span, and the ORM's conversions cost most.
    backend, stored, outside = await run_plan(s, read)
    owner = (member.client_id, member.user_id, member.id, account.id)
    # Matching and building 100,000 rows is CPU work: off the event loop, like the parse.
    plan = await asyncio.to_thread(
        _uncollected if len(entries) > _BIG_PLAN else _call,
        _plan,
        backend,
        account.external_id,
        account.currency_code,
        entries,
        stored,
        owner,
        now,
        counts,
    )
    if outside and plan.fresh:
        await _match_outside_span(s, account, plan)
    # Straight to the driver, in the backend's stored form, many rows per statement:
    # the path the engine's ingest takes (SQLAlchemy's per-row binding cost 5x more).
    writes = Deferred()
    writes.insert("transactions", _INSERTED, plan.fresh)
    writes.update("transactions", (*_COMPARED, "updated_at"), plan.changed)
    await flush(s, writes)
    counts.added += len(plan.fresh)
    counts.updated += len(plan.changed)


async def _match_outside_span(s: AsyncSession, account: Account, plan: _Plan) -> None:
    """New rows whose key the account already holds outside the file's span (a
    transaction whose date changed since, at the bank or by hand): they are that
    row, changed (its date at least), never a second one."""
    at = _INSERTED.index("external_id")
    fresh = {row[at]: row for row in plan.fresh}
    keys = list(fresh)

    def read(b: Backend, _: Dialect) -> Plan[list[Any]]:
        found: list[Any] = []
        for chunk in (keys[i : i + _KEYS_PER_READ] for i in range(0, len(keys), _KEYS_PER_READ)):
            found += yield Fetch(
                b.sql(
                    f"SELECT {_STORED_COLUMNS} FROM transactions WHERE account_id = ? "
                    f"AND external_id IN ({', '.join('?' * len(chunk))})"
                ),
                [account.id, *chunk],
            )
        return found

    stored = await run_plan(s, read)
    if not stored:
        return
    compared = [_INSERTED.index(c) for c in _COMPARED]
    stamp = plan.fresh[0][_INSERTED.index("updated_at")]
    for row in stored:
        new = fresh.pop(row[1])
        plan.changed.append((row[0], *(new[i] for i in compared), stamp))
    plan.fresh = list(fresh.values())


def _plan(
    b: Backend,
    account_key: str,
    currency: str | None,
    entries: list[StatementEntry],
    stored_rows: list[tuple[Any, ...]],
    owner: tuple[int, int, int, int],
    now: dt.datetime,
    counts: _Counts,
) -> _Plan:
    """Which entries are new, changed or unchanged against the account's stored rows
    (id, external_id, then the ``_COMPARED`` columns).

    One tight loop over 100,000 entries: each entry's compared values come as one
    tuple in the stored rows' order (so a stored row's ``row[2:]`` compares with it
    at once), and what repeats down a file (dates, amounts) is converted once."""
    stored: dict[str, tuple[Any, ...]] = {row[1]: row for row in stored_rows}

    # Pass 1: every entry's key and compared values (_COMPARED order, stored form).
    keyed: list[tuple[str, tuple[Any, ...]]] = []
    seen_ids: dict[str, int] = {}
    seen_rows: dict[tuple[Any, ...], int] = {}
    cents_of: dict[Decimal, int] = {}
    dates: dict[dt.date, tuple[Any, str]] = {}  # date -> (stored form, ISO text)
    stored_date = b.date
    sha256 = hashlib.sha256
    for e in entries:
        amount, day = e.amount, e.date
        cents = cents_of.get(amount)
        if cents is None:
            cents = cents_of[amount] = _cents(amount)
        when = dates.get(day)
        if when is None:
            when = dates[day] = (stored_date(day), day.isoformat())
        bank_id = e.bank_id
        if bank_id:
            n = seen_ids.get(bank_id, 0)
            seen_ids[bank_id] = n + 1
            if n:
                key = f"{bank_id}#{n + 1}"
                counts.repeated_bank_ids += 1
            else:
                key = bank_id
        else:
            # The stable id of a row without a bank id (``_stand_in_id``, inlined).
            row_key = (day, amount, e.description)
            nth = seen_rows.get(row_key, 0)
            seen_rows[row_key] = nth + 1
            text = f"{account_key}|{when[1]}|{amount}|{e.description}|{nth}"
            key = "S-" + sha256(text.encode()).hexdigest()[:32]
        memo, check = e.memo, e.check_number
        keyed.append(
            (
                key,
                (
                    -cents if cents < 0 else cents,
                    "CREDIT" if cents > 0 else "DEBIT",
                    "PENDING" if e.pending else "POSTED",
                    when[0],
                    (e.payee or e.description or "")[:255] or None,
                    (memo or None) and memo[:255],
                    (check or None) and check[:40],
                ),
            )
        )

    # Pass 2: match them with the stored rows.
    by_content: dict[tuple[Any, ...], list[str]] | None = None
    in_file: set[str] = set()
    claimed: set[str] = set()
    changed: list[tuple[Any, ...]] = []
    fresh: list[tuple[str, tuple[Any, ...]]] = []
    stamp = b.timestamp(now)
    unchanged = 0
    for key, values in keyed:
        row = stored.get(key)
        if row is None and stored:
            if by_content is None:
                # Only now: a re-import finds every key stored and never needs these.
                in_file = {key for key, _ in keyed}
                by_content = defaultdict(list)
                for found in stored_rows:  # date, cents, type, text
                    by_content[(found[5], found[2], found[3], found[6])].append(found[1])
            for candidate in by_content.get((values[3], values[0], values[1], values[4]), ()):
                if candidate not in in_file and candidate not in claimed:
                    claimed.add(candidate)
                    row = stored[candidate]
                    counts.matched_by_content += 1
                    break
        if row is None:
            fresh.append((key, values))
        elif row[2:] != values:
            changed.append((row[0], *values, stamp))
        else:
            unchanged += 1
    counts.unchanged += unchanged

    plan = _Plan(changed=changed)
    guids = time_ordered_guids("TRN", len(fresh))
    plan.fresh = [
        (
            guid,
            *owner,
            key,
            cents,
            kind,
            status,
            date,
            description,
            description,
            memo,
            check,
            currency,
            _EMPTY_FLAGS,
            stamp,
            stamp,
        )
        for guid, (key, (cents, kind, status, date, description, memo, check)) in zip(
            guids, fresh, strict=True
        )
    ]
    return plan


async def _holdings(
    s: AsyncSession, member: Member, account: Account, holdings: list[Any], now: dt.datetime
) -> None:
    """A file's positions replace the account's holdings: they are as of the file."""
    await s.execute(delete(Holding).where(Holding.account_id == account.id))
    await s.execute(
        insert(Holding),
        [
            {
                "guid": new_guid("HOL"),
                "client_id": member.client_id,
                "user_id": member.user_id,
                "member_id": member.id,
                "account_id": account.id,
                "external_id": h.security_id[:255],
                "symbol": (h.symbol or None) and h.symbol[:20],
                "description": h.description[:255],
                "holding_type": h.holding_type,
                "currency_code": account.currency_code,
                "quantity": float(h.quantity),
                "current_price": float(h.price),
                "market_value": float((h.quantity * h.price).quantize(_CENT)),
                "created_at": now,
                "updated_at": now,
            }
            for h in holdings
        ],
    )


async def list_imports(
    rt: Runtime, client: Client, user_guid: str
) -> tuple[User, list[tuple[Import, str]]]:
    async with rt.db.read() as s:
        user = await user_by_guid(s, client, user_guid)
        rows = await s.execute(
            select(Import, Member.guid)
            .join(Member, Member.id == Import.member_id)
            .where(Import.user_id == user.id, Import.client_id == client.id)
            .order_by(Import.id.desc())
        )
        return user, [(i, g) for i, g in rows]

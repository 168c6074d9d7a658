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
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

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
from openagg.domain.ids import new_guid
from openagg.runtime import Runtime
from openagg.services.errors import BadRequest, Conflict
from openagg.services.lookup import institution_by_code, user_by_guid
from openagg.services.managed import bump_transactions, managed_member, new_managed_member
from openagg.statements.csv_reader import CsvOptions
from openagg.statements.model import StatementAccount, StatementEntry, StatementFile, UnreadableFile
from openagg.statements.read import read_statement

MAX_WARNINGS = 50
_CENT = Decimal("0.01")
# Columns compared to decide "unchanged" or "updated".
_COMPARED = ("amount_cents", "type", "status", "date", "description", "memo", "check_number_string")


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
            read_statement, data, format=options.format, filename=options.filename, csv=options.csv
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


def _values(e: StatementEntry) -> dict[str, Any]:
    cents = _cents(e.amount)
    return {
        "amount_cents": abs(cents),
        "type": "CREDIT" if cents > 0 else "DEBIT",
        "status": "PENDING" if e.pending else "POSTED",
        "date": e.date,
        "description": (e.payee or e.description or "")[:255] or None,
        "memo": (e.memo or None) and e.memo[:255],
        "check_number_string": (e.check_number or None) and e.check_number[:40],
    }


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
_COMPARED_SQL = ", ".join(_COMPARED)


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

    def read(b: Backend, _: Dialect) -> Plan[tuple[Backend, list[Any]]]:
        rows = yield Fetch(
            b.sql(
                f"SELECT id, external_id, {_COMPARED_SQL} FROM transactions WHERE account_id = ?"
            ),
            (account.id,),
        )
        return b, rows

    # The stored rows as the driver gives them (dates in the backend's stored form):
    # a re-import reads every row of the account, and the ORM's conversions cost most.
    backend, stored = await run_plan(s, read)
    owner = (member.client_id, member.user_id, member.id, account.id)
    # Matching and building 100,000 rows is CPU work: off the event loop, like the parse.
    plan = await asyncio.to_thread(_plan, backend, account, entries, stored, owner, now, counts)
    # Straight to the driver, in the backend's stored form, many rows per statement:
    # the path the engine's ingest takes (SQLAlchemy's per-row binding cost 5x more).
    writes = Deferred()
    writes.insert("transactions", _INSERTED, plan.fresh)
    writes.update("transactions", (*_COMPARED, "updated_at"), plan.changed)
    await flush(s, writes)
    counts.added += len(plan.fresh)
    counts.updated += len(plan.changed)


def _plan(
    b: Backend,
    account: Account,
    entries: list[StatementEntry],
    stored_rows: list[tuple[Any, ...]],
    owner: tuple[int, int, int, int],
    now: dt.datetime,
    counts: _Counts,
) -> _Plan:
    """Which entries are new, changed or unchanged against the account's stored rows
    (id, external_id, then the ``_COMPARED`` columns)."""
    stored: dict[str, tuple[Any, ...]] = {}
    by_content: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for found in stored_rows:
        kept = tuple(found)
        stored[kept[1]] = kept
        by_content[(kept[5], kept[2], kept[3], kept[6])].append(kept[1])  # date, cents, type, text

    keyed: list[tuple[str, dict[str, Any]]] = []
    seen_ids: dict[str, int] = defaultdict(int)
    seen_rows: dict[tuple[Any, ...], int] = defaultdict(int)
    for e in entries:
        values = _values(e)
        values["date"] = b.cached_date(values["date"])  # as the driver reads and writes it
        if e.bank_id:
            n = seen_ids[e.bank_id]
            seen_ids[e.bank_id] += 1
            key = e.bank_id if n == 0 else f"{e.bank_id}#{n + 1}"
            counts.repeated_bank_ids += n > 0
        else:
            row_key = (e.date, e.amount, e.description)
            key = _stand_in_id(account.external_id, e, seen_rows[row_key])
            seen_rows[row_key] += 1
        keyed.append((key, values))

    in_file = {key for key, _ in keyed}
    claimed: set[str] = set()
    plan = _Plan()
    stamp = b.timestamp(now)
    currency = account.currency_code
    for key, values in keyed:
        row: tuple[Any, ...] | None = stored.get(key)
        if row is None:
            content = (
                values["date"],
                values["amount_cents"],
                values["type"],
                values["description"],
            )
            for candidate in by_content.get(content, ()):
                if candidate not in in_file and candidate not in claimed:
                    claimed.add(candidate)
                    row = stored[candidate]
                    counts.matched_by_content += 1
                    break
        compared = tuple(values[c] for c in _COMPARED)
        if row is None:
            plan.fresh.append(
                (
                    new_guid("TRN"),
                    *owner,
                    key,
                    values["amount_cents"],
                    values["type"],
                    values["status"],
                    values["date"],
                    values["description"],
                    values["description"],
                    values["memo"],
                    values["check_number_string"],
                    currency,
                    _EMPTY_FLAGS,
                    stamp,
                    stamp,
                )
            )
        elif tuple(row[2:]) != compared:
            stored_form = tuple(
                b.cached_date(v) if c == "date" else v
                for c, v in zip(_COMPARED, compared, strict=True)
            )
            plan.changed.append((row[0], *stored_form, stamp))
        else:
            counts.unchanged += 1
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

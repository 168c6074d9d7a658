"""QIF (Quicken Interchange Format): `!Type:` sections of records, one field per
line keyed by its first letter, `^` ending each record; `!Account` blocks name the
account the following records belong to.

QIF has no ids, no balances and no positions. Dates come in US (`1/31'26`,
`01/31/2026`) and European (`31.01.2026`, `31/01/2026`) forms: the day/month order
is decided once for the whole file, from the dates that can only be read one way."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from openagg.statements.model import (
    StatementAccount,
    StatementEntry,
    StatementFile,
    UnreadableFile,
)
from openagg.statements.values import (
    BadValue,
    decode_text,
    full_year,
    guess_decimal_separator,
    join_text,
    parse_money,
)

ACCOUNT_TYPES = {
    "bank": "CHECKING",
    "ccard": "CREDIT_CARD",
    "cash": "CASH",
    "invst": "INVESTMENT",
    "port": "INVESTMENT",
    "401(k)/403(b)": "INVESTMENT",
    "mutual": "INVESTMENT",
    "oth a": "PROPERTY",
    "oth l": "LOAN",
}
# Sections that hold lists (categories, classes, memorised payees, prices), not entries.
_LIST_TYPES = {"cat", "class", "memorized", "security", "prices", "invitem", "template", "bill"}

# `1/31'26`, `1/ 5' 6`, `01/31/2026`, `31.01.2026`, `31-01-26`, `2026-01-31`.
_DATE = re.compile(r"\s*(\d{1,4})\s*([/.\-])\s*(\d{1,2})\s*([/.\-]|')\s*(\d{1,4})\s*")

# Investment actions by the sign of the cash they move (an `X` suffix only says the
# cash came from or went to another account).
_CASH_OUT = {"buy", "cvrshrt", "miscexp", "margint", "xout", "withdrw", "contrib"}
_CASH_IN = {
    "sell",
    "shtsell",
    "div",
    "intinc",
    "cglong",
    "cgmid",
    "cgshort",
    "miscinc",
    "rtrncap",
    "reinvdiv",
    "reinvint",
    "reinvlg",
    "reinvmd",
    "reinvsh",
    "xin",
}
_NO_CASH = {"shrsin", "shrsout", "stksplit", "reminder", "exercise", "expire", "grant", "vest"}


@dataclass
class _Record:
    kind: str  # the section's type, lower case: bank, ccard, invst...
    account_id: str
    line: int
    fields: list[tuple[str, str, int]] = field(default_factory=list)  # (key, value, line)


def read_qif(data: bytes) -> StatementFile:
    lines = decode_text(data).splitlines()
    records, accounts, warnings = _records(lines)
    if not records and not accounts:
        raise UnreadableFile("no QIF records (no `!Type:` section with `^`-ended records)", 1)
    day_first = _day_first(records, warnings)
    decimal = guess_decimal_separator(
        value for r in records for key, value, _ in r.fields if key in "TU$"
    )
    out = StatementFile(format="QIF", accounts=list(accounts.values()), warnings=warnings)
    no_cash: list[int] = []
    for record in records:
        entry = _entry(record, day_first, decimal or ".")
        if entry is None:
            no_cash.append(record.line)
        else:
            out.entries.append(entry)
    if no_cash:
        out.warnings.append(
            f"{len(no_cash)} investment records that move no cash (share transfers, "
            f"splits) left out, first at line {no_cash[0]}"
        )
    return out


def _records(
    lines: list[str],
) -> tuple[list[_Record], dict[str, StatementAccount], list[str]]:
    """Records with their section and account; accounts named by `!Account` blocks."""
    records: list[_Record] = []
    accounts: dict[str, StatementAccount] = {}
    warnings: list[str] = []
    kind: str | None = None
    account_id = ""
    current: _Record | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("!"):
            header = line[1:].lower()
            if header.startswith("type:"):
                kind = header[5:].strip()
            elif header == "account":
                kind = "account"
            # `!Option:AutoSwitch` and `!Clear:AutoSwitch` change nothing here.
            current = None
            continue
        if kind is None:
            if line[0].upper() not in "DTUPMNLC^":
                raise UnreadableFile(
                    f"not QIF: {line[:40]!r} where a `!Type:` line was expected", number
                )
            kind = "bank"
            warnings.append(f"line {number}: records before any `!Type:` line, read as Bank")
        if current is None:
            current = _Record(kind, account_id, number)
        if line.startswith("^"):
            if current.kind == "account":
                account_id = _account(current, accounts)
            elif current.kind not in _LIST_TYPES and current.fields:
                _add(current, records, accounts)
            current = None
            continue
        current.fields.append((line[0].upper(), line[1:].strip(), number))
    if current is not None and current.fields and current.kind not in _LIST_TYPES:
        if current.kind == "account":
            _account(current, accounts)
        else:
            warnings.append(f"line {current.line}: the last record has no closing `^`")
            _add(current, records, accounts)
    return records, accounts, warnings


def _add(record: _Record, records: list[_Record], accounts: dict[str, StatementAccount]) -> None:
    account = accounts.setdefault(record.account_id, StatementAccount(record.account_id))
    if account.type is None:
        account.type = ACCOUNT_TYPES.get(record.kind)
    records.append(record)


def _account(record: _Record, accounts: dict[str, StatementAccount]) -> str:
    values = {key: value for key, value, _ in record.fields}
    name = values.get("N", "")
    if name not in accounts:
        accounts[name] = StatementAccount(
            account_id=name,
            name=name or values.get("D", ""),
            type=ACCOUNT_TYPES.get(values.get("T", "").lower()),
        )
    return name


def _day_first(records: list[_Record], warnings: list[str]) -> bool:
    """Day before month when some date's first part is over 12; month first when
    some second part is, or the file uses the US apostrophe year; otherwise by the
    separator (`.` European, `/` US) with a warning."""
    day_first_line = month_first_line = None
    separators = set()
    for record in records:
        for key, value, number in record.fields:
            if key != "D":
                continue
            m = _DATE.fullmatch(value)
            if m is None or len(m[1]) == 4:
                continue
            first, second = int(m[1]), int(m[3])
            separators.add(m[2])
            if m[4] == "'" and month_first_line is None:
                month_first_line = number
            # Only a date that one order reads and the other cannot is evidence.
            if 12 < first <= 31 and second <= 12 and day_first_line is None:
                day_first_line = number
            if 12 < second <= 31 and first <= 12 and month_first_line is None:
                month_first_line = number
    if day_first_line and month_first_line:
        raise UnreadableFile(
            f"dates are written day first here and month first at line {month_first_line}",
            day_first_line,
        )
    if day_first_line or month_first_line:
        return bool(day_first_line)
    if not separators:
        return False
    day_first = separators == {"."}
    warnings.append(
        "every date could be day/month or month/day; read as "
        + ("day.month.year" if day_first else "month/day/year")
    )
    return day_first


def _date(value: str, line: int, day_first: bool) -> dt.date:
    m = _DATE.fullmatch(value)
    try:
        if m is None:
            raise ValueError
        if len(m[1]) == 4:
            return dt.date(int(m[1]), int(m[3]), int(m[5]))
        month, day = (int(m[3]), int(m[1])) if day_first else (int(m[1]), int(m[3]))
        year = int(m[5])
        year = 2000 + year if m[4] == "'" and year < 100 else full_year(year)
        return dt.date(year, month, day)
    except ValueError:
        raise UnreadableFile(f"{value!r} is not a date", line) from None


def _money(value: str, line: int, decimal: str) -> Decimal:
    try:
        return parse_money(value, decimal)
    except BadValue:
        raise UnreadableFile(f"{value!r} is not an amount", line) from None


def _entry(record: _Record, day_first: bool, decimal: str) -> StatementEntry | None:
    values: dict[str, str] = {}
    splits: list[str] = []
    split_total = Decimal(0)
    split_category = split_memo = ""
    date = None
    amount_line = record.line
    for key, value, line in record.fields:
        if key == "D":
            date = _date(value, line, day_first)
        elif key == "S":
            split_category, split_memo = value, ""
        elif key == "E":
            split_memo = value
        elif key == "$" and record.kind != "invst":
            amount = _money(value, line, decimal)
            split_total += amount
            splits.append(
                join_text([split_category, str(amount), split_memo and f"({split_memo})"])
            )
        elif key in ("T", "U"):
            if "T" not in values:
                values["T"], amount_line = value, line
        else:
            values.setdefault(key, value)
    if date is None:
        raise UnreadableFile("a record without a date (no `D` line)", record.line)
    if record.kind == "invst":
        return _investment(record, values, date, decimal, amount_line)
    if "T" in values:
        amount = _money(values["T"], amount_line, decimal)
    elif splits:
        amount = split_total
    else:
        raise UnreadableFile("a record without an amount (no `T` line)", record.line)
    payee = values.get("P") or None
    memo = join_text([values.get("M"), *splits], "; ") or None
    return StatementEntry(
        account_id=record.account_id,
        date=date,
        amount=amount,
        description=payee or values.get("M") or values.get("L") or "",
        payee=payee,
        memo=memo,
        check_number=values.get("N") or None,
        category=values.get("L") or None,
        line=record.line,
    )


def _investment(
    record: _Record, values: dict[str, str], date: dt.date, decimal: str, amount_line: int
) -> StatementEntry | None:
    action = values.get("N", "")
    base = action.lower()
    if base.endswith("x") and base[:-1] in _CASH_IN | _CASH_OUT:
        base = base[:-1]
    if base in _NO_CASH:
        return None
    quantity = values.get("Q")
    price = values.get("I")
    commission = values.get("O")
    if "T" in values:
        total = abs(_money(values["T"], amount_line, decimal))
    elif quantity and price:
        gross = _money(quantity, record.line, decimal) * _money(price, record.line, decimal)
        fee = _money(commission, record.line, decimal) if commission else Decimal(0)
        total = abs(gross + fee if base in _CASH_OUT else gross - fee)
    else:
        raise UnreadableFile(f"a {action or 'investment'} record without an amount", record.line)
    amount = -total if base in _CASH_OUT else total
    if base not in _CASH_OUT | _CASH_IN and "T" in values:
        amount = _money(values["T"], amount_line, decimal)  # unknown action: as written
    security = values.get("Y", "")
    detail = []
    if quantity:
        detail.append(f"{quantity} @ {price}" if price else f"{quantity} shares")
    if commission:
        detail.append(f"commission {commission}")
    return StatementEntry(
        account_id=record.account_id,
        date=date,
        amount=amount,
        description=join_text([action, security]) or values.get("P", ""),
        payee=values.get("P") or security or None,
        memo=join_text([values.get("M"), ", ".join(detail)], "; ") or None,
        category=values.get("L") or None,
        line=record.line,
    )

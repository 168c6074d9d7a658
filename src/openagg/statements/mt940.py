"""MT940 (SWIFT customer statement): `:tag:` fields, one statement per `:20:`.

A field runs until the next line that starts a tag, so `:86:` texts spread over
lines and the `:61:` supplementary line read naturally. SWIFT envelopes
(`{1:...}{2:...}{4:` ... `-}`) and `-` separator lines are skipped. German banks
structure `:86:` with `?NN` subfields (`?20`-`?29` purpose, `?32`/`?33` payee);
SEPA purposes may carry `SVWZ+` for the payer's own words."""

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
from openagg.statements.values import decode_text, join_text

_TAG = re.compile(r":(\d\d[A-Z]?):")
_ENVELOPE = re.compile(r"^(?:\{[1-35]:(?:[^{}]|\{[^{}]*\})*\})*(?:\{4:)?")
# :61: value date, entry date, [R]C/D, funds code, amount, transaction type; then
# the customer reference, `//` the bank's, and the supplement on the next line.
_LINE61 = re.compile(r"(\d{6})(\d{4})?(R?[CD])([A-Z])?(\d{1,12},\d{0,2})([NSF][A-Z0-9]{3})?")
_BALANCE = re.compile(r"([CD])(\d{6})([A-Z]{3})(\d{1,15},\d{0,2})")
_SUBFIELD = re.compile(r"\?(\d\d)")
_STRUCTURED = re.compile(r"\d{3}\?")  # a business code, then `?00`...
_SVWZ = re.compile(r"SVWZ\+(.*?)(?=\b(?:ABWA|ABWE)\+|$)")


@dataclass
class _Statement:
    line: int
    account_id: str = ""
    opening: tuple[Decimal, dt.date] | None = None
    closing: tuple[Decimal, dt.date] | None = None
    available: Decimal | None = None
    currency: str | None = None
    entries: list[StatementEntry] = field(default_factory=list)


def read_mt940(data: bytes) -> StatementFile:
    statements = _statements(_fields(decode_text(data)))
    if not statements:
        raise UnreadableFile("no MT940 statement (no `:20:` field)")
    out = StatementFile(format="MT940")
    accounts: dict[str, StatementAccount] = {}
    for st in statements:
        account = accounts.setdefault(st.account_id, StatementAccount(st.account_id))
        account.currency = account.currency or st.currency
        if st.closing and (account.balance_date is None or st.closing[1] >= account.balance_date):
            account.balance, account.balance_date = st.closing
            account.available_balance = st.available
        if st.opening and st.closing:
            moved = sum((e.amount for e in st.entries), Decimal(0))
            if st.opening[0] + moved != st.closing[0]:
                out.warnings.append(
                    f"line {st.line}: opening balance {st.opening[0]} and the entries "
                    f"({moved}) do not add up to the closing balance {st.closing[0]}"
                )
        out.entries.extend(st.entries)
    out.accounts = list(accounts.values())
    return out


def _fields(text: str) -> list[tuple[str, str, int]]:
    """(tag, value, line) for every field, continuation lines joined with `\\n`."""
    fields: list[tuple[str, str, int]] = []
    tag: str | None = None
    value: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if line.startswith("{"):
            line = _ENVELOPE.sub("", line, count=1)
        m = _TAG.match(line)
        if m or not line or line == "-" or line.startswith("-}"):
            if tag is not None:
                fields.append((tag, "\n".join(value), start))
            tag = None
            if m:
                tag, value, start = m[1], [line[m.end() :]], number
        elif tag is not None:
            value.append(line)
    if tag is not None:
        fields.append((tag, "\n".join(value), start))
    return fields


def _statements(fields: list[tuple[str, str, int]]) -> list[_Statement]:
    statements: list[_Statement] = []
    st: _Statement | None = None
    last: StatementEntry | None = None
    for tag, value, line in fields:
        if tag == "20" or st is None:
            st = _Statement(line)
            statements.append(st)
            last = None
        if tag == "25":
            st.account_id = value.strip()
        elif tag in ("60F", "60M"):
            st.opening, st.currency = _balance(value, line)
        elif tag in ("62F", "62M"):
            st.closing, st.currency = _balance(value, line)
        elif tag == "64":
            st.available = _balance(value, line)[0][0]
        elif tag == "61":
            last = _entry(value, line, st.account_id)
            st.entries.append(last)
        elif tag == "86" and last is not None:
            _information(last, value)
        if tag != "61":
            last = None  # a `:86:` after the closing balance is about the statement
    return statements


def _balance(value: str, line: int) -> tuple[tuple[Decimal, dt.date], str]:
    m = _BALANCE.match(value.strip())
    if m is None:
        raise UnreadableFile(
            f"{value.strip()!r} is not a balance (C/D, YYMMDD, currency, amount)", line
        )
    amount = Decimal(m[4].replace(",", "."))
    return (-amount if m[1] == "D" else amount, _yymmdd(m[2], line)), m[3]


def _yymmdd(text: str, line: int) -> dt.date:
    try:
        return dt.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise UnreadableFile(f"{text!r} is not a date (YYMMDD)", line) from None


def _entry(value: str, line: int, account_id: str) -> StatementEntry:
    m = _LINE61.match(value)
    if m is None:
        first = value.split("\n", 1)[0]
        raise UnreadableFile(f"statement line {first!r} cannot be read", line)
    value_date = _yymmdd(m[1], line)
    date = value_date
    if m[2]:
        # The entry date has no year: the value date's, moved across a year's end.
        try:
            date = value_date.replace(month=int(m[2][:2]), day=int(m[2][2:]))
        except ValueError:
            raise UnreadableFile(f"{m[2]!r} is not an entry date (MMDD)", line) from None
        if (date - value_date).days > 180:
            date = date.replace(year=date.year - 1)
        elif (value_date - date).days > 180:
            date = date.replace(year=date.year + 1)
    amount = Decimal(m[5].replace(",", "."))
    # C credit, D debit; RC reverses a credit (money out), RD a debit (money in).
    if m[3] in ("D", "RC"):
        amount = -amount
    first, _, supplement = value.partition("\n")
    reference, _, bank_ref = first[m.end() :].partition("//")
    reference, bank_ref, supplement = reference.strip(), bank_ref.strip(), join_text([supplement])
    return StatementEntry(
        account_id=account_id,
        date=date,
        amount=amount,
        description=supplement or ("" if reference == "NONREF" else reference) or (m[6] or ""),
        bank_id=bank_ref if bank_ref and bank_ref.upper() != "NONREF" else None,
        memo=supplement or None,
        line=line,
    )


def _information(entry: StatementEntry, text: str) -> None:
    """Description and payee from the `:86:` text: `?NN` subfields when the bank
    structures it (a three-digit code, then `?00`...), else the whole text."""
    flat = text.replace("\n", "")
    if not _STRUCTURED.match(flat):
        entry.description = join_text([text]) or entry.description
        return
    subfields: dict[int, str] = {}
    parts = _SUBFIELD.split(flat[3:])
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        subfields[int(key)] = value
    purpose = _wrapped([subfields.get(n, "") for n in (*range(20, 30), *range(60, 64))])
    payee = _wrapped([subfields.get(32, ""), subfields.get(33, "")])
    posting_text = subfields.get(0, "").strip()
    svwz = _SVWZ.search(purpose)
    entry.description = (svwz[1].strip() if svwz else purpose) or payee or posting_text
    entry.payee = payee or None
    entry.memo = join_text([posting_text, purpose if svwz else None], "; ") or entry.memo


def _wrapped(parts: list[str]) -> str:
    """Subfields a bank filled to their 27 characters continue in the next one
    (mid-word); shorter ones end where the text had a break."""
    out = ""
    full = False
    for part in parts:
        if part:
            out += part if full or not out else " " + part
            full = len(part) >= 27
    return " ".join(out.split())

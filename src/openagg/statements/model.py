"""What a statement file says, whatever its format: accounts, entries and holdings.

Every reader (OFX, QIF, CSV, CAMT.053, MT940) returns a `StatementFile`; the import
service turns it into managed members, accounts and transactions. Amounts are signed
as the account holder sees them: positive is money in (a deposit, a card payment),
negative is money out (a purchase, a fee)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


class UnreadableFile(ValueError):
    """A file that cannot be imported: says why, and where (``line``) when it can."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.reason = message


@dataclass
class StatementAccount:
    """``account_id`` is what the file calls the account (a number, an IBAN, a QIF
    account name); files that name none get one account with ``account_id`` "".
    ``type`` is an MX account type when the file says (CHECKING, SAVINGS,
    CREDIT_CARD, LOAN, INVESTMENT...), else None."""

    account_id: str
    name: str = ""
    type: str | None = None
    currency: str | None = None
    balance: Decimal | None = None  # as the file gives it (negative when owed)
    balance_date: dt.date | None = None
    available_balance: Decimal | None = None
    bank_id: str | None = None  # routing number, BIC...


@dataclass
class StatementEntry:
    """One transaction. ``bank_id`` is the bank's own id for it (OFX FITID, CAMT
    AcctSvcrRef) when the file has one; CSV and QIF rows have none."""

    account_id: str
    date: dt.date
    amount: Decimal
    description: str
    bank_id: str | None = None
    memo: str | None = None
    payee: str | None = None
    check_number: str | None = None
    pending: bool = False
    category: str | None = None
    line: int | None = None  # where it is in the file, for messages


@dataclass
class StatementHolding:
    account_id: str
    security_id: str  # CUSIP, ISIN, ticker...
    description: str
    quantity: Decimal
    price: Decimal
    symbol: str | None = None
    holding_type: str = "UNKNOWN_TYPE"  # MX holding types: EQUITY, MUTUAL_FUND, BOND...


@dataclass
class StatementFile:
    format: str  # OFX, QIF, CSV, CAMT053, MT940
    accounts: list[StatementAccount] = field(default_factory=list)
    entries: list[StatementEntry] = field(default_factory=list)
    holdings: list[StatementHolding] = field(default_factory=list)
    institution: str | None = None  # the institution the file names, if any
    warnings: list[str] = field(default_factory=list)

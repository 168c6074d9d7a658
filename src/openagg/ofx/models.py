"""What an OFX document says, as typed data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

# Status codes an aggregator acts on (OFX 2.1.1, 2.2 and 15.1; the subset banks send).
SUCCESS = 0
CLIENT_UP_TO_DATE = 1
GENERAL_ERROR = 2000
INVALID_ACCOUNT = 2002
ACCOUNT_NOT_FOUND = 2003
UNSUPPORTED_VERSION = 2021
MFA_REQUIRED = 3000
MFA_INVALID = 3001
FI_INVALID = 13504
MUST_CHANGE_PASSWORD = 15000
SIGNON_INVALID = 15500
ACCOUNT_IN_USE = 15501
LOCKED_OUT = 15502
EMPTY_SIGNON_NOT_SUPPORTED = 15506
SIGNON_INVALID_PASSWORD_CHANGE = 15507
CLIENTUID_ERROR = 15510
MFA_ERROR = 15511
AUTHTOKEN_REQUIRED = 15512
AUTHTOKEN_INVALID = 15513


@dataclass(frozen=True, slots=True)
class Status:
    code: int
    severity: str  # INFO, WARN or ERROR
    message: str = ""
    # Which response carried it: SONRS, STMTTRNRS, ACCTINFOTRNRS...
    source: str = ""

    @property
    def ok(self) -> bool:
        # Not by severity: banks send 15000 (must change the password) as INFO.
        return self.code < GENERAL_ERROR


@dataclass(frozen=True, slots=True)
class Signon:
    status: Status
    server_time: dt.datetime | None = None
    language: str | None = None
    org: str | None = None
    fid: str | None = None
    session_cookie: str | None = None


@dataclass(frozen=True, slots=True)
class MFAChallenge:
    phrase_id: str
    label: str


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Which account a statement or account-list entry is about. ``kind`` is BANK,
    CREDITCARD, LOAN or INVESTMENT; ``account_type`` the OFX ACCTTYPE (CHECKING,
    SAVINGS, MONEYMRKT, CREDITLINE, CD) or LOANACCTTYPE, when there is one."""

    kind: str
    account_id: str
    bank_id: str | None = None
    branch_id: str | None = None
    broker_id: str | None = None
    account_type: str | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account: AccountRef
    description: str = ""
    supports_download: bool = True
    status: str = "ACTIVE"  # SVCSTATUS: AVAIL, PEND or ACTIVE
    product_type: str | None = None  # USPRODUCTTYPE of investment accounts (401K, IRA...)


@dataclass(frozen=True, slots=True)
class Balance:
    amount: Decimal
    as_of: dt.datetime | None = None


@dataclass(slots=True)  # not frozen: a frozen class costs each of thousands a slower __init__
class Transaction:
    """A STMTTRN. ``amount`` is signed as the bank sent it (negative leaves)."""

    fitid: str
    type: str  # TRNTYPE: CREDIT, DEBIT, CHECK, FEE, INT, ATM, POS, XFER...
    posted: dt.datetime | None
    amount: Decimal
    name: str = ""
    memo: str = ""
    user_date: dt.datetime | None = None
    check_number: str | None = None
    ref_number: str | None = None
    sic: int | None = None
    currency: str | None = None  # CURRENCY/ORIGCURRENCY's CURSYM when given
    correct_fitid: str | None = None
    correct_action: str | None = None  # REPLACE or DELETE

    @property
    def date(self) -> dt.date | None:
        return self.posted.date() if self.posted else None


@dataclass(frozen=True, slots=True)
class SecurityId:
    unique_id: str
    id_type: str  # CUSIP, ISIN...


@dataclass(frozen=True, slots=True)
class Security:
    id: SecurityId
    kind: str  # STOCK, MF, DEBT, OPT or OTHER
    name: str
    ticker: str | None = None
    unit_price: Decimal | None = None
    as_of: dt.datetime | None = None


@dataclass(slots=True)
class Position:
    security: SecurityId
    kind: str  # STOCK, MF, DEBT, OPT or OTHER
    units: Decimal
    unit_price: Decimal
    market_value: Decimal
    held_in: str | None = None  # CASH, MARGIN, SHORT, OTHER
    position_type: str | None = None  # LONG or SHORT
    price_as_of: dt.datetime | None = None
    memo: str = ""


@dataclass(slots=True)
class InvestmentTransaction:
    """One INVTRANLIST entry other than INVBANKTRAN. ``total`` is the cash effect
    (negative for money out), None when the entry moves no cash (a share transfer)."""

    fitid: str
    kind: str  # BUYSTOCK, SELLMF, INCOME, REINVEST, TRANSFER...
    trade_date: dt.datetime | None
    total: Decimal | None
    memo: str = ""
    settle_date: dt.datetime | None = None
    security: SecurityId | None = None
    units: Decimal | None = None
    unit_price: Decimal | None = None
    commission: Decimal | None = None
    fees: Decimal | None = None
    subtype: str | None = None  # BUYTYPE, SELLTYPE, INCOMETYPE or TFERACTION


@dataclass(slots=True)
class Statement:
    account: AccountRef
    currency: str
    transactions: list[Transaction] = field(default_factory=list)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    ledger_balance: Balance | None = None
    available_balance: Balance | None = None
    # Investment statements only.
    as_of: dt.datetime | None = None
    investment_transactions: list[InvestmentTransaction] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    cash_balance: Decimal | None = None
    # Loan statements only.
    principal_balance: Balance | None = None
    trnuid: str = ""  # of the response that carried it, when it had one


@dataclass(frozen=True, slots=True)
class StatementError:
    """A statement request the bank answered with an error and no statement; the
    request is known by its TRNUID."""

    trnuid: str
    status: Status


@dataclass
class Document:
    """One OFX document. ``statuses`` holds every STATUS it carries, in order;
    ``warnings`` what a strict reader would have refused and this one read anyway."""

    version: str | None
    major_version: int
    signon: Signon | None = None
    mfa_challenges: list[MFAChallenge] = field(default_factory=list)
    accounts: list[AccountInfo] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    statement_errors: list[StatementError] = field(default_factory=list)
    securities: dict[SecurityId, Security] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

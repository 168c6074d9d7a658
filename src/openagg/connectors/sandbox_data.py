"""Deterministic, realistic data for sandbox members.

Everything is derived from the member guid through stable hashes (never Python's
``hash()``, which is salted per process), so a member gets the same accounts,
holdings and owners on every run and on every worker. Transactions are generated one
day at a time from a seed of (member, account, date): what happened on a given date
never depends on ``today``, so external ids stay put when the 90-day window slides
and re-aggregation is idempotent. Only the status moves: card purchases from the last
two days are PENDING and post (keeping their id) once they age.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from openagg.connectors.base import AccountData, HoldingData, OwnerData, TransactionData

__all__ = [
    "HISTORY_DAYS",
    "MemberProfile",
    "aba_check_digit",
    "accounts_for",
    "dynamic_transactions",
    "holdings_for",
    "member_profile",
    "owners_for",
    "routing_number_for",
    "transactions_for",
]

HISTORY_DAYS = 90
PENDING_DAYS = 2  # card purchases dated today or yesterday are still PENDING

CENT = Decimal("0.01")
_UTC = dt.UTC

# MX transaction flags, all present on every transaction so consumers see explicit booleans.
_FLAG_NAMES = (
    "is_bill_pay",
    "is_direct_deposit",
    "is_expense",
    "is_fee",
    "is_income",
    "is_international",
    "is_overdraft_fee",
    "is_payroll_advance",
    "is_recurring",
    "is_subscription",
)


def _seed(*parts: object) -> int:
    """A stable 64-bit seed from any parts (blake2b; identical across processes)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def _money(value: float) -> Decimal:
    # Formatting rounds to cents exactly as round(value, 2) does, and gives the Decimal
    # its two places without a quantize.
    return Decimal(f"{value:.2f}")


def _flags(**set_true: bool) -> dict[str, bool]:
    flags = dict.fromkeys(_FLAG_NAMES, False)
    for name, value in set_true.items():
        if name not in flags:
            raise KeyError(name)
        flags[name] = value
    return flags


# ---------------------------------------------------------------------------
# Reference tables
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Merchant:
    name: str
    mcc: int
    category: str
    top_level: str
    raw: str  # upper-case feed text; {n} is a store number, {city}/{st} the member's town
    low: float
    high: float


_GROCERIES = (
    _Merchant(
        "Whole Foods Market",
        5411,
        "Groceries",
        "Food & Dining",
        "WHOLEFDS MKT #{n} {city} {st}",
        18,
        165,
    ),
    _Merchant("Kroger", 5411, "Groceries", "Food & Dining", "KROGER #{n} {city} {st}", 22, 180),
    _Merchant(
        "Trader Joe's", 5411, "Groceries", "Food & Dining", "TRADER JOE S #{n} {city} {st}", 15, 120
    ),
    _Merchant("Safeway", 5411, "Groceries", "Food & Dining", "SAFEWAY #{n} {city} {st}", 20, 150),
)
_GAS = (
    _Merchant("Shell", 5541, "Gas", "Auto & Transport", "SHELL OIL {n}{n} {city} {st}", 28, 72),
    _Merchant("Chevron", 5541, "Gas", "Auto & Transport", "CHEVRON {n} {city} {st}", 30, 75),
    _Merchant("ExxonMobil", 5541, "Gas", "Auto & Transport", "EXXONMOBIL {n} {city} {st}", 25, 68),
)
_RESTAURANTS = (
    _Merchant("Chipotle", 5814, "Restaurants", "Food & Dining", "CHIPOTLE {n} {city} {st}", 9, 32),
    _Merchant(
        "Olive Garden", 5812, "Restaurants", "Food & Dining", "OLIVE GARDEN {n} {city} {st}", 28, 96
    ),
    _Merchant(
        "Panera Bread",
        5814,
        "Restaurants",
        "Food & Dining",
        "PANERA BREAD #{n} {city} {st}",
        10,
        34,
    ),
    _Merchant(
        "Shake Shack",
        5814,
        "Restaurants",
        "Food & Dining",
        "SQ *SHAKE SHACK {n} {city} {st}",
        12,
        45,
    ),
)
_COFFEE = (
    _Merchant(
        "Starbucks", 5814, "Coffee Shops", "Food & Dining", "STARBUCKS STORE {n} {city} {st}", 4, 14
    ),
    _Merchant("Dunkin'", 5814, "Coffee Shops", "Food & Dining", "DUNKIN #{n} {city} {st}", 3, 11),
)
_SHOPPING = (
    _Merchant(
        "Amazon", 5942, "Shopping", "Shopping", "AMZN MKTP US*{code} AMZN.COM/BILL WA", 9, 140
    ),
    _Merchant("Target", 5310, "Shopping", "Shopping", "TARGET        000{n} {city} {st}", 12, 160),
    _Merchant("Walmart", 5311, "Shopping", "Shopping", "WAL-MART #{n} {city} {st}", 10, 130),
    _Merchant(
        "Best Buy",
        5732,
        "Electronics & Software",
        "Shopping",
        "BEST BUY      00{n} {city} {st}",
        25,
        420,
    ),
)
_TRAVEL = (
    _Merchant(
        "Delta Air Lines", 3058, "Air Travel", "Travel", "DELTA AIR {code} ATLANTA GA", 180, 620
    ),
    _Merchant("Marriott", 3509, "Hotel", "Travel", "MARRIOTT {n} {city} {st}", 140, 480),
    _Merchant(
        "Uber", 4121, "Rideshare", "Auto & Transport", "UBER   *TRIP HELP.UBER.COM CA", 9, 48
    ),
)
_UTILITIES = (
    _Merchant(
        "Pacific Gas & Electric",
        4900,
        "Utilities",
        "Bills & Utilities",
        "PGANDE WEB ONLINE PPD ID: {code}",
        70,
        210,
    ),
    _Merchant(
        "Duke Energy",
        4900,
        "Utilities",
        "Bills & Utilities",
        "DUKE ENERGY PAYMENT PPD ID: {code}",
        65,
        190,
    ),
    _Merchant(
        "Xcel Energy",
        4900,
        "Utilities",
        "Bills & Utilities",
        "XCEL ENERGY-PSCO XCELENERGY PPD ID: {code}",
        60,
        180,
    ),
)
_PHONE = (
    _Merchant(
        "Verizon Wireless",
        4814,
        "Mobile Phone",
        "Bills & Utilities",
        "VERIZON WIRELESS PAYMENTS PPD ID: {code}",
        65,
        140,
    ),
    _Merchant(
        "T-Mobile",
        4814,
        "Mobile Phone",
        "Bills & Utilities",
        "T-MOBILE PCS SVC PPD ID: {code}",
        55,
        120,
    ),
)
_SUBSCRIPTIONS = (
    _Merchant(
        "Netflix",
        4899,
        "Movies & DVDs",
        "Entertainment",
        "NETFLIX.COM NETFLIX.COM CA",
        15.49,
        15.49,
    ),
    _Merchant(
        "Spotify", 5815, "Music", "Entertainment", "SPOTIFY USA 877-778-1161 NY", 11.99, 11.99
    ),
    _Merchant(
        "Planet Fitness",
        7997,
        "Gym",
        "Health & Fitness",
        "PLANET FITNESS {n} {city} {st}",
        24.99,
        24.99,
    ),
)
_CARD_MIX = (
    (_GROCERIES, 5),
    (_RESTAURANTS, 4),
    (_COFFEE, 4),
    (_GAS, 3),
    (_SHOPPING, 4),
    (_TRAVEL, 1),
)
_CHECKING_MIX = ((_GROCERIES, 5), (_GAS, 3), (_COFFEE, 2), (_RESTAURANTS, 2), (_SHOPPING, 2))

_FIRST_NAMES = (
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Mateo",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "Lucas",
    "Amelia",
    "Benjamin",
    "Harper",
    "Priya",
    "Wei",
    "Fatima",
    "Diego",
    "Hannah",
)
_LAST_NAMES = (
    "Johnson",
    "Nguyen",
    "Garcia",
    "Smith",
    "Patel",
    "Williams",
    "Brown",
    "Martinez",
    "Kim",
    "Davis",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Chen",
    "Okafor",
    "Rossi",
    "Murphy",
)
_STREETS = (
    "Maple Ave",
    "Oak St",
    "Cedar Ln",
    "Pine St",
    "Elm Dr",
    "Willow Way",
    "Lakeview Rd",
    "Sunset Blvd",
    "Highland Ave",
    "Park Pl",
    "River Rd",
    "Meadow Ct",
)
# (city, state, zip, area code)
_TOWNS = (
    ("Austin", "TX", "78704", "512"),
    ("Denver", "CO", "80205", "303"),
    ("Columbus", "OH", "43215", "614"),
    ("Raleigh", "NC", "27601", "919"),
    ("Portland", "OR", "97214", "503"),
    ("Salt Lake City", "UT", "84111", "801"),
    ("Madison", "WI", "53703", "608"),
    ("Tampa", "FL", "33602", "813"),
    ("Sacramento", "CA", "95814", "916"),
    ("Nashville", "TN", "37203", "615"),
)
_EMPLOYERS = (
    "Acme Corporation",
    "Globex Industries",
    "Initech LLC",
    "Summit Health Partners",
    "Northwind Logistics",
    "Bluebird Software",
    "Riverbend School District",
    "Contoso Ltd",
)

# (holding type, symbol, description, price low, price high, annual yield)
_EQUITIES = (
    ("EQUITY", "AAPL", "Apple Inc.", 170.0, 235.0, 0.005),
    ("EQUITY", "MSFT", "Microsoft Corporation", 380.0, 450.0, 0.007),
    ("EQUITY", "JNJ", "Johnson & Johnson", 145.0, 165.0, 0.03),
    ("EQUITY", "KO", "The Coca-Cola Company", 58.0, 70.0, 0.03),
)
_FUNDS = (
    ("MUTUAL_FUND", "VFIAX", "Vanguard 500 Index Fund Admiral Shares", 440.0, 520.0, 0.013),
    ("MUTUAL_FUND", "FXAIX", "Fidelity 500 Index Fund", 170.0, 205.0, 0.012),
)
_ETFS = (
    ("ETF", "VTI", "Vanguard Total Stock Market ETF", 240.0, 290.0, 0.014),
    ("ETF", "SCHD", "Schwab U.S. Dividend Equity ETF", 75.0, 85.0, 0.035),
    ("ETF", "AGG", "iShares Core U.S. Aggregate Bond ETF", 95.0, 101.0, 0.037),
)
_BONDS = (
    ("BOND", "91282CJZ5", "US Treasury Note 4.000% 02/15/2034", 960.0, 1010.0, 0.04),
    ("BOND", "912810TV0", "US Treasury Bond 4.375% 08/15/2043", 950.0, 1020.0, 0.04375),
)


# ---------------------------------------------------------------------------
# Numbers that look real
# ---------------------------------------------------------------------------


def aba_check_digit(first_eight: str) -> int:
    """The ninth digit of an ABA routing number (weights 3, 7, 1 repeating)."""
    weights = (3, 7, 1, 3, 7, 1, 3, 7)
    total = sum(int(d) * w for d, w in zip(first_eight, weights, strict=True))
    return (10 - total % 10) % 10


@lru_cache(maxsize=64)
def routing_number_for(institution_code: str) -> str:
    """One valid-looking routing number per institution, as at a real bank."""
    rng = random.Random(_seed("routing", institution_code))
    district = rng.choice([*range(1, 13), *range(21, 33)])
    first = f"{district:02d}{rng.randrange(10**6):06d}"
    return first + str(aba_check_digit(first))


def _luhn_complete(partial: str) -> str:
    """Append the Luhn check digit so card numbers pass client-side validation."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def _add_months(day: dt.date, months: int, on_day: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(on_day, 28))


def _next_due(today: dt.date, due_day: int) -> dt.date:
    this_month = _add_months(today, 0, due_day)
    return this_month if this_month > today else _add_months(today, 1, due_day)


def _iso_at_noon(day: dt.date) -> str:
    return f"{day.isoformat()}T12:00:00Z"


# ---------------------------------------------------------------------------
# The member profile: who they are and what they hold
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberProfile:
    """Everything about a member that does not change from day to day."""

    key: str  # short stable id used as a prefix for external ids
    first_name: str
    last_name: str
    street: str
    city: str
    state: str
    postal_code: str
    phone: str
    email: str
    employer: str
    employer_code: str
    paycheck: Decimal
    payday_parity: int  # which alternate Friday is payday
    utility: _Merchant
    phone_carrier: _Merchant
    subscriptions: tuple[_Merchant, ...]
    savings_transfer: Decimal
    auto_payment: Decimal
    auto_due_day: int
    mortgage_payment: Decimal
    mortgage_due_day: int
    card_due_day: int
    checking_parity: int  # checking has a card purchase on alternate days
    checking_bill_days: frozenset[int]  # days of the month with a checking bill or fee
    # The purchases on offer in the member's town (shared pools, see _purchase_pool).
    card_pool: tuple[_Purchase, ...] = dataclasses.field(repr=False, compare=False)
    checking_pool: tuple[_Purchase, ...] = dataclasses.field(repr=False, compare=False)
    accounts: tuple[AccountData, ...]
    holdings: tuple[HoldingData, ...]

    def account(self, external_id: str) -> AccountData | None:
        for acct in self.accounts:
            if acct.external_id == external_id:
                return acct
        return None

    def account_of_type(self, acct_type: str) -> AccountData:
        for acct in self.accounts:
            if acct.type == acct_type:
                return acct
        raise KeyError(acct_type)


def _pick_holdings(rng: random.Random, account_id: str) -> tuple[HoldingData, ...]:
    picks = [rng.choice(_EQUITIES), rng.choice(_FUNDS), rng.choice(_ETFS), rng.choice(_BONDS)]
    if rng.random() < 0.5:
        extra = rng.choice([e for e in _EQUITIES if e is not picks[0]])
        picks.insert(1, extra)
    holdings: list[HoldingData] = []
    for kind, symbol, description, low, high, _yield in picks:
        price = _money(rng.uniform(low, high))
        if kind == "BOND":
            quantity = Decimal(rng.randint(5, 25))
        elif kind == "EQUITY":
            quantity = Decimal(rng.randint(5, 120))
        else:
            quantity = Decimal(str(round(rng.uniform(8, 180), 3)))
        cost = (quantity * price * Decimal(str(round(rng.uniform(0.72, 1.08), 4)))).quantize(CENT)
        holdings.append(
            HoldingData(
                external_id=f"{account_id}-{symbol}",
                account_external_id=account_id,
                symbol=symbol,
                description=description,
                holding_type=kind,
                quantity=quantity,
                current_price=price,
                cost_basis=cost,
            )
        )
    cash = _money(rng.uniform(150, 6500))
    holdings.append(
        HoldingData(
            external_id=f"{account_id}-CASH",
            account_external_id=account_id,
            symbol=None,
            description="Cash & Sweep (FDIC Insured)",
            holding_type="CASH",
            quantity=cash,
            current_price=Decimal("1.00"),
            cost_basis=cash,
        )
    )
    return tuple(holdings)


@lru_cache(maxsize=4096)
def member_profile(member_guid: str, institution_code: str, today: dt.date) -> MemberProfile:
    """The member's identity, accounts and holdings (dates relative to ``today``)."""
    key = hashlib.sha256(member_guid.encode()).hexdigest()[:10].upper()
    rng = random.Random(_seed("profile", member_guid))
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    city, state, postal, area = rng.choice(_TOWNS)
    routing = routing_number_for(institution_code)

    def acct_number() -> str:
        return f"{rng.randint(1, 9)}{rng.randrange(10**9):09d}"

    chk_id, sav_id, card_id = f"{key}-CHK", f"{key}-SAV", f"{key}-CC"
    loan_id, mtg_id, inv_id = f"{key}-AUTO", f"{key}-MTG", f"{key}-INV"

    # Checking
    chk_balance = _money(rng.uniform(850, 9200))
    checking = AccountData(
        external_id=chk_id,
        name=rng.choice(("Everyday Checking", "Premier Checking", "Free Checking")),
        type="CHECKING",
        balance=chk_balance,
        available_balance=chk_balance,  # pending holds subtracted below
        account_number=acct_number(),
        routing_number=routing,
        details={
            "account_ownership": "INDIVIDUAL",
            "federal_insurance_status": "INSURED",
            "apy": 0.01,
            "minimum_balance": 0.0,
            "started_on": (today - dt.timedelta(days=rng.randint(400, 4000))).isoformat(),
        },
    )

    # Savings
    sav_balance = _money(rng.uniform(2500, 48000))
    apy = round(rng.uniform(3.6, 4.6), 2)
    savings = AccountData(
        external_id=sav_id,
        name=rng.choice(("High Yield Savings", "Online Savings", "Statement Savings")),
        type="SAVINGS",
        balance=sav_balance,
        available_balance=sav_balance,
        account_number=acct_number(),
        routing_number=routing,
        details={
            "account_ownership": "INDIVIDUAL",
            "federal_insurance_status": "INSURED",
            "apy": apy,
            "interest_rate": round(apy - 0.05, 2),
            "started_on": (today - dt.timedelta(days=rng.randint(300, 3000))).isoformat(),
        },
    )

    # Credit card
    limit = float(rng.choice((3000, 5000, 7500, 10000, 12500, 15000, 20000)))
    card_balance = _money(rng.uniform(0.05, 0.45) * limit)
    statement = _money(float(card_balance) * rng.uniform(0.7, 1.0))
    card_due_day = rng.randint(3, 27)
    card_prefix = rng.choice(("4", "51", "37"))
    card_number = _luhn_complete(
        card_prefix + "".join(str(rng.randrange(10)) for _ in range(15 - len(card_prefix)))
    )
    last_card_payment = _add_months(_next_due(today, card_due_day), -1, card_due_day)
    card = AccountData(
        external_id=card_id,
        name=rng.choice(("Cash Rewards Visa Signature", "Travel Rewards Card", "Platinum Card")),
        type="CREDIT_CARD",
        balance=card_balance,
        available_balance=_money(limit - float(card_balance)),
        account_number=card_number,
        details={
            "credit_limit": limit,
            "available_credit": float(_money(limit - float(card_balance))),
            "apr": round(rng.uniform(19.24, 28.99), 2),
            "statement_balance": float(statement),
            "minimum_payment": float(
                max(Decimal(35), (statement * Decimal("0.02")).quantize(CENT))
            ),
            "payment_due_at": _iso_at_noon(_next_due(today, card_due_day)),
            "day_payment_is_due": card_due_day,
            "last_payment_at": _iso_at_noon(last_card_payment),
            "account_ownership": "INDIVIDUAL",
        },
    )

    # Auto loan
    auto_original = _money(rng.uniform(18000, 42000))
    auto_months_in = rng.randint(6, 48)
    auto_balance = _money(float(auto_original) * (1 - auto_months_in / 72) + rng.uniform(0, 900))
    auto_payment = _money(float(auto_original) / 72 * 1.12)
    auto_due_day = rng.randint(1, 28)
    auto_started = _add_months(today, -auto_months_in, auto_due_day)
    auto_rate = round(rng.uniform(4.9, 9.4), 2)
    loan = AccountData(
        external_id=loan_id,
        name=rng.choice(("Auto Loan", "New Vehicle Loan", "Used Auto Loan")),
        type="LOAN",
        subtype="AUTO",
        balance=auto_balance,
        account_number=acct_number(),
        details={
            "original_balance": float(auto_original),
            "loan_amount": float(auto_original),
            "payoff_balance": float(_money(float(auto_balance) * 1.004)),
            "interest_rate": auto_rate,
            "apr": round(auto_rate + 0.15, 2),
            "minimum_payment": float(auto_payment),
            "last_payment": float(auto_payment),
            "payment_due_at": _iso_at_noon(_next_due(today, auto_due_day)),
            "day_payment_is_due": auto_due_day,
            "started_on": auto_started.isoformat(),
            "matures_on": _add_months(auto_started, 72, auto_due_day).isoformat(),
        },
    )

    # Mortgage
    mtg_original = _money(rng.uniform(180000, 620000))
    mtg_months_in = rng.randint(12, 180)
    mtg_balance = _money(float(mtg_original) * (1 - mtg_months_in / 480))
    mtg_rate = round(rng.choice((2.875, 3.25, 3.625, 4.5, 5.875, 6.5, 6.875)), 3)
    mtg_payment = _money(float(mtg_original) * (0.0045 + mtg_rate / 1200) * 0.9)
    mtg_due_day = 1
    mtg_started = _add_months(today, -mtg_months_in, mtg_due_day)
    mortgage = AccountData(
        external_id=mtg_id,
        name="30-Year Fixed Mortgage",
        type="MORTGAGE",
        balance=mtg_balance,
        account_number=acct_number(),
        details={
            "original_balance": float(mtg_original),
            "loan_amount": float(mtg_original),
            "interest_rate": mtg_rate,
            "apr": round(mtg_rate + 0.2, 3),
            "minimum_payment": float(mtg_payment),
            "last_payment": float(mtg_payment),
            "payment_due_at": _iso_at_noon(_next_due(today, mtg_due_day)),
            "day_payment_is_due": mtg_due_day,
            "started_on": mtg_started.isoformat(),
            "matures_on": _add_months(mtg_started, 360, mtg_due_day).isoformat(),
        },
    )

    # Investment
    holdings = _pick_holdings(rng, inv_id)
    cash = sum((h.market_value for h in holdings if h.holding_type == "CASH"), Decimal(0))
    invested = sum((h.market_value for h in holdings if h.holding_type != "CASH"), Decimal(0))
    investment = AccountData(
        external_id=inv_id,
        name=rng.choice(("Individual Brokerage", "Self-Directed Investing")),
        type="INVESTMENT",
        subtype="BROKERAGE",
        balance=cash + invested,
        available_balance=cash,
        account_number=acct_number(),
        details={
            "cash_balance": float(cash),
            "holdings_value": float(invested),
            "total_account_value": float(cash + invested),
        },
    )

    profile = MemberProfile(
        key=key,
        first_name=first,
        last_name=last,
        street=f"{rng.randint(100, 9899)} {rng.choice(_STREETS)}",
        city=city,
        state=state,
        postal_code=postal,
        phone=f"({area}) 555-01{rng.randrange(100):02d}",
        email=f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@example.com",
        employer=rng.choice(_EMPLOYERS),
        employer_code=f"{rng.randrange(10**10):010d}",
        paycheck=_money(rng.uniform(1650, 4300)),
        payday_parity=rng.randrange(2),
        utility=rng.choice(_UTILITIES),
        phone_carrier=rng.choice(_PHONE),
        subscriptions=tuple(rng.sample(_SUBSCRIPTIONS, rng.randint(1, 3))),
        savings_transfer=Decimal(rng.choice((100, 150, 200, 250, 300, 500))).quantize(CENT),
        auto_payment=auto_payment,
        auto_due_day=auto_due_day,
        mortgage_payment=mtg_payment,
        mortgage_due_day=mtg_due_day,
        card_due_day=card_due_day,
        checking_parity=rng.randrange(2),
        checking_bill_days=frozenset({mtg_due_day, 5, auto_due_day, card_due_day, 17, 22, 28, 9}),
        card_pool=_purchase_pool("card", city, state),
        checking_pool=_purchase_pool("checking", city, state),
        accounts=(checking, savings, card, loan, mortgage, investment),
        holdings=holdings,
    )
    # Available balance reflects today's pending card holds, as banks report it.
    held = sum(
        (
            t.amount
            for t in transactions_for(
                profile, chk_id, today, today - dt.timedelta(days=PENDING_DAYS - 1), today
            )
            if t.status == "PENDING" and t.type == "DEBIT"
        ),
        Decimal(0),
    )
    checking.available_balance = chk_balance - held
    return profile


# ---------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------

# Card purchases are drawn from ready-made pools, one per spending mix and town,
# built once per process: a purchase then costs a table lookup, not a dozen random
# draws and string formats. Members of one town share the pool (as neighbours
# shop at the same stores); which purchases they make, and when, is their own.
_POOL_SIZE = 512


@dataclass(frozen=True, slots=True)
class _Purchase:
    name: str  # the merchant's
    category: str
    top_level: str
    mcc: int
    original: str
    amount: Decimal
    at: dt.timedelta  # time of day


@lru_cache(maxsize=256)
def _purchase_pool(mix_name: str, city: str, st: str) -> tuple[_Purchase, ...]:
    mix, prefix = _MIXES[mix_name]
    rng = random.Random(_seed("purchases", mix_name, city, st))
    pool = []
    for _ in range(_POOL_SIZE):
        merchant = _pick(rng, mix)
        code = f"{rng.getrandbits(44):011X}" if "{code}" in merchant.raw else ""
        raw = merchant.raw.format(n=rng.randint(100, 9999), city=city.upper(), st=st, code=code)
        amount = _money(rng.uniform(merchant.low, merchant.high))
        at = dt.timedelta(hours=rng.randint(7, 21), minutes=rng.randrange(60))
        m = merchant
        pool.append(_Purchase(m.name, m.category, m.top_level, m.mcc, prefix + raw, amount, at))
    return tuple(pool)


def _mix64(value: int) -> int:
    """SplitMix64's finaliser: 64 well-mixed bits from any integer, in a few ops."""
    z = value & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _monthly_unit(profile: MemberProfile, on: _CalendarDay, purpose: int) -> float:
    """A stable number in [0, 1) per member, month and purpose, for the amounts of
    monthly items (hashing integers: a few times cheaper than ``_seed``'s text)."""
    month = on.year * 12 + on.month
    return _mix64(int(profile.key, 16) * _GOLDEN + month * 1000 + purpose) / 2.0**64


# The flag sets in use, made once; ``_Day`` hands each transaction its own copy.
_NO_FLAGS = _flags()
_EXPENSE = _flags(is_expense=True)
_RECURRING = _flags(is_recurring=True)
_PAYROLL = _flags(is_income=True, is_direct_deposit=True, is_recurring=True)
_BILL = _flags(is_expense=True, is_bill_pay=True, is_recurring=True)
_CARD_PAYMENT = _flags(is_bill_pay=True, is_recurring=True)
_SUBSCRIPTION = _flags(is_expense=True, is_recurring=True, is_subscription=True)
_MONTHLY_FEE = _flags(is_fee=True, is_expense=True, is_recurring=True)
_OVERDRAFT_FEE = _flags(is_fee=True, is_expense=True, is_overdraft_fee=True)
_INTEREST = _flags(is_income=True, is_recurring=True)
_DIVIDEND = _flags(is_income=True)
_SEQUENCE = tuple(f"{n:02d}" for n in range(1000))
_LOW_BITS = tuple((1 << n) - 1 for n in range(65))  # masks for _Day.bits
_SIX_AM = dt.timedelta(hours=6)
_NEXT_NINE_AM = dt.timedelta(hours=33)


@dataclass(frozen=True, slots=True)
class _CalendarDay:
    """A date in the forms generation asks of it, worked out once per process: every
    member's window covers the same dates, and a date never changes."""

    ordinal: int
    date: dt.date
    day: int  # of the month
    month: int
    year: int
    ymd: str  # 20261121, as in external ids
    midnight: dt.datetime  # 00:00 UTC
    is_month_end: bool
    friday_parity: int  # 0 and 1 on alternate Fridays (paydays), -1 on other days
    noise: int  # 64 random bits of its own, for ``_Day.bits``


@lru_cache(maxsize=1024)
def _calendar_day(ordinal: int) -> _CalendarDay:
    date = dt.date.fromordinal(ordinal)
    return _CalendarDay(
        ordinal=ordinal,
        date=date,
        day=date.day,
        month=date.month,
        year=date.year,
        ymd=f"{date.year:04d}{date.month:02d}{date.day:02d}",
        midnight=dt.datetime(date.year, date.month, date.day, tzinfo=_UTC),
        is_month_end=(date + dt.timedelta(days=1)).month != date.month,
        friday_parity=(ordinal // 7) % 2 if ordinal % 7 == 5 else -1,  # 5: a Friday
        noise=_mix64(ordinal * _GOLDEN),
    )


@lru_cache(maxsize=64)
def _calendar(first: int, last: int) -> tuple[_CalendarDay, ...]:
    """The dates with ordinals first..last; windows repeat, since all members share
    ``today``."""
    return tuple(_calendar_day(ordinal) for ordinal in range(first, last + 1))


@lru_cache(maxsize=256)
def _calendar_on(first: int, last: int, days_of_month: frozenset[int]) -> tuple[_CalendarDay, ...]:
    """The dates of ``_calendar(first, last)`` on the given days of the month."""
    return tuple(on for on in _calendar(first, last) if on.day in days_of_month)


class _Day:
    """Builds one account's transactions, one date at a time, numbering them stably.

    A date's random bits come from (account, date) alone, so its content never
    depends on ``today`` or on the requested window. One object walks the whole
    window, and the bits and the id prefix are made only for dates that use them.
    """

    __slots__ = ("_bits", "_left", "_prefix", "_seed", "_seq", "_today", "account_id", "on", "out")

    on: _CalendarDay  # the date being built

    def __init__(self, account_id: str, today: dt.date, out: list[TransactionData]):
        self.account_id = account_id
        self.out = out
        self._today = today.toordinal()
        self._seed = 0  # made on the first draw: most accounts never draw
        self._seq = 0
        self._bits = 0
        self._left = -1

    def walk(
        self, days: tuple[_CalendarDay, ...], build: _DayBuilder, profile: MemberProfile
    ) -> None:
        """Build each of ``days`` in turn."""
        for on in days:
            self.on, self._seq, self._left = on, 0, -1  # no ids nor bits drawn yet
            build(profile, self)

    def bits(self, n: int) -> int:
        """The next ``n`` (<= 64) random bits of this date's stream."""
        if n > self._left:
            if self._left < 0:
                if not self._seed:
                    self._seed = _seed("transactions", self.account_id)
                # The account's and the date's random words, multiplied and the product
                # folded (wyhash's "mum"): every bit depends on both, in three big-int
                # operations where _mix64 takes ten.
                product = self._seed * self.on.noise
                self._bits = (product >> 64) ^ (product & _MASK64)
            else:
                self._bits = _mix64(self._bits ^ _GOLDEN)
            self._left = 64
        value = self._bits & _LOW_BITS[n]
        self._bits >>= n
        self._left -= n
        return value

    def chance(self, p: float) -> bool:
        return self.bits(10) < p * 1024

    def _next_id(self) -> str:
        if not self._seq:
            self._prefix = f"{self.account_id}-{self.on.ymd}-"
        self._seq += 1
        return self._prefix + _SEQUENCE[self._seq]

    def add(
        self,
        *,
        amount: Decimal,
        type: str,
        description: str,
        original: str,
        category: str,
        top_level: str,
        merchant: str | None = None,
        mcc: int | None = None,
        flags: dict[str, bool] = _NO_FLAGS,
        memo: str | None = None,
    ) -> None:
        """An ACH or bank item: it posts the morning it settles."""
        at = self.on.midnight + _SIX_AM
        # Positional, in TransactionData's field order: a class called with keywords
        # gets them as a dict, which costs more than the rest of the transaction.
        self.out.append(
            TransactionData(
                self._next_id(),  # external_id
                self.account_id,
                amount,
                type,
                self.on.date,
                description,
                "POSTED",  # status
                original,  # original_description
                at,  # transacted_at
                at,  # posted_at
                category,
                top_level,  # top_level_category
                merchant,  # merchant_name
                mcc,  # merchant_category_code
                memo,
                flags=dict(flags),
            )
        )

    def purchases(self, pool: tuple[_Purchase, ...], count: int) -> None:
        """``count`` card purchases from ``pool``, timed during the day; they post
        the next morning, and stay PENDING until then (today's and yesterday's)."""
        pending = self._today - self.on.ordinal < PENDING_DAYS
        midnight = self.on.midnight
        status = "PENDING" if pending else "POSTED"
        posted = None if pending else midnight + _NEXT_NINE_AM
        day, account_id, out = self.on.date, self.account_id, self.out
        for _ in range(count):
            p = pool[self.bits(9)]
            out.append(
                TransactionData(  # positional, as in ``add``
                    self._next_id(),  # external_id
                    account_id,
                    p.amount,
                    "DEBIT",  # type
                    day,  # date
                    p.name,  # description
                    status,
                    p.original,  # original_description
                    midnight + p.at,  # transacted_at
                    posted,  # posted_at
                    p.category,
                    p.top_level,  # top_level_category
                    p.name,  # merchant_name
                    p.mcc,  # merchant_category_code
                    flags=dict(_EXPENSE),
                )
            )


def _pick(rng: random.Random, mix: tuple[tuple[tuple[_Merchant, ...], int], ...]) -> _Merchant:
    groups = [g for g, _ in mix]
    weights = [w for _, w in mix]
    return rng.choice(rng.choices(groups, weights)[0])


_MIXES = {"card": (_CARD_MIX, ""), "checking": (_CHECKING_MIX, "POS DEBIT ")}


_CARD_PAYMENT_PURPOSE = 0  # for _monthly_unit; bills use their due day


def _card_payment_amount(profile: MemberProfile, on: _CalendarDay) -> Decimal:
    """The monthly card payment; both the checking debit and the card credit use it."""
    return _money(350 + 2050 * _monthly_unit(profile, on, _CARD_PAYMENT_PURPOSE))


def _checking_day(profile: MemberProfile, d: _Day) -> None:
    on, p = d.on, profile
    if on.friday_parity == p.payday_parity:  # payday: every other Friday
        d.add(
            amount=p.paycheck,
            type="CREDIT",
            description=f"{p.employer} Payroll",
            original=f"{p.employer.upper()} PAYROLL PPD ID: {p.employer_code}",
            category="Paycheck",
            top_level="Income",
            merchant=p.employer,
            flags=_PAYROLL,
        )
    if on.day in p.checking_bill_days:
        _checking_bills(p, d)
    # Debit-card spending on alternate days keeps a couple of purchases pending at any time.
    if (on.ordinal + p.checking_parity) % 2 == 0:
        d.purchases(p.checking_pool, 2 if d.chance(0.1) else 1)


def _checking_bills(p: MemberProfile, d: _Day) -> None:
    """Checking's monthly items (on ``checking_bill_days`` only)."""
    on = d.on
    if on.day == p.mortgage_due_day:
        d.add(
            amount=p.mortgage_payment,
            type="DEBIT",
            description="Mortgage Payment",
            original=f"ONLINE PMT MORTGAGE LOAN XXXXXX{p.key[-4:]} WEB ID: 9000123456",
            category="Mortgage & Rent",
            top_level="Home",
            flags=_BILL,
        )
    if on.day == 5:
        d.add(
            amount=p.savings_transfer,
            type="DEBIT",
            description="Transfer to Savings",
            original=f"ONLINE TRANSFER TO SAV XXXXXX{p.key[-4:]} REF #IB0{on.date:%m%d}",
            category="Transfer",
            top_level="Transfer",
            flags=_RECURRING,
        )
    if on.day == p.auto_due_day:
        d.add(
            amount=p.auto_payment,
            type="DEBIT",
            description="Auto Loan Payment",
            original=f"AUTOPAY AUTO LOAN XXXXXX{p.key[-4:]} PPD ID: 9000654321",
            category="Auto Payment",
            top_level="Auto & Transport",
            flags=_BILL,
        )
    if on.day == p.card_due_day:
        d.add(
            amount=_card_payment_amount(p, on),
            type="DEBIT",
            description="Credit Card Payment",
            original=f"ONLINE PAYMENT TO CREDIT CARD XXXXXXXXXXXX{p.key[-4:]}",
            category="Credit Card Payment",
            top_level="Transfer",
            flags=_CARD_PAYMENT,
        )
    for merchant, due in ((p.utility, 17), (p.phone_carrier, 22)):
        if on.day == due:
            share = _monthly_unit(p, on, purpose=due)
            d.add(
                amount=_money(merchant.low + (merchant.high - merchant.low) * share),
                type="DEBIT",
                description=merchant.name,
                original=merchant.raw.format(code=f"{p.key[:6]}{due:04d}"),
                category=merchant.category,
                top_level=merchant.top_level,
                merchant=merchant.name,
                mcc=merchant.mcc,
                flags=_BILL,
            )
    if on.day == 28 and d.chance(0.3):
        d.add(
            amount=Decimal("12.00"),
            type="DEBIT",
            description="Monthly Maintenance Fee",
            original="MONTHLY MAINTENANCE FEE",
            category="Bank Fee",
            top_level="Fees & Charges",
            flags=_MONTHLY_FEE,
        )
    if on.day == 9 and d.chance(0.08):
        d.add(
            amount=Decimal("35.00"),
            type="DEBIT",
            description="Overdraft Fee",
            original="OVERDRAFT ITEM FEE FOR ACTIVITY OF " + on.date.strftime("%m-%d"),
            category="Bank Fee",
            top_level="Fees & Charges",
            flags=_OVERDRAFT_FEE,
        )


# How many card purchases a day brings: 0, 1 or 2, about 50/40/10 in 100.
_CARD_COUNTS = (0,) * 64 + (1,) * 51 + (2,) * 13


# A member's subscriptions renew on the 8th, 14th and 20th, in order.
_SUBSCRIPTION_BY_DAY = {8 + 6 * index: index for index in range(len(_SUBSCRIPTIONS))}


def _card_day(profile: MemberProfile, d: _Day) -> None:
    on, p = d.on, profile
    index = _SUBSCRIPTION_BY_DAY.get(on.day)
    if index is not None and index < len(p.subscriptions):
        merchant = p.subscriptions[index]
        d.add(
            amount=_money(merchant.low),
            type="DEBIT",
            description=merchant.name,
            original=merchant.raw.format(n=1000 + index, city=p.city.upper(), st=p.state),
            category=merchant.category,
            top_level=merchant.top_level,
            merchant=merchant.name,
            mcc=merchant.mcc,
            flags=_SUBSCRIPTION,
        )
    if on.day == p.card_due_day:
        d.add(
            amount=_card_payment_amount(p, on),
            type="CREDIT",
            description="Payment - Thank You",
            original="PAYMENT THANK YOU - WEB",
            category="Credit Card Payment",
            top_level="Transfer",
        )
    count = _CARD_COUNTS[d.bits(7)]
    if count:
        d.purchases(p.card_pool, count)


def _savings_day(profile: MemberProfile, d: _Day) -> None:
    p, on = profile, d.on
    if on.day == 5:
        d.add(
            amount=p.savings_transfer,
            type="CREDIT",
            description="Transfer from Checking",
            original=f"ONLINE TRANSFER FROM CHK XXXXXX{p.key[-4:]} REF #IB0{on.date:%m%d}",
            category="Transfer",
            top_level="Transfer",
            flags=_RECURRING,
        )
    if on.is_month_end:
        savings = p.account_of_type("SAVINGS")
        rate = Decimal(str(savings.details["apy"])) / Decimal(1200)
        d.add(
            amount=max(CENT, (savings.balance * rate).quantize(CENT)),
            type="CREDIT",
            description="Interest Payment",
            original="INTEREST PAYMENT",
            category="Interest Income",
            top_level="Income",
            flags=_INTEREST,
        )


def _loan_day(profile: MemberProfile, d: _Day, mortgage: bool) -> None:
    p, on = profile, d.on
    if mortgage and on.day == p.mortgage_due_day:
        d.add(
            amount=p.mortgage_payment,
            type="CREDIT",
            description="Mortgage Payment Received",
            original="PAYMENT RECEIVED - THANK YOU",
            category="Mortgage & Rent",
            top_level="Home",
            flags=_RECURRING,
        )
    elif not mortgage and on.day == p.auto_due_day:
        d.add(
            amount=p.auto_payment,
            type="CREDIT",
            description="Loan Payment Received",
            original="AUTOPAY LOAN PAYMENT - THANK YOU",
            category="Auto Payment",
            top_level="Auto & Transport",
            flags=_RECURRING,
        )


_YIELDS = {row[1]: row[5] for row in (*_EQUITIES, *_FUNDS, *_ETFS, *_BONDS)}


# The day of the month the i-th holding pays its dividend (in its month of the quarter).
_DIVIDEND_DAYS = (12, 14, 16, 18, 20, 22)


def _investment_day(profile: MemberProfile, d: _Day) -> None:
    """Quarterly dividends, each holding in its own month of the quarter."""
    on = d.on
    index = _DIVIDEND_DAYS.index(on.day)  # called on dividend days only
    holding = profile.holdings[index]
    if holding.holding_type in ("CASH", "BOND") or holding.symbol is None:
        return
    if on.month % 3 != index % 3:
        return
    amount = holding.market_value * Decimal(str(_YIELDS[holding.symbol])) / 4
    d.add(
        amount=max(CENT, amount.quantize(CENT)),
        type="CREDIT",
        description=f"Dividend: {holding.description}",
        original=f"DIVIDEND RECEIVED {holding.symbol} REINVEST NO",
        category="Dividend & Cap Gains",
        top_level="Investments",
        flags=_DIVIDEND,
    )


# Each account type's builder, and the days of the month it can add anything on
# (None: any day); the other days are skipped without a call.
_DayBuilder = Callable[[MemberProfile, _Day], None]
_DaysOfMonth = Callable[[MemberProfile], frozenset[int]]
_DAY_BUILDERS: dict[str, tuple[_DayBuilder, _DaysOfMonth | None]] = {
    "CHECKING": (_checking_day, None),
    "CREDIT_CARD": (_card_day, None),
    "SAVINGS": (_savings_day, lambda p: frozenset({5, 28, 29, 30, 31})),
    "LOAN": (lambda p, d: _loan_day(p, d, mortgage=False), lambda p: frozenset({p.auto_due_day})),
    "MORTGAGE": (
        lambda p, d: _loan_day(p, d, mortgage=True),
        lambda p: frozenset({p.mortgage_due_day}),
    ),
    "INVESTMENT": (_investment_day, lambda p: frozenset(_DIVIDEND_DAYS[: len(p.holdings)])),
}


def transactions_for(
    profile: MemberProfile,
    account_external_id: str,
    today: dt.date,
    from_date: dt.date,
    to_date: dt.date,
) -> list[TransactionData]:
    """The account's transactions dated from_date..to_date within the last 90 days.

    Fresh objects on every call, so callers may mutate what they get.
    """
    account = profile.account(account_external_id)
    if account is None:
        return []
    builder = _DAY_BUILDERS.get(account.type)
    if builder is None:
        return []
    build, days_of_month = builder
    last = min(to_date, today).toordinal()
    first = max(from_date.toordinal(), today.toordinal() - (HISTORY_DAYS - 1))
    if first > last:
        return []
    out: list[TransactionData] = []
    if days_of_month is None:
        days = _calendar(first, last)
    else:
        days = _calendar_on(first, last, days_of_month(profile))
    _Day(account.external_id, today, out).walk(days, build, profile)
    return out


def accounts_for(profile: MemberProfile) -> list[AccountData]:
    """Copies of the member's accounts (the profile itself is cached and shared)."""
    # Every field is an init field, so this is dataclasses.replace at half the cost.
    return [AccountData(**{**vars(a), "details": dict(a.details)}) for a in profile.accounts]


def holdings_for(profile: MemberProfile, account_external_id: str) -> list[HoldingData]:
    return [
        dataclasses.replace(h)
        for h in profile.holdings
        if h.account_external_id == account_external_id
    ]


def owners_for(profile: MemberProfile, account_external_id: str) -> list[OwnerData]:
    """One individual owner per account: the member themself."""
    if profile.account(account_external_id) is None:
        return []
    p = profile
    return [
        OwnerData(
            account_external_id=account_external_id,
            owner_name=f"{p.first_name} {p.last_name}",
            first_name=p.first_name,
            last_name=p.last_name,
            address=p.street,
            city=p.city,
            state=p.state,
            postal_code=p.postal_code,
            country="US",
            email=p.email,
            phone=p.phone,
        )
    ]


def dynamic_transactions(
    profile: MemberProfile, today: dt.date, first_pull: bool
) -> list[TransactionData]:
    """The ``dynamic`` scenario's moving pending items on the checking account.

    First pull: three PENDING purchases (``-pending-1/2/3``). Later pulls: #1 posted
    under a new id with the same amount, #2 posted under a new id with a tip added,
    #3 gone (voided upstream). Exercises pending-replacement and removal in ingest.
    """
    acct = f"{profile.key}-CHK"
    rng = random.Random(_seed("dynamic", profile.key))
    yesterday = today - dt.timedelta(days=1)
    items = (
        (1, today, _COFFEE[0], _money(rng.uniform(4.5, 9.5)), Decimal(0)),
        (2, yesterday, _RESTAURANTS[1], _money(rng.uniform(38, 75)), Decimal("0.18")),
        (3, today, _SHOPPING[1], _money(rng.uniform(15, 60)), Decimal(0)),
    )
    out: list[TransactionData] = []
    for n, day, merchant, amount, tip in items:
        pending_id = f"{acct}-pending-{n}"
        if not first_pull and n == 3:
            continue
        at = dt.datetime.combine(day, dt.time(12, 30 + n), _UTC)
        final = (amount * (1 + tip)).quantize(CENT)
        out.append(
            TransactionData(
                external_id=pending_id if first_pull else f"{acct}-posted-{n}",
                account_external_id=acct,
                amount=amount if first_pull else final,
                type="DEBIT",
                date=day,
                description=merchant.name,
                status="PENDING" if first_pull else "POSTED",
                original_description=f"POS DEBIT {merchant.name.upper()} #{1200 + n}",
                transacted_at=at,
                posted_at=None if first_pull else at + dt.timedelta(hours=20),
                category=merchant.category,
                top_level_category=merchant.top_level,
                merchant_name=merchant.name,
                merchant_category_code=merchant.mcc,
                replaces_external_id=None if first_pull else pending_id,
                flags=_flags(is_expense=True),
            )
        )
    return out
